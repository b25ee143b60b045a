"""A worker's windows outlive it: saved on its slot, read in its place, restored by its
successor (``server._slot_windows``), with real sockets and files, on breast-cancer rows
scored by a real scikit-learn model.  The processes of a real ``serve --workers 4`` are in
``test_workers_serve.py``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from inferwatch.observation import LabelledPrediction, PredictionRecord
from inferwatch.performance_windows import PerformanceSetup, PerformanceWindows
from inferwatch.profile import ReferenceBins
from inferwatch.schema import infer_schema
from inferwatch.server._fleet_windows import FleetPerformance, FleetWindows
from inferwatch.server._slot_windows import SavedWindows, SlotWindows, windows_path
from inferwatch.server._slots import SlotMetrics, SlotServer, acquire_slot
from inferwatch.windows import WindowProfiler

FEATURES = (0, 1, 4, 23, 28)  # mean radius, texture, smoothness, worst area, worst symmetry
NOW = 10_000.0
WIDTH = 600.0


class Cancer:
    """The rows the model did not see, its answers, and the reference it was fitted on."""

    def __init__(self) -> None:
        data = load_breast_cancer()
        x, y = data.data[:, FEATURES], data.target
        self.names = [str(data.feature_names[i]).replace(" ", "_") for i in FEATURES]
        model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x[::2], y[::2])
        self.reference = {n: x[::2, j] for j, n in enumerate(self.names)}
        self.x, self.y = x[1::2], y[1::2]
        self.proba = model.predict_proba(self.x)
        self.pred = model.predict(self.x)

    def records(self, rows: range, t: float = NOW - 30) -> list[PredictionRecord]:
        at = datetime.fromtimestamp(t, UTC)
        out = []
        for i in rows:
            proba = {"0": float(self.proba[i, 0]), "1": float(self.proba[i, 1])}
            inputs = {n: float(self.x[i, j]) for j, n in enumerate(self.names)}
            record = PredictionRecord(
                id=f"p{i}", model="m", version="1", timestamp=at, inputs=inputs,
                output=str(self.pred[i]), score=max(proba.values()),
                latency_seconds=None, probabilities=proba,
            )  # fmt: skip
            out.append(record)
        return out

    def labels(self, records: list[PredictionRecord]) -> list[LabelledPrediction]:
        at = datetime.fromtimestamp(NOW, UTC)
        return [LabelledPrediction(r, str(self.y[int(r.id[1:])]), at) for r in records]


@pytest.fixture(scope="module")
def cancer() -> Cancer:
    return Cancer()


class Windows:
    """One worker's windows: a drift profiler and performance windows, on one clock."""

    def __init__(self, c: Cancer, now: float = NOW) -> None:
        schema = infer_schema(c.reference)
        bins = ReferenceBins(n_bins=10).fit(c.reference, schema)
        self.drift = WindowProfiler(bins, schema, window_seconds=WIDTH, clock=lambda: now)
        setup = PerformanceSetup("m", "1", "classification", classes=("0", "1"))
        self.performance = PerformanceWindows([setup], window_seconds=WIDTH, clock=lambda: now)

    def feed(self, c: Cancer, rows: range, labelled: bool = True, t: float = NOW - 30) -> None:
        records = c.records(rows, t)
        self.drift.add("m", "1", records)
        self.performance.add("m", "1", records)
        if labelled:
            self.performance.add_labels("m", "1", c.labels(records))

    def saver(self, rundir: Path, slot: int) -> SlotWindows:
        return SlotWindows(rundir, slot, {("m", "1"): self.drift}, self.performance)


