"""The dashboard's first paint on the demo's data, in headless Debian Chromium.

Issue 15's goal: the dashboard's first paint on the demo's data under 1 s.  The script
runs the demo's model (scripts/screenshots.py's server: the demo config with shorter
windows) on loopback with the demo's traffic and drift for ``--warmup`` seconds, then
loads the overview and the model page ``--runs`` times each, every time in a fresh browser
context (an empty cache: every script, style sheet and API answer fetched again), and
reads the browser's own timings from the Performance API:

- ``fcp``: first-contentful-paint (the page's shell);
- ``drawn``: the ``inferwatch:rendered`` mark the router sets on the frame after the view
  (every table, the heatmap and every chart's canvas) is in the page, i.e. the data
  fetched from the API and drawn.

The anchor, in the same browser and run: the server's ``/docs`` (Swagger UI, also served
from the package) to first-contentful-paint.

    .venv/bin/python bench/dashboard_paint.py --runs 7 --warmup 45
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from screenshots import ARGS, CHROMIUM, configure, serve, wait_for_alert  # noqa: E402

from inferwatch.demo import DEMO_MODEL, TrafficGenerator  # noqa: E402

TIMINGS = """() => {
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  const drawn = performance.getEntriesByName('inferwatch:rendered')[0];
  return {fcp: fcp ? fcp.startTime : null, drawn: drawn ? drawn.startTime : null};
}"""


def measure(browser: Any, url: str, ready: str, runs: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"fcp": [], "drawn": []}
    for _ in range(runs):
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector(ready)
        if "/ui/" in url:
            page.wait_for_selector("body[data-drawn]", state="attached")
        else:
            page.wait_for_timeout(300)
        got = page.evaluate(TIMINGS)
        for k in out:
            if got[k] is not None:
                out[k].append(got[k] / 1000)
        context.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--warmup", type=float, default=45, help="seconds of demo traffic first")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server, thread, base = serve(configure(Path(tmp)))
        traffic = TrafficGenerator(base, DEMO_MODEL, rate=20, drift_after=15, drift_ramp=10)
        sender = threading.Thread(target=traffic.run, daemon=True)
        sender.start()
        try:
            wait_for_alert(base, args.warmup)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
                pages = {
                    "overview": (f"{base}/ui/#/?range=1h", "#overview tr[data-model]"),
                    "model page": (f"{base}/ui/#/model/{DEMO_MODEL}?range=1h", "#heatmap"),
                    "/docs (anchor)": (f"{base}/docs", ".swagger-ui"),
                }
                for name, (url, ready) in pages.items():
                    got = measure(browser, url, ready, args.runs)
                    line = ", ".join(
                        f"{k} median {statistics.median(v):.3f} s (max {max(v):.3f})"
                        for k, v in got.items() if v
                    )  # fmt: skip
                    print(f"{name}: {line}")
                browser.close()
        finally:
            traffic.stop.set()
            sender.join(10)
            server.should_exit = True
            thread.join(30)


if __name__ == "__main__":
    main()
