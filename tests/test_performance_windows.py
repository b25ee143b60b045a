"""Live performance windows: predictions and late labels folded by prediction time, on real data."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from inferwatch.observation import LabelledPrediction, PredictionRecord
from inferwatch.performance import ClassificationSummary
from inferwatch.performance_windows import PerformanceSetup, PerformanceWindows, WindowPerformance

NOW = 10_000.0
WIDTH = 600.0


def _ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


@pytest.fixture(scope="module")
def cancer() -> dict[str, object]:
    data = load_breast_cancer()
    x, y = data.data, data.target
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x[::2], y[::2])
    proba = model.predict_proba(x)
    pred = model.predict(x)
    return {"x": x, "y": y, "proba": proba, "pred": pred, "names": data.feature_names}


def _records(
    c: dict[str, object], rows: np.ndarray, t: float, *, group: np.ndarray | None = None
) -> list[PredictionRecord]:
    proba = np.asarray(c["proba"])
    pred = np.asarray(c["pred"])
    out = []
    for i in rows:
        inputs = {"size": "big" if np.asarray(c["x"])[i, 0] > 14 else "small"}
        if group is not None:
            inputs["group"] = str(group[i])
        out.append(
            PredictionRecord(
                id=f"p{i}",
                model="m",
                version="1",
                timestamp=_ts(t),
                inputs=inputs,
                output=str(pred[i]),
                score=float(proba[i].max()),
                latency_seconds=None,
                probabilities={"0": float(proba[i, 0]), "1": float(proba[i, 1])},
            )
        )
    return out


def _setup(**kw: object) -> PerformanceSetup:
    return PerformanceSetup("m", "1", "classification", classes=("0", "1"), **kw)  # type: ignore[arg-type]


def test_realised_metrics_equal_sklearn_on_the_labelled_rows(cancer: dict[str, object]) -> None:
    pw = PerformanceWindows([_setup()], window_seconds=WIDTH, clock=lambda: NOW)
    rows = np.arange(1, 569, 2)  # the half the model did not see
    records = _records(cancer, rows, NOW - 10)
    pw.add("m", "1", records[:100])
    pw.add("m", "1", records[100:])
    y = np.asarray(cancer["y"])
    labelled = [
        LabelledPrediction(r, str(y[i]), _ts(NOW)) for r, i in zip(records, rows, strict=True)
    ]
    pw.add_labels("m", "1", labelled[:200])  # 200 of 284 have labels
    start, win = pw.current("m", "1")
    assert start == np.floor(NOW / WIDTH) * WIDTH
    assert win.summary.n_predictions == len(rows)
    assert win.summary.n_labelled == 200
    assert win.summary.label_coverage == pytest.approx(200 / len(rows))
    m = win.summary.metrics()
    pick = rows[:200]
    pred = np.asarray(cancer["pred"])[pick]
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y[pick], pred), abs=1e-9)
    assert m["f1"] == pytest.approx(skm.f1_score(y[pick], pred), abs=1e-9)
    assert isinstance(win.summary, ClassificationSummary)
    exact_auc = skm.roc_auc_score(y[pick], np.asarray(cancer["proba"])[pick, 1])
    assert abs(m["roc_auc"] - exact_auc) <= win.summary.roc_auc_bound() + 1e-12


def test_a_repeated_label_replaces_and_never_counts_twice(cancer: dict[str, object]) -> None:
    pw = PerformanceWindows([_setup()], window_seconds=WIDTH, clock=lambda: NOW)
    rows = np.arange(0, 100)
    records = _records(cancer, rows, NOW - 5)
    pw.add("m", "1", records)
    y = np.asarray(cancer["y"])[rows]
    first = [LabelledPrediction(r, str(v), _ts(NOW)) for r, v in zip(records, y, strict=True)]
    pw.add_labels("m", "1", first)
    # every other label is corrected to the other class
    flipped = y.copy()
    flipped[::2] = 1 - flipped[::2]
    again = [
        LabelledPrediction(records[i], str(flipped[i]), _ts(NOW), previous=str(y[i]))
        for i in range(0, 100, 2)
    ]
    pw.add_labels("m", "1", again)
    _, win = pw.current("m", "1")
    assert win.summary.n_labelled == 100
    pred = np.asarray(cancer["pred"])[rows]
    assert win.summary.metrics()["accuracy"] == pytest.approx(
        skm.accuracy_score(flipped, pred), abs=1e-12
    )
    assert isinstance(win.summary, ClassificationSummary)
    cm = win.summary.confusion_matrix()
    assert cm.sum() == 100
    np.testing.assert_array_equal(cm, skm.confusion_matrix(flipped, pred, labels=[0, 1]))


def test_labels_count_in_the_window_of_their_prediction(cancer: dict[str, object]) -> None:
    clock = [NOW]
    pw = PerformanceWindows([_setup()], window_seconds=WIDTH, retention=3, clock=lambda: clock[0])
    old = _records(cancer, np.arange(0, 50), NOW - WIDTH)  # the window before
    new = _records(cancer, np.arange(50, 80), NOW)
    pw.add("m", "1", old + new)
    y = np.asarray(cancer["y"])
    clock[0] = NOW + WIDTH  # labels come later; the old window is still retained
    pw.add_labels(
        "m", "1", [LabelledPrediction(r, str(y[i]), _ts(clock[0])) for i, r in enumerate(old)]
    )
    starts = pw.starts("m", "1")
    assert len(starts) == 2
    win = pw.window("m", "1", starts[0])
    assert win is not None and win.summary.n_labelled == 50
    later = pw.window("m", "1", starts[1])
    assert later is not None and later.summary.n_labelled == 0
    # beyond retention: stored by the ingestor, not in the live windows, and counted
    clock[0] = NOW + 10 * WIDTH
    pw.add_labels("m", "1", [LabelledPrediction(new[0], "1", _ts(clock[0]))])
    assert pw.late_labels == 1


def test_segments_and_fairness_follow_the_rows(cancer: dict[str, object]) -> None:
    y = np.asarray(cancer["y"])
    group = np.where(np.arange(len(y)) % 3 == 0, "a", "b")
    setup = _setup(segments=("size",), protected="group")
    pw = PerformanceWindows([setup], window_seconds=WIDTH, clock=lambda: NOW)
    rows = np.arange(len(y))
    records = _records(cancer, rows, NOW, group=group)
    pw.add("m", "1", records)
    pw.add_labels(
        "m", "1", [LabelledPrediction(r, str(y[i]), _ts(NOW)) for i, r in enumerate(records)]
    )
    _, win = pw.current("m", "1")
    big = np.asarray(cancer["x"])[:, 0] > 14
    seg = win.segments["size"]["big"]
    pred = np.asarray(cancer["pred"])
    assert seg.n_labelled == int(big.sum())
    assert seg.metrics()["accuracy"] == pytest.approx(
        skm.accuracy_score(y[big], pred[big]), abs=1e-12
    )
    assert win.fairness is not None
    counts = win.fairness.counts()
    a = group == "a"
    assert counts["a"]["tp"] == int(((pred == 1) & (y == 1) & a).sum())
    assert counts["a"]["unlabelled_positive"] == 0  # every row got its label


def test_regression_windows_equal_sklearn() -> None:
    data = load_diabetes()
    x, y = data.data, data.target
    model = Ridge(alpha=0.1).fit(x[:300], y[:300])
    pred = model.predict(x[300:])
    setup = PerformanceSetup("r", "1", "regression")
    pw = PerformanceWindows([setup], window_seconds=WIDTH, clock=lambda: NOW)
    records = [
        PredictionRecord(f"r{i}", "r", "1", _ts(NOW), {}, float(p), None, None)
        for i, p in enumerate(pred)
    ]
    pw.add("r", "1", records)
    truth = y[300:]
    pw.add_labels(
        "r",
        "1",
        [LabelledPrediction(r, float(t), _ts(NOW)) for r, t in zip(records, truth, strict=True)],
    )
    _, win = pw.current("r", "1")
    m = win.summary.metrics()
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(truth, pred), rel=1e-9)
    assert m["rmse"] == pytest.approx(skm.root_mean_squared_error(truth, pred), rel=1e-9)
    assert m["r2"] == pytest.approx(skm.r2_score(truth, pred), rel=1e-9)


def _merged(*parts: PerformanceWindows, setup: PerformanceSetup, start: float) -> WindowPerformance:
    """The window as a judge merges it: each process's state through JSON, then ``+=``."""
    out: WindowPerformance | None = None
    for pw in parts:
        win = pw.window(setup.model, setup.version, start)
        assert win is not None
        theirs = WindowPerformance.from_dict(json.loads(json.dumps(win.to_dict())), setup)
        if out is None:
            out = theirs
        else:
            out += theirs
    assert out is not None
    return out


