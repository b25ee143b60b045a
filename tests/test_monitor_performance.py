"""The library path tracks model quality as the server does: Monitor.from_reference + log_labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, mean_absolute_error
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from inferwatch import Monitor


def test_classifier_quality_through_the_monitor(tmp_path: Path) -> None:
    frame = load_breast_cancer(as_frame=True).frame
    features = [c for c in frame.columns if c != "target"]
    idx = np.random.default_rng(0).permutation(len(frame))
    train, ref, live = frame.iloc[idx[:200]], frame.iloc[idx[200:400]], frame.iloc[idx[400:]]
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        train[features], train["target"]
    )
    registry = CollectorRegistry()
    monitor = Monitor.from_reference(
        ref,
        model="cancer",
        version="1",
        target="target",
        predictor=model,
        store=f"sqlite:///{tmp_path}/m.db",
        registry=registry,
        evaluation_interval=None,
    )
    try:
        rows = live[features].to_dict(orient="records")
        pred = model.predict(live[features])
        proba = model.predict_proba(live[features])
        ids = monitor.log(
            "cancer",
            "1",
            rows,
            [str(p) for p in pred],
            probabilities=[{"0": float(p[0]), "1": float(p[1])} for p in proba],
            scores=[float(p.max()) for p in proba],
        )
        before = monitor.performance()
        assert before is not None and before.get("realised") is None
        assert before["estimated"]["accuracy"]["value"] > 0.8
        report = monitor.log_labels("cancer", list(zip(ids, live["target"].tolist(), strict=True)))
        assert report.accepted == len(ids)
        state = monitor.performance()
        assert state is not None
        assert state["realised"]["accuracy"] == pytest.approx(
            accuracy_score(live["target"], pred), abs=1e-12
        )
        text = generate_latest(registry).decode()
        assert 'inferwatch_model_performance{metric="accuracy",model="cancer",version="1"}' in text
    finally:
        monitor.close()


def test_regressor_quality_through_the_monitor(tmp_path: Path) -> None:
    data = load_diabetes(as_frame=True)
    frame = data.frame
    features = list(data.feature_names)
    train, ref, live = frame.iloc[:150], frame.iloc[150:300], frame.iloc[300:]
    model = Ridge(alpha=0.1).fit(train[features], train["target"])
    monitor = Monitor.from_reference(
        ref,
        model="diabetes",
        version="1",
        target="target",
        task="regression",
        predictor=model,
        store=f"sqlite:///{tmp_path}/r.db",
        registry=CollectorRegistry(),
        evaluation_interval=None,
    )
    try:
        pred = model.predict(live[features])
        ids = monitor.log(
            "diabetes", "1", live[features].to_dict(orient="records"), [float(p) for p in pred]
        )
        monitor.log_labels("diabetes", dict(zip(ids, live["target"].tolist(), strict=True)))
        state = monitor.performance()
        assert state is not None
        assert state["realised"]["mae"] == pytest.approx(
            mean_absolute_error(live["target"], pred), rel=1e-9
        )
        est = state["estimated"]["mae"]
        assert est["lower"] <= est["value"] <= est["upper"]
    finally:
        monitor.close()


def test_no_target_means_no_quality_tracking(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(100.0), "y": np.arange(100) % 2})
    model = LogisticRegression().fit(frame[["x"]], frame["y"])
    monitor = Monitor.from_reference(
        frame[["x"]],
        model="m",
        version="1",
        predictor=model,
        store=f"sqlite:///{tmp_path}/n.db",
        registry=CollectorRegistry(),
        evaluation_interval=None,
    )
    try:
        assert monitor.performance() is None
    finally:
        monitor.close()
