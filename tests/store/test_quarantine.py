"""A row the store refuses never takes its batch with it; a store that is down is retried.

Runs on a SQLite file and on a real PostgreSQL (the ``store`` fixture of conftest):
PostgreSQL's JSONB refuses U+0000, both refuse a duplicate id and a lone surrogate.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from inferwatch.errors import StoreError, StoreRejectedError
from inferwatch.metrics import Metrics
from inferwatch.monitor import Monitor
from inferwatch.observation import Observation, PredictionRecord
from inferwatch.store import MemoryStore, SQLStore

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def record(inputs: dict[str, Any] | None = None, **fields: Any) -> PredictionRecord:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "output": "yes",
        "score": 0.5,
        "latency_seconds": 0.001,
    }
    values.update(fields)
    return PredictionRecord(
        model="churn", version="1", timestamp=T0, inputs=inputs or {"x": 1.0}, **values
    )


def test_nul_in_strings_and_keys_is_stored_as_the_replacement_character(store: SQLStore) -> None:
    written = record(
        inputs={"plan": "pro\x00", "k\x00ey": ["\x00", {"n\x00": "a\x00b"}], "x": 1.5},
        output="y\x00es",
        probabilities={"y\x00es": 0.5},
    )

    assert store.write_predictions([written]) == 1

    read = store.get_prediction(written.id)
    assert read is not None
    assert read.inputs == {
        "plan": "pro\ufffd",
        "k\ufffdey": ["\ufffd", {"n\ufffd": "a\ufffdb"}],
        "x": 1.5,
    }
    assert read.output == "y\ufffdes"
    assert read.probabilities == {"y\ufffdes": 0.5}


def test_a_backslash_u0000_text_is_kept_as_it_is(store: SQLStore) -> None:
    written = record(inputs={"path": "C:\\u0000", "ok": "\\\\u0000"})
    store.write_predictions([written])

    read = store.get_prediction(written.id)
    assert read is not None
    assert read.inputs == {"path": "C:\\u0000", "ok": "\\\\u0000"}


def test_a_refused_batch_is_a_rejected_error_not_a_store_down_error(store: SQLStore) -> None:
    first = record()
    store.write_predictions([first])

    with pytest.raises(StoreRejectedError, match="2 predictions"):
        store.write_predictions([record(), record(id=first.id, score=0.9)])
    with pytest.raises(StoreRejectedError):  # a text column (JSON is sanitised)
        store.write_predictions([record(trace_id="\ud800")])
    assert store.count_predictions() == 1


def test_quarantine_keeps_the_row_as_text_with_its_reason(store: SQLStore) -> None:
    bad = record(inputs={"x": "\ud800", "y": "\x00"})

    assert store.quarantine_predictions([bad], "UnicodeEncodeError: surrogates not allowed") == 1

    rows = store.quarantined()
    assert len(rows) == 1
    assert rows[0]["prediction_id"] == bad.id
    assert (rows[0]["model"], rows[0]["version"]) == ("churn", "1")
    assert "surrogates" in rows[0]["reason"]
    assert "\\ud800" in rows[0]["row"]  # escaped: the text column holds any row
    assert bad.id in rows[0]["row"]


def test_monitor_writes_the_good_rows_and_quarantines_the_refused_ones(store: SQLStore) -> None:
    existing = record()
    store.write_predictions([existing])
    registry = CollectorRegistry()
    batch = [record(inputs={"x": float(i), "plan": f"p{i}"}) for i in range(60)]
    # a duplicate id with other values (the same values would be a re-send: idempotent)
    batch[7] = record(id=existing.id, output="no")
    batch[31] = record(trace_id="\ud800")  # a lone surrogate in a text column: no UTF-8
    batch[44] = record(inputs={"plan": "nul\x00", "s": "\udfff"})  # sanitised, so stored
    monitor = Monitor(store, metrics=Metrics(registry, process=False), batch_size=500)
    started = time.monotonic()

    monitor.log_observation(Observation("churn", "1", batch, None))
    assert monitor.close(timeout=30) is False  # two rows did not reach the predictions table
    elapsed = time.monotonic() - started

    assert elapsed < 10  # no 30 s of retries as if the store were down
    assert store.count_predictions() == 1 + 58
    kept = store.get_prediction(batch[44].id)
    assert kept is not None
    assert kept.inputs == {"plan": "nul\ufffd", "s": "\ufffd"}
    assert store.get_prediction(batch[31].id) is None
    stats = monitor.stats
    assert (stats.written, stats.quarantined, stats.failed, stats.dropped) == (58, 2, 0, 0)
    quarantined = {row["prediction_id"]: row["reason"] for row in store.quarantined()}
    assert set(quarantined) == {existing.id, batch[31].id}
    assert "Integrity" in quarantined[existing.id] or "Unique" in quarantined[existing.id]
    assert "UnicodeEncodeError" in quarantined[batch[31].id]
    value = registry.get_sample_value(
        "inferwatch_prediction_log_rows_total", {"outcome": "quarantined"}
    )
    assert value == 2
    written = registry.get_sample_value(
        "inferwatch_prediction_log_rows_total", {"outcome": "written"}
    )
    assert written == 58


def test_a_store_that_is_down_is_retried_and_nothing_is_quarantined() -> None:
    store = MemoryStore(available=False)
    monitor = Monitor(store, flush_interval=0.01, retry_seconds=5)
    monitor.log("m", "1", [{"x": 1}, {"x": 2}], ["a", "b"])
    time.sleep(0.3)
    assert monitor.stats.written == 0

    store.available = True
    assert monitor.flush(5)

    assert store.count_predictions() == 2
    assert store.quarantined() == []
    assert (monitor.stats.written, monitor.stats.quarantined) == (2, 0)
    monitor.close()


def test_memory_store_refuses_a_bad_row_as_rejected_too() -> None:
    store = MemoryStore()
    with pytest.raises(StoreRejectedError):
        store.write_predictions([record(inputs={"x": object()})])
    assert issubclass(StoreRejectedError, StoreError)
