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


def test_segments_and_fairness_reach_the_gauges(tmp_path: Path) -> None:
    """breast_cancer with two input columns the model ignores: a segment (tumour size band,
    from a real column) and a protected group; their gauges agree with fairlearn."""
    from fairlearn.metrics import demographic_parity_difference
    from prometheus_client.parser import text_string_to_metric_families
    from sklearn.compose import ColumnTransformer

    frame = load_breast_cancer(as_frame=True).frame
    features = [c for c in frame.columns if c != "target"]
    frame["size_band"] = np.where(frame["mean radius"] > 14, "large", "small")
    frame["group"] = np.where(frame["mean texture"] > 19, "g1", "g2")
    idx = np.random.default_rng(0).permutation(len(frame))
    train, ref, live = frame.iloc[idx[:200]], frame.iloc[idx[200:350]], frame.iloc[idx[350:]]
    model = make_pipeline(
        ColumnTransformer([("x", StandardScaler(), features)], remainder="drop"),
        LogisticRegression(),
    ).fit(train.drop(columns="target"), train["target"])
    registry = CollectorRegistry()
    monitor = Monitor.from_reference(
        ref,
        model="cancer", version="1", target="target", predictor=model,
        store=f"sqlite:///{tmp_path}/s.db", registry=registry, evaluation_interval=None,
        positive_class="1", segments=["size_band"], protected_attribute="group",
    )  # fmt: skip
    try:
        inputs = live.drop(columns="target").to_dict(orient="records")
        pred = model.predict(live.drop(columns="target"))
        ids = monitor.log("cancer", "1", inputs, [str(p) for p in pred])
        monitor.log_labels("cancer", list(zip(ids, live["target"].tolist(), strict=True)))
        state = monitor.performance()
        assert state is not None
        gauges: dict[tuple[str, ...], float] = {}
        for family in text_string_to_metric_families(generate_latest(registry).decode()):
            for s in family.samples:
                if s.name in {"inferwatch_segment_performance", "inferwatch_fairness"}:
                    key = (s.name, s.labels["metric"], s.labels.get("segment", ""))
                    gauges[key] = s.value
        large = (live["size_band"] == "large").to_numpy()
        expected = accuracy_score(live["target"][large], pred[large])
        got = gauges[("inferwatch_segment_performance", "accuracy", "size_band=large")]
        assert got == pytest.approx(expected, abs=1e-12)
        dpd = demographic_parity_difference(live["target"], pred, sensitive_features=live["group"])
        fair = gauges[("inferwatch_fairness", "demographic_parity_difference", "")]
        assert fair == pytest.approx(dpd, abs=1e-12)
    finally:
        monitor.close()
