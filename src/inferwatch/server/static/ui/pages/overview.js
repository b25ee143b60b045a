// Overview: every served model's headline (GET /v1/overview).

import { api, optional } from "../api.js";
import { link } from "../app.js";
import { badge, el, empty, num, pct, rate, secs, time } from "../format.js";

/** The overview, or (on a server without it) the model list with unknown health. */
export async function overview() {
  const got = await optional("/v1/overview");
  if (got) return got;
  const listed = await api("/v1/models");
  return {
    generated_at: null,
    models: listed.models.map((m) => ({
      name: m.name, version: m.version, task: m.task, health: null, health_reasons: [],
      requests_per_second: null, error_ratio: null, latency_p99_seconds: null,
      dataset_drift_share: null, performance: null, alerts_firing: null,
    })),
  };
}

function perfCell(p, which) {
  if (!p) return "\u2013";
  return p[which] == null ? "\u2013" : num(p[which], 3);
}

export async function overviewPage() {
  const data = await overview();
  const card = el("div", { class: "card" });
  card.append(el("h2", {}, "Models", el("small", {},
    data.generated_at ? `as of ${time(data.generated_at)}` : "health needs a newer server (GET /v1/overview)")));
  if (!data.models.length) { card.append(empty("No models are served.")); return card; }
  const rows = data.models.map((m) => el("tr", { class: "click", "data-model": m.name,
    onclick: () => { location.hash = link(`/model/${encodeURIComponent(m.name)}`); } },
  el("td", {}, el("a", { href: link(`/model/${encodeURIComponent(m.name)}`) }, m.name)),
  el("td", {}, m.version),
  el("td", { title: (m.health_reasons || []).join("\n") || null },
    badge(m.health), " ", el("small", { class: "muted" }, (m.health_reasons || []).slice(0, 2).join(", "))),
  el("td", { class: "n" }, rate(m.requests_per_second)),
  el("td", { class: "n" }, pct(m.error_ratio, 2)),
  el("td", { class: "n" }, secs(m.latency_p99_seconds)),
  el("td", { class: "n" }, pct(m.dataset_drift_share, 0)),
  el("td", {}, m.performance ? m.performance.metric : "\u2013"),
  el("td", { class: "n" }, perfCell(m.performance, "realised")),
  el("td", { class: "n" }, perfCell(m.performance, "estimated")),
  el("td", { class: "n" }, m.alerts_firing
    ? el("span", {}, el("span", { class: m.alerts_firing.critical ? "badge critical" : "muted" }, `${m.alerts_firing.critical} crit`), " ",
      el("span", { class: m.alerts_firing.warning ? "badge warning" : "muted" }, `${m.alerts_firing.warning} warn`))
    : "\u2013")));
  const heads = ["Model", "Version", "Health", "Traffic", "Errors", "p99 latency", "Drift share",
    "Metric", "Realised", "Estimated", "Alerts firing"];
  const numeric = new Set([3, 4, 5, 6, 8, 9, 10]);
  card.append(el("table", { class: "t", id: "overview" },
    el("thead", {}, el("tr", {}, heads.map((h, i) => el("th", { class: numeric.has(i) ? "n" : null }, h)))),
    el("tbody", {}, rows)));
  return card;
}
