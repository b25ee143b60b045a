// One model: traffic, latency, confidence and classes, the drift heatmap and a feature's
// distribution, data quality, performance, fairness, versions, and its alerts with
// silence and acknowledge.

import { api, optional } from "../api.js";
import { banner, link, render, setQuery } from "../app.js";
import {
  badge, barPairs, color, el, empty, epoch, histChart, isNum, legend, lineChart, num, pct,
  rate, secs, seriesColor, table, time,
} from "../format.js";
import { overview } from "./overview.js";

const enc = encodeURIComponent;
const MAX_COLUMNS = 120;  // heatmap windows shown (the newest)

/** A promise's outcome without throwing: {value} or {error}. */
const settle = (p) => p.then((value) => ({ value }), (error) => ({ error }));

function card(title, sub, ...body) {
  return el("section", { class: "card" }, el("h2", {}, title, sub ? el("small", {}, sub) : null), ...body);
}
function failed(title, error) {
  const why = error.status === 401 ? "needs an API key with the read role" : error.message;
  return card(title, null, empty(`Could not load: ${why}`));
}

// ---- traffic, latency, confidence, classes ------------------------------------------------

function historyCards(h, xrange) {
  if (!h) {
    const none = empty("This server keeps no history (GET /v1/models/{name}/history is missing).");
    return [card("Traffic and errors", null, none), card("Latency", null, none.cloneNode(true))];
  }
  const s = h.series, t = h.t;
  const step = `${num(h.step_seconds, 3)} s buckets`;
  const traffic = card("Traffic and errors", step, lineChart(t, [
    { label: "requests/s", values: s.requests_per_second },
    { label: "errors/s", values: s.errors_per_second, color: color("red") },
  ], { yfmt: (v) => num(v, 3), xrange }));
  traffic.id = "traffic";
  const latency = card("Latency", "p50 / p95 / p99", lineChart(t, [
    { label: "p50", values: s.latency_p50_seconds, color: seriesColor(0) },
    { label: "p95", values: s.latency_p95_seconds, color: seriesColor(1) },
    { label: "p99", values: s.latency_p99_seconds, color: seriesColor(2) },
  ], { yfmt: secs, xrange }));
  latency.id = "latency";
  const cards = [traffic, latency];
  const classes = Object.entries(h.classes || {});
  const conf = [{ label: "mean confidence", values: s.confidence_mean, color: seriesColor(3) }];
  cards.push(card("Confidence", "mean top-class probability",
    lineChart(t, conf, { yfmt: (v) => num(v, 3), xrange })));
  if (classes.length) {
    cards.push(card("Predicted classes", "share of predictions per bucket", lineChart(t,
      classes.map(([name, values], i) => ({ label: name, values, color: seriesColor(i) })),
      { yfmt: (v) => pct(v, 0), range: [0, 1], xrange })));
  }
  return cards;
}

// ---- drift heatmap and one feature's distribution -----------------------------------------

function heatColor(cell) {
  if (!cell) return null;
  const ratio = cell.threshold > 0 ? cell.score / cell.threshold : (cell.drift ? 2 : 0);
  const strength = Math.round(Math.min(ratio, 3) / 3 * 85) + 10;
  return cell.drift
    ? `color-mix(in srgb, var(--red) ${strength}%, var(--card))`
    : `color-mix(in srgb, var(--green) ${Math.round(strength / 2)}%, var(--card))`;
}

function showTip(ev, lines) {
  const tip = document.getElementById("tip");
  tip.replaceChildren(...lines.map((l, i) => el(i ? "div" : "b", {}, l)));
  tip.hidden = false;
  const x = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
  tip.style.left = `${x}px`;
  tip.style.top = `${ev.clientY + 14}px`;
}
const hideTip = () => { document.getElementById("tip").hidden = true; };

