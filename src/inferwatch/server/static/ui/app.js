// The router: the page, model, range, refresh and selected feature live in the URL's
// hash (#/model/churn?range=1h&refresh=5s&feature=income), so a link shows the same view.

import { api, getKey, setKey, whenUnauthorized } from "./api.js";
import { dropCharts, el } from "./format.js";
import { overviewPage } from "./pages/overview.js";
import { modelPage } from "./pages/model.js";
import { resourcesPage } from "./pages/resources.js";

export const RANGES = { "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800 };
const REFRESH = { off: 0, "5s": 5000, "30s": 30000 };
const $ = (id) => document.getElementById(id);

/** The view the URL asks for. */
export function state() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const q = new URLSearchParams(query || "");
  const parts = (path || "/").split("/").filter(Boolean).map(decodeURIComponent);
  const range = RANGES[q.get("range")] ? q.get("range") : "1h";
  const refresh = REFRESH[q.get("refresh")] !== undefined ? q.get("refresh") : "off";
  return { page: parts[0] || "overview", model: parts[1] || null, range, refresh, q };
}

/** A link to ``path`` keeping range and refresh (and ``extra`` query keys). */
export function link(path, extra = {}) {
  const s = state();
  const q = new URLSearchParams({ range: s.range, refresh: s.refresh });
  for (const [k, v] of Object.entries(extra)) if (v != null) q.set(k, v);
  return `#${path}?${q}`;
}

/** Change query keys of the current view (the hashchange re-renders). */
export function setQuery(changes) {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const q = new URLSearchParams(query || "");
  for (const [k, v] of Object.entries(changes)) { if (v == null) q.delete(k); else q.set(k, v); }
  location.hash = `${path || "/"}?${q}`;
}

export function banner(text, kind = "warn") {
  const b = $("banner");
  if (!text) { b.hidden = true; return; }
  b.className = kind; b.textContent = text; b.hidden = false;
}

let timer = null, rendering = null, seq = 0, shown = null;

export async function render() {
  const s = state();
  $("range").value = s.range;
  $("refresh").value = s.refresh;
  for (const a of document.querySelectorAll(".tabs a")) {
    a.classList.toggle("on", a.dataset.page === (s.page === "model" ? "overview" : s.page));
    a.href = link(a.dataset.page === "resources" ? "/resources" : "/");
  }
  const main = $("main");
  $("crumbs").replaceChildren();
  const where = `${s.page}/${s.model}`;
  if (shown !== null && shown !== where) banner(null);  // a message belongs to its page
  shown = where;
  const mine = ++seq;
  const page = { overview: overviewPage, model: modelPage, resources: resourcesPage }[s.page] || overviewPage;
  const to = Date.now() / 1000;
  const ctx = { ...s, from: to - RANGES[s.range], to };
  rendering = (async () => {
    let content;
    try {
      content = await page(ctx);
    } catch (e) {
      content = el("div", { class: "card" }, el("h2", {}, "Could not load this page"),
        el("p", { class: "muted" }, e.status === 401 ? "An API key with the read role is needed (see above)." : e.message));
    }
    if (mine !== seq) return;  // a newer render started meanwhile
    main.style.minHeight = `${main.offsetHeight}px`;  // keep the scroll position on refresh
    main.replaceChildren(content);
    dropCharts();
    // after the charts' own frame callbacks (queued while the page was built): the moment
    // the view is drawn, for bench/dashboard_paint.py
    requestAnimationFrame(() => {
      main.style.minHeight = "";
      performance.mark("inferwatch:rendered");
      document.body.dataset.drawn = String(mine);
    });
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.rendered = String(mine);
  })();
  await rendering;
  clearTimeout(timer);
  if (REFRESH[s.refresh]) timer = setTimeout(render, REFRESH[s.refresh]);
}

function setupTheme() {
  const saved = localStorage.getItem("inferwatch.theme");
  if (saved) document.documentElement.dataset.theme = saved;
  $("theme").addEventListener("click", () => {
    const dark = document.documentElement.dataset.theme
      ? document.documentElement.dataset.theme === "dark"
      : matchMedia("(prefers-color-scheme: dark)").matches;
    const next = dark ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem("inferwatch.theme", next);
    render();  // charts read their colours when drawn
  });
}

function setupKey() {
  const form = $("key-form");
  const show = (why) => {
    form.hidden = false;
    $("key-why").textContent = why;
    $("key-input").focus();
  };
  whenUnauthorized((e) => show(getKey()
    ? `The API key was refused (${e.message}). Enter another key with the read role.`
    : "This server needs an API key with the read role."));
  $("key-button").addEventListener("click", () => { if (form.hidden) show("API key for this tab (read role to view, admin to silence and acknowledge)."); else form.hidden = true; });
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    setKey($("key-input").value.trim());
    $("key-input").value = "";
    form.hidden = true;
    banner(null);
    render();
  });
  $("key-forget").addEventListener("click", () => { setKey(null); form.hidden = true; render(); });
}

function start() {
  setupTheme();
  setupKey();
  $("range").addEventListener("change", (e) => setQuery({ range: e.target.value }));
  $("refresh").addEventListener("change", (e) => setQuery({ refresh: e.target.value }));
  window.addEventListener("hashchange", render);
  if (!location.hash) history.replaceState(null, "", "#/");
  render();
}

// uPlot is a deferred classic script: it has run before this module (modules defer too,
// in document order), but wait for it to be safe
if (window.uPlot) start(); else window.addEventListener("DOMContentLoaded", start);
export { api };
