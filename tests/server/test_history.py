"""The server's own history end to end: ``build_app`` serving a real scikit-learn model
trained on ``load_breast_cancer``, traffic through the HTTP API, the sampling thread
writing a real SQLite file every 0.2 s, and the dashboard's JSON API read back.

Every figure is checked against something the history did not compute: the predictions
the client received (classes, confidence), the latency histogram ``/metrics`` exposes
(the bucket counts and their p99 by a numpy interpolation), and the stored rows.
"""

from __future__ import annotations

import math
import sqlite3
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from inferwatch.config import Settings
from inferwatch.server import build_app
from inferwatch.store import SQLStore
from tests.server.conftest import TestClient, sample

FEATURES = ("mean_radius", "mean_texture", "mean_smoothness", "worst_area", "worst_symmetry")
WAIT_SECONDS = 20.0


def wait_for(condition: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        got = condition()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {WAIT_SECONDS}s")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A classifier on five breast-cancer features, its reference (with the target) and
    the rows to send, written once per module."""
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame["diagnosis"] = np.where(frame["target"] == 1, "benign", "malignant")
    path = tmp_path_factory.mktemp("cancer")
    ref = frame.iloc[::2]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(ref[list(FEATURES)], ref["diagnosis"])
    joblib.dump(model, path / "model.joblib")
    ref[[*FEATURES, "diagnosis"]].to_parquet(path / "reference.parquet")
    return path, frame.iloc[1::2].reset_index(drop=True)


def _settings(path: Path, tmp_path: Path, **history: Any) -> Settings:
    return Settings(
        store={"url": f"sqlite:///{tmp_path}/h.db", "flush_interval_seconds": 0.05},
        models=[{"name": "cancer", "path": path / "model.joblib",
                 "reference": path / "reference.parquet", "target": "diagnosis"}],
        drift={"evaluation_interval_seconds": 0.2, "window_seconds": 86_400,
               "min_window_rows": 50, "calibration_resamples": 20},
        history={"interval_seconds": 0.2, **history},
    )  # fmt: skip


def _rows(frame: pd.DataFrame, start: int, n: int, shift: float = 1.0) -> list[dict[str, float]]:
    part = frame.iloc[start : start + n]
    return [
        {f: float(r[f]) * (shift if f == "mean_radius" else 1.0) for f in FEATURES}
        for _, r in part.iterrows()
    ]


def _buckets(text: str) -> dict[str, float]:
    """The request-duration buckets ``/metrics`` exposes for the model (cumulative)."""
    for family in text_string_to_metric_families(text):
        if family.name == "inferwatch_request_duration_seconds":
            return {
                s.labels["le"]: s.value
                for s in family.samples
                if s.name.endswith("_bucket") and s.labels.get("model") == "cancer"
            }
    raise AssertionError("no latency histogram")


def _numpy_p99(buckets: dict[str, float]) -> float:
    les = np.array([math.inf if k == "+Inf" else float(k) for k in buckets])
    order = np.argsort(les)
    les, cum = les[order], np.array(list(buckets.values()))[order]
    rank = 0.99 * cum[-1]
    b = int(np.searchsorted(cum, rank, side="left"))
    lower, below = (0.0, 0.0) if b == 0 else (les[b - 1], cum[b - 1])
    return float(lower + (les[b] - lower) * (rank - below) / (cum[b] - below))


def _sent(answer: dict[str, Any], rows: list[Any]) -> float:
    """Requests the answer's rates account for: each bucket's rate times the seconds the
    stored rows cover in it (a row longer than the step shares itself out by overlap)."""
    step, total = answer["step_seconds"], 0.0
    for b, rate in zip(answer["t"], answer["series"]["requests_per_second"], strict=True):
        covered = 0.0
        for r in rows:
            if r.seconds <= step:
                covered += r.seconds if b <= r.start < b + step else 0.0
            else:
                covered += max(0.0, min(b + step, r.start + r.seconds) - max(b, r.start))
        total += (rate or 0.0) * covered
    return total


def test_the_history_tells_what_the_server_answered(
    cancer: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    path, frame = cancer
    app = build_app(_settings(path, tmp_path))
    store = SQLStore(f"sqlite:///{tmp_path}/h.db")
    classes: dict[str, int] = {}
    confidences: list[float] = []
    with TestClient(app) as client:
        time.sleep(0.5)  # the sampler's baseline and a few empty intervals
        begin = time.time()
        for i in range(40):  # 40 requests, 200 rows, mean_radius shifted: drift
            r = client.post("/v1/models/cancer/predict",
                            json={"instances": _rows(frame, 5 * i, 5, shift=1.6)})  # fmt: skip
            assert r.status_code == 200
            for p in r.json()["predictions"]:
                classes[p["prediction"]] = classes.get(p["prediction"], 0) + 1
                confidences.append(max(p["probabilities"].values()))
            time.sleep(0.01)

        def stored() -> bool:
            rows = store.query_model_history("cancer", since=0, until=2e9)
            return sum(r.requests for r in rows) == 40

        wait_for(stored, "history rows counting all 40 requests")
        report = wait_for(
            lambda: (
                (d := client.get("/v1/models/cancer/drift").json())["status"] == "judged"
                and d["window"]["rows"] == 200
                and d
            ),
            "a judged drift window of all 200 rows",
        )
        scraped = _buckets(client.get("/metrics").text)
        now = time.time()
        # the sampler writes rows in order: once one starts at or after ``now``, every row
        # the routes below read (``start < now``) is final, so the rows read back after the
        # server stops are the ones its answers were made from (the shutdown's last row
        # starts after ``now`` and would otherwise add seconds to the last bucket)
        wait_for(
            lambda: store.query_model_history("cancer", since=now, until=2e9),
            "a history row after the answers' range",
        )
        fine = client.get("/v1/models/cancer/history",
                          params={"from": begin - 1, "to": now, "step": 1}).json()  # fmt: skip
        whole = client.get("/v1/models/cancer/history",
                           params={"from": begin - 1, "to": now, "step": 1e9}).json()  # fmt: skip
        one = client.get("/v1/models/cancer/history",
                         params={"from": begin - 1, "to": now, "version": "1"}).json()  # fmt: skip
        none = client.get("/v1/models/cancer/history",
                          params={"from": begin - 1, "version": "9"}).json()  # fmt: skip
        res = client.get("/v1/history/resources", params={"from": begin - 1}).json()
        overview = client.get("/v1/overview").json()
        heat = client.get("/v1/models/cancer/drift/history").json()
        dist = client.get("/v1/models/cancer/features/mean_radius/distribution").json()
        bad_range = client.get("/v1/models/cancer/history", params={"from": now, "to": now - 5})
        bad_step = client.get("/v1/models/cancer/history",
                              params={"from": now - 2_592_000, "to": now, "step": 10})  # fmt: skip
        unknown = client.get("/v1/models/nope/history")
        no_feature = client.get("/v1/models/cancer/features/nope/distribution")
    rows = store.query_model_history("cancer", since=begin - 400, until=now)
    store.close()

    # every request answered is in the stored rows, exactly
    assert sum(r.requests for r in rows) == 40
    # requests per second: what was sent, per second the rows cover (a row longer than the
    # step shares itself out by overlap; the answers are rounded, hence 1e-6)
    for answer in (fine, one):
        assert _sent(answer, rows) == pytest.approx(40, rel=1e-6)
    t, rps = fine["t"], fine["series"]["requests_per_second"]
    assert fine["step_seconds"] == 1.0 and len(t) == len(rps) == len(fine["series"]["error_ratio"])
    assert max(v for v in rps if v is not None) > 1  # ~40 requests in ~1-2 s
    # latency: the stored bucket deltas add up to the histogram /metrics exposes, and the
    # route's p99 over the whole traffic is numpy's interpolation of those buckets
    summed: dict[str, float] = {}
    for r in rows:
        for le, c in r.latency_buckets.items():
            summed[le] = summed.get(le, 0.0) + c
    assert {float(k): v for k, v in summed.items()} == {float(k): v for k, v in scraped.items()}
    assert len(whole["t"]) == 1
    assert whole["series"]["latency_p99_seconds"][0] == pytest.approx(_numpy_p99(scraped))
    assert whole["series"]["error_ratio"] == [0.0]
    # classes and confidence: what the client was answered
    total = sum(classes.values())
    assert whole["classes"] == {c: [pytest.approx(k / total)] for c, k in classes.items()}
    assert whole["series"]["confidence_mean"][0] == pytest.approx(np.mean(confidences))
    assert (one["version"], one["step_seconds"]) == ("1", 0.2)  # default: the interval
    assert all(v is None for v in none["series"]["requests_per_second"])
    # resources: rows every interval
    assert any(v is not None for v in res["series"]["host_memory_total_bytes"])
    assert any(v is not None for v in res["series"]["process_resident_memory_bytes"])
    assert res["gpus"] == {} or all("utilization_ratio" in g for g in res["gpus"].values())

    (model,) = overview["models"]
    assert (model["name"], model["version"], model["task"]) == ("cancer", "1", "classification")
    assert model["requests_per_second"] > 0 and model["error_ratio"] == 0.0
    assert model["latency_p99_seconds"] > 0
    assert model["dataset_drift_share"] == pytest.approx(report["report"]["drift_share"])
    assert model["health"] == ("warning" if report["report"]["dataset_drift"] else "ok")
    assert model["performance"]["metric"] == "accuracy"
    assert model["alerts_firing"] == {"critical": 0, "warning": 0}

    assert heat["version"] == "1" and len(heat["windows"]) == 1
    assert heat["features"] == list(FEATURES)
    drifted = {f["name"] for f in report["report"]["features"] if f["drift_detected"]}
    assert "mean_radius" in drifted
    for name, cells in zip(heat["features"], heat["cells"], strict=True):
        (cell,) = cells
        assert cell["drift"] == (name in drifted)
        assert cell["test"] and cell["threshold"] is not None and cell["score"] is not None
    assert heat["dataset_drift_share"] == [pytest.approx(report["report"]["drift_share"])]

    feature = next(f for f in report["report"]["features"] if f["name"] == "mean_radius")
    assert dist["kind"] == "numeric" and dist["drift"] is True
    assert len(dist["edges"]) == len(dist["reference"]) + 1 == len(dist["current"]) + 1
    assert sum(dist["reference"]) == pytest.approx(1) and sum(dist["current"]) == pytest.approx(1)
    assert (dist["test"], dist["score"]) == (feature["test"], feature["statistic"])
    # shifted by 1.6: most current rows sit in the reference's top bins
    assert sum(dist["current"][-2:]) > 0.5 > sum(dist["reference"][-2:])

    assert bad_range.status_code == 422
    assert bad_range.json()["error"]["details"][0]["field"] == "from"
    assert bad_step.status_code == 422
    assert bad_step.json()["error"]["details"][0]["field"] == "step"
    assert unknown.status_code == 404 and no_feature.status_code == 404


def test_a_broken_history_store_costs_only_history(
    cancer: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    path, frame = cancer
    app = build_app(_settings(path, tmp_path))
    with TestClient(app) as client:
        time.sleep(0.3)
        with sqlite3.connect(tmp_path / "h.db") as db:  # the history tables go away
            db.execute("DROP TABLE history_models")
        for i in range(10):
            r = client.post("/v1/models/cancer/predict", json={"instances": _rows(frame, i, 1)})
            assert r.status_code == 200

        def failed() -> float:
            text = client.get("/metrics").text
            return sample(text, "inferwatch_history_operations_total", operation="write",
                          outcome="failed")  # fmt: skip

        wait_for(lambda: failed() >= 2, "two failed history writes counted")
        history = client.get("/v1/models/cancer/history")
        assert client.get("/readyz").status_code == 200
    assert history.status_code == 503
    assert history.json()["error"]["code"] == "store_unavailable"
    with SQLStore(f"sqlite:///{tmp_path}/h.db") as store:
        assert store.count_predictions("cancer") == 10  # every prediction stored