function heatmap(d, selected) {
  if (!d) return card("Drift per feature", null, empty("This server has no drift history route."));
  if (!d.windows.length) return card("Drift per feature", null, empty("No judged drift windows in this range yet."));
  const first = Math.max(0, d.windows.length - MAX_COLUMNS);
  const windows = d.windows.slice(first);
  const grid = el("div", { class: "heat", id: "heatmap",
    style: `grid-template-columns: max-content repeat(${windows.length}, minmax(8px, 1fr))` });
  grid.addEventListener("mouseleave", hideTip);
  d.features.forEach((f, i) => {
    const drifted = d.cells[i].slice(first).some((c) => c && c.drift);
    grid.append(el("div", { class: "f", "data-feature": f, "data-drifted": drifted ? "true" : "false",
      title: "show its distribution", onclick: () => setQuery({ feature: f }),
      style: f === selected ? "font-weight:700" : null }, drifted ? `\u25cf ${f}` : f));
    windows.forEach((w, j) => {
      const c = d.cells[i][first + j];
      const cell = el("div", { class: `c${c ? (c.drift ? " drift" : "") : " nodata"}`,
        "data-feature": f, "data-drift": c ? String(c.drift) : "none",
        style: c ? `background:${heatColor(c)}` : null });
      cell.addEventListener("mousemove", (ev) => showTip(ev, [
        `${f}${c && c.drift ? " \u2014 drift" : ""}`,
        `${time(w.start)} \u2192 ${time(w.end)}`,
        c ? `test ${c.test}` : "no evaluation",
        c ? `score ${num(c.score, 4)} vs threshold ${num(c.threshold, 4)}` : "",
      ]));
      cell.addEventListener("click", () => setQuery({ feature: f }));
      grid.append(cell);
    });
  });
  // dataset drift share row and time axis
  grid.append(el("div", { class: "axis" }, "drift share"));
  windows.forEach((w, j) => {
    const share = d.dataset_drift_share[first + j];
    grid.append(el("div", { class: "axis", title: pct(share, 0), style: "text-align:center" },
      windows.length <= 24 && isNum(share) ? pct(share, 0) : ""));
  });
  const span = `${time(windows[0].start)} \u2192 ${time(windows[windows.length - 1].end)}`;
  return card("Drift per feature", `${windows.length} windows, ${span}${first ? ` (newest ${MAX_COLUMNS})` : ""}`,
    grid, legend([["drift", color("red")], ["no drift", color("green")], ["darker = score further over its threshold", color("line")]]));
}

function distribution(dist, feature) {
  if (!feature) return card("Feature distribution", null, empty("Pick a feature in the heatmap."));
  if (!dist) return card("Feature distribution", feature, empty("No distribution for this feature (no judged window yet, or no route on this server)."));
  const head = el("p", { class: "muted" },
    `${dist.test} ${num(dist.score, 4)} vs threshold ${num(dist.threshold, 4)} \u2014 `,
    badge(dist.drift ? "critical" : "ok", dist.drift ? "drift" : "no drift"),
    ` \u00b7 window ${time(dist.window.start)} \u2192 ${time(dist.window.end)}`);
  const chart = dist.kind === "numeric" && dist.edges
    ? histChart(dist.edges, dist.reference, dist.current)
    : barPairs(dist.categories || [], dist.reference, dist.current);
  const c = card("Feature distribution", `${feature}: current over reference`, head, chart,
    legend([["reference", color("reference")], ["current", color("current")]]));
  c.id = "distribution";
  return c;
}

function qualityCard(drift) {
  const report = drift && drift.report;
  if (!report) return card("Data quality", null, empty(drift && drift.message ? drift.message : "No judged window yet."));
  const rows = report.features.filter((f) => f.quality);
  const c = card("Data quality", `newest window, ${report.n_current} rows`, el("div", { class: "scroll" }, table([
    { label: "Feature", get: (f) => f.name },
    { label: "Missing", get: (f) => pct(f.quality.missing_share, 2), cls: "n" },
    { label: "Out of range", get: (f) => pct(f.quality.out_of_range_share, 2), cls: "n" },
    { label: "Outliers", get: (f) => pct(f.quality.outlier_share, 2), cls: "n" },
    { label: "Unseen", get: (f) => pct(f.quality.unseen_share, 2), cls: "n" },
    { label: "Type errors", get: (f) => String(f.quality.type_violations ?? 0), cls: "n" },
    { label: "Drift", get: (f) => badge(f.drift_detected ? "critical" : "ok", f.drift_detected ? "drift" : "ok") },
    { label: "Problems", get: (f) => (f.quality.problems || []).join(", ") || "\u2013" },
  ], rows)));
  c.id = "quality";
  return c;
}

// ---- performance, segments, fairness, versions ----------------------------------------------

