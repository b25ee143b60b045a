"""The label ingestor: validation, look-up order (prediction log, then store), sink, metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferwatch.errors import StoreError
from inferwatch.labels import LabelIngestor, LabelRules, normalise_label
from inferwatch.monitor import Monitor
from inferwatch.observation import LabelledPrediction, PredictionRecord
from inferwatch.schema import Schema, infer_schema
from inferwatch.store import MemoryStore, SQLStore

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BINARY = LabelRules("classification", ("0", "1"))
NAMED = LabelRules("classification", ("no", "yes"))
REGRESSION = LabelRules("regression")


@pytest.mark.parametrize(
    ("value", "rules", "want"),
    [
        ("1", BINARY, "1"),
        (1, BINARY, "1"),
        (1.0, BINARY, "1"),
        (2, BINARY, None),
        (0.5, BINARY, None),
        (True, BINARY, None),
        (True, LabelRules("classification", ("False", "True")), "True"),
        ("yes", NAMED, "yes"),
        ("Yes", NAMED, None),
        (None, NAMED, None),
        (float("nan"), BINARY, None),
        ([1], BINARY, None),
        ("anything", LabelRules("classification"), "anything"),
        (3, REGRESSION, 3.0),
        (2.5, REGRESSION, 2.5),
        ("2.5", REGRESSION, None),
        (True, REGRESSION, None),
        (float("inf"), REGRESSION, None),
        (10**400, REGRESSION, None),
    ],
)
def test_normalise_label(value: Any, rules: LabelRules, want: Any) -> None:
    label, why = normalise_label(value, rules)
    assert label == want
    assert (why is None) == (want is not None)
    if want is not None:
        assert type(label) is type(want)


def test_without_rules_the_prediction_output_decides() -> None:
    assert normalise_label(3, LabelRules(), output=2.5) == (3.0, None)
    assert normalise_label(3, LabelRules(), output="yes") == ("3", None)
    assert normalise_label("x", LabelRules(), output=2.5)[0] is None


def test_rules_come_from_the_schema_target_and_the_models_classes() -> None:
    columns: Mapping[str, Any] = {"x": np.array([1.0, 2.0, 3.0]), "y": np.array(["a", "b", "a"])}
    schema: Schema = infer_schema(columns, target="y")
    assert LabelRules.of(schema).task == "classification"
    assert LabelRules.of(schema, ["a", "b"]) == LabelRules("classification", ("a", "b"))
    reg = infer_schema(
        {"x": np.array([1.0, 2.0, 3.0]), "y": np.array([1.5, 2.5, 0.5])},
        target="y",
        task="regression",
    )
    assert LabelRules.of(reg) == LabelRules("regression", None)
    assert LabelRules.of(None) == LabelRules()


class Sink:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, str, list[LabelledPrediction]]] = []
        self.fail = fail

    def add_labels(self, model: str, version: str, labelled: Sequence[LabelledPrediction]) -> None:
        self.calls.append((model, version, list(labelled)))
        if self.fail:
            raise RuntimeError("window bug")


class Hook:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, int], list[float]]] = []

    def observe_labels(
        self, model: str, outcomes: Mapping[str, int], delays: Sequence[float]
    ) -> None:
        self.calls.append((model, dict(outcomes), list(delays)))


def rec(pid: str, *, model: str = "churn", version: str = "1", output: Any = "yes") -> Any:
    return PredictionRecord(
        pid, model, version, NOW - timedelta(hours=2), {"x": 1.0}, output, 0.8, 0.001
    )


@pytest.fixture
def sqlite(tmp_path: Path) -> Any:
    store = SQLStore(f"sqlite:///{tmp_path}/labels.db")
    store.upgrade()
    yield store
    store.close()


def test_ingest_stores_feeds_the_sink_with_previous_and_counts(sqlite: SQLStore) -> None:
    sqlite.write_predictions([rec("a"), rec("b", version="2"), rec("c", model="other")])
    sink, hook = Sink(), Hook()
    ingestor = LabelIngestor(
        sqlite,
        rules={("churn", "1"): NAMED, ("churn", "2"): NAMED},
        sink=sink,
        metrics=hook,
        clock=lambda: NOW,
    )

    first = ingestor.ingest("churn", [("a", "yes"), ("b", "no"), ("c", "yes"), ("z", "no")])
    second = ingestor.ingest("churn", [("a", "no")])

    assert [r.outcome for r in first.results] == [
        "accepted",
        "accepted",
        "wrong_model",
        "unknown_prediction_id",
    ]
    assert [r.outcome for r in second.results] == ["replaced"]
    assert sorted((m, v, [x.label for x in items]) for m, v, items in sink.calls[:2]) == [
        ("churn", "1", ["yes"]),
        ("churn", "2", ["no"]),
    ]
    (_, _, (replaced,)) = sink.calls[2]
    assert (replaced.label, replaced.previous, replaced.replaced) == ("no", "yes", True)
    assert replaced.received_at == NOW
    assert hook.calls[0][1]["accepted"] == 2 and hook.calls[0][1]["wrong_model"] == 1
    assert hook.calls[0][2] == [7200.0, 7200.0]  # two hours from prediction to label
    assert sqlite.count_labels() == 2


def test_duplicate_ids_in_one_request_reject_every_occurrence(sqlite: SQLStore) -> None:
    sqlite.write_predictions([rec("a"), rec("b")])
    report = LabelIngestor(sqlite).ingest("churn", [("a", "yes"), ("b", "no"), ("a", "no")])

    assert [r.outcome for r in report.results] == [
        "duplicate_prediction_id",
        "accepted",
        "duplicate_prediction_id",
    ]
    assert sqlite.get_labels("a") == []


def test_a_failing_sink_does_not_lose_stored_labels(sqlite: SQLStore) -> None:
    sqlite.write_predictions([rec("a")])
    report = LabelIngestor(sqlite, sink=Sink(fail=True)).ingest("churn", [("a", "yes")])
    assert report.accepted == 1
    assert sqlite.count_labels() == 1


def test_a_store_that_is_down_raises_before_anything_is_fed_or_counted() -> None:
    store = MemoryStore()
    store.write_predictions([rec("a")])
    store.available = False
    sink, hook = Sink(), Hook()
    with pytest.raises(StoreError):
        LabelIngestor(store, sink=sink, metrics=hook).ingest("churn", [("a", "yes")])
    assert sink.calls == [] and hook.calls == []


class SlowStore(SQLStore):
    """A real SQLite store whose prediction inserts take a while (a busy database)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.writing = threading.Event()
        self.release = threading.Event()

    def write_predictions(self, records: Sequence[PredictionRecord]) -> int:
        self.writing.set()
        self.release.wait(10)
        return super().write_predictions(records)


