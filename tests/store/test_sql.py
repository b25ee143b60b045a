"""SQLStore on SQLite and PostgreSQL, through the behaviour every Store must show."""

from __future__ import annotations

import socket
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import inferwatch.store
from inferwatch.errors import StoreError
from inferwatch.observation import Label, PredictionRecord
from inferwatch.ports import Store
from inferwatch.store import MemoryStore, SQLStore, open_store, upgrade

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def record(
    *,
    model: str = "churn",
    version: str = "1",
    ts: datetime = T0,
    inputs: dict[str, Any] | None = None,
    **fields: Any,
) -> PredictionRecord:
    """A prediction with a fresh id; keyword arguments override any field."""
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "output": "yes",
        "score": 0.75,
        "latency_seconds": 0.002,
    }
    values.update(fields)
    return PredictionRecord(
        model=model, version=version, timestamp=ts, inputs=inputs or {"x": 1.0}, **values
    )


class StoreContract:
    """What any Store does; a subclass provides the ``store`` fixture (see test_memory.py)."""

    def test_is_a_store(self, store: Store) -> None:
        assert isinstance(store, Store)
        assert store.ping() is True

    def test_prediction_round_trips_every_field(self, store: Store) -> None:
        written = record(
            ts=datetime(2024, 5, 1, 14, 30, 1, 654321, tzinfo=timezone(timedelta(hours=2))),
            inputs={
                "text": "naïve café — 日本語 🚀",
                "nested": {"a": [1, 2.5, None, {"b": True}], "empty": {}},
                "n": 3,
            },
            output={"label": "yes", "ranks": [3, 1, 2]},
            score=None,
            latency_seconds=0.0125,
            trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
            probabilities={"yes": 0.75, "no": 0.25},
        )
        assert store.write_predictions([written]) == 1

        read = store.get_prediction(written.id)

        assert read == written  # datetimes compare as instants
        assert read is not None
        assert read.timestamp.utcoffset() == timedelta(0)
        assert read.timestamp == datetime(2024, 5, 1, 12, 30, 1, 654321, tzinfo=UTC)
        assert read.score is None
        streamed = list(store.iter_predictions())  # SQLite decodes its own text here
        assert streamed == [read]
        assert streamed[0].timestamp.utcoffset() == timedelta(0)

    def test_streamed_rows_equal_the_rows_read_one_by_one(self, store: Store) -> None:
        rows = [
            record(ts=T0 + timedelta(microseconds=7), inputs={"i": 7, "s": "é"}),
            record(output=None, probabilities=None, score=None, latency_seconds=None),
            record(output=3, probabilities={"3": 1.0}, trace_id="t"),
            record(output=[1, {"a": None}], ts=T0 - timedelta(days=400)),
            record(output=2.5),
            record(output="3"),
            record(output=True),
            record(output=-7),
        ]
        store.write_predictions(rows)
        assert list(store.iter_predictions()) == [
            store.get_prediction(r.id) for r in sorted(rows, key=lambda r: (r.timestamp, r.id))
        ]

    def test_missing_output_and_probabilities_read_as_none(self, store: Store) -> None:
        written = record(output=None, probabilities=None, score=None, latency_seconds=None)
        store.write_predictions([written])

        assert store.get_prediction(written.id) == written

    def test_unknown_prediction_is_none(self, store: Store) -> None:
        assert store.get_prediction("no-such-id") is None

    def test_empty_batches_write_nothing(self, store: Store) -> None:
        assert store.write_predictions([]) == 0
        assert store.write_labels([]) == 0
        assert store.count_predictions() == 0

    def test_batch_of_1000_rows_is_counted_exactly(self, store: Store) -> None:
        rows = [record(ts=T0 + timedelta(milliseconds=i), inputs={"i": i}) for i in range(1000)]

        assert store.write_predictions(rows) == 1000
        assert store.count_predictions() == 1000

    def test_counts_per_model_and_version(self, store: Store) -> None:
        rows = [record(model="a", version="1") for _ in range(3)]
        rows += [record(model="a", version="2") for _ in range(5)]
        rows += [record(model="b", version="1") for _ in range(7)]
        store.write_predictions(rows)

        assert store.count_predictions() == 15
        assert store.count_predictions("a") == 8
        assert store.count_predictions("a", "2") == 5
        assert store.count_predictions("b", "1") == 7
        assert store.count_predictions("b", "2") == 0
        assert store.count_predictions("c") == 0

    def test_iter_predictions_in_time_order_with_filter_and_limit(self, store: Any) -> None:
        times = [T0 + timedelta(seconds=s) for s in (5, 1, 4, 2, 3)]
        rows = [record(ts=ts, inputs={"s": ts.second}) for ts in times]
        store.write_predictions([*rows, record(model="other")])

        got = list(store.iter_predictions("churn", "1"))

        assert [r.timestamp for r in got] == sorted(times)
        assert [r.timestamp for r in store.iter_predictions("churn", limit=2)] == sorted(times)[:2]
        assert len(list(store.iter_predictions())) == 6
        assert list(store.iter_predictions(limit=0)) == []

    def test_iter_and_count_predictions_by_time_range(self, store: Any) -> None:
        rows = [record(ts=T0 + timedelta(minutes=i // 2)) for i in range(40)]  # ties in time
        rows += [record(model="other", ts=T0 + timedelta(minutes=3))]
        store.write_predictions(rows)
        since, until = T0 + timedelta(minutes=5), T0 + timedelta(minutes=15)
        want = sorted(
            (r for r in rows if r.model == "churn" and since <= r.timestamp < until),
            key=lambda r: (r.timestamp, r.id),
        )

        got = list(store.iter_predictions("churn", since=since, until=until, page_size=3))

        assert [r.id for r in got] == [r.id for r in want]  # half-open, paged through ties
        assert store.count_predictions("churn", since=since, until=until) == len(want) == 20
        # the same instant in another offset selects the same rows
        east = timezone(timedelta(hours=5))
        assert store.count_predictions(since=since.astimezone(east)) == 30
        assert store.count_predictions("churn", "1", until=T0) == 0
        assert list(store.iter_predictions(since=until, until=since)) == []
        with pytest.raises(ValueError, match="page_size"):
            list(store.iter_predictions(page_size=0))

    def test_labels_are_linked_by_prediction_id_and_replace(self, store: Any) -> None:
        first, second = record(), record()
        early = Label("not-flushed-yet", value="yes", timestamp=T0)  # no foreign key
        labels = [
            Label(first.id, value="yes", timestamp=T0 + timedelta(hours=1)),
            Label(second.id, value={"amount": 12.5}, timestamp=T0 + timedelta(hours=2)),
            Label(first.id, value="no", timestamp=T0 + timedelta(hours=3)),
        ]

        assert store.write_labels([early]) == 1
        store.write_predictions([first, second])
        assert store.write_labels(labels) == 2  # the last of first's two labels wins

        assert store.get_labels(first.id) == [labels[2]]
        assert store.get_labels(second.id) == [labels[1]]
        assert store.write_labels([labels[0]]) == 1  # a repeated label replaces
        assert store.get_labels(first.id) == [labels[0]]
        assert store.get_labels("not-flushed-yet") == [early]
        assert store.get_labels("unknown") == []

    def test_register_model_is_idempotent(self, store: Any) -> None:
        store.register_model("churn", "1", flavor="sklearn", uri="file:///m/1.joblib")
        store.register_model("churn", "1", flavor="sklearn", uri="file:///m/1.joblib")
        store.register_model("churn", "2", flavor="onnx")

        models = store.list_models()

        assert [(m["name"], m["version"], m["flavor"], m["uri"]) for m in models] == [
            ("churn", "1", "sklearn", "file:///m/1.joblib"),
            ("churn", "2", "onnx", None),
        ]
        assert all(m["created_at"].utcoffset() == timedelta(0) for m in models)

    def test_register_model_again_updates_flavor_and_uri(self, store: Any) -> None:
        store.register_model("churn", "1", flavor="sklearn", uri="file:///old")
        created = store.list_models()[0]["created_at"]
        store.register_model("churn", "1", flavor="onnx", uri="file:///new")

        (model,) = store.list_models()

        assert (model["flavor"], model["uri"]) == ("onnx", "file:///new")
        assert model["created_at"] == created

    def test_register_reference_replaces_the_previous_one(self, store: Any) -> None:
        store.register_reference("churn", "1", uri="s3://a", n_rows=10, schema={"x": "numeric"})
        store.register_reference("churn", "2", uri=None, n_rows=5, schema={"y": "text"})
        store.register_reference(
            "churn", "1", uri="s3://b", n_rows=3_000_000_000, schema={"x": {"kind": "numeric"}}
        )

        ref = store.get_reference("churn", "1")

        assert ref is not None
        assert (ref["uri"], ref["n_rows"], ref["schema"]) == (
            "s3://b",
            3_000_000_000,
            {"x": {"kind": "numeric"}},
        )
        assert store.get_reference("churn", "2")["n_rows"] == 5
        assert store.get_reference("churn", "3") is None

    def test_duplicate_id_fails_the_whole_batch(self, store: Store) -> None:
        first = record()
        store.write_predictions([first])
        # the same id with other values (the same values would be a re-send: idempotent)
        batch = [record(), record(), record(id=first.id, output="no"), record()]

        with pytest.raises(StoreError, match="4 predictions"):
            store.write_predictions(batch)

        assert store.count_predictions() == 1
        assert store.get_prediction(batch[0].id) is None

    def test_numpy_scalars_are_stored_as_plain_numbers(self, store: Store) -> None:
        written = record(
            inputs={
                "i": np.int64(7),
                "f32": np.float32(0.5),
                "f64": np.float64(0.25),
                "b": np.bool_(True),
                "s": np.str_("red"),
                "v": np.arange(3, dtype=np.int32),
            },
            output=np.int64(1),
            score=np.float32(0.875),
            latency_seconds=np.float64(0.001),
            probabilities={"0": np.float32(0.125), "1": np.float64(0.875)},
        )
        store.write_predictions([written])

        read = store.get_prediction(written.id)

        assert read is not None
        assert read.inputs == {
            "i": 7,
            "f32": 0.5,
            "f64": 0.25,
            "b": True,
            "s": "red",
            "v": [0, 1, 2],
        }
        assert [type(read.inputs[k]) for k in ("i", "f32", "b", "s", "v")] == [
            int,
            float,
            bool,
            str,
            list,
        ]
        assert (read.output, type(read.output)) == (1, int)
        assert (read.score, type(read.score)) == (0.875, float)
        assert read.probabilities == {"0": 0.125, "1": 0.875}

    def test_nan_and_infinity_are_stored_as_null(self, store: Store) -> None:
        written = record(inputs={"x": float("nan"), "y": [np.float64("inf"), 1.5]}, output=None)
        store.write_predictions([written])

        read = store.get_prediction(written.id)

        assert read is not None
        assert read.inputs == {"x": None, "y": [None, 1.5]}

    def test_a_value_json_cannot_hold_is_a_store_error(self, store: Store) -> None:
        with pytest.raises(StoreError, match="object"):
            store.write_predictions([record(inputs={"x": object()})])

        assert store.count_predictions() == 0

    def test_concurrent_writes_from_four_threads_all_land(self, store: Store) -> None:
        errors: list[BaseException] = []
        counted: list[int] = []

        def write(worker: int) -> None:
            try:
                for batch in range(10):
                    rows = [record(model=f"m{worker}", inputs={"b": batch}) for _ in range(50)]
                    store.write_predictions(rows)
                    counted.append(store.count_predictions())  # readers run alongside
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert errors == []
        assert store.count_predictions() == 2000
        assert all(store.count_predictions(f"m{w}") == 500 for w in range(4))
        assert len(counted) == 40

    def test_upgrade_is_idempotent(self, store: Any) -> None:
        store.write_predictions([record()])

        store.upgrade()
        store.upgrade()

        assert store.current_revision() == store.head_revision()
        assert store.count_predictions() == 1


class TestSQLStore(StoreContract):
    """The contract on a SQLite file and on PostgreSQL (the ``store`` fixture of conftest)."""


# -- SQL only ---------------------------------------------------------------------------


def test_current_revision_is_none_before_the_first_upgrade(store_url: str) -> None:
    with SQLStore(store_url) as store:
        assert store.current_revision() is None
        store.upgrade()
        assert store.current_revision() == store.head_revision() == inferwatch.store.head_revision()


def test_a_second_upgrade_changes_nothing(store: SQLStore) -> None:
    statements: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.lstrip().split(None, 1)[0].upper())

    sa.event.listen(store.engine, "before_cursor_execute", capture)
    try:
        store.upgrade()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", capture)

    assert statements  # it did look at the version table
    assert set(statements) <= {"SELECT", "PRAGMA", "BEGIN"}  # BEGIN IMMEDIATE: SQLite's lock


def test_iter_predictions_pages_through_ties_in_time(store: SQLStore) -> None:
    rows = [record(ts=T0 + timedelta(seconds=i // 3)) for i in range(23)]  # three per instant
    store.write_predictions(rows)

    got = [r.id for r in store.iter_predictions(page_size=4)]

    assert got == [r.id for r in sorted(rows, key=lambda r: (r.timestamp, r.id))]
    assert [r.id for r in store.iter_predictions(limit=9, page_size=4)] == got[:9]


def test_iter_predictions_streams_one_query_and_releases_its_connection(
    store: SQLStore,
) -> None:
    """A 2,000-row read is one SELECT (not a sort per page), and a reader that stops
    early gives its connection back."""
    store.write_predictions([record(ts=T0 + timedelta(seconds=i)) for i in range(2000)])
    selects: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        assert sum(1 for _ in store.iter_predictions(page_size=100)) == 2000
        assert len(selects) == 1
        early = store.iter_predictions(page_size=100)
        next(early)
        early.close()  # type: ignore[attr-defined]  # a generator, typed as an Iterator
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)
    assert store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]  # QueuePool


def test_write_error_keeps_the_driver_error_as_cause(store: SQLStore) -> None:
    # (a duplicate id no longer fails: inserts are idempotent) a NULL model, NOT NULL
    with pytest.raises(StoreError) as caught:
        store.write_predictions([record(model=None)])  # type: ignore[arg-type]

    assert isinstance(caught.value.__cause__, sa.exc.IntegrityError)
    assert isinstance(caught.value, RuntimeError)


def test_sqlite_file_store_creates_its_directory_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "inferwatch.db"
    with SQLStore(f"sqlite:///{path}") as store:
        store.upgrade()
        with store.engine.connect() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }

    assert path.exists()
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 1,
        "foreign_keys": 1,
        "busy_timeout": 5000,
    }


def test_sqlite_memory_url_gives_a_working_store() -> None:
    with SQLStore("sqlite://") as store:
        store.upgrade()
        store.write_predictions([record()])
        assert store.count_predictions() == 1


@pytest.mark.integration
def test_postgres_timestamps_are_utc_whatever_the_session_time_zone(postgres_db_url: str) -> None:
    kwargs = {"connect_args": {"options": "-c timezone=Asia/Kolkata"}}
    with SQLStore(postgres_db_url, engine_kwargs=kwargs) as store:
        store.upgrade()
        written = record(ts=datetime(2024, 1, 1, 23, 59, tzinfo=timezone(timedelta(hours=-5))))
        store.write_predictions([written])

        read = store.get_prediction(written.id)

    assert read is not None
    assert read.timestamp == written.timestamp
    assert read.timestamp.tzinfo is UTC
    assert read.timestamp.hour == 4


def test_ping_is_false_for_an_unreachable_postgres_without_raising() -> None:
    pytest.importorskip("psycopg")
    # a port held by a socket that never listens: connections are refused for as long as
    # the test runs (a port merely found free could be taken meanwhile)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        _unreachable_store_fails(url)


def _unreachable_store_fails(url: str) -> None:
    with SQLStore(url) as store:
        assert store.ping() is False
        with pytest.raises(StoreError, match="writing 1 predictions failed"):
            store.write_predictions([record()])


@pytest.mark.parametrize(
    "url",
    [
        "mysql://user@localhost/db",
        "postgresql+asyncpg://user@localhost/db",
        "sqlite+aiosqlite:///x.db",
        "not a url",
    ],
)
def test_an_unsupported_url_is_a_store_error(url: str) -> None:
    with pytest.raises(StoreError, match=r"sqlite:///|postgresql\+psycopg"):
        SQLStore(url)


def test_a_missing_postgres_driver_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now raises ImportError

    with pytest.raises(StoreError, match=r"pip install 'inferwatch\[postgres\]'"):
        SQLStore("postgresql://user@localhost/db")


def test_repr_hides_the_password() -> None:
    pytest.importorskip("psycopg")
    assert "s3cret" not in repr(SQLStore("postgresql+psycopg://u:s3cret@localhost/db"))


def test_open_store_and_upgrade_by_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a.db"

    upgrade(url)
    upgrade(url)

    store = open_store(url)
    assert isinstance(store, SQLStore)
    assert store.current_revision() == store.head_revision()
    store.close()
    assert isinstance(open_store("memory://"), MemoryStore)


def test_the_facade_exports_a_sorted_all() -> None:
    names = inferwatch.store.__all__
    assert names == sorted(names)
    assert all(hasattr(inferwatch.store, name) for name in names)
    assert SQLStore.__module__ == MemoryStore.__module__ == "inferwatch.store"


def test_a_new_sqlite_file_and_its_wal_and_shm_are_private(tmp_path: Path) -> None:
    # the file holds every input the model saw: 0644 let every local user read it
    path = tmp_path / "sub" / "private.db"
    with SQLStore(f"sqlite:///{path}") as store:
        store.upgrade()
        store.write_predictions([record()])
        with store.engine.connect() as conn:  # keeps the -wal and -shm files open
            conn.execute(sa.text("SELECT count(*) FROM predictions"))
            modes = {p.name: p.stat().st_mode & 0o777 for p in path.parent.iterdir() if p.is_file()}

    assert set(modes) >= {"private.db", "private.db-wal", "private.db-shm"}
    assert set(modes.values()) == {0o600}, modes


def test_an_existing_sqlite_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    path.touch()
    path.chmod(0o640)
    with SQLStore(f"sqlite:///{path}") as store:
        store.upgrade()

    assert path.stat().st_mode & 0o777 == 0o640
