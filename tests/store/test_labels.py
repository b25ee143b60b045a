"""Labels in the store: one per prediction (upsert), the replaced value, the windowed join.

Runs on a SQLite file and on PostgreSQL (``store`` fixture) and on the MemoryStore.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from inferwatch.errors import StoreError
from inferwatch.observation import LabelledPrediction, PredictionRecord
from inferwatch.ports import Store
from inferwatch.store import MemoryStore, SQLStore
from inferwatch.store._sql import _alembic_config

T0 = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)


def record(ts: datetime = T0, *, model: str = "churn", version: str = "1", **fields: Any) -> Any:
    values: dict[str, Any] = {"output": "yes", "score": 0.75, "latency_seconds": 0.002}
    values.update(fields)
    return PredictionRecord(
        id=str(uuid.uuid4()), model=model, version=version, timestamp=ts, inputs={"x": 1.0},
        **values,
    )  # fmt: skip


def labelled(rec: PredictionRecord, label: Any, received: datetime) -> LabelledPrediction:
    return LabelledPrediction(prediction=rec, label=label, received_at=received)


class LabelContract:
    """What any Store does with labels; a subclass provides ``store``."""

    def test_upsert_returns_the_replaced_value_and_keeps_one_label(self, store: Any) -> None:
        a, b = record(), record()
        store.write_predictions([a, b])

        first = store.upsert_labels(
            [labelled(a, "yes", T0 + timedelta(hours=1)), labelled(b, "no", T0)]
        )
        again = store.upsert_labels([labelled(a, "no", T0 + timedelta(hours=2))])

        assert first == {}
        assert again == {a.id: "yes"}
        assert [label.value for label in store.get_labels(a.id)] == ["no"]
        assert store.count_labels() == 2
        assert store.count_labels("churn", "1") == 2
        assert store.count_labels("other") == 0
        assert store.count_labels(received_since=T0 + timedelta(minutes=30)) == 1
        assert store.upsert_labels([]) == {}

    def test_a_regression_label_round_trips_as_a_number(self, store: Store) -> None:
        rec = record(output=12.5, score=None)
        store.write_predictions([rec])
        store.upsert_labels([labelled(rec, 11.0, T0)])

        assert store.upsert_labels([labelled(rec, 13.25, T0)]) == {rec.id: 11.0}
        (page,) = store.labelled_columns("churn", "1")
        assert page["label"] == [13.25]
        assert page["output"] == [12.5]

    def test_ids_must_be_distinct_within_one_upsert(self, store: Store) -> None:
        rec = record()
        with pytest.raises(ValueError, match="twice"):
            store.upsert_labels([labelled(rec, "yes", T0), labelled(rec, "no", T0)])

    def test_a_label_may_be_stored_before_its_prediction_row(self, store: Store) -> None:
        rec = record(probabilities={"yes": 0.75, "no": 0.25})  # in the log's buffer still
        store.upsert_labels([labelled(rec, "yes", T0 + timedelta(minutes=5))])

        (page,) = store.labelled_columns("churn", "1")  # the label row carries the prediction

        assert page["id"] == [rec.id]
        assert page["output"] == ["yes"]
        assert page["probabilities"] == [{"yes": 0.75, "no": 0.25}]
        store.write_predictions([rec])
        assert [len(p["id"]) for p in store.labelled_columns("churn", "1")] == [1]

    def test_find_predictions_returns_the_stored_ones(self, store: Store) -> None:
        recs = [record() for _ in range(3)]
        store.write_predictions(recs[:2])

        found = store.find_predictions([r.id for r in recs] + [recs[0].id])

        assert sorted(found) == sorted(r.id for r in recs[:2])
        assert found[recs[1].id].output == "yes"
        assert store.find_predictions([]) == {}

    def test_labelled_columns_joins_by_prediction_time_in_pages(self, store: Store) -> None:
        # prediction times out of order, labels received in yet another order
        recs = [
            record(
                T0 + timedelta(seconds=(7 * i) % 10, microseconds=i),
                output=str(i % 3),
                score=i / 10,
                probabilities={"0": 0.5, "1": 0.25, "2": 0.25} if i % 2 else None,
            )
            for i in range(10)
        ]
        other = record(model="other")
        store.write_predictions([*recs, other])
        store.upsert_labels(
            [
                labelled(r, str(i % 2), T0 + timedelta(days=1, seconds=-i))
                for i, r in enumerate(recs)
            ]
            + [labelled(other, "1", T0)]
        )
        want = sorted(recs, key=lambda r: r.timestamp)

        pages = list(store.labelled_columns("churn", "1", page_size=4))

        assert [len(p["id"]) for p in pages] == [4, 4, 2]
        joined = {k: [v for p in pages for v in p[k]] for k in pages[0]}
        assert joined["id"] == [r.id for r in want]
        assert joined["ts"] == pytest.approx([r.timestamp.timestamp() for r in want], abs=1e-6)
        assert joined["output"] == [r.output for r in want]
        assert joined["score"] == pytest.approx([r.score for r in want])
        assert joined["probabilities"] == [r.probabilities for r in want]
        by_id = {r.id: str(i % 2) for i, r in enumerate(recs)}
        assert joined["label"] == [by_id[r.id] for r in want]

        since, until = want[3].timestamp, want[7].timestamp
        window = [v for p in store.labelled_columns("churn", "1", since=since, until=until)
                  for v in p["id"]]  # fmt: skip
        assert window == [r.id for r in want[3:7]]  # half-open
        assert list(store.labelled_columns("churn", "2")) == []
        narrow = list(store.labelled_columns("churn", "1", columns=("label", "ts")))
        assert [sorted(p) for p in narrow] == [["label", "ts"]]
        assert narrow[0]["label"] == joined["label"]
        with pytest.raises(ValueError, match="columns"):
            list(store.labelled_columns("churn", "1", columns=("inputs",)))
        with pytest.raises(ValueError, match="page_size"):
            list(store.labelled_columns("churn", "1", page_size=0))


class TestSQLLabels(LabelContract):
    """On SQLite and PostgreSQL (the ``store`` fixture of conftest.py)."""

    def test_concurrent_upserts_of_one_id_see_each_other(self, store: SQLStore) -> None:
        rec = record()
        store.write_predictions([rec])
        seen: list[dict[str, Any]] = []
        lock = threading.Lock()

        def label(value: str) -> None:
            got = store.upsert_labels([labelled(rec, value, T0)])
            with lock:
                seen.append(got)

        threads = [threading.Thread(target=label, args=(f"c{i}",)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        # exactly one writer found no label; each other one saw a value
        assert sorted(len(s) for s in seen) == [0, 1, 1, 1, 1, 1]
        assert store.count_labels() == 1

    def test_the_store_down_raises_store_error_and_writes_nothing(self, store: SQLStore) -> None:
        rec = record()
        store.write_predictions([rec])
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE labels")

        with pytest.raises(StoreError, match="writing 1 labels"):
            store.upsert_labels([labelled(rec, "yes", T0)])


class TestMemoryLabels(LabelContract):
    @pytest.fixture
    def store(self) -> MemoryStore:
        memory = MemoryStore()
        memory.upgrade()
        return memory

    def test_unavailable_raises(self, store: MemoryStore) -> None:
        store.available = False
        with pytest.raises(StoreError):
            store.upsert_labels([labelled(record(), "yes", T0)])


def test_migration_0004_keeps_the_newest_label_of_each_prediction(store_url: str) -> None:
    store = SQLStore(store_url)
    config = _alembic_config()
    try:
        with store.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0003")
        rows = [
            ("p1", '"old"', T0),
            ("p1", '"newest"', T0 + timedelta(hours=2)),
            ("p1", '"middle"', T0 + timedelta(hours=1)),
            ("p2", '"tie-first"', T0),
            ("p2", '"tie-last"', T0),  # same time: the higher id wins
            ("p3", '"only"', T0),
        ]
        value = "CAST(:value AS JSONB)" if store.dialect == "postgresql" else ":value"
        insert = sa.text(
            f"INSERT INTO labels (prediction_id, value, ts) VALUES (:pid, {value}, :ts)"
        )
        with store.engine.begin() as conn:
            for pid, text, ts in rows:
                conn.execute(insert, {"pid": pid, "value": text, "ts": ts})

        store.upgrade()

        assert store.current_revision() == store.head_revision()
        got = {pid: [label.value for label in store.get_labels(pid)] for pid in ("p1", "p2", "p3")}
        assert got == {"p1": ["newest"], "p2": ["tie-last"], "p3": ["only"]}
        unique = [i for i in sa.inspect(store.engine).get_indexes("labels") if i["unique"]]
        assert [tuple(i["column_names"]) for i in unique] == [("prediction_id",)]
    finally:
        store.close()
