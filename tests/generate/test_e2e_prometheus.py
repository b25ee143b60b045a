"""End to end with the real Debian binaries: an inferwatch server under load, Prometheus on
the generated ``prometheus.yml`` and rules, Alertmanager on the generated
``alertmanager.yml`` posting to a webhook in the test.  A model that turns slow fires the
latency alert at the receiver (the critical only: the generated inhibition mutes its
warning), and removing the delay resolves it; then inputs shifted off the reference fire
the dataset drift alert.

The 2 s scrape and 1 s evaluation intervals, the 10 s windows (latency and live drift),
the 2 s drift evaluation and the short ``for`` are test settings passed through the
config and ``generate``'s options, not a code path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression

from inferwatch.config import Settings
from inferwatch.generate import GenerateOptions, generate, write_bundle
from tests._alertmanager import alertmanager_binary, start_alertmanager, stop
from tests._postgres import free_port
from tests.cli.conftest import ServerProcess
from tests.generate._slow_model import SlowModel

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DELAY = 0.6  # seconds per slow predict: p99 in the (0.5, 1] bucket, above critical


@dataclass
class Webhook:
    url: str = ""
    payloads: list[dict[str, Any]] = field(default_factory=list)

    def alerts(self, status: str, alertname: str) -> list[dict[str, Any]]:
        """Every alert of that name posted with that status (payload order)."""
        return [
            a
            for p in list(self.payloads)
            for a in p["alerts"]
            if a["status"] == status and a["labels"].get("alertname") == alertname
        ]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    state = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.payloads.append(json.loads(body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _prometheus(
    binary: str, config: Path, data: Path, *flags: str
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """Prometheus on a free port (retried when taken in between), ready: the process,
    its URL and its log (``flags``: more command-line flags, e.g. a feature)."""
    last = ""
    for _ in range(5):
        port = free_port()
        log = config.parent / f"prometheus-{port}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={data}",
                 f"--web.listen-address=127.0.0.1:{port}", *flags],
                stdout=out, stderr=subprocess.STDOUT, cwd=config.parent,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/-/ready", timeout=1).status_code == 200:
                    return proc, f"http://127.0.0.1:{port}", log
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        last = log.read_text(errors="replace")
        if "address already in use" not in last:
            break
    raise AssertionError(f"prometheus did not start:\n{last[-3000:]}")


def _until(check: Callable[[], bool], timeout: float, what: str, logs: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"{what} within {timeout:.0f} s\n{logs()[-6000:]}")


def test_slow_model_fires_latency_alert_recovery_resolves_it_and_drift_fires(
    tmp_path: Path, webhook: Webhook
) -> None:
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip("prometheus not installed (make system-deps)")
    am_binary = alertmanager_binary()

    # a real model that turns slow while the flag file exists
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    flag = tmp_path / "slow"
    flag.touch()
    joblib.dump(SlowModel(LinearRegression().fit(x, y), flag, DELAY), tmp_path / "model.joblib")
    x.assign(target=y).to_csv(tmp_path / "reference.csv", index=False)
    (tmp_path / "serve.yaml").write_text(
        "store: {url: 'sqlite:///predictions.db'}\n"
        # live drift windows of 10 s judged every 2 s with the tests' usual thresholds
        "drift: {calibration: fixed, window_seconds: 10, evaluation_interval_seconds: 2,\n"
        "        min_window_rows: 30}\n"
        "models:\n"
        "  - {name: diabetes, path: model.joblib, reference: reference.csv, target: target}\n"
    )
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    server = ServerProcess(["serve", "-c", "serve.yaml"], cwd=tmp_path, env=env, timeout=120)
    procs: list[subprocess.Popen[bytes]] = []
    stop_load = threading.Event()
    loaders: list[threading.Thread] = []
    logs: list[Path] = []
    prom_url = ""

    def output() -> str:
        text = "".join(f"\n--- {p.name}\n{p.read_text(errors='replace')[-2500:]}" for p in logs)
        if prom_url:  # what Prometheus saw: its targets, the p99 and its alerts
            for path in ("/api/v1/targets", "/api/v1/alerts", "/api/v1/rules"):
                text += f"\n--- {path}\n{httpx.get(prom_url + path, timeout=5).text[:1500]}"
            query = {"query": settings.alerting.to_rules()[0].expr()}
            found = httpx.get(f"{prom_url}/api/v1/query", params=query, timeout=5).text
            text += f"\n--- p99\n{found[:1000]}"
        return f"payloads: {webhook.payloads}\n{text}\n--- server\n{server.output()[-1000:]}"

    try:
        server.wait_ready(120)  # the machine may be busy: start-up is not what is tested
        settings = Settings(
            alerting={
                "evaluation_interval": "1s",
                "rules": [
                    {"name": "LatencyHigh", "signal": "latency", "aggregation": "p99",
                     "window": "10s", "comparison": ">", "warning": 0.25, "critical": 0.5,
                     "for": "2s", "summary": "p99 latency of {{ $labels.model }} is high"},
                    {"name": "DriftHigh", "signal": "dataset_drift_share", "aggregation": "last",
                     "comparison": ">", "warning": 0.3, "critical": 0.5, "for": "0s"},
                ],
                "receivers": [{"name": "hook", "type": "webhook", "url": webhook.url}],
                "route": {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
            }
        )  # fmt: skip
        out = tmp_path / "monitoring"
        opts = GenerateOptions(webhook_url_in_clear=True)
        write_bundle(generate(settings, ["alertmanager"], opts), out)
        am_proc, am_url = start_alertmanager(
            am_binary, tmp_path, (out / "alertmanager.yml").read_text()
        )
        procs.append(am_proc)
        logs += sorted(tmp_path.glob("alertmanager-*.log"))
        opts = GenerateOptions(
            target=server.base, alertmanager=am_url, pushgateway=None, scrape_interval=2
        )
        write_bundle(generate(settings, ["prometheus", "rules"], opts), out)
        prom_proc, prom_url, prom_log = _prometheus(
            prometheus, out / "prometheus.yml", tmp_path / "tsdb"
        )
        procs.append(prom_proc)
        logs.append(prom_log)

        shift = [0.0]  # added to every feature: 0 is the reference's distribution

        def load() -> None:
            rng = np.random.default_rng(7)
            with httpx.Client(base_url=server.base, timeout=10) as client:
                while not stop_load.is_set():
                    rows = (x.iloc[rng.integers(0, len(x), 5)] + shift[0]).to_dict("records")
                    client.post("/v1/models/diabetes/predict", json={"instances": rows})
                    time.sleep(0.2)

        # one client with pauses: the server runs the model on its event loop, so a slow
        # model also delays /metrics; two busy clients starved the scrapes (timeouts)
        loaders = [threading.Thread(target=load, daemon=True)]
        for t in loaders:
            t.start()

        _until(lambda: bool(webhook.alerts("firing", "LatencyHigh")), 45, "no LatencyHigh", output)
        first = next(
            p for p in webhook.payloads if p["groupLabels"].get("alertname") == "LatencyHigh"
        )
        assert first["status"] == "firing" and first["receiver"] == "hook"
        # the critical only: the generated inhibit rule mutes its warning
        assert [a["labels"]["severity"] for a in first["alerts"]] == ["critical"], first
        assert first["alerts"][0]["labels"]["model"] == "diabetes"
        assert first["alerts"][0]["annotations"]["summary"] == "p99 latency of diabetes is high"

        flag.unlink()  # the model is fast again
        _until(
            lambda: any(
                a["labels"]["severity"] == "critical"
                for a in webhook.alerts("resolved", "LatencyHigh")
            ),
            45,
            "the critical LatencyHigh did not resolve",
            output,
        )
        # inputs drawn from the reference never fired the drift alert
        assert webhook.alerts("firing", "DriftHigh") == [], output()

        shift[0] = 0.5  # far outside every (scaled) diabetes feature's range
        _until(
            lambda: any(
                a["labels"]["severity"] == "critical" for a in webhook.alerts("firing", "DriftHigh")
            ),
            45,
            "no critical DriftHigh after the inputs drifted",
            output,
        )
    finally:
        stop_load.set()
        for t in loaders:
            t.join(15)
        for proc in reversed(procs):
            stop(proc)
        server.stop()