@pytest.fixture
def slots(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """Two real slots (``flock``s) in ``tmp_path``: the judge's and its sibling's."""
    judge, fd = acquire_slot(tmp_path, 2, wait=0)
    other, other_fd = acquire_slot(tmp_path, 2, wait=0)
    yield judge, other
    os.close(fd)
    os.close(other_fd)


def test_a_dead_workers_saved_windows_are_judged_in_its_place(
    cancer: Cancer, tmp_path: Path, slots: tuple[int, int]
) -> None:
    judge_slot, dead_slot = slots
    judge, dead, single = Windows(cancer), Windows(cancer), Windows(cancer)
    judge.feed(cancer, range(0, 100))
    single.feed(cancer, range(0, 284))
    saver = dead.saver(tmp_path, dead_slot)
    dead.feed(cancer, range(100, 200))
    assert saver.checkpoint() is True
    assert saver.checkpoint() is False  # nothing changed: nothing written
    dead.feed(cancer, range(200, 284))  # the rest, with labels: written at the next round
    assert saver.checkpoint() is True
    dead.feed(cancer, range(0, 0))
    assert saver.checkpoint() is False
    # the worker is gone (no socket): the judge reads what it saved
    fleet = FleetWindows(judge.drift, tmp_path, judge_slot, 2)
    start, merged = fleet.current("m", "1")
    assert start == NOW // WIDTH * WIDTH
    assert merged.n_rows == 284
    assert merged.isclose(single.drift.current("m", "1")[1])
    perf = FleetPerformance(judge.performance, tmp_path, judge_slot, 2)
    _, win = perf.current("m", "1")
    _, alone = single.performance.current("m", "1")
    assert win.summary.n_predictions == 284 and win.summary.n_labelled == 284
    assert win.summary.metrics() == pytest.approx(alone.summary.metrics())
    assert perf.starts("m", "1") == [start]
    whole = perf.merged("m", "1", None)
    assert whole is not None and whole.to_dict() == alone.summary.to_dict()
    assert perf.take_dirty() == [("m", "1", start)]  # the judge's own mark only
    assert judge.drift.current("m", "1")[1].n_rows == 100  # its own windows untouched


def test_the_next_worker_on_the_slot_goes_on_from_them_counted_once(
    cancer: Cancer, tmp_path: Path, slots: tuple[int, int]
) -> None:
    judge_slot, slot = slots
    judge, dead, single = Windows(cancer), Windows(cancer), Windows(cancer)
    judge.feed(cancer, range(0, 100))
    dead.feed(cancer, range(100, 200))
    dead.saver(tmp_path, slot).checkpoint()
    single.feed(cancer, range(0, 284))
    # the replacement restores the file, then takes traffic of its own, and answers live
    successor = Windows(cancer)
    saver = successor.saver(tmp_path, slot)
    assert saver.restore() == 2  # the drift window and the performance window
    successor.feed(cancer, range(200, 284))
    server = SlotServer(
        SlotMetrics(None, tmp_path, slot), {("m", "1"): successor.drift}, successor.performance
    )
    server.start()
    try:
        _, merged = FleetWindows(judge.drift, tmp_path, judge_slot, 2).current("m", "1")
        _, win = FleetPerformance(judge.performance, tmp_path, judge_slot, 2).current("m", "1")
    finally:
        server.close()
    # the file is still there, but a live worker's answer stands for its slot: once, not twice
    assert windows_path(tmp_path, slot).exists()
    assert merged.n_rows == 284
    assert merged.isclose(single.drift.current("m", "1")[1])
    _, alone = single.performance.current("m", "1")
    assert win.summary.to_dict() == alone.summary.to_dict()
    assert win.labelled.to_dict() == alone.labelled.to_dict()


def test_each_write_holds_every_window_with_only_the_changed_ones_serialised_again(
    cancer: Cancer, tmp_path: Path
) -> None:
    worker, single = Windows(cancer), Windows(cancer)
    saver = worker.saver(tmp_path, 1)
    for w in (worker, single):  # the window before the current one, then the current one
        w.feed(cancer, range(0, 80), t=NOW - WIDTH - 30)
    saver.checkpoint()
    before = saver._drift_json[("m", "1", NOW // WIDTH * WIDTH - WIDTH)]
    for w in (worker, single):
        w.feed(cancer, range(80, 284))
    assert saver.checkpoint() is True
    # the earlier window's JSON was kept, not made again; the file holds both windows
    assert saver._drift_json[("m", "1", NOW // WIDTH * WIDTH - WIDTH)] is before
    successor = Windows(cancer)
    assert successor.saver(tmp_path, 1).restore() == 4
    for start in single.drift.starts("m", "1"):
        mine, theirs = successor.drift.window("m", "1", start), single.drift.window("m", "1", start)
        assert mine is not None and theirs is not None and mine.isclose(theirs)
        got = successor.performance.window("m", "1", start)
        want = single.performance.window("m", "1", start)
        assert got is not None and want is not None
        assert got.summary.to_dict() == want.summary.to_dict()
    assert len(single.drift.starts("m", "1")) == 2


def test_what_cannot_be_restored_is_left_out(cancer: Cancer, tmp_path: Path) -> None:
    old = Windows(cancer)
    old.feed(cancer, range(0, 50))
    old.saver(tmp_path, 1).checkpoint()
    # a successor whose clock is past the retained windows restores nothing of them
    later = Windows(cancer, now=NOW + 1_000 * WIDTH)
    assert later.saver(tmp_path, 1).restore() == 0
    assert later.drift.starts("m", "1") == [] and later.performance.starts("m", "1") == []
    # a malformed part is left out, the rest restored; a malformed file is no windows
    path = windows_path(tmp_path, 1)
    saved = json.loads(path.read_text())
    saved["drift"][0][3]["n_rows"] = "many"
    path.write_text(json.dumps(saved))
    fresh = Windows(cancer)
    assert fresh.saver(tmp_path, 1).restore() == 1  # the performance window only
    assert fresh.drift.starts("m", "1") == [] and fresh.performance.starts("m", "1") != []
    path.write_text("{not json")
    assert SavedWindows.read(path) is None
    assert Windows(cancer).saver(tmp_path, 1).restore() == 0
    assert SavedWindows.read(tmp_path / "nothing.windows") is None
