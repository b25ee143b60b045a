"""Evaluation rows: written in batches, the newest evaluation read back, on every Store."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from inferwatch.errors import StoreError
from inferwatch.observation import Evaluation
from inferwatch.ports import Store
from inferwatch.store import MemoryStore, SQLStore

W0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def evaluation(
    *,
    model: str = "churn",
    version: str = "1",
    start: datetime = W0,
    at: datetime = W0 + timedelta(minutes=5),
    metric: str = "drift",
    **fields: Any,
) -> Evaluation:
    values: dict[str, Any] = {
        "value": 0.25,
        "status": "critical",
        "feature": "income",
        "test": "wasserstein",
        "threshold": 0.1,
        "details": {"p_value": None, "effect_size": 0.25},
    }
    values.update(fields)
    return Evaluation(
        model=model,
        version=version,
        window_start=start,
        window_end=start + HOUR,
        evaluated_at=at,
        metric=metric,
        **values,
    )


class EvaluationContract:
    """What any Store does with evaluations; subclasses provide ``store``."""

    def test_a_round_trip_keeps_every_field_with_utc_times(self, store: Store) -> None:
        at = datetime(2024, 5, 1, 14, 5, tzinfo=timezone(timedelta(hours=2)))
        rows = [
            evaluation(at=at),
            evaluation(
                at=at, metric="dataset_drift_share", feature=None, test=None, value=0.5,
                status="ok", threshold=0.5, details=None,
            ),
        ]  # fmt: skip

        assert store.write_evaluations(rows) == 2
        got = store.latest_evaluations("churn", "1")

        assert [r["metric"] for r in got] == ["drift", "dataset_drift_share"]
        first = got[0]
        assert set(first) == {
            "id", "model", "version", "window_start", "window_end", "evaluated_at", "metric",
            "feature", "test", "value", "threshold", "status", "details",
        }  # fmt: skip
        assert first["evaluated_at"] == at
        assert first["evaluated_at"].utcoffset() == timedelta(0)
        assert first["window_start"] == W0
        assert first["window_end"] == W0 + HOUR
        assert (first["feature"], first["test"], first["status"]) == (
            "income",
            "wasserstein",
            "critical",
        )
        assert first["value"] == pytest.approx(0.25)
        assert first["threshold"] == pytest.approx(0.1)
        assert first["details"] == {"p_value": None, "effect_size": 0.25}
        assert got[1]["feature"] is None
        assert got[1]["details"] is None

    def test_latest_is_the_newest_evaluation_of_that_model_version(self, store: Store) -> None:
        early, late = W0 + timedelta(minutes=1), W0 + timedelta(minutes=2)
        store.write_evaluations([evaluation(at=early, value=0.1), evaluation(at=early, value=0.2)])
        store.write_evaluations([evaluation(at=late, value=0.3)])
        store.write_evaluations([evaluation(model="other", at=late + HOUR, value=0.9)])
        store.write_evaluations([evaluation(version="2", at=late + HOUR, value=0.8)])

        got = store.latest_evaluations("churn", "1")

        assert [r["value"] for r in got] == [pytest.approx(0.3)]
        assert [r["value"] for r in store.latest_evaluations("churn", "2")] == [pytest.approx(0.8)]
        assert store.latest_evaluations("nobody", "1") == []

    def test_a_closing_window_and_the_new_one_judged_together_stay_apart(
        self, store: Store
    ) -> None:
        at = W0 + HOUR + timedelta(seconds=1)
        closing = [evaluation(start=W0, at=at, value=0.1), evaluation(start=W0, at=at)]
        store.write_evaluations(closing)
        store.write_evaluations([evaluation(start=W0 + HOUR, at=at, value=0.7)])

        got = store.latest_evaluations("churn", "1")

        assert [(r["window_start"], r["value"]) for r in got] == [(W0 + HOUR, pytest.approx(0.7))]

    def test_non_finite_values_are_stored_as_null(self, store: Store) -> None:
        store.write_evaluations([evaluation(value=math.inf, threshold=math.nan)])

        (row,) = store.latest_evaluations("churn", "1")

        assert row["value"] is None
        assert row["threshold"] is None

    def test_empty_batch_writes_nothing_and_a_bad_status_is_refused(self, store: Store) -> None:
        assert store.write_evaluations([]) == 0
        with pytest.raises(StoreError, match="status"):
            store.write_evaluations([evaluation(status="fine")])
        assert store.latest_evaluations("churn", "1") == []


class TestSQLEvaluations(EvaluationContract):
    """On a SQLite file and on PostgreSQL (the ``store`` fixture of conftest)."""

    def test_rows_survive_a_reopen(self, store: SQLStore, store_url: str) -> None:
        store.write_evaluations([evaluation()])
        store.close()

        with SQLStore(store_url) as again:
            assert len(again.latest_evaluations("churn", "1")) == 1


class TestMemoryEvaluations(EvaluationContract):
    @pytest.fixture
    def store(self) -> MemoryStore:
        memory = MemoryStore()
        memory.upgrade()
        return memory

    def test_an_unavailable_store_refuses_evaluations(self, store: MemoryStore) -> None:
        store.available = False
        with pytest.raises(StoreError, match="unavailable"):
            store.write_evaluations([evaluation()])
