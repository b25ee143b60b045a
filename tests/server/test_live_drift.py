"""Live drift windows end to end: ``build_app`` on the demo model and reference, drifted
traffic through the HTTP API, drift gauges on ``/metrics`` and evaluation rows in the store.

The app runs its lifespan (the prediction log's writer and the evaluation loop) while a
TestClient sends requests; every wait is a bounded poll.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferwatch.demo import make_customers, to_instances
from inferwatch.server import build_app
from inferwatch.store import SQLStore
from tests.server.conftest import TestClient, live_settings, sample

DRIFTED = ("income", "monthly_spend", "support_tickets", "plan", "autopay")  # demo drift=1
WAIT_SECONDS = 20.0


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {WAIT_SECONDS}s")
        time.sleep(0.05)


def test_drifted_traffic_shows_up_as_drift_gauges_and_evaluation_rows(
    demo_workdir: Path, tmp_path: Path
) -> None:
    settings = live_settings(demo_workdir, tmp_path)
    rng = np.random.default_rng(11)
    traffic = to_instances(make_customers(600, rng, drift=1.0))

    app = build_app(settings)
    with TestClient(app) as client:
        text = client.get("/metrics").text
        assert "inferwatch_drift_score{" not in text  # no window judged yet
        for i in range(0, len(traffic), 100):
            r = client.post("/v1/models/churn/predict", json={"instances": traffic[i : i + 100]})
            assert r.status_code == 200

        def judged() -> bool:
            nonlocal text
            text = client.get("/metrics").text
            return sample(text, "inferwatch_drift_window_rows", model="churn") == len(traffic)

        wait_for(judged, "evaluation of all 600 rows")

    labels = {"model": "churn", "version": "1"}
    for feature in DRIFTED:
        assert sample(text, "inferwatch_drift_detected", **labels, feature=feature) == 1.0
        assert sample(text, "inferwatch_drift_score", **labels, feature=feature) > 0
    assert sample(text, "inferwatch_drift_score", **labels, feature="age") > 0  # judged too
    # prediction drift: the demo schema's prediction column and the scores (confidence),
    # against the model's outputs on the reference, scored at start
    assert sample(text, "inferwatch_drift_score", **labels, feature="prediction") != 0  # signed z
    assert sample(text, "inferwatch_drift_detected", **labels, feature="prediction") == 1.0
    assert sample(text, "inferwatch_drift_score", **labels, feature="confidence") > 0
    assert 'inferwatch_drift_detected{feature="confidence",model="churn",version="1"}' in text
    assert sample(text, "inferwatch_dataset_drift_share", **labels) >= len(DRIFTED) / 8
    assert sample(text, "inferwatch_dataset_drift", **labels) == 1.0
    assert "inferwatch_feature_missing_share" in text
    assert text.count("# TYPE inferwatch_drift_score gauge") == 1  # one collector
    promtool = shutil.which("promtool")
    if promtool is not None:
        check = subprocess.run(
            [promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
        )
        assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    elif os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail("promtool not installed under CI; make system-deps installs it")

    store = SQLStore(settings.store.url)
    try:
        rows = store.latest_evaluations("churn", "1")
        assert store.count_predictions("churn", "1") == len(traffic)
    finally:
        store.close()
    drift = {r["feature"]: r for r in rows if r["metric"] == "drift"}
    assert set(drift) == {
        "age", "tenure_months", "income", "monthly_spend", "support_tickets", "plan", "region",
        "autopay",
    }  # fmt: skip
    assert all(drift[f]["status"] == "critical" for f in DRIFTED)
    assert all(drift[f]["threshold"] is not None for f in drift)
    dataset = next(r for r in rows if r["metric"] == "dataset_drift_share")
    assert dataset["details"]["n_current"] == len(traffic)
    assert dataset["status"] == "critical"
    assert (dataset["window_end"] - dataset["window_start"]).total_seconds() == 86_400


def test_a_window_below_min_window_rows_publishes_no_verdict(
    demo_workdir: Path, tmp_path: Path
) -> None:
    settings = live_settings(demo_workdir, tmp_path, min_window_rows=1000)
    rng = np.random.default_rng(12)
    traffic = to_instances(make_customers(50, rng, drift=1.0))

    app = build_app(settings)
    with TestClient(app) as client:
        assert (
            client.post("/v1/models/churn/predict", json={"instances": traffic}).status_code == 200
        )
        text = ""

        def counted() -> bool:
            nonlocal text
            text = client.get("/metrics").text
            return sample(text, "inferwatch_drift_window_rows", model="churn") == len(traffic)

        wait_for(counted, "window row count")

    assert "inferwatch_drift_detected{" not in text
    assert "inferwatch_dataset_drift_share{" not in text
    store = SQLStore(settings.store.url)
    try:
        assert store.latest_evaluations("churn", "1") == []
    finally:
        store.close()
