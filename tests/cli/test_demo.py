"""``inferwatch demo --duration``: metrics grow while it runs, the store matches the summary,
and every ``curl`` line in the README works against it."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from inferwatch.store import SQLStore
from tests.cli.conftest import ServerProcess
from tests.notify.conftest import Sink, sink

__all__ = ["sink"]  # the webhook receiver fixture

README = Path(__file__).resolve().parents[2] / "README.md"
DURATION = 20


def scrape(base: str) -> dict[str, float]:
    """Sum of the request counter and of the latency histogram's count."""
    text = httpx.get(f"{base}/metrics", timeout=5).text
    totals = {"requests": 0.0, "latency_count": 0.0}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "inferwatch_requests_total":
                totals["requests"] += s.value
            elif s.name == "inferwatch_request_duration_seconds_count":
                totals["latency_count"] += s.value
    return totals


def readme_curls() -> list[str]:
    lines = README.read_text().splitlines()
    return [ln for ln in lines if ln.startswith("curl ")]


def test_demo_runs_and_its_counts_match_the_store(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    server = ServerProcess(
        [
            "demo", "--duration", str(DURATION), "--workdir", str(workdir),
            "--json", "--rate", "30",
        ],
        cwd=tmp_path,
    )  # fmt: skip
    proc, base = server.proc, server.base
    port = base.rsplit(":", 1)[1]
    scrapes: list[dict[str, float]] = []
    curl_results: list[tuple[str, int, str]] = []
    try:
        server.wait_ready()
        time.sleep(2)
        scrapes.append(scrape(base))
        curl = shutil.which("curl")
        if curl is not None:
            for line in readme_curls():
                cmd = shlex.split(line.replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
                cmd[1:1] = ["-f", "-o", "/dev/null", "-w", "%{http_code}"]
                res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
                curl_results.append((line, res.returncode, res.stdout))
        time.sleep(4)
        scrapes.append(scrape(base))
        exposition = httpx.get(f"{base}/metrics", timeout=5).content
        rc = proc.wait(DURATION + 90)  # the demo stops by itself
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    server.stop()
    stdout, stderr = server.stdout, server.stderr
    assert rc == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    for key in ("requests", "accepted", "rejected", "stored"):
        assert isinstance(summary[key], int), key
    assert summary["accepted"] > 50
    assert summary["rejected"] > 0
    assert summary["errors"] == 0
    # the README's predict examples (V1 and V2) each send one instance that the demo's
    # client did not count
    extra = sum(
        1 for line, rc, _ in curl_results if ("/predict" in line or "/infer" in line) and rc == 0
    )
    assert summary["stored"] == summary["accepted"] + extra
    assert summary["requests"] == summary["ok_requests"] + summary["rejected"] + summary["errors"]
    # every rejection reason the traffic sends shows up with its own code
    assert set(summary["rejected_by_code"]) <= {
        "missing_feature", "wrong_type", "unknown_feature", "non_finite",
        "empty_batch", "malformed_json", "unknown_model",
    }  # fmt: skip
    store = SQLStore(f"sqlite:///{workdir / 'inferwatch.db'}")
    try:
        assert store.count_predictions("churn") == summary["stored"]
        assert store.count_predictions() == summary["stored"]
    finally:
        store.close()
    # while it ran, the counter and the latency histogram grew
    assert scrapes[1]["requests"] > scrapes[0]["requests"] > 0
    assert scrapes[1]["latency_count"] > scrapes[0]["latency_count"] > 0
    assert re.search(r"requests\s+\d+\s+accepted", stderr), stderr[-2000:]
    # the README's curl examples work verbatim against the demo
    if shutil.which("curl") is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("curl not installed under CI; make system-deps installs it")
        return
    assert len(curl_results) >= 6
    for line, rc, code in curl_results:
        assert rc == 0 and code == "200", f"{line!r} -> rc {rc}, HTTP {code}"
    # promtool accepts the live exposition, request metrics and rejections included
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("promtool not installed under CI; make system-deps installs it")
        return
    assert b"inferwatch_requests_rejected_total" in exposition
    check = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=30
    )
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()


@pytest.mark.slow
def test_the_demos_drift_alert_fires_within_a_minute_at_its_webhook(
    tmp_path: Path, sink: Sink
) -> None:
    """``inferwatch demo --alert-webhook``: the default pack scaled to the demo's windows
    fires the drift alert at the receiver within about a minute of the drift starting,
    and the summary lists it.

    The demo is stopped with SIGTERM (its Ctrl-C path) as soon as the alert arrived rather
    than waiting out a fixed ``--duration``: the deadline is what the minute is checked
    against, and the test above covers the demo stopping by itself."""
    drift_after, within = 3, 60
    server = ServerProcess(
        ["demo", "--duration", "300", "--drift-after", str(drift_after),
         "--workdir", str(tmp_path / "demo"), "--json", "--alert-webhook", sink.url],
        cwd=tmp_path,
    )  # fmt: skip
    started = time.monotonic()  # it printed its URL: its clock and traffic start now

    def received() -> set[str]:
        return {
            a["labels"]["alertname"]
            for r in list(sink.requests)
            for a in r.json()["alerts"]
            if a["status"] == "firing"
        }

    try:
        while time.monotonic() - started < within and server.proc.poll() is None:
            if "DatasetDrift" in received():
                break
            time.sleep(0.25)
        elapsed = time.monotonic() - started
        assert server.proc.poll() is None, server.output()[-3000:]
    finally:
        rc = server.stop(90)  # SIGTERM: the demo stops and prints its summary
    assert rc == 0, server.stderr
    assert "DatasetDrift" in received(), (received(), server.stderr[-3000:])
    assert elapsed < within, elapsed
    summary = json.loads(server.stdout.strip().splitlines()[-1])
    assert any(a.startswith("DatasetDrift (") for a in summary["alerts_fired"]), summary
    # the demo's config carries the pack, scaled: the drift rule waits 15 s, not 15 minutes
    config = (tmp_path / "demo" / "inferwatch.yaml").read_text()
    assert "name: DatasetDrift" in config and "for: 15s" in config
