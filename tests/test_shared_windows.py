"""Windows shared through the store: two replicas' flushed windows merged by the judge equal
one profiler fed every row; what cannot be merged is left out; a store that does not answer
is counted, not raised; a closed window is judged again once the others have flushed it.
The performance (label) windows the same way: merged equal one process fed everything, a
window another replica changed is judged again."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from inferwatch.evaluate import EvaluationLoop, live_target
from inferwatch.evaluate._loop import LiveTarget
from inferwatch.observation import Evaluation, LabelledPrediction, PredictionRecord
from inferwatch.performance import ClassificationSummary
from inferwatch.performance_windows import PerformanceSetup, PerformanceWindows, WindowPerformance
from inferwatch.profile import ReferenceBins
from inferwatch.schema import infer_schema
from inferwatch.shared_windows import StorePerformance, StoreWindows, WindowShare
from inferwatch.store import MemoryStore, SQLStore
from inferwatch.windows import WindowProfiler

W = 60.0
T0 = 6000.0  # a window start


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def wine() -> tuple[dict[str, np.ndarray[Any, Any]], list[dict[str, Any]]]:
    data = load_wine()
    names = [n.replace("/", "_") for n in data.feature_names]
    cols = {n: data.data[:, i].astype(float) for i, n in enumerate(names)}
    rows = [{n: float(data.data[j, i]) for i, n in enumerate(names)} for j in range(len(data.data))]
    return cols, rows


def records(rows: Sequence[dict[str, Any]], at: float, first: int = 0) -> list[PredictionRecord]:
    ts = datetime.fromtimestamp(at, UTC)
    return [
        PredictionRecord(str(first + i), "m", "1", ts, r, None, None, None)
        for i, r in enumerate(rows)
    ]


@pytest.fixture
def target() -> tuple[LiveTarget, list[dict[str, Any]], Clock]:
    cols, rows = wine()
    clock = Clock(T0 + 1)
    t = live_target(
        "m", "1", infer_schema(cols), cols, window_seconds=W, min_window_rows=10,
        calibration="fixed", clock=clock,
    )  # fmt: skip
    return t, rows, clock


def sibling(of: WindowProfiler) -> WindowProfiler:
    return WindowProfiler(of.bins, window_seconds=of.window_seconds, clock=of.clock)


def test_two_replicas_flushed_and_merged_equal_one_profiler_fed_all_rows(
    target: tuple[LiveTarget, list[dict[str, Any]], Clock], tmp_path: Path
) -> None:
    t, rows, clock = target
    a, b, whole = t.profiler, sibling(t.profiler), sibling(t.profiler)
    store = SQLStore(f"sqlite:///{tmp_path}/s.db")
    store.upgrade()
    # replica a answers the first 100 rows, b the rest, over two windows
    for i in range(0, len(rows), 10):
        batch = records(rows[i : i + 10], T0 + 1 + (i >= 150) * W, first=i)
        (a if i < 100 else b).add("m", "1", batch)
        whole.add("m", "1", batch)
    clock.now = T0 + W + 5
    share_a, share_b = (
        WindowShare({("m", "1"): a}, store, "a"),
        WindowShare({("m", "1"): b}, store, "b"),
    )
    assert share_a.flush() == 1 and share_b.flush() == 2
    assert share_a.flush() == 0  # nothing changed: nothing written

    judge = StoreWindows(a, store, "a")
    for start in (T0, T0 + W):
        merged, expected = judge.window("m", "1", start), whole.window("m", "1", start)
        assert merged is not None and expected is not None
        assert merged.isclose(expected), start
    own = a.window("m", "1", T0)
    assert own is not None and own.n_rows == 100  # the judge's own profiler is untouched
    start, current = judge.current("m", "1")
    assert start == T0 + W and current.n_rows == len(rows) - 150
    # the other side reads a's rows the same way (a leadership change loses nothing)
    other = StoreWindows(b, store, "b").window("m", "1", T0)
    assert other is not None and other.isclose(whole.window("m", "1", T0))


def test_profiles_on_other_bins_are_left_out(
    target: tuple[LiveTarget, list[dict[str, Any]], Clock],
) -> None:
    t, rows, _ = target
    store = MemoryStore()
    t.profiler.add("m", "1", records(rows[:50], T0 + 1))
    cols = {k: np.array([r[k] for r in rows]) * 2 for k in rows[0]}
    other_bins = ReferenceBins(n_bins=20).fit(cols, infer_schema(cols))
    stranger = WindowProfiler(other_bins, window_seconds=W, clock=t.profiler.clock)
    stranger.add("m", "1", records(rows[50:], T0 + 1))
    WindowShare({("m", "1"): stranger}, store, "stranger").flush()
    merged = StoreWindows(t.profiler, store, "a").window("m", "1", T0)
    assert merged is not None and merged.n_rows == 50


def test_a_store_that_does_not_answer_is_counted_not_raised(
    target: tuple[LiveTarget, list[dict[str, Any]], Clock],
) -> None:
    t, rows, _ = target
    t.profiler.add("m", "1", records(rows[:30], T0 + 1))
    down = MemoryStore(available=False)
    failures: list[int] = []
    share = WindowShare({("m", "1"): t.profiler}, down, "a", on_error=lambda: failures.append(1))
    assert share.flush() == 0
    assert share.errors == 1 and failures == [1]  # the write (the round stops there)
    judge = StoreWindows(t.profiler, down, "a", on_error=lambda: failures.append(1))
    own = judge.window("m", "1", T0)
    assert own is not None and own.n_rows == 30 and judge.errors == 1 and failures == [1, 1]
    # the store back: the window that was not written is written at the next round
    down.available = True
    assert share.flush() == 1


def test_old_windows_are_pruned_from_the_store(
    target: tuple[LiveTarget, list[dict[str, Any]], Clock],
) -> None:
    t, rows, clock = target
    store = MemoryStore()
    t.profiler.add("m", "1", records(rows[:20], T0 + 1))
    share = WindowShare({("m", "1"): t.profiler}, store, "a")
    share.flush()
    assert len(store.load_window_profiles("m", "1", T0)) == 1
    clock.now = T0 + t.profiler.retention * W + 1  # T0 is no longer kept anywhere
    share.flush()
    assert store.load_window_profiles("m", "1", T0) == []


class Rows:
    """An evaluation sink that keeps what it was given."""

    def __init__(self) -> None:
        self.rows: list[Evaluation] = []

    def write_evaluations(self, rows: Sequence[Evaluation]) -> int:
        self.rows.extend(rows)
        return len(rows)


def test_a_closed_window_is_judged_again_once_the_others_flushed_it(
    target: tuple[LiveTarget, list[dict[str, Any]], Clock],
) -> None:
    t, rows, clock = target
    store = MemoryStore()
    b = sibling(t.profiler)
    share_b = WindowShare({("m", "1"): b}, store, "b")
    judged = LiveTarget("m", "1", StoreWindows(t.profiler, store, "a"), t.evaluator)  # type: ignore[arg-type]
    sink = Rows()
    loop = EvaluationLoop([judged], interval=1.0, sink=sink, clock=clock)
    loop.settle_seconds = 10.0

    def counted(start: float) -> list[int]:
        return [
            int((r.details or {})["n_current"])
            for r in sink.rows
            if r.metric == "dataset_drift_share" and r.window_start.timestamp() == start
        ]

    t.profiler.add("m", "1", records(rows[:80], T0 + 1))
    b.add("m", "1", records(rows[80:120], T0 + 2))
    share_b.flush()
    loop.run_once()
    assert counted(T0) == [120]
    # b answers more of T0 just before it closes; its next flush comes after the close
    b.add("m", "1", records(rows[120:], T0 + W - 1))
    clock.now = T0 + W + 1
    loop.run_once()  # the close: judged with what the store had
    assert counted(T0) == [120, 120]
    share_b.flush()
    clock.now = T0 + W + 5
    loop.run_once()  # not yet settled
    assert counted(T0) == [120, 120]
    clock.now = T0 + W + 12
    loop.run_once()
    assert counted(T0) == [120, 120, len(rows)]  # the final word holds every row
    loop.run_once()
    assert counted(T0) == [120, 120, len(rows)]  # once


# -- performance (label) windows shared through the store --------------------------------

PW = 600.0  # performance window width
PT0 = 60_000.0  # a performance window start


def cancer() -> dict[str, np.ndarray[Any, Any]]:
    data = load_breast_cancer()
    x, y = data.data, data.target
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x[::2], y[::2])
    group = np.where(np.arange(len(y)) % 3 == 0, "a", "b")
    return {"x": x, "y": y, "proba": model.predict_proba(x), "pred": model.predict(x),
            "group": group}  # fmt: skip


def predictions(c: dict[str, np.ndarray[Any, Any]], rows: Any, at: float) -> list[PredictionRecord]:
    ts = datetime.fromtimestamp(at, UTC)
    return [
        PredictionRecord(
            f"p{i}",
            "m",
            "1",
            ts,
            {"size": "big" if c["x"][i, 0] > 14 else "small", "group": str(c["group"][i])},
            str(c["pred"][i]),
            float(c["proba"][i].max()),
            None,
            probabilities={"0": float(c["proba"][i, 0]), "1": float(c["proba"][i, 1])},
        )
        for i in rows
    ]


def labels(c: dict[str, np.ndarray[Any, Any]], recs: list[PredictionRecord]) -> list[Any]:
    return [
        LabelledPrediction(r, str(c["y"][int(r.id[1:])]), r.timestamp + timedelta(seconds=30))
        for r in recs
    ]


def perf_setup(classes: tuple[str, ...] = ("0", "1")) -> PerformanceSetup:
    return PerformanceSetup(
        "m", "1", "classification", classes=classes, segments=("size",), protected="group"
    )


def perf_windows(clock: Clock, setup: PerformanceSetup | None = None) -> PerformanceWindows:
    return PerformanceWindows([setup or perf_setup()], window_seconds=PW, clock=clock)


def assert_same(
    merged: WindowPerformance | None, whole: WindowPerformance | None, *, crossed: bool = False
) -> None:
    """Every part of the two states: counts exact, metrics to rounding.  ``crossed``: some
    labels reached a replica that did not answer their prediction: that replica cannot
    take the row's unlabelled count out of its own counts, so it keeps it as a debt, and
    the merge settles it: exact all the same, with no debt left."""
    assert merged is not None and whole is not None
    for mine, theirs in [(merged.summary, whole.summary), (merged.labelled, whole.labelled)]:
        assert isinstance(mine, ClassificationSummary)
        assert isinstance(theirs, ClassificationSummary)
        assert (mine.n_predictions, mine.n_labelled) == (theirs.n_predictions, theirs.n_labelled)
        np.testing.assert_array_equal(mine.confusion_matrix(), theirs.confusion_matrix())
        assert mine.metrics() == pytest.approx(theirs.metrics(), nan_ok=True)
    assert set(merged.segments["size"]) == set(whole.segments["size"])
    for value, seg in whole.segments["size"].items():
        assert merged.segments["size"][value].metrics() == pytest.approx(seg.metrics())
    assert merged.fairness is not None and whole.fairness is not None
    got, want = merged.fairness.counts(), whole.fairness.counts()
    assert got == want
    assert merged.fairness_debt is None
    if crossed:
        assert merged.fairness == whole.fairness


@pytest.mark.parametrize("engine", ["memory", "sqlite"])
def test_performance_of_two_replicas_merged_equals_one_process_fed_everything(
    engine: str, tmp_path: Path
) -> None:
    c = cancer()
    clock = Clock(PT0 + PW + 10)
    a, b, whole = perf_windows(clock), perf_windows(clock), perf_windows(clock)
    if engine == "sqlite":
        store: MemoryStore | SQLStore = SQLStore(f"sqlite:///{tmp_path}/s.db")
        store.upgrade()
    else:
        store = MemoryStore()
    # two windows; a answers the rows below 200, b the rest, in batches
    rows = np.arange(1, len(c["y"]), 2)  # the half the model did not see
    for i in range(0, len(rows), 40):
        batch = predictions(c, rows[i : i + 40], PT0 + 5 + (i >= 160) * PW)
        (a if rows[i] < 200 else b).add("m", "1", batch)
        whole.add("m", "1", batch)
        # most rows get a label, some never; in the second window some reach the replica
        # that did not answer them (the prediction is read from the shared store)
        if i >= 160 and i % 80 == 0:
            (b if rows[i] < 200 else a).add_labels("m", "1", labels(c, batch[:10]))
            (a if rows[i] < 200 else b).add_labels("m", "1", labels(c, batch[10:30]))
            whole.add_labels("m", "1", labels(c, batch[:30]))
        else:
            (a if rows[i] < 200 else b).add_labels("m", "1", labels(c, batch[:35]))
            whole.add_labels("m", "1", labels(c, batch[:35]))
    share_a = WindowShare({}, store, "a", performance=a)
    share_b = WindowShare({}, store, "b", performance=b)
    # both hold both windows (a the second only by labels of b's predictions)
    assert share_a.flush() == 2 and share_b.flush() == 2
    assert share_a.flush() == 0 and share_b.flush() == 0  # nothing changed: nothing written

    judge = StorePerformance(a, store, "a")
    assert judge.starts("m", "1") == whole.starts("m", "1") == [PT0, PT0 + PW]
    assert_same(judge.window("m", "1", PT0), whole.window("m", "1", PT0))
    start, current = judge.current("m", "1")
    assert start == PT0 + PW
    assert_same(current, whole.window("m", "1", PT0 + PW), crossed=True)
    own = a.window("m", "1", PT0)
    assert own is not None and own.summary.n_predictions == 120  # a's own is untouched
    merged, expected = judge.merged("m", "1"), whole.merged("m", "1")
    assert merged is not None and expected is not None
    assert (merged.n_predictions, merged.n_labelled) == (
        expected.n_predictions,
        expected.n_labelled,
    )
    later = judge.merged("m", "1", since=PT0 + PW)
    assert later is not None and later.n_predictions == len(rows) - 160
    # the other side reads a's rows the same way (a leadership change loses nothing)
    assert_same(StorePerformance(b, store, "b").window("m", "1", PT0), whole.window("m", "1", PT0))


def test_the_judge_sees_the_windows_another_replica_changed() -> None:
    c = cancer()
    clock = Clock(PT0 + PW + 10)
    a, b = perf_windows(clock), perf_windows(clock)
    store = MemoryStore()
    share_b = WindowShare({}, store, "b", performance=b)
    judge = StorePerformance(a, store, "a")
    sink = Rows()
    loop = EvaluationLoop([], interval=1.0, sink=sink, clock=clock, performance=judge,  # type: ignore[arg-type]
                          min_labels=10)  # fmt: skip

    old, new = predictions(c, range(0, 60), PT0 + 1), predictions(c, range(60, 100), PT0 + PW)
    a.add("m", "1", new)
    b.add("m", "1", old)
    share_b.flush()
    assert judge.take_dirty() == [("m", "1", PT0), ("m", "1", PT0 + PW)]
    assert judge.take_dirty() == []  # nothing new anywhere
    # a late label of an old window reaches b only: the judge sees that window change
    b.add_labels("m", "1", labels(c, old[:40]))
    assert judge.take_dirty() == []  # not written yet
    share_b.flush()
    assert judge.take_dirty() == [("m", "1", PT0)]
    # mark_dirty covers the windows only another holder holds
    judge.mark_dirty("m", "1")
    assert judge.take_dirty() == [("m", "1", PT0), ("m", "1", PT0 + PW)]

    # the evaluation loop, judging through the wrapper: b's labels are realised values
    loop.run_once("m")  # every window of the model (mark_dirty)
    state = loop.performance_state("m", "1")
    assert state is not None and state["labelled"] == 0  # the current window: none yet
    realised = [r for r in sink.rows if r.test == "realised" and r.metric == "accuracy"]
    assert {r.window_start.timestamp() for r in realised} == {PT0}
    assert realised[-1].details is not None
    b.add_labels("m", "1", labels(c, old[40:]))
    a.add_labels("m", "1", labels(c, new))
    share_b.flush()
    loop.run_once()  # a plain round: the windows a and b changed
    state = loop.performance_state("m", "1")
    assert state is not None and state["labelled"] == 40 and state["predictions"] == 40
    assert state["realised_window"] == PT0 + PW
    y, pred = c["y"][:60], c["pred"][:60]
    last_old = [r for r in sink.rows if r.test == "realised" and r.metric == "accuracy"
                and r.feature is None and r.window_start.timestamp() == PT0][-1]  # fmt: skip
    assert last_old.value == pytest.approx(float(np.mean(y == pred)))


def test_a_stored_state_that_does_not_fit_the_setup_is_left_out() -> None:
    c = cancer()
    clock = Clock(PT0 + 10)
    store = MemoryStore()
    a = perf_windows(clock)
    a.add("m", "1", predictions(c, range(30), PT0 + 1))
    # a replica on other classes (another model file under the same name), and garbage
    stranger = perf_windows(clock, perf_setup(("no", "yes")))
    stranger.add("m", "1", predictions(c, range(30, 60), PT0 + 1))
    WindowShare({}, store, "stranger", performance=stranger).flush()
    store.save_window_performance(
        "junk",
        [
            {
                "model": "m",
                "version": "1",
                "window_start": PT0,
                "state": {"kind": "?"},
                "changes": 1,
            }
        ],
    )
    judge = StorePerformance(a, store, "a")
    merged = judge.window("m", "1", PT0)
    assert merged is not None and merged.summary.n_predictions == 30  # its own rows only
    assert judge.left_out == 2


def test_a_store_that_does_not_answer_leaves_the_judge_its_own_windows() -> None:
    c = cancer()
    clock = Clock(PT0 + 10)
    a = perf_windows(clock)
    a.add("m", "1", predictions(c, range(30), PT0 + 1))
    down = MemoryStore(available=False)
    failures: list[int] = []
    share = WindowShare({}, down, "a", performance=a, on_error=lambda: failures.append(1))
    assert share.flush() == 0
    assert share.errors == 1 and failures == [1]
    judge = StorePerformance(a, down, "a", on_error=lambda: failures.append(1))
    assert judge.take_dirty() == [("m", "1", PT0)]  # its own, though the listing failed
    own = judge.window("m", "1", PT0)
    assert own is not None and own.summary.n_predictions == 30
    assert judge.errors == 2 and failures == [1, 1, 1]
    down.available = True  # back: the window that was not written is written now
    assert share.flush() == 1
    clock.now = PT0 + a.retention * PW + 1  # PT0 is no longer kept: pruned from the store
    share.flush()
    assert down.load_window_performance("m", "1", PT0) == []


def test_a_window_whose_stored_states_could_not_be_read_is_judged_again() -> None:
    c = cancer()
    clock = Clock(PT0 + 10)
    a, b = perf_windows(clock), perf_windows(clock)
    store = MemoryStore()
    b.add("m", "1", predictions(c, range(40), PT0 + 1))
    WindowShare({}, store, "b", performance=b).flush()
    judge = StorePerformance(a, store, "a")
    assert judge.take_dirty() == [("m", "1", PT0)]
    store.available = False  # the read of the window fails: judged on a's rows alone
    assert judge.window("m", "1", PT0) is None and judge.errors == 1
    store.available = True
    assert judge.take_dirty() == [("m", "1", PT0)]  # so it is judged again, in full
    merged = judge.window("m", "1", PT0)
    assert merged is not None and merged.summary.n_predictions == 40
    assert judge.take_dirty() == []