def test_a_label_finds_its_prediction_in_the_batch_being_written(tmp_path: Path) -> None:
    store = SlowStore(f"sqlite:///{tmp_path}/slow.db")
    store.upgrade()
    monitor = Monitor(store, metrics=None, flush_interval=0.01)
    try:
        ids = monitor.log("churn", "1", [{"x": 1.0}] * 3, ["yes", "no", "yes"])
        assert store.writing.wait(10)  # the writer took the batch; the insert is stalled
        assert monitor.prediction_log.stats.queued == 0
        assert store.count_predictions() == 0

        report = monitor.log_labels("churn", [(ids[0], "yes"), (ids[1], "no")])

        assert [r.outcome for r in report.results] == ["accepted", "accepted"]
    finally:
        store.release.set()
        monitor.close()
    assert store.count_predictions() == 3
    (page,) = store.labelled_columns("churn", "1")
    assert sorted(page["id"]) == sorted(ids[:2])
    store.close()


def test_a_label_finds_its_prediction_in_the_unflushed_buffer(sqlite: SQLStore) -> None:
    monitor = Monitor(sqlite, metrics=None, flush_interval=3600, batch_size=1000)
    try:
        monitor.start()
        time.sleep(0.05)  # the writer is waiting for a full batch or the interval
        ids = monitor.log("churn", "1", [{"x": 1.0}], [12.5])
        assert sqlite.count_predictions() == 0
        report = monitor.log_labels("churn", {ids[0]: 13.0})
        assert report.accepted == 1
        assert sqlite.count_labels("churn", "1") == 1
    finally:
        monitor.close()


def test_monitor_log_labels_uses_the_watched_schema(sqlite: SQLStore) -> None:
    schema = infer_schema(
        {"x": np.array([1.0, 2.0, 3.0]), "y": np.array(["a", "b", "a"])}, target="y"
    )
    monitor = Monitor.from_schema(schema, model="m", version="1", store=sqlite, registry=None)
    try:
        ids = monitor.log("m", "1", [{"x": 1.0}] * 2, ["a", "b"])
        report = monitor.log_labels("m", [(ids[0], "b"), (ids[1], "c")])
        assert [r.outcome for r in report.results] == ["accepted", "invalid_label"]
        text = monitor.render_metrics()[0].decode()
        assert 'inferwatch_labels_total{model="m",outcome="invalid_label"} 1.0' in text
        assert 'inferwatch_label_delay_seconds_count{model="m"} 1.0' in text
    finally:
        monitor.close()
