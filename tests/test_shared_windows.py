"""Windows shared through the store: two replicas' flushed windows merged by the judge equal
one profiler fed every row; what cannot be merged is left out; a store that does not answer
is counted, not raised; a closed window is judged again once the others have flushed it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_wine

from inferwatch.evaluate import EvaluationLoop, live_target
from inferwatch.evaluate._loop import LiveTarget
from inferwatch.observation import Evaluation, PredictionRecord
from inferwatch.profile import ReferenceBins
from inferwatch.schema import infer_schema
from inferwatch.shared_windows import StoreWindows, WindowShare
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
