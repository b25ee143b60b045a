// Resources: the host's CPU and memory, the server process, and each GPU (api.md #3).

import { optional } from "../api.js";
import { bytes, color, el, empty, lineChart, num, pct, seriesColor } from "../format.js";

function card(title, sub, ...body) {
  return el("section", { class: "card" }, el("h2", {}, title, sub ? el("small", {}, sub) : null), ...body);
}

export async function resourcesPage(ctx) {
  const r = await optional("/v1/history/resources", { params: {
    from: ctx.from.toFixed(0), to: ctx.to.toFixed(0), step: String(Math.max(1, Math.round((ctx.to - ctx.from) / 300))) } });
  const page = el("div", { id: "resources" }, el("h1", {}, "Resources"));
  if (!r) { page.append(card("Resources", null, empty("This server keeps no resource history (GET /v1/history/resources is missing)."))); return page; }
  const s = r.series, t = r.t, xrange = [ctx.from, ctx.to];
  const grid = el("div", { class: "grid2" });
  grid.append(
    card("CPU", `${num(r.step_seconds, 3)} s buckets`, lineChart(t, [
      { label: "host CPU", values: s.host_cpu_ratio, color: seriesColor(0) },
    ], { yfmt: (v) => pct(v, 0), range: [0, 1], xrange }),
    lineChart(t, [{ label: "server process (cores)", values: s.process_cpu_cores, color: seriesColor(1) }],
      { yfmt: (v) => num(v, 3), height: 140, xrange })),
    card("Memory", null, lineChart(t, [
      { label: "host used", values: s.host_memory_used_bytes, color: seriesColor(0) },
      { label: "host total", values: s.host_memory_total_bytes, color: color("muted"), dash: [4, 4] },
      { label: "server resident", values: s.process_resident_memory_bytes, color: seriesColor(1) },
    ], { yfmt: bytes, xrange })),
  );
  const gpus = Object.entries(r.gpus || {});
  if (!gpus.length) grid.append(card("GPU", null, empty("No GPU on this host (or NVML is not installed: pip install inferwatch[gpu]).")));
  for (const [id, g] of gpus) {
    grid.append(card(`GPU ${id}`, null,
      lineChart(t, [{ label: "utilisation", values: g.utilization_ratio, color: seriesColor(2) }], { yfmt: (v) => pct(v, 0), range: [0, 1], xrange }),
      lineChart(t, [{ label: "memory used", values: g.memory_used_bytes, color: seriesColor(3) }], { yfmt: bytes, height: 140, xrange })));
  }
  page.append(grid);
  return page;
}
