"""A batch sent again adds nothing: inserts are idempotent by prediction id (issue 16).

What makes a retried write whose commit was not acknowledged, and a spill file replayed
after a crash, exactly-once.  Runs on a SQLite file and on a real PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from inferwatch.errors import StoreRejectedError
from inferwatch.observation import PredictionRecord
from inferwatch.store import MemoryStore, SQLStore

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def record(i: int, **fields: Any) -> PredictionRecord:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "model": "churn",
        "version": "1",
        "timestamp": T0 + timedelta(microseconds=137 * i),
        "inputs": {"x": float(i) / 3, "plan": f"p\x00{i}", "n": np.int64(i), "z": float("nan")},
        "output": "yes" if i % 2 else "no",
        "score": i / 7,
        "latency_seconds": 0.001 * i,
        "trace_id": f"{i:032x}",
        "probabilities": {"yes": i / 7, "no": 1 - i / 7},
    }
    values.update(fields)
    return PredictionRecord(**values)


def test_a_batch_written_twice_is_stored_once(store: SQLStore) -> None:
    batch = [record(i) for i in range(1200)]  # past one page of ids

    assert store.write_predictions(batch) == 1200
    assert store.write_predictions(batch) == 1200  # a re-send: counted, not added
    assert store.write_predictions(batch[500:700]) == 200

    assert store.count_predictions() == 1200


def test_a_resend_mixed_with_new_rows_adds_only_the_new_ones(store: SQLStore) -> None:
    first = [record(i) for i in range(10)]
    store.write_predictions(first[:6])

    assert store.write_predictions(first) == 10

    assert store.count_predictions() == 10
    read = store.get_prediction(first[8].id)
    assert read is not None and read.output == first[8].output


def test_the_same_id_with_other_values_is_refused_and_nothing_is_written(store: SQLStore) -> None:
    kept = record(1)
    store.write_predictions([kept])
    fresh = [record(i) for i in range(2, 6)]

    with pytest.raises(StoreRejectedError, match="duplicate id"):
        store.write_predictions([*fresh, record(1, id=kept.id, output="other")])

    assert store.count_predictions() == 1  # all or nothing
    read = store.get_prediction(kept.id)
    assert read is not None and read.output == kept.output


def test_an_id_twice_in_one_batch_is_refused(store: SQLStore) -> None:
    one = record(1)
    with pytest.raises(StoreRejectedError):
        store.write_predictions([one, record(2), one])
    assert store.count_predictions() == 0


def test_memory_store_is_idempotent_the_same_way() -> None:
    store = MemoryStore()
    batch = [record(i) for i in range(5)]
    assert store.write_predictions(batch) == 5
    assert store.write_predictions(batch) == 5
    assert store.count_predictions() == 5
    with pytest.raises(StoreRejectedError):
        store.write_predictions([record(1, id=batch[1].id, score=0.99)])
