"""``GET /v1/models/{name}/drift``: the newest judged live window's report, the same one
``/metrics`` shows, and a clear answer when there is none (not judged yet, no reference)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferwatch.demo import make_customers, to_instances
from inferwatch.server import build_app
from tests.server.conftest import AppFactory, TestClient, live_settings, sample

WAIT_SECONDS = 20.0


def poll(client: TestClient, until: Any) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        body: dict[str, Any] = client.get("/v1/models/churn/drift").json()
        if until(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"no such drift answer within {WAIT_SECONDS}s: {body}")
        time.sleep(0.05)


def test_the_route_and_metrics_tell_one_story(demo_workdir: Path, tmp_path: Path) -> None:
    traffic = to_instances(make_customers(600, np.random.default_rng(11), drift=1.0))
    with TestClient(build_app(live_settings(demo_workdir, tmp_path))) as client:
        first = client.get("/v1/models/churn/drift")
        assert first.status_code == 200
        assert first.json()["status"] == "not_judged"
        assert first.json()["report"] is None
        assert first.json()["message"]  # not evaluated yet, or the window is still empty
        for i in range(0, len(traffic), 100):
            r = client.post("/v1/models/churn/predict", json={"instances": traffic[i : i + 100]})
            assert r.status_code == 200
        body = poll(client, lambda b: (b["window"] or {}).get("rows") == len(traffic))
        text = client.get("/metrics").text

    assert body["status"] == "judged" and body["message"] is None
    assert (body["model"], body["version"]) == ("churn", "1")
    report, window = body["report"], body["window"]
    assert window == report["window"]
    assert window["end"] - window["start"] == 86_400
    assert window["start"] <= window["evaluated_at"] <= window["end"]
    assert report["n_current"] == len(traffic)
    labels = {"model": "churn", "version": "1"}
    judged = [f for f in report["features"] if f["statistic"] is not None]
    assert len(judged) == 8
    for f in judged:
        at = {**labels, "feature": f["name"]}
        assert sample(text, "inferwatch_drift_threshold", **at) == pytest.approx(f["threshold"])
        assert sample(text, "inferwatch_drift_detected", **at) == float(f["drift_detected"])
        assert f["details"]["nominal_threshold"] is not None  # calibrated, with the nominal kept
        nominal = sample(text, "inferwatch_drift_nominal_threshold", **at)
        assert nominal == pytest.approx(f["details"]["nominal_threshold"])
        for check, key in (("missing", "missing_share"), ("unseen", "unseen_share")):
            if f["kind"] != "numeric" or check == "missing":
                got = sample(text, "inferwatch_feature_quality_share", **at, check=check)
                assert got == pytest.approx(f["quality"][key])
    assert {f["name"] for f in judged if f["drift_detected"]} >= {"income", "plan"}
    assert report["prediction_drift"]["drift_detected"] is True
    assert sample(text, "inferwatch_dataset_drift_share", **labels) == report["drift_share"]


def test_a_window_too_small_to_judge_says_why(demo_workdir: Path, tmp_path: Path) -> None:
    traffic = to_instances(make_customers(50, np.random.default_rng(12)))
    settings = live_settings(demo_workdir, tmp_path, min_window_rows=1000)
    with TestClient(build_app(settings)) as client:
        r = client.post("/v1/models/churn/predict", json={"instances": traffic})
        assert r.status_code == 200
        body = poll(client, lambda b: (b["window"] or {}).get("rows") == len(traffic))
    assert body["status"] == "not_judged"
    assert body["report"] is None
    assert body["window"]["judged"] is False
    assert "50 rows" in body["message"] and "drift.min_window_rows" in body["message"]


def test_unknown_model_and_model_without_reference(make_app: AppFactory) -> None:
    with TestClient(make_app().app) as client:
        missing = client.get("/v1/models/nosuch/drift")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "unknown_model"
        assert "nosuch" in missing.json()["error"]["message"]
        none = client.get("/v1/models/churn/drift")
    assert none.status_code == 200
    body = none.json()
    assert (body["status"], body["report"], body["window"]) == ("no_reference", None, None)
    assert "models[].reference" in body["message"]


def test_the_route_needs_the_read_role(make_app: AppFactory) -> None:
    from tests.server.conftest import KEYS

    with TestClient(make_app(keys=True).app) as client:
        assert client.get("/v1/models/churn/drift").status_code == 401
        predict_only = {"x-api-key": KEYS["predict"]}
        assert client.get("/v1/models/churn/drift", headers=predict_only).status_code == 403
        read = {"authorization": f"Bearer {KEYS['read']}"}
        assert client.get("/v1/models/churn/drift", headers=read).status_code == 200
