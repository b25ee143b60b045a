"""Windows recomputed from the store equal the live windows and scikit-learn, on real data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from inferwatch.evaluate import recompute_windows
from inferwatch.observation import LabelledPrediction, PredictionRecord
from inferwatch.performance import ClassificationSummary, RegressionSummary
from inferwatch.performance_windows import PerformanceSetup, PerformanceWindows
from inferwatch.store import SQLStore

T0 = 1_800_000_000.0
WIDTH = 3600.0


@pytest.fixture
def store(tmp_path: Path) -> SQLStore:
    s = SQLStore(f"sqlite:///{tmp_path}/r.db")
    s.upgrade()
    return s


def test_classifier_windows_from_the_store(store: SQLStore) -> None:
    x, y = load_breast_cancer(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x[::2], y[::2])
    proba, pred = model.predict_proba(x), model.predict(x)
    # three hours of predictions; every other one labelled, a few labels corrected
    ts = T0 + np.arange(len(y)) * (3 * WIDTH / len(y))
    records = [
        PredictionRecord(
            id=f"p{i}",
            model="m",
            version="1",
            timestamp=datetime.fromtimestamp(ts[i], UTC),
            inputs={},
            output=str(pred[i]),
            score=float(proba[i].max()),
            latency_seconds=None,
            probabilities={"0": float(proba[i, 0]), "1": float(proba[i, 1])},
        )
        for i in range(len(y))
    ]
    store.write_predictions(records)
    now = datetime.fromtimestamp(T0 + 4 * WIDTH, UTC)
    labelled = [LabelledPrediction(r, str(y[i]), now) for i, r in enumerate(records) if i % 2 == 0]
    store.upsert_labels(labelled)
    corrected = [LabelledPrediction(labelled[0].prediction, str(1 - y[0]), now, previous=str(y[0]))]
    store.upsert_labels(corrected)
    setup = PerformanceSetup("m", "1", "classification", classes=("0", "1"))
    windows = recompute_windows(store.labelled_columns("m", "1"), setup, window_seconds=WIDTH)
    live = PerformanceWindows(
        [setup], window_seconds=WIDTH, retention=10, clock=lambda: T0 + 3 * WIDTH
    )
    live.add_labels("m", "1", labelled)
    live.add_labels("m", "1", corrected)
    assert len(windows) == 3
    truth = y.copy()
    truth[0] = 1 - y[0]
    for start, summary in windows.items():
        assert isinstance(summary, ClassificationSummary)
        rows = np.flatnonzero(
            (np.floor(ts / WIDTH) * WIDTH == start) & (np.arange(len(y)) % 2 == 0)
        )
        assert summary.n_labelled == len(rows)
        m = summary.metrics()
        assert m["accuracy"] == pytest.approx(
            skm.accuracy_score(truth[rows], pred[rows]), abs=1e-12
        )
        assert m["log_loss"] == pytest.approx(
            skm.log_loss(truth[rows], proba[rows], labels=[0, 1]), abs=1e-9
        )
        win = live.window("m", "1", start)
        assert win is not None
        assert win.summary.metrics()["accuracy"] == m["accuracy"]


def test_regressor_windows_from_the_store(store: SQLStore) -> None:
    x, y = load_diabetes(return_X_y=True)
    pred = Ridge(alpha=0.1).fit(x[:200], y[:200]).predict(x)
    records = [
        PredictionRecord(
            f"r{i}", "r", "1", datetime.fromtimestamp(T0 + i, UTC), {}, float(p), None, None
        )
        for i, p in enumerate(pred)
    ]
    store.write_predictions(records)
    now = datetime.fromtimestamp(T0 + WIDTH, UTC)
    store.upsert_labels(
        [LabelledPrediction(r, float(t), now) for r, t in zip(records, y, strict=True)]
    )
    setup = PerformanceSetup("r", "1", "regression")
    windows = recompute_windows(store.labelled_columns("r", "1"), setup, window_seconds=WIDTH)
    (summary,) = windows.values()
    assert isinstance(summary, RegressionSummary)
    m = summary.metrics()
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred), rel=1e-12)
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred), rel=1e-12)
