// The dashboard's shared vocabulary: number formats, colours (read from theme.css) and
// the chart kinds every page draws with (time series lines, a reference-vs-current
// histogram).  The batch HTML report uses the same colours; see theme.css.

const DASH = "\u2013";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export const isNum = (x) => typeof x === "number" && Number.isFinite(x);

// Numbers read as in the batch HTML report (report/_html.py's _num and _pct): 4
// significant digits, whole numbers with separators from 10,000, an exponent below 0.001
// or from 1e9; a share with one decimal, "<0.1%" for a tiny one.  Axes ask for 3 digits,
// as the report's axis labels.
export function num(x, digits = 4) {
  if (!isNum(x)) return DASH;
  const a = Math.abs(x);
  if (a === 0) return "0";
  if (a < 1e-3 || a >= 1e9) return x.toExponential(3);
  if (a >= 1e4) return Math.round(x).toLocaleString("en-US");
  return Number(x.toPrecision(digits)).toLocaleString("en-US", { maximumFractionDigits: 6 });
}
export function pct(r, digits = 1) {
  if (!isNum(r)) return DASH;
  if (digits === 1 && r !== 0 && Math.abs(r) < 0.001) return r > 0 ? "<0.1%" : ">\u22120.1%";
  return `${(r * 100).toFixed(digits)}%`;
}
export function secs(s) {
  if (!isNum(s)) return DASH;
  if (s < 1e-3) return `${(s * 1e6).toFixed(0)} \u00b5s`;
  if (s < 1) return `${(s * 1e3).toPrecision(3)} ms`;
  return `${s.toPrecision(3)} s`;
}
export const rate = (r) => (isNum(r) ? `${num(r, 3)}/s` : DASH);
export function bytes(b) {
  if (!isNum(b)) return DASH;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(b) >= 1024 && i < units.length - 1) { b /= 1024; i++; }
  return `${b.toFixed(i ? 1 : 0)} ${units[i]}`;
}
export function time(t) {
  if (!isNum(t)) return DASH;
  const d = new Date(t * 1000);
  return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
export function clock(t) {
  return isNum(t) ? new Date(t * 1000).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" }) : DASH;
}
/** ISO 8601 or epoch seconds -> epoch seconds. */
export function epoch(v) {
  if (isNum(v)) return v;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : t / 1000;
}

/** A colour from theme.css (so charts follow the light/dark theme). */
export function color(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(`--${name}`).trim() || "#888";
}
export const SERIES = ["s1", "s2", "s3", "s4", "s5", "s6"];
export const seriesColor = (i) => color(SERIES[i % SERIES.length]);

export function badge(level, text) {
  const cls = ["ok", "warning", "critical"].includes(level) ? level : "na";
  return el("span", { class: `badge ${cls}`, "data-health": level }, text ?? level ?? "n/a");
}

export function empty(text) { return el("div", { class: "empty" }, text); }

// ---- chart kinds ------------------------------------------------------------------------

const charts = new Set();
window.addEventListener("resize", () => {
  for (const c of charts) {
    if (!c.root.isConnected) { charts.delete(c); continue; }
    c.setSize({ width: c.root.parentElement.clientWidth, height: c.height });
  }
});
/** Forget charts whose element left the page (called on each render). */
export function dropCharts() {
  for (const c of charts) { if (!c.root.isConnected) { c.destroy(); charts.delete(c); } }
}

function axes(yfmt) {
  const stroke = color("axis"), grid = { stroke: color("grid"), width: 1 };
  return [
    { stroke, grid, ticks: grid },
    { stroke, grid, ticks: grid, size: 64, values: (u, vals) => vals.map((v) => yfmt(v)) },
  ];
}

/**
 * Time-series lines: ``t`` in Unix seconds, ``lines`` = [{label, values, color?, dash?}].
 * ``xrange`` = [from, to] fixes the time axis (the page's range).
 * Gaps (null) stay gaps.  Returns the container (with data-points = non-null points).
 */
export function lineChart(t, lines, { yfmt = num, height = 200, range = null, xrange = null } = {}) {
  const box = el("div", { class: "chart" });
  const points = lines.reduce((n, l) => n + l.values.filter((v) => v != null).length, 0);
  box.dataset.points = String(points);
  if (!t.length || !points) { box.append(empty("No data in this range yet.")); return box; }
  const opts = {
    width: 400, height,
    series: [{}].concat(lines.map((l, i) => ({
      label: l.label, stroke: l.color || seriesColor(i), width: 1.6, dash: l.dash,
      spanGaps: false, points: { show: l.values.length < 60 }, value: (u, v) => yfmt(v),
    }))),
    axes: axes(yfmt),
    // xrange: the picked time range, so every chart of a page shares its axis
    scales: { x: xrange ? { time: true, range: xrange } : { time: true }, y: range ? { range } : {} },
    cursor: { drag: { x: true, y: false } },
    legend: { live: true },
  };
  requestAnimationFrame(() => {
    if (!box.isConnected) return;
    opts.width = Math.max(280, box.clientWidth);
    const u = new uPlot(opts, [t, ...lines.map((l) => l.values)], box);
    u.height = height;
    charts.add(u);
  });
  return box;
}

/** A numeric feature's distribution: reference filled, current as a line (the report's kind). */
export function histChart(edges, reference, current, { height = 180 } = {}) {
  const box = el("div", { class: "chart" });
  const x = edges.slice(0, -1).concat([edges[edges.length - 1]]);
  const last = (a) => a.concat([a[a.length - 1]]);
  const opts = {
    width: 400, height,
    series: [
      { value: (u, v) => num(v) },
      { label: "reference", stroke: color("reference"), fill: color("reference") + "55", width: 1,
        paths: uPlot.paths.stepped({ align: 1 }), points: { show: false }, value: (u, v) => pct(v) },
      { label: "current", stroke: color("current"), width: 2,
        paths: uPlot.paths.stepped({ align: 1 }), points: { show: false }, value: (u, v) => pct(v) },
    ],
    axes: axes((v) => pct(v, 0)),
    scales: { x: { time: false } },
  };
  requestAnimationFrame(() => {
    if (!box.isConnected) return;
    opts.width = Math.max(280, box.clientWidth);
    const u = new uPlot(opts, [x, last(reference), last(current)], box);
    u.height = height;
    charts.add(u);
  });
  return box;
}

/** A categorical feature's distribution: a pair of bars per category. */
export function barPairs(categories, reference, current) {
  const top = Math.max(1e-9, ...reference, ...current);
  const box = el("div", { class: "bars" });
  categories.forEach((c, i) => {
    const r = reference[i] ?? 0, k = current[i] ?? 0;
    box.append(
      el("span", {}, c),
      el("div", { class: "track", title: `reference ${pct(r)}, current ${pct(k)}` },
        el("div", { class: "ref", style: `width:${(100 * r) / top}%` }),
        el("div", { class: "cur", style: `width:${(100 * k) / top}%` })),
      el("span", { class: "muted" }, `${pct(r)} \u2192 ${pct(k)}`),
    );
  });
  return box;
}

export function legend(items) {
  return el("div", { class: "legend-row" },
    items.map(([name, c]) => el("span", {}, el("span", { class: "sw", style: `background:${c}` }), name)));
}

/** A table from rows: columns = [{label, get, cls?}]. */
export function table(columns, rows, { onclick = null } = {}) {
  const head = el("tr", {}, columns.map((c) => el("th", { class: c.cls }, c.label)));
  const body = rows.map((r) => el("tr", { class: onclick ? "click" : null, onclick: onclick ? () => onclick(r) : null },
    columns.map((c) => { const v = c.get(r); return el("td", { class: c.cls }, v instanceof Node ? v : String(v ?? DASH)); })));
  return el("table", { class: "t" }, el("thead", {}, head), el("tbody", {}, body));
}