function performanceCard(evals, metric, segment, xrange) {
  const all = (evals.evaluations || []).filter((r) => isNum(r.value));
  const segments = [...new Set(all.map((r) => r.feature).filter((f) => f != null))].sort();
  const picker = segments.length ? el("select", { "aria-label": "segment", onchange: (e) => setQuery({ segment: e.target.value || null }) },
    el("option", { value: "" }, "all rows"),
    segments.map((f) => el("option", { value: f, selected: f === segment }, f))) : null;
  const rows = all.filter((r) => (segment ? r.feature === segment : r.feature == null));
  const title = ["Performance", `${metric}${segment ? ` in ${segment}` : ""}: realised (solid) beside estimated (dashed), by version`];
  if (!rows.length) {
    return card(...title, picker, empty("No performance evaluations in this range (labels not back yet?)."));
  }
  const keys = [...new Set(rows.map((r) => `${r.version}\u0000${r.test}`))].sort();
  const times = [...new Set(rows.map((r) => epoch(r.window_start)))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const lines = keys.map((k, i) => {
    const [version, test] = k.split("\u0000");
    const values = times.map(() => null);
    for (const r of rows) if (`${r.version}\u0000${r.test}` === k) values[index.get(epoch(r.window_start))] = r.value;
    const realised = test === "realised";
    return { label: `v${version} ${realised ? "realised" : `estimated (${test})`}`, values,
      color: seriesColor(Math.floor(i / 2)), dash: realised ? undefined : [6, 4] };
  });
  const c = card(...title, picker, lineChart(times, lines, { yfmt: (v) => num(v, 3), xrange }));
  c.id = "performance";
  return c;
}

function segmentsAndFairness(perf) {
  // performance state per version: segments = {column: {value: {predictions, labelled,
  // realised?: {metric: v}}}}, fairness = {attribute, results: [{metric, value, lower,
  // upper, threshold, verdict, by_group}]}
  const segRows = [], fairRows = [];
  for (const [v, st] of Object.entries((perf && perf.versions) || {})) {
    for (const [column, values] of Object.entries(st.segments || {})) {
      for (const [value, entry] of Object.entries(values || {})) {
        segRows.push({ v, seg: `${column}=${value}`, ...entry });
      }
    }
    const f = st.fairness;
    for (const r of (f && f.results) || []) fairRows.push({ v, attr: f.attribute, ...r });
  }
  const first = (m) => (m ? Object.keys(m)[0] : null);
  const segCard = card("Segments", "newest labelled window, per segment and version", segRows.length ? el("div", { class: "scroll" }, table([
    { label: "Version", get: (r) => r.v }, { label: "Segment", get: (r) => r.seg },
    { label: "Predictions", get: (r) => num(r.predictions, 6), cls: "n" },
    { label: "Labelled", get: (r) => num(r.labelled, 6), cls: "n" },
    { label: "Metric", get: (r) => first(r.realised) || "too few labels" },
    { label: "Realised", get: (r) => num(r.realised ? r.realised[first(r.realised)] : null), cls: "n" },
  ], segRows)) : empty("No segments configured (models[].segments)."));
  segCard.id = "segments";
  const fc = card("Fairness gaps", "between the protected attribute's groups", fairRows.length ? table([
    { label: "Version", get: (r) => r.v }, { label: "Attribute", get: (r) => r.attr },
    { label: "Metric", get: (r) => r.metric },
    { label: "Gap", get: (r) => num(r.value, 3), cls: "n" },
    { label: "Interval", get: (r) => `${num(r.lower, 3)} \u2013 ${num(r.upper, 3)}`, cls: "n" },
    { label: "Threshold", get: (r) => num(r.threshold, 3), cls: "n" },
    { label: "Verdict", get: (r) => badge(r.verdict === "unfair" ? "critical" : r.verdict === "fair" ? "ok" : "na", r.verdict) },
  ], fairRows) : empty("No protected attribute configured (models[].protected_attribute)."));
  fc.id = "fairness";
  return [segCard, fc];
}

function versionsCard(detail, perf) {
  const states = (perf && perf.versions) || {};
  const c = card("Versions", detail.live_since ? `live since ${time(epoch(detail.live_since))}` : null, table([
    { label: "Version", get: (v) => v.version },
    { label: "Flavor", get: (v) => v.flavor },
    { label: "Live", get: (v) => (v.live ? badge("ok", "live") : el("span", { class: "muted" }, v.role || "standby")) },
    { label: "Predictions", get: (v) => num((states[v.version] || {}).predictions ?? null, 6), cls: "n" },
    { label: "Labelled", get: (v) => pct((states[v.version] || {}).label_coverage ?? null, 0), cls: "n" },
  ], detail.versions || [{ version: detail.version, flavor: detail.flavor, live: true }]));
  c.id = "versions";
  return c;
}

// ---- alerts: firing and past, silence and acknowledge -----------------------------------------

async function act(what, call) {
  try {
    const got = await call();
    banner(what.ok(got), "ok");
    render();
  } catch (e) {
    const why = e.status === 403 ? `refused: ${e.message}; it needs an API key with the admin role.`
      : e.status === 401 ? `refused: ${e.message}; enter an API key with the admin role (key button).`
        : e.status === 404 || e.status === 405 ? `is not available: ${e.message}.`
          : `failed: ${e.message}`;
    banner(`${what.name} ${why}`, "error");
  }
}

function silence(a) {
  const matchers = Object.entries(a.labels).map(([k, v]) => `${k}="${String(v).replace(/["\\]/g, "\\$&")}"`);
  return act({ name: "Silencing", ok: (s) => `Silenced ${a.labels.alertname} for 1 h (silence ${s && s.id ? s.id : "created"}).` },
    () => api("/v1/silences", { method: "POST", body: { matchers, created_by: "dashboard", comment: "silenced from the dashboard", duration: "1h" } }));
}
function acknowledge(a) {
  return act({ name: "Acknowledging", ok: () => `Acknowledged ${a.labels.alertname}.` },
    () => api(`/v1/alerts/${enc(a.fingerprint)}/acknowledge`, { method: "POST", body: { author: "dashboard", comment: "acknowledged from the dashboard" } }));
}

function alertsCard(alerts, past) {
  const list = (alerts.alerts || []).filter((a) => a.state !== "resolved");
  const state = (a) => {
    const muted = [];
    if (a.silenced_by && a.silenced_by.length) muted.push("silenced");
    if (a.inhibited) muted.push("inhibited");
    if (a.acknowledged_by) muted.push(`acked by ${a.acknowledged_by}`);
    return `${a.state}${muted.length ? ` (${muted.join(", ")})` : ""}`;
  };
  const firing = list.length ? el("table", { class: "t", id: "alerts" },
    el("thead", {}, el("tr", {}, ["Alert", "Severity", "Labels", "State", "Since", "Value", ""].map((h) => el("th", {}, h)))),
    el("tbody", {}, list.map((a) => el("tr", { "data-alert": a.labels.alertname, "data-fingerprint": a.fingerprint },
      el("td", { title: (a.annotations && a.annotations.summary) || null }, a.labels.alertname),
      el("td", {}, badge(a.labels.severity, a.labels.severity)),
      el("td", {}, Object.entries(a.labels).filter(([k]) => !["alertname", "severity", "model"].includes(k)).map(([k, v]) => `${k}=${v}`).join(", ") || "\u2013"),
      el("td", {}, state(a)),
      el("td", {}, time(epoch(a.starts_at))),
      el("td", { class: "n" }, num(a.value, 4)),
      el("td", { class: "actions" },
        el("button", { type: "button", class: "silence", onclick: () => silence(a) }, "Silence 1 h"),
        a.state === "firing" && !a.acknowledged_by
          ? el("button", { type: "button", class: "ack", onclick: () => acknowledge(a) }, "Acknowledge") : null)))))
    : empty("No alerts firing or pending for this model.");
  const rows = (past && past.rows) || [];
  const history = rows.length ? el("div", { class: "scroll" }, table([
    { label: "At", get: (r) => time(epoch(r.at)) },
    { label: "Alert", get: (r) => r.alertname },
    { label: "Severity", get: (r) => badge(r.severity, r.severity) },
    { label: "Change", get: (r) => `${r.from_state} \u2192 ${r.to_state}` },
    { label: "Value", get: (r) => num(r.value, 4), cls: "n" },
  ], rows)) : empty("No alert changes in this range.");
  const c = card("Alerts", `${list.length} firing or pending`, firing, el("h2", { style: "margin-top:12px" }, "Past changes"), history);
  c.id = "alerts-card";
  return c;
}

// ---- the page -----------------------------------------------------------------------------------

export async function modelPage(ctx) {
  const name = ctx.model;
  const n = enc(name);
  const version = ctx.q.get("version") || undefined;
  const range = { from: ctx.from.toFixed(0), to: ctx.to.toFixed(0), version };
  const xrange = [ctx.from, ctx.to];
  // about 300 points whatever the range (the server never goes below its sampling interval)
  const step = String(Math.max(1, Math.round((ctx.to - ctx.from) / 300)));
  // one round of requests, then the two that depend on an answer (the performance metric
  // on the overview's, the feature shown on the heatmap's), so the page waits two trips
  const asked = ctx.q.get("feature");
  const distOf = (f) => settle(optional(`/v1/models/${n}/features/${enc(f)}/distribution`, { params: { version } }));
  const first = Promise.all([
    api(`/v1/models/${n}`), settle(overview()),
    settle(optional(`/v1/models/${n}/history`, { params: { ...range, step } })),
    settle(optional(`/v1/models/${n}/drift/history`, { params: range })),
    settle(api(`/v1/models/${n}/drift`)),
    settle(api(`/v1/models/${n}/performance`)),
    settle(api("/v1/alerts", { params: { model: name } })),
    settle(api("/v1/alerts/history", { params: { model: name, since: range.from, limit: 200 } })),
    asked ? distOf(asked) : Promise.resolve(null),
  ]);
  const [detail, ov, hist, heat, drift, perf, alerts, past, askedDist] = await first;
  const head = (ov.value && ov.value.models.find((m) => m.name === name)) || {};
  const metric = (head.performance && head.performance.metric) || (detail.task === "regression" ? "rmse" : "accuracy");
  // the feature shown: the URL's, else the first that drifted in the newest window
  let feature = asked;
  if (!feature && heat.value && heat.value.features.length) {
    const last = heat.value.windows.length - 1;
    feature = heat.value.features.find((f, i) => last >= 0 && heat.value.cells[i][last] && heat.value.cells[i][last].drift)
      || heat.value.features[0];
  }
  const [evals, dist] = await Promise.all([
    settle(api(`/v1/models/${n}/evaluations`, { params: { metric, since: range.from, until: range.to, limit: 10000, version } })),
    askedDist || (feature ? distOf(feature) : Promise.resolve({ value: null })),
  ]);

  const versions = (detail.versions || []).map((v) => v.version);
  const picker = versions.length > 1 ? el("select", { "aria-label": "version", onchange: (e) => setQuery({ version: e.target.value || null }) },
    el("option", { value: "" }, "all versions"),
    versions.map((v) => el("option", { value: v, selected: v === version }, `version ${v}`))) : null;
  const kpis = el("div", { class: "kpis" }, [
    ["traffic", rate(head.requests_per_second)], ["error rate", pct(head.error_ratio, 2)],
    ["p99 latency", secs(head.latency_p99_seconds)], ["drift share", pct(head.dataset_drift_share, 0)],
    [`${metric} realised`, num(head.performance && head.performance.realised)],
    [`${metric} estimated`, num(head.performance && head.performance.estimated)],
  ].map(([k, v]) => el("div", { class: "kpi" }, el("b", {}, v), el("span", {}, k))));
  document.getElementById("crumbs").replaceChildren(el("a", { href: link("/") }, "models"), " / ", name);

  const page = el("div", { "data-model": name },
    el("h1", {}, name, el("small", { class: "muted" }, ` ${detail.task} \u00b7 live version ${detail.version}`),
      head.health ? badge(head.health) : null, picker ? " " : null, picker),
    head.health_reasons && head.health_reasons.length ? el("p", { class: "muted" }, head.health_reasons.join(" \u00b7 ")) : null,
    kpis,
    alerts.error ? failed("Alerts", alerts.error) : alertsCard(alerts.value, past.value));
  const grid = el("div", { class: "grid2" });
  if (hist.error) grid.append(failed("Traffic and latency", hist.error)); else grid.append(...historyCards(hist.value, xrange));
  page.append(grid);
  page.append(heat.error ? failed("Drift per feature", heat.error) : heatmap(heat.value, feature));
  const grid2 = el("div", { class: "grid2" });
  grid2.append(
    dist.error ? failed("Feature distribution", dist.error) : distribution(dist.value, feature),
    drift.error ? failed("Data quality", drift.error) : qualityCard(drift.value),
    evals.error ? failed("Performance", evals.error) : performanceCard(evals.value, metric, ctx.q.get("segment"), xrange),
    versionsCard(detail, perf.value),
    ...(perf.error ? [failed("Segments and fairness", perf.error)] : segmentsAndFairness(perf.value)),
  );
  page.append(grid2);
  return page;
}
