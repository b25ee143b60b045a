"""The README's pictures: the dashboard and the HTML drift report, taken from a live demo.

Runs the demo's churn model (``inferwatch.demo``: the same model, config and traffic as
``inferwatch demo``, with shorter windows so it needs about a minute) on a free loopback
port, waits until its inputs drifted and an alert fired, then opens the dashboard in
headless Debian Chromium (Playwright with ``executable_path``; never a downloaded browser)
and saves the overview, the model page and, from the same model's reference against a
drifted sample, the batch HTML report::

    .venv/bin/python scripts/screenshots.py              # writes docs/images/*.png
    .venv/bin/python scripts/screenshots.py --out /tmp/shots --seconds 90

Nothing leaves the machine: the server binds 127.0.0.1 and the pages load only from it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
import yaml

from inferwatch.config import load_settings
from inferwatch.demo import DEMO_MODEL, TrafficGenerator, make_customers, prepare_workdir
from inferwatch.server import build_app

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
WIDTH = 1366


def configure(workdir: Path) -> Path:
    """The demo's config with 10 s drift windows and history sampled every second."""
    path = prepare_workdir(workdir, port=0, n_reference=3000)
    config = yaml.safe_load(path.read_text())
    config["drift"] = {"window_seconds": 10, "evaluation_interval_seconds": 2}
    config["history"] = {"interval_seconds": 1}
    config["models"][0].update(segments=["plan"], protected_attribute="region")
    config["alerting"]["evaluation_interval"] = "2s"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def serve(config: Path) -> tuple[uvicorn.Server, threading.Thread, str]:
    app = build_app(load_settings(config))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            sys.exit("the demo server did not start")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


def wait_for_alert(base: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=base) as client:
        while time.monotonic() < deadline:
            firing = client.get("/v1/alerts", params={"state": "firing"}).json()["alerts"]
            if any(a["labels"]["alertname"] == "DatasetDrift" for a in firing):
                return
            time.sleep(1)
    print("note: DatasetDrift had not fired yet; taking the pictures anyway", file=sys.stderr)


def report(workdir: Path) -> Path:
    """The batch HTML report: the demo's reference against 3,000 fully drifted rows."""
    import joblib
    import pandas as pd

    reference = pd.read_parquet(workdir / "reference.parquet")
    current = make_customers(3000, np.random.default_rng(5), drift=1.0)
    model = joblib.load(workdir / "model.joblib")
    features = [c for c in reference.columns if c not in ("churned", "prediction")]
    current["prediction"] = model.predict(current[features])
    current.to_parquet(workdir / "current.parquet", index=False)
    html = workdir / "report.html"
    subprocess.run(
        [str(Path(sys.executable).parent / "inferwatch"), "report", "-r", "reference.parquet",
         "--current", "current.parquet", "--target", "churned", "--prediction", "prediction",
         "-o", "report.html"],
        check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir,
    )  # fmt: skip  # exit 1 means "drift found", which the data has
    if not html.exists():
        sys.exit("the report was not written")
    return html


def shoot(base: str, html: Path, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    saved = []
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=ARGS, headless=True,
            viewport={"width": WIDTH, "height": 768}, device_scale_factor=1,
        )  # fmt: skip
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        def snap(name: str, **kwargs: Any) -> None:
            # the sticky header would be painted mid-page in a full-page picture
            page.add_style_tag(content="header.top{position:static}")
            page.wait_for_timeout(600)  # charts draw on the next animation frame
            path = out / f"{name}.png"
            page.screenshot(path=str(path), **kwargs)
            saved.append(path)

        page.goto(f"{base}/ui/#/?range=15m")
        page.wait_for_selector("#overview tr[data-model]")
        page.set_viewport_size({"width": WIDTH, "height": 260})
        snap("dashboard-overview")
        page.set_viewport_size({"width": WIDTH, "height": 768})
        page.goto(f"{base}/ui/#/model/{DEMO_MODEL}?range=15m")
        page.wait_for_selector("#heatmap")
        page.wait_for_selector("#latency canvas")
        snap("dashboard-model", full_page=True)
        page.goto(html.as_uri())
        page.wait_for_load_state("load")
        page.set_viewport_size({"width": WIDTH, "height": 1100})
        snap("report")
        context.close()
        if errors:
            print(f"console errors: {errors}", file=sys.stderr)
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--seconds", type=float, default=75, help="longest wait for the drift")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        server, thread, base = serve(configure(workdir))
        traffic = TrafficGenerator(base, DEMO_MODEL, rate=20, drift_after=25, drift_ramp=10)
        sender = threading.Thread(target=traffic.run, daemon=True)
        sender.start()
        try:
            wait_for_alert(base, args.seconds)
            for path in shoot(base, report(workdir), args.out):
                print(path)
        finally:
            traffic.stop.set()
            sender.join(10)
            server.should_exit = True
            thread.join(30)


if __name__ == "__main__":
    main()
