"""The batch drift report's HTML: its size at 1M rows and its render time in Chromium.

Issue 15's goal: the 1M-row drift report's HTML is under 2 MB and renders in Chromium in
under 3 s.  The report is one self-contained file of pre-aggregated histograms (inline SVG,
no script library, never raw rows), so its size does not grow with the rows.

The script writes the report with the CLI (data from bench/drift_data.py), then opens it
``--runs`` times in headless Debian Chromium through Playwright, each time in a fresh page,
and reads the browser's own timings: ``first-contentful-paint`` and ``loadEventEnd`` from
the Performance API, plus the wall time from ``goto`` until the page is loaded.  The
anchor, measured in the same run and the same browser, is a blank page carrying only the
report's ``<title>``: the ratio shows what the report itself costs over a browser's fixed
overhead.

    .venv/bin/python bench/report_render.py --rows 1000000 --runs 7
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from drift_data import write  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip

TIMINGS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  return {fcp: fcp ? fcp.startTime : null, load: nav.loadEventEnd};
}"""


def report(rows: int, out: Path) -> Path:
    ref, cur = write(rows, HERE / "data")
    html = out / f"report_{rows}.html"
    subprocess.run(
        [str(Path(sys.executable).parent / "inferwatch"), "report", "-r", str(ref),
         "--current", str(cur), "-o", str(html)],
        check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip  # exit 1 means "drift found", which the data has
    if not html.exists():
        sys.exit("the report was not written")
    return html


def measure(browser: Any, url: str, runs: int) -> dict[str, float]:
    import time

    fcp, load, wall = [], [], []
    for _ in range(runs):
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        t0 = time.perf_counter()
        page.goto(url, wait_until="load")
        wall.append((time.perf_counter() - t0) * 1000)
        t = page.evaluate(TIMINGS)
        if t["fcp"] is not None:
            fcp.append(t["fcp"])
        load.append(t["load"])
        page.close()
    return {
        "fcp_ms": statistics.median(fcp) if fcp else float("nan"),
        "load_ms": statistics.median(load),
        "wall_ms": statistics.median(wall),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        html = report(args.rows, out)
        body = html.read_bytes()
        blank = out / "blank.html"
        blank.write_text("<!doctype html><title>inferwatch drift report</title><p>.</p>")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                measure(browser, blank.as_uri(), 2)  # warm the browser's caches
                # alternate so that machine noise hits both alike
                rep: list[dict[str, float]] = []
                anc: list[dict[str, float]] = []
                for _ in range(args.runs):
                    rep.append(measure(browser, html.as_uri(), 1))
                    anc.append(measure(browser, blank.as_uri(), 1))
            finally:
                browser.close()

    def med(xs: list[dict[str, float]], key: str) -> float:
        return statistics.median(x[key] for x in xs)

    print(f"report: {args.rows:,} rows, {len(body) / 1e6:.3f} MB HTML "
          f"({len(gzip.compress(body)) / 1e3:.1f} KB gzipped); goal < 2 MB")  # fmt: skip
    for key in ("fcp_ms", "load_ms", "wall_ms"):
        r, a = med(rep, key), med(anc, key)
        print(f"{key:8s} report {r:8.1f} ms   blank page {a:8.1f} ms   ratio {r / a:5.2f}x")
    print(
        f"goal: rendered (load) in < 3000 ms: {'met' if med(rep, 'wall_ms') < 3000 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