def test_labels_on_another_process_than_their_prediction_merge_exactly(
    cancer: dict[str, object],
) -> None:
    """Workers a and b each answer half the predictions; b takes every first label, and a
    every correction.  Neither can take out what the other counted, so each owes it: the
    merged window equals one process fed everything, debts settled (classification with
    segments and fairness, and regression)."""
    y = np.asarray(cancer["y"])
    group = np.where(np.arange(len(y)) % 3 == 0, "a", "b")
    setup = _setup(segments=("size",), protected="group")
    a, b, whole = (
        PerformanceWindows([setup], window_seconds=WIDTH, clock=lambda: NOW) for _ in range(3)
    )
    rows = np.arange(300)
    records = _records(cancer, rows, NOW, group=group)
    a.add("m", "1", records[::2])
    b.add("m", "1", records[1::2])
    whole.add("m", "1", records)
    first = [LabelledPrediction(r, str(y[i]), _ts(NOW)) for i, r in enumerate(records)]
    b.add_labels("m", "1", first)
    whole.add_labels("m", "1", first)
    fixed = [
        LabelledPrediction(records[i], str(1 - y[i]), _ts(NOW), previous=str(y[i]))
        for i in range(0, 300, 4)
    ]
    a.add_labels("m", "1", fixed)
    whole.add_labels("m", "1", fixed)
    start = np.floor(NOW / WIDTH) * WIDTH
    one = whole.window("m", "1", start)
    assert one is not None
    for merged in (
        _merged(a, b, setup=setup, start=start),
        _merged(b, a, setup=setup, start=start),
    ):
        assert merged.summary == one.summary and merged.labelled == one.labelled
        assert merged.segments == one.segments
        assert merged.fairness == one.fairness
        assert merged.label_debt == {} and merged.fairness_debt is None
    alone = a.window("m", "1", start)
    assert alone is not None and alone.label_debt  # what a owes, before the merge

    reg = PerformanceSetup("r", "1", "regression")
    ra, rb, rw = (
        PerformanceWindows([reg], window_seconds=WIDTH, clock=lambda: NOW) for _ in range(3)
    )
    recs = [
        PredictionRecord(f"r{i}", "r", "1", _ts(NOW), {}, float(i % 7), None, None)
        for i in range(40)
    ]
    ra.add("r", "1", recs)
    rw.add("r", "1", recs)
    labels = [LabelledPrediction(r, float(i % 5), _ts(NOW)) for i, r in enumerate(recs)]
    ra.add_labels("r", "1", labels)
    rw.add_labels("r", "1", labels)
    redo = [LabelledPrediction(r, 2.5, _ts(NOW), previous=float(i % 5)) for i, r in enumerate(recs)]
    rb.add_labels("r", "1", redo)
    rw.add_labels("r", "1", redo)
    merged = _merged(ra, rb, setup=reg, start=start)
    exact = rw.window("r", "1", start)
    assert exact is not None
    assert merged.summary == exact.summary and merged.label_debt == {}
