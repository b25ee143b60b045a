"""``SQLStore``: the persistent store on SQLite (embedded default) or PostgreSQL (fleet).

SQLAlchemy Core rather than the ORM: the hot path is the background writer's
batch of predictions, which Core sends as one ``executemany`` insert (PostgreSQL
gets multi-row ``VALUES`` pages) without building objects or an identity map.

Every method opens a short transaction from the engine's pool, so one store can be
shared by the writer thread and the request threads.  SQLAlchemy and driver errors
leave as :class:`~inferwatch.errors.StoreError` with the original as ``__cause__``.
"""

from __future__ import annotations

import functools
import json
import math
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.dialects import postgresql, sqlite

from inferwatch.alerting import AlertTransition, DeliveryAttempt, Silence, StoredAlert
from inferwatch.errors import StoreError, StoreRejectedError
from inferwatch.history import RAW, ModelRow, ResourceRow
from inferwatch.observation import (
    DRIFT_METRICS,
    Evaluation,
    Label,
    LabelledPrediction,
    PredictionRecord,
)
from inferwatch.store._alerts import (
    ACTION_COLUMNS,
    ATTEMPT_COLUMNS,
    HISTORY_COLUMNS,
    RESTORE_LIMIT,
    RESTORE_ROWS,
    action_row,
    attempt_row,
    check_limit,
    history_row,
    silence_row,
    silences_from_rows,
    stored_alerts,
)
from inferwatch.store._history import (
    MODEL_COLUMNS,
    RESOURCE_COLUMNS,
    model_from_row,
    model_row,
    resource_from_row,
    resource_row,
)
from inferwatch.store._lease import SQLLeases
from inferwatch.store._tables import (
    VERSION_TABLE,
    action_records_table,
    alert_history_table,
    alert_notifications_table,
    evaluations_table,
    history_models_table,
    history_resources_table,
    json_dumps,
    labels_table,
    models_table,
    predictions_table,
    quarantine_table,
    references_table,
    silences_table,
    storable_text,
    utc,
)
from inferwatch.store._windows import SQLWindowProfiles

__all__ = [
    "EVALUATION_COLUMNS",
    "LABELLED_COLUMNS",
    "SQLStore",
    "evaluation_row",
    "head_revision",
    "quarantine_row",
]

_MIGRATIONS = Path(__file__).resolve().with_name("migrations")
_POSTGRES_HINT = "use a postgresql+psycopg:// URL and pip install 'inferwatch[postgres]'"
_URL_HINT = "expected sqlite:///path/to/inferwatch.db or postgresql+psycopg://user@host/dbname"
# pg_advisory_xact_lock key: replicas starting together migrate one at a time
_MIGRATION_LOCK = 0x1F_E2_A7_C4
# pg_advisory_xact_lock key of label upserts: a read-then-upsert is never interleaved
_LABEL_LOCK = 0x1F_E2_A7_C5
_PAGE = 1000
# Alembic keeps the running migration in module globals: one migration per process at a time
_ALEMBIC_LOCK = threading.Lock()


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


@functools.cache
def head_revision() -> str:
    """The newest migration shipped with this version of inferwatch."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships a migration
        raise StoreError(f"no migrations found in {_MIGRATIONS}")
    return head


def _refused(exc: BaseException) -> bool:
    """True when the database (or the driver) refused the *data*, not when it is down.

    A data error (a value the column cannot hold, a duplicate key) fails the same rows
    again however often they are retried; a connection or lock error may pass on a retry.
    """
    if isinstance(exc, sa.exc.DataError | sa.exc.IntegrityError):
        return True
    if isinstance(exc, sa.exc.DBAPIError):  # OperationalError, InterfaceError, ...: retry
        return False
    if isinstance(exc, sa.exc.StatementError):  # raised while binding a value, before sending
        return isinstance(exc.orig, TypeError | ValueError)
    return isinstance(exc, TypeError | ValueError)  # the JSON encoder, UnicodeEncodeError


def _store_error(action: str, exc: BaseException) -> StoreError:
    orig = getattr(exc, "orig", None) or exc
    detail = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    kind = StoreRejectedError if _refused(exc) else StoreError
    return kind(f"{action} failed: {type(orig).__name__}: {detail}")


def _sqlite_on_connect(
    dbapi_connection: Any, connection_record: Any, *, busy_ms: int = 5000
) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={busy_ms:d}")  # first: the others wait on a lock
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _parse_url(url: str) -> sa.URL:
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"cannot parse the store URL; {_URL_HINT}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        # SQLAlchemy's default PostgreSQL driver is psycopg2; the extra installs psycopg 3
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        return parsed
    if parsed.get_backend_name() in ("postgresql", "postgres"):
        raise StoreError(f"unsupported PostgreSQL driver {parsed.drivername!r}; {_POSTGRES_HINT}")
    raise StoreError(f"unsupported store URL scheme {parsed.drivername!r}; {_URL_HINT}")


def _engine_options(
    url: sa.URL, extra: Mapping[str, Any], timeout: float | None = None
) -> dict[str, Any]:
    """Engine defaults: every call bounded by ``timeout`` seconds where the database can
    bound it (PostgreSQL: ``statement_timeout`` and ``lock_timeout`` on each pooled
    connection, ``connect_timeout``, the pool's checkout ``timeout``; SQLite: the driver's
    and the busy timeout).  A *frozen* server enforces none of these: the prediction log
    also bounds its calls on its side (:class:`inferwatch.prediction_log.PredictionLog`)."""
    options: dict[str, Any] = {"json_serializer": json_dumps}
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        connect_args["check_same_thread"] = False
        if timeout is not None:
            connect_args["timeout"] = timeout
        if url.database in (None, "", ":memory:"):
            options["poolclass"] = sa.StaticPool  # one shared connection, or no database
    else:
        options["pool_pre_ping"] = True
        # libpq takes whole seconds and treats 1 as 2
        connect_args["connect_timeout"] = max(2, math.ceil(timeout)) if timeout else 5
        if timeout is not None:
            ms = max(1, round(timeout * 1000))
            connect_args["options"] = f"-c statement_timeout={ms} -c lock_timeout={ms}"
            options["pool_timeout"] = timeout
    options.update(extra)
    options["connect_args"] = {**connect_args, **dict(extra.get("connect_args", {}))}
    return options


def _create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist (an empty file is a valid
    SQLite database).  SQLite gives the -wal and -shm files the database file's mode, so
    all three stay private: they hold every input the model saw.  An existing file keeps
    the mode its owner gave it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _create_engine(url: sa.URL, extra: Mapping[str, Any], timeout: float | None) -> sa.Engine:
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the directory of {url.database}: {exc}") from exc
        if not url.query.get("uri"):  # a file: URI names options, not just a path
            try:
                _create_private_file(path)
            except OSError as exc:
                raise StoreError(f"cannot create the database file {path}: {exc}") from exc
    try:
        engine = sa.create_engine(url, **_engine_options(url, extra, timeout))
    except ImportError as exc:
        raise StoreError(f"the PostgreSQL driver is not installed; {_POSTGRES_HINT}") from exc
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"cannot open the store: {exc}") from exc
    if engine.dialect.name == "sqlite":
        busy_ms = 5000 if timeout is None else max(1, round(timeout * 1000))
        sa.event.listen(engine, "connect", functools.partial(_sqlite_on_connect, busy_ms=busy_ms))
    return engine


def quarantine_row(record: PredictionRecord, reason: str) -> dict[str, Any]:
    """The ``quarantine`` row of a refused record: ASCII-escaped JSON text, so it always fits."""
    text = json.dumps(
        {
            "id": record.id,
            "model": record.model,
            "version": record.version,
            "ts": record.timestamp.isoformat(),
            "inputs": record.inputs,
            "output": record.output,
            "probabilities": record.probabilities,
            "score": record.score,
            "latency_seconds": record.latency_seconds,
            "trace_id": record.trace_id,
        },
        ensure_ascii=True,
        default=repr,  # whatever JSON cannot encode is kept as its repr
    )
    return {
        "prediction_id": storable_text(str(record.id))[:36],
        "model": storable_text(str(record.model))[:200],
        "version": storable_text(str(record.version))[:100],
        "reason": storable_text(reason)[:2000],
        "row": text,
    }


def _prediction_row(record: PredictionRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "model": record.model,
        "version": record.version,
        "ts": record.timestamp,
        "inputs": record.inputs,
        "output": record.output,
        "probabilities": record.probabilities,
        "score": None if record.score is None else float(record.score),
        "latency_seconds": None
        if record.latency_seconds is None
        else float(record.latency_seconds),
        "trace_id": record.trace_id,
    }


def _same_prediction(stored: PredictionRecord, row: Mapping[str, Any]) -> bool:
    """Whether ``row`` (a :func:`_prediction_row`) is the stored prediction sent again:
    every column equal once the JSON values went through the encoder that stored them."""
    return (
        stored.model == row["model"]
        and stored.version == row["version"]
        and stored.timestamp == utc(row["ts"])
        and stored.score == row["score"]
        and stored.latency_seconds == row["latency_seconds"]
        and stored.trace_id == row["trace_id"]
        and all(
            getattr(stored, attr) == _as_stored(row[column])
            for attr, column in (
                ("inputs", "inputs"), ("output", "output"), ("probabilities", "probabilities")
            )
        )
    )  # fmt: skip


def _as_stored(value: Any) -> Any:
    """A JSON column value as it reads back (NaN as None, U+0000 as U+FFFD, numpy plain)."""
    return None if value is None else json.loads(json_dumps(value))


#: the keys of a row that ``latest_evaluations`` returns, in this order
EVALUATION_COLUMNS = (
    "id",
    "model",
    "version",
    "window_start",
    "window_end",
    "evaluated_at",
    "metric",
    "feature",
    "test",
    "value",
    "threshold",
    "status",
    "details",
)


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def evaluation_row(evaluation: Evaluation) -> dict[str, Any]:
    """The ``evaluations`` row of one evaluation (without ``id``); NaN and inf become NULL."""
    if evaluation.status not in ("ok", "warning", "critical"):
        raise StoreError(
            f"evaluation status must be ok, warning or critical, not {evaluation.status!r}"
        )
    return {
        "model": evaluation.model,
        "version": evaluation.version,
        "window_start": evaluation.window_start,
        "window_end": evaluation.window_end,
        "evaluated_at": evaluation.evaluated_at,
        "metric": evaluation.metric,
        "feature": evaluation.feature,
        "test": evaluation.test,
        "value": _finite_or_none(evaluation.value),
        "threshold": _finite_or_none(evaluation.threshold),
        "status": evaluation.status,
        "details": None if evaluation.details is None else dict(evaluation.details),
    }


def _record(row: sa.Row[Any]) -> PredictionRecord:
    return PredictionRecord(
        id=row.id,
        model=row.model,
        version=row.version,
        timestamp=row.ts,
        inputs=row.inputs,
        output=row.output,
        score=row.score,
        latency_seconds=row.latency_seconds,
        trace_id=row.trace_id,
        probabilities=row.probabilities,
    )


def _raw_columns() -> list[sa.ColumnElement[Any]]:
    """The ``predictions`` columns as SQLite stores them (JSON and timestamps as text).

    Reading a long range (``inferwatch export``) through the column types costs about
    30 µs a row on SQLite, most of it in SQLAlchemy's per-value processors;
    :func:`_record_from_sqlite_text` decodes the same text directly, several times faster.
    """
    t = predictions_table
    return [
        t.c.id, t.c.model, t.c.version,
        sa.type_coerce(t.c.ts, sa.String).label("ts"),
        sa.type_coerce(t.c.inputs, sa.Text).label("inputs"),
        sa.type_coerce(t.c.output, sa.Text).label("output"),
        sa.type_coerce(t.c.probabilities, sa.Text).label("probabilities"),
        t.c.score, t.c.latency_seconds, t.c.trace_id,
    ]  # fmt: skip


def _record_from_sqlite_text(row: sa.Row[Any]) -> PredictionRecord:
    """The record of a :func:`_raw_columns` row: what :func:`_record` gives, decoded by
    hand (the JSON text with ``json.loads`` as the JSON type does; the timestamp, stored
    as naive UTC text, with ``fromisoformat``)."""
    rid, model, version, ts, inputs, output, probabilities, score, latency, trace = tuple(row)
    return PredictionRecord(
        id=rid,
        model=model,
        version=version,
        timestamp=datetime.fromisoformat(ts).replace(tzinfo=UTC),
        inputs=_json_text(inputs),
        output=_json_text(output),
        score=score,
        latency_seconds=latency,
        trace_id=trace,
        probabilities=_json_text(probabilities),
    )


def _json_text(value: Any) -> Any:
    """A JSON column's value as SQLite returns it: text to decode, or a number already
    (the column's NUMERIC affinity stores a bare JSON number as one), or NULL."""
    return json.loads(value) if isinstance(value, str) else value


#: the columns :meth:`SQLStore.labelled_columns` can read, in this order by default
LABELLED_COLUMNS = ("id", "ts", "output", "score", "probabilities", "label")

#: the ``labels`` columns an upsert writes (all but the surrogate ``id``)
_LABEL_COLUMNS = (
    "value", "ts", "model", "version", "prediction_ts", "received_at", "delay_seconds",
    "output", "score", "probabilities",
)  # fmt: skip


def _label_row(item: LabelledPrediction) -> dict[str, Any]:
    """The ``labels`` row of a label joined with its prediction."""
    record = item.prediction
    delay = (utc(item.received_at) - utc(record.timestamp)).total_seconds()
    return {
        "prediction_id": record.id,
        "value": item.label,
        "ts": item.received_at,
        "model": record.model,
        "version": record.version,
        "prediction_ts": record.timestamp,
        "received_at": item.received_at,
        "delay_seconds": max(delay, 0.0),
        "output": record.output,
        "score": None if record.score is None else float(record.score),
        "probabilities": record.probabilities,
    }


_JSON_LIST = msgspec.json.Decoder(list[Any])


def _decode_json_column(values: Sequence[Any]) -> list[Any]:
    """A page of a JSON column as SQLite returns it (text, a bare number its NUMERIC
    affinity kept as one, or NULL), decoded with one msgspec call over the whole page:
    the texts joined into one JSON array (a number or NULL joins as its JSON text)."""
    parts = [
        v if isinstance(v, str) else ("null" if v is None else _number_json(v)) for v in values
    ]
    try:
        return _JSON_LIST.decode("[" + ",".join(parts) + "]")
    except msgspec.DecodeError:  # a value msgspec refuses (NaN tokens): one at a time
        return [_json_text(v) for v in values]


def _number_json(value: Any) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


#: memory-map this much of a SQLite database while reading a window's labelled pairs
_READ_MMAP = 1 << 30


def _sqlite_time(value: datetime) -> str:
    """``value`` as SQLite stores a UTCDateTime (naive UTC text, as SQLAlchemy writes it)."""
    return utc(value).strftime("%Y-%m-%d %H:%M:%S.%f")


def _epoch_seconds(texts: Sequence[Any]) -> list[float]:
    """SQLite's naive-UTC timestamp texts as Unix seconds (numpy parses the page)."""
    parsed = np.array(texts, dtype="datetime64[us]").astype(np.int64)
    return (parsed / 1_000_000).tolist()  # type: ignore[no-any-return]


def _for_model(
    stmt: sa.Select[Any],
    model: str | None,
    version: str | None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> sa.Select[Any]:
    """``stmt`` restricted to a model (and version) and to ``since <= ts < until``."""
    table = predictions_table
    if model is not None:
        stmt = stmt.where(table.c.model == model)
    if version is not None:
        stmt = stmt.where(table.c.version == version)
    if since is not None:
        stmt = stmt.where(table.c.ts >= since)
    if until is not None:
        stmt = stmt.where(table.c.ts < until)
    return stmt


def _filtered(
    stmt: sa.Select[Any],
    table: sa.Table,
    equal: Mapping[str, str | None],
    since: datetime | None,
    until: datetime | None,
) -> sa.Select[Any]:
    """``stmt`` where each column in ``equal`` with a value equals it, and ``since <= at <
    until`` (the alerting tables' reads)."""
    for column, value in equal.items():
        if value is not None:
            stmt = stmt.where(table.c[column] == value)
    if since is not None:
        stmt = stmt.where(table.c.at >= since)
    if until is not None:
        stmt = stmt.where(table.c.at < until)
    return stmt


class _FoldedElsewhere(Exception):
    """A fold found other raw rows than it read (another replica folded them)."""


def _history_columns(table: sa.Table, names: Sequence[str]) -> list[sa.ColumnElement[Any]]:
    """The history columns to select, JSON ones as their stored text: decoded by
    ``store._history`` with msgspec, faster than the JSON type's ``json.loads`` (a day of
    raw rows is 8,640 rows with two JSON values each)."""
    return [
        sa.type_coerce(table.c[n], sa.Text) if isinstance(table.c[n].type, sa.JSON) else table.c[n]
        for n in names
    ]


class SQLStore(SQLLeases, SQLWindowProfiles):
    """The :class:`~inferwatch.ports.Store` on SQLite or PostgreSQL.

    ``url`` is ``sqlite:///path/to/inferwatch.db`` (the parent directory is created),
    ``sqlite://`` (in memory, one shared connection: quick single-threaded tests only)
    or ``postgresql+psycopg://user:password@host:5432/dbname``.  ``engine_kwargs``
    are passed to :func:`sqlalchemy.create_engine` over the defaults.  Nothing
    connects until the first call; call :meth:`upgrade` before the first write.
    ``statement_timeout`` (seconds, ``store.statement_timeout_seconds``) bounds each
    statement, connect and pool checkout where the database can (None: the drivers'
    defaults); migrations run without it, since a large one may take longer.
    """

    def __init__(
        self,
        url: str,
        *,
        engine_kwargs: Mapping[str, Any] | None = None,
        statement_timeout: float | None = 5.0,
    ) -> None:
        self._url = _parse_url(url)
        self._engine = _create_engine(self._url, engine_kwargs or {}, statement_timeout)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        engine_kwargs: Mapping[str, Any] | None = None,
        statement_timeout: float | None = 5.0,
    ) -> SQLStore:
        return cls(url, engine_kwargs=engine_kwargs, statement_timeout=statement_timeout)

    def __repr__(self) -> str:
        return f"SQLStore({self._url.render_as_string(hide_password=True)!r})"

    def __enter__(self) -> SQLStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (thread-safe; its pool is shared by every call)."""
        return self._engine

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    @contextmanager
    def _begin(self, action: str) -> Iterator[sa.Connection]:
        try:
            with self._engine.begin() as conn:
                yield conn
        # TypeError/ValueError: a value JSON cannot hold, raised by the driver's JSON
        # adapter on PostgreSQL (SQLAlchemy wraps the same error on SQLite)
        except (sa.exc.SQLAlchemyError, TypeError, ValueError) as exc:
            raise _store_error(action, exc) from exc

    # -- schema -------------------------------------------------------------------

    def upgrade(self) -> None:
        """Migrate the schema to :func:`head_revision` (a no-op when it is there already).

        The whole migration is one transaction that first takes a lock, so stores that
        start together (threads, workers, replicas) migrate one after the other.
        """
        config = _alembic_config()
        try:
            with _ALEMBIC_LOCK, self._begin("migrating the store") as conn:
                if conn.dialect.name == "postgresql":
                    # a migration (an index on a large table) may outlast statement_timeout
                    # (SET LOCAL, as a SELECT: this transaction only)
                    conn.exec_driver_sql(
                        "SELECT set_config('statement_timeout', '0', true), "
                        "set_config('lock_timeout', '0', true)"
                    )
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
                else:  # SQLite: take the write lock now (pysqlite would begin lazily)
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except CommandError as exc:  # e.g. the database is newer than this inferwatch
            raise StoreError(f"migrating the store failed: {exc}") from exc

    def current_revision(self) -> str | None:
        """The migration the database is at, or None before the first :meth:`upgrade`."""
        with self._begin("reading the schema revision") as conn:
            context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            return context.get_current_revision()

    def head_revision(self) -> str:
        """The newest migration this version of inferwatch ships."""
        return head_revision()

    def ping(self) -> bool:
        """True when the database answers ``SELECT 1``; never raises."""
        try:
            with self._engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception:
            return False
        return True

    def close(self) -> None:
        """Close the pooled connections (the store can still be used; it reconnects)."""
        self._engine.dispose()

    # -- writes -------------------------------------------------------------------

    def write_predictions(self, records: Sequence[PredictionRecord]) -> int:
        """Insert the rows in one transaction and one batched insert; all or nothing.

        Idempotent by prediction id: ``INSERT ... ON CONFLICT (id) DO NOTHING``, so a
        batch sent again (a write whose commit was not acknowledged, the spill file
        replayed after a crash) adds nothing and counts as written.  A row whose id is
        stored with *other* values is not a re-send but a clash: the whole batch is
        refused (:class:`StoreRejectedError`, nothing written), as before idempotence,
        and the writer's split isolates and quarantines that row.
        """
        rows = [_prediction_row(record) for record in records]
        if not rows:
            return 0
        ids = [row["id"] for row in rows]
        if len(set(ids)) != len(ids):  # one batch naming an id twice: a clash, never a re-send
            raise StoreRejectedError(
                f"writing {len(rows)} predictions failed: a prediction id appears twice"
            )
        t = predictions_table
        stmt = self._insert(t).on_conflict_do_nothing(index_elements=["id"]).returning(t.c.id)
        with self._begin(f"writing {len(rows)} predictions") as conn:
            inserted = set(conn.execute(stmt, rows).scalars())
            if len(inserted) < len(rows):
                clash = self._clashes([r for r in rows if r["id"] not in inserted], conn)
                if clash:
                    # raised inside the transaction: rolled back, nothing of the batch kept
                    raise StoreRejectedError(
                        f"writing {len(rows)} predictions failed: IntegrityError: prediction "
                        f"id {clash!r} is stored with other values (a duplicate id)"
                    )
        return len(rows)

    def _clashes(self, rows: Sequence[dict[str, Any]], conn: sa.Connection) -> str | None:
        """The first id among ``rows`` (already stored) whose stored values differ."""
        sqlite = self.dialect == "sqlite"
        make = _record_from_sqlite_text if sqlite else _record
        t = predictions_table
        by_id = {row["id"]: row for row in rows}
        for start in range(0, len(rows), _PAGE):
            chunk = list(by_id)[start : start + _PAGE]
            stmt = (sa.select(*_raw_columns()) if sqlite else sa.select(t)).where(t.c.id.in_(chunk))
            for stored in map(make, conn.execute(stmt)):
                if not _same_prediction(stored, by_id[stored.id]):
                    return stored.id
        return None

    def quarantine_predictions(self, records: Sequence[PredictionRecord], reason: str) -> int:
        """Keep rows the store refused in the ``quarantine`` table (as text, with ``reason``).

        Raises :class:`StoreError` when the store is down (the caller retries).
        """
        rows = [quarantine_row(record, reason) for record in records]
        if not rows:
            return 0
        with self._begin(f"quarantining {len(rows)} predictions") as conn:
            conn.execute(quarantine_table.insert(), rows)
        return len(rows)

    def quarantined(
        self, model: str | None = None, version: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Quarantined rows, oldest first: id, prediction_id, model, version,
        quarantined_at, reason and row (the refused record as JSON text)."""
        t = quarantine_table
        stmt = sa.select(t)
        if model is not None:
            stmt = stmt.where(t.c.model == model)
        if version is not None:
            stmt = stmt.where(t.c.version == version)
        stmt = stmt.order_by(t.c.quarantined_at, t.c.id).limit(limit)
        with self._begin("reading quarantined predictions") as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]

    def write_labels(self, labels: Sequence[Label]) -> int:
        """Upsert bare labels (no prediction joined) in one transaction; return how many
        rows were written.

        A label replaces the one stored for its prediction (the last of a batch wins).
        Bare labels carry no model, version or prediction time, so
        :meth:`labelled_columns` does not see them; the label ingestor writes through
        :meth:`upsert_labels` instead.
        """
        newest: dict[str, Label] = {label.prediction_id: label for label in labels}
        rows = [
            {
                "prediction_id": label.prediction_id,
                "value": label.value,
                "ts": label.timestamp,
                "model": None,
                "version": None,
                "prediction_ts": None,
                "received_at": label.timestamp,
                "delay_seconds": None,
                "output": None,
                "score": None,
                "probabilities": None,
            }
            for label in newest.values()
        ]
        if not rows:
            return 0
        with self._begin(f"writing {len(rows)} labels") as conn:
            conn.execute(self._label_upsert(), rows)
        return len(rows)

    def _label_upsert(self) -> Any:
        """``INSERT INTO labels ... ON CONFLICT (prediction_id) DO UPDATE`` every column."""
        stmt = self._insert(labels_table)
        return stmt.on_conflict_do_update(
            index_elements=["prediction_id"],
            set_={column: stmt.excluded[column] for column in _LABEL_COLUMNS},
        )

    def upsert_labels(self, labelled: Sequence[LabelledPrediction]) -> dict[str, Any]:
        """Store each label with its prediction, replacing a stored one; return the value
        each replaced label had, by prediction id (ids that had none are absent).

        One transaction reads the stored values and upserts, holding the write lock from
        the read on (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-level advisory
        lock), so two requests labelling the same prediction at once cannot both see it
        unlabelled: the second sees the first's value as its ``previous``.  All or
        nothing: a store that is down raises :class:`StoreError` and nothing is written.
        Ids must be distinct within one call (the ingestor rejects duplicates).
        """
        rows = [_label_row(item) for item in labelled]
        if not rows:
            return {}
        ids = [row["prediction_id"] for row in rows]
        if len(set(ids)) != len(ids):
            raise ValueError("upsert_labels: a prediction id appears twice in one call")
        t = labels_table
        previous: dict[str, Any] = {}
        with self._begin(f"writing {len(rows)} labels") as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_LABEL_LOCK)))
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            for start in range(0, len(ids), _PAGE):
                chunk = ids[start : start + _PAGE]
                stmt = sa.select(t.c.prediction_id, t.c.value).where(t.c.prediction_id.in_(chunk))
                previous.update((pid, value) for pid, value in conn.execute(stmt))
            conn.execute(self._label_upsert(), rows)
        return previous

    def find_predictions(self, ids: Sequence[str]) -> dict[str, PredictionRecord]:
        """The stored predictions among ``ids``, by id (ids not stored are absent)."""
        found: dict[str, PredictionRecord] = {}
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return found
        t = predictions_table
        sqlite = self.dialect == "sqlite"
        make = _record_from_sqlite_text if sqlite else _record
        with self._begin("reading predictions") as conn:
            for start in range(0, len(wanted), _PAGE):
                chunk = wanted[start : start + _PAGE]
                stmt = (sa.select(*_raw_columns()) if sqlite else sa.select(t)).where(
                    t.c.id.in_(chunk)
                )
                found.update((rec.id, rec) for rec in map(make, conn.execute(stmt)))
        return found

    def write_evaluations(self, rows: Sequence[Evaluation]) -> int:
        """Insert evaluation rows in one transaction; return how many."""
        values = [evaluation_row(row) for row in rows]
        if not values:
            return 0
        with self._begin(f"writing {len(values)} evaluations") as conn:
            conn.execute(evaluations_table.insert(), values)
        return len(values)

    def _insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def register_model(
        self, name: str, version: str, *, flavor: str, uri: str | None = None
    ) -> None:
        """Record a model version; registering it again updates its flavor and URI."""
        stmt = self._insert(models_table).values(name=name, version=version, flavor=flavor, uri=uri)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name", "version"],
            set_={"flavor": stmt.excluded["flavor"], "uri": stmt.excluded["uri"]},
        )
        with self._begin(f"registering model {name}:{version}") as conn:
            conn.execute(stmt)

    def register_reference(
        self,
        model: str,
        version: str,
        *,
        uri: str | None,
        n_rows: int,
        schema: Mapping[str, Any],
    ) -> None:
        """Record the reference dataset of a model version, replacing an earlier one."""
        stmt = self._insert(references_table).values(
            model=model, version=version, uri=uri, n_rows=n_rows, schema=schema
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["model", "version"],
            set_={
                column: stmt.excluded[column]
                for column in ("uri", "n_rows", "schema", "created_at")
            },
        )
        with self._begin(f"registering the reference of {model}:{version}") as conn:
            conn.execute(stmt)

    # -- reads --------------------------------------------------------------------

    def count_predictions(
        self,
        model: str | None = None,
        version: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """Number of stored predictions, optionally for one model (and version) and with
        ``since <= timestamp < until``."""
        stmt = sa.select(sa.func.count()).select_from(predictions_table)
        stmt = _for_model(stmt, model, version, since, until)
        with self._begin("counting predictions") as conn:
            return int(conn.execute(stmt).scalar_one())

    def get_prediction(self, prediction_id: str) -> PredictionRecord | None:
        """One stored prediction by id, or None."""
        stmt = sa.select(predictions_table).where(predictions_table.c.id == prediction_id)
        with self._begin("reading a prediction") as conn:
            row = conn.execute(stmt).first()
        return None if row is None else _record(row)

    def iter_predictions(
        self,
        model: str | None = None,
        version: str | None = None,
        limit: int | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int = _PAGE,
    ) -> Iterator[PredictionRecord]:
        """Stored predictions ordered by time (then id), fetched ``page_size`` rows at a time.

        Optionally one model (and version), ``since <= timestamp < until``, at most
        ``limit`` rows.  One query streamed through a server-side cursor (PostgreSQL) or
        SQLite's stepping cursor: memory stays at one page whatever the table holds, and
        the ordering is computed once (pages of separate queries would each sort every
        matching row again when no index leads with the timestamp).  The connection is
        held while the iterator runs and returned when it is exhausted or closed.
        """
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size!r}")
        if limit is not None and limit <= 0:
            return
        table = predictions_table
        sqlite = self.dialect == "sqlite"
        stmt = _for_model(sa.select(*_raw_columns()) if sqlite else sa.select(table),
                          model, version, since, until)  # fmt: skip
        stmt = stmt.order_by(table.c.ts, table.c.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        make = _record_from_sqlite_text if sqlite else _record
        with self._begin("reading predictions") as conn:
            result = conn.execution_options(yield_per=page_size).execute(stmt)
            for page in result.partitions():
                yield from map(make, page)

    def query_evaluations(
        self,
        model: str,
        *,
        version: str | None = None,
        metric: str | None = None,
        test: str | None = None,
        feature: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Evaluation rows of a model, newest first, filtered (``since <= window_start <
        until``: windows by prediction time), at most ``limit``; each a dict with ``id``
        and the :class:`~inferwatch.observation.Evaluation` fields."""
        t = evaluations_table
        stmt = sa.select(*(t.c[name] for name in EVALUATION_COLUMNS)).where(t.c.model == model)
        for column, value in (
            ("version", version), ("metric", metric), ("test", test), ("feature", feature)
        ):  # fmt: skip
            if value is not None:
                stmt = stmt.where(t.c[column] == value)
        if since is not None:
            stmt = stmt.where(t.c.window_start >= since)
        if until is not None:
            stmt = stmt.where(t.c.window_start < until)
        stmt = stmt.order_by(t.c.evaluated_at.desc(), t.c.id.desc()).limit(limit)
        with self._begin("reading evaluations") as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]

    def latest_evaluations(self, model: str, version: str) -> list[dict[str, Any]]:
        """The drift rows of a model version's newest evaluation, in the order written.

        Newest: the last written row's ``evaluated_at`` and ``window_start`` (a window
        judged a final time as it closes and the new window, judged in the same round,
        stay apart); empty when the model version has none.
        """
        t = evaluations_table
        mine = sa.and_(t.c.model == model, t.c.version == version, t.c.metric.in_(DRIFT_METRICS))
        newest = (
            sa.select(t.c.evaluated_at, t.c.window_start)
            .where(mine)
            .order_by(t.c.evaluated_at.desc(), t.c.id.desc())
            .limit(1)
        )
        with self._begin("reading evaluations") as conn:
            head = conn.execute(newest).first()
            if head is None:
                return []
            stmt = (
                sa.select(*(t.c[name] for name in EVALUATION_COLUMNS))
                .where(
                    mine,
                    t.c.evaluated_at == head.evaluated_at,
                    t.c.window_start == head.window_start,
                )
                .order_by(t.c.id)
            )
            return [dict(row._mapping) for row in conn.execute(stmt)]

    def drift_windows(
        self, model: str, version: str, *, since: datetime, until: datetime, limit: int = 500
    ) -> list[dict[str, Any]]:
        """The ``drift`` and ``dataset_drift_share`` rows of the newest evaluation of each
        window of a model version overlapping ``[since, until)`` (the newest ``limit``
        windows), ordered by window start then id: the drift heatmap's cells.  A window is
        judged every round while open; only its last judgement is read (one grouped
        subquery on the (model, version, evaluated_at) index, not every round's rows)."""
        t = evaluations_table
        mine = (t.c.model == model, t.c.version == version)
        last = (
            sa.select(t.c.window_start, sa.func.max(t.c.evaluated_at).label("last"))
            .where(
                *mine,
                t.c.metric == "dataset_drift_share",
                t.c.window_start < until,
                t.c.window_end > since,
            )
            .group_by(t.c.window_start)
            .order_by(t.c.window_start.desc())
            .limit(limit)
            .subquery()
        )
        stmt = (
            sa.select(*(t.c[name] for name in EVALUATION_COLUMNS))
            .join(
                last,
                sa.and_(t.c.window_start == last.c.window_start, t.c.evaluated_at == last.c.last),
            )
            .where(*mine, t.c.metric.in_(("drift", "dataset_drift_share")))
            .order_by(t.c.window_start, t.c.id)
        )
        with self._begin("reading drift windows") as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]

    def count_labels(
        self,
        model: str | None = None,
        version: str | None = None,
        *,
        received_since: datetime | None = None,
    ) -> int:
        """Number of stored labels (one per prediction), optionally of one model (and
        version) and received at or after ``received_since``."""
        t = labels_table
        stmt = sa.select(sa.func.count()).select_from(t)
        if model is not None:
            stmt = stmt.where(t.c.model == model)
        if version is not None:
            stmt = stmt.where(t.c.version == version)
        if received_since is not None:
            stmt = stmt.where(t.c.received_at >= received_since)
        with self._begin("counting labels") as conn:
            return int(conn.execute(stmt).scalar_one())

    def labelled_columns(
        self,
        model: str,
        version: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int = 100_000,
        columns: Sequence[str] = LABELLED_COLUMNS,
    ) -> Iterator[dict[str, list[Any]]]:
        """Labelled predictions of one model version with ``since <= prediction time <
        until``, as columns, ``page_size`` rows a page, ordered by prediction time.

        Each page maps the names in ``columns`` (default all of :data:`LABELLED_COLUMNS`:
        ``id``, ``ts`` (prediction time, Unix seconds), ``output``, ``score``,
        ``probabilities`` (decoded; None where absent) and ``label``) to lists of equal
        length; ask only for what you use (decoding ``probabilities`` is about half the
        cost).  What a performance window is recomputed from: one query on ``labels``
        alone (the prediction's values were copied in by :meth:`upsert_labels`), walked
        in the order of its (model, version, prediction_ts) index.  On SQLite it runs on
        the driver's cursor (no row objects) with the database memory-mapped for the
        read, and each page's JSON values are decoded by one msgspec call per column
        and its timestamps by numpy (``bench/label_join.py`` measures it).  Bare labels
        (no model) are not included.
        """
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size!r}")
        unknown = [c for c in columns if c not in LABELLED_COLUMNS]
        if unknown or not columns:
            raise ValueError(f"columns must be some of {LABELLED_COLUMNS}, got {columns!r}")
        names = list(dict.fromkeys(columns))
        t = labels_table
        source = {
            "id": t.c.prediction_id, "ts": t.c.prediction_ts, "output": t.c.output,
            "score": t.c.score, "probabilities": t.c.probabilities, "label": t.c.value,
        }  # fmt: skip
        if self.dialect == "sqlite":
            yield from self._labelled_sqlite(
                model, version, since, until, page_size, [(n, source[n].name) for n in names]
            )
            return
        stmt = sa.select(*(source[n] for n in names)).where(
            t.c.model == model, t.c.version == version
        )
        if since is not None:
            stmt = stmt.where(t.c.prediction_ts >= since)
        if until is not None:
            stmt = stmt.where(t.c.prediction_ts < until)
        stmt = stmt.order_by(t.c.prediction_ts, t.c.prediction_id)
        with self._begin("reading labelled predictions") as conn:
            result = conn.execution_options(yield_per=page_size).execute(stmt)
            for page in result.partitions():
                out = dict(zip(names, map(list, zip(*page, strict=True)), strict=True))
                if "ts" in out:
                    out["ts"] = [ts.timestamp() for ts in out["ts"]]
                yield out

    def _labelled_sqlite(
        self,
        model: str,
        version: str,
        since: datetime | None,
        until: datetime | None,
        page_size: int,
        columns: list[tuple[str, str]],
    ) -> Iterator[dict[str, list[Any]]]:
        # the column names come from labels_table (a fixed set), the values are bound
        sql = (
            f"SELECT {', '.join(column for _, column in columns)} "  # noqa: S608
            "FROM labels WHERE model = ? AND version = ?"
        )
        params: list[Any] = [model, version]
        if since is not None:
            sql += " AND prediction_ts >= ?"
            params.append(_sqlite_time(since))
        if until is not None:
            sql += " AND prediction_ts < ?"
            params.append(_sqlite_time(until))
        sql += " ORDER BY prediction_ts"
        decoders = {
            "ts": _epoch_seconds, "output": _decode_json_column,
            "probabilities": _decode_json_column, "label": _decode_json_column,
        }  # fmt: skip
        with self._begin("reading labelled predictions") as conn:
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(f"PRAGMA mmap_size={_READ_MMAP}")
                cursor.execute(sql, params)
                while page := cursor.fetchmany(page_size):
                    out: dict[str, list[Any]] = {}
                    for (name, _), values in zip(columns, zip(*page, strict=True), strict=True):
                        decode = decoders.get(name)
                        out[name] = decode(values) if decode is not None else list(values)
                    yield out
            finally:
                cursor.execute("PRAGMA mmap_size=0")
                cursor.close()

    def get_labels(self, prediction_id: str) -> list[Label]:
        """The label recorded for one prediction (a list of at most one: a repeated
        label replaces the stored one)."""
        stmt = (
            sa.select(labels_table)
            .where(labels_table.c.prediction_id == prediction_id)
            .order_by(labels_table.c.ts, labels_table.c.id)
        )
        with self._begin("reading labels") as conn:
            rows = conn.execute(stmt).all()
        return [
            Label(prediction_id=row.prediction_id, value=row.value, timestamp=row.ts)
            for row in rows
        ]

    def list_models(self) -> list[dict[str, Any]]:
        """Registered model versions as dicts (name, version, flavor, uri, created_at)."""
        table = models_table
        stmt = sa.select(
            table.c.name, table.c.version, table.c.flavor, table.c.uri, table.c.created_at
        ).order_by(table.c.name, table.c.version)
        with self._begin("listing models") as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]

    def get_reference(self, model: str, version: str) -> dict[str, Any] | None:
        """The reference of a model version (model, version, uri, n_rows, schema,
        created_at), or None."""
        table = references_table
        stmt = sa.select(
            table.c.model,
            table.c.version,
            table.c.uri,
            table.c.n_rows,
            table.c.schema,
            table.c.created_at,
        ).where(table.c.model == model, table.c.version == version)
        with self._begin("reading a reference") as conn:
            row = conn.execute(stmt).first()
        return None if row is None else dict(row._mapping)

    # -- alerting -----------------------------------------------------------------

    def write_alert_transitions(self, rows: Sequence[AlertTransition]) -> int:
        """Insert one ``alert_history`` row per state change, all in one transaction."""
        values = [history_row(row) for row in rows]
        if not values:
            return 0
        with self._begin(f"writing {len(values)} alert transitions") as conn:
            conn.execute(alert_history_table.insert(), values)
        return len(values)

    def query_alert_history(
        self,
        *,
        model: str | None = None,
        alertname: str | None = None,
        fingerprint: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Alert state changes, newest first (then by id: one cycle's rows share ``at``),
        filtered by model, alert name, fingerprint and ``since <= at < until``."""
        check_limit(limit)
        t = alert_history_table
        stmt = _filtered(
            sa.select(*(t.c[name] for name in HISTORY_COLUMNS)), t,
            {"model": model, "alertname": alertname, "fingerprint": fingerprint}, since, until,
        )  # fmt: skip
        stmt = stmt.order_by(t.c.at.desc(), t.c.id.desc()).limit(limit)
        with self._begin("reading the alert history") as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]

    def write_delivery_attempts(self, rows: Sequence[DeliveryAttempt]) -> int:
        """Insert one ``alert_notifications`` row per delivery attempt, in one transaction."""
        values = [attempt_row(row) for row in rows]
        if not values:
            return 0
        with self._begin(f"writing {len(values)} delivery attempts") as conn:
            conn.execute(alert_notifications_table.insert(), values)
        return len(values)

    def query_delivery_attempts(
        self,
        *,
        receiver: str | None = None,
        group_key: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Delivery attempts, newest first, filtered by receiver, group key, outcome and
        ``since <= at < until``."""
        check_limit(limit)
        t = alert_notifications_table
        stmt = _filtered(
            sa.select(*(t.c[name] for name in ATTEMPT_COLUMNS)), t,
            {"receiver": receiver, "group_key": group_key, "outcome": outcome}, since, until,
        )  # fmt: skip
        stmt = stmt.order_by(t.c.at.desc(), t.c.id.desc()).limit(limit)
        with self._begin("reading delivery attempts") as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]

    def query_active_alerts(self, *, limit: int = RESTORE_LIMIT) -> list[StoredAlert]:
        """The alerts whose newest state change left them pending or firing (what an
        engine held when it stopped), newest first, at most ``limit``.

        Reads only each alert's newest two state changes and newest acknowledgement
        (ranked per fingerprint in the database, on the ``fingerprint, at`` index), for
        the ``limit`` newest active alerts: bounded however long the history is."""
        check_limit(limit)
        stmt = self._active_rows(limit)
        with self._begin("reading the active alerts") as conn:
            rows = [dict(row._mapping) for row in conn.execute(stmt)]
        rows.sort(key=lambda r: (utc(r["at"]), r["id"]), reverse=True)
        return stored_alerts(rows)[:limit]

    @staticmethod
    def _active_rows(limit: int, *, needed: bool = False) -> sa.Select[Any]:
        """The history rows :func:`stored_alerts` reads: for the ``limit`` newest alerts
        whose newest state change is pending or firing, their newest two state changes
        and two acknowledgements (ranked apart), by a window function per fingerprint.

        ``needed``: only the rows it uses, which a prune keeps (``active_row_ids``'s
        rule): the newest state change, the one before when it is the pending row a
        firing alert came from (a pending row's predecessor is never pending), and the
        newest acknowledgement."""
        t = alert_history_table

        def ranked() -> sa.Subquery:
            is_ack = t.c.to_state == "acknowledged"
            order = (t.c.at.desc(), t.c.id.desc())
            return sa.select(
                t.c.id, t.c.fingerprint, t.c.labels, t.c.from_state, t.c.to_state, t.c.at,
                t.c.value, t.c.annotations,
                sa.func.row_number().over(partition_by=(t.c.fingerprint, is_ack),
                                          order_by=order).label("rn"),
            ).subquery()  # fmt: skip

        newest = ranked()
        active = (
            sa.select(newest.c.fingerprint)
            .where(newest.c.rn == 1, newest.c.to_state.in_(("pending", "firing")))
            .order_by(newest.c.at.desc(), newest.c.id.desc())
            .limit(limit)
        )
        rows = ranked()
        keep = (
            sa.or_(rows.c.rn == 1, sa.and_(rows.c.rn == 2, rows.c.to_state == "pending"))
            if needed
            else rows.c.rn <= RESTORE_ROWS
        )
        return sa.select(*(c for c in rows.c if c.name != "rn")).where(
            keep, rows.c.fingerprint.in_(active.scalar_subquery())
        )

    def query_last_deliveries(
        self, *, since: datetime | None = None, limit: int = RESTORE_LIMIT
    ) -> dict[tuple[str, str], datetime]:
        """The newest successful delivery per (receiver, group key), at or after ``since``
        (what a new leader's dispatcher counts as already told), at most ``limit`` groups,
        the newest first."""
        check_limit(limit)
        t = alert_notifications_table
        newest = sa.func.max(t.c.at).label("at")
        stmt = sa.select(t.c.receiver, t.c.group_key, newest).where(t.c.outcome == "ok")
        if since is not None:
            stmt = stmt.where(t.c.at >= utc(since))
        stmt = stmt.group_by(t.c.receiver, t.c.group_key).order_by(newest.desc()).limit(limit)
        with self._begin("reading the last deliveries") as conn:
            return {(r.receiver, r.group_key): utc(r.at) for r in conn.execute(stmt)}

    def save_silence(self, silence: Silence) -> None:
        """Insert a silence, or update the one with its id (expiring early moves its end);
        ``created_at`` is kept from the first save, ``updated_at`` is now."""
        now = datetime.now(UTC)
        row = silence_row(silence)
        stmt = self._insert(silences_table).values(**row, created_at=now, updated_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={name: stmt.excluded[name] for name in (*row.keys() - {"id"}, "updated_at")},
        )
        with self._begin(f"saving silence {silence.id}") as conn:
            conn.execute(stmt)

    def load_silences(
        self, *, include_expired: bool = False, now: datetime | None = None
    ) -> list[Silence]:
        """The stored silences by start time (then id): those whose end is after ``now``
        (default: the wall clock), or all of them with ``include_expired``."""
        t = silences_table
        stmt = sa.select(t)
        if not include_expired:
            stmt = stmt.where(t.c.ends_at > (datetime.now(UTC) if now is None else now))
        stmt = stmt.order_by(t.c.starts_at, t.c.id)
        with self._begin("reading silences") as conn:
            rows = [dict(row._mapping) for row in conn.execute(stmt)]
        return silences_from_rows(rows)

    def silence_times(self, silence_id: str) -> dict[str, datetime] | None:
        """``created_at`` and ``updated_at`` of a stored silence (who changed it when), or None."""
        t = silences_table
        stmt = sa.select(t.c.created_at, t.c.updated_at).where(t.c.id == silence_id)
        with self._begin("reading a silence") as conn:
            row = conn.execute(stmt).first()
        return None if row is None else dict(row._mapping)

    def write_action_record(
        self,
        *,
        action: str,
        kind: str,
        model: str | None,
        at: datetime,
        outcome: str,
        version: str | None = None,
        fingerprint: str | None = None,
        detail: str = "",
        evidence: Mapping[str, Any] | None = None,
    ) -> int:
        """Record one run (or skip) of an automated action with its evidence; its id."""
        row = action_row(
            action=action, kind=kind, model=model, at=at, outcome=outcome, version=version,
            fingerprint=fingerprint, detail=detail, evidence=evidence,
        )  # fmt: skip
        with self._begin(f"recording action {action}") as conn:
            key = conn.execute(action_records_table.insert().values(**row)).inserted_primary_key
        if key is None:  # pragma: no cover - both dialects report the new id
            raise StoreError(f"recording action {action} failed: no id came back")
        return int(key[0])

    def query_action_records(
        self,
        *,
        action: str | None = None,
        kind: str | None = None,
        model: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Action records, newest first, filtered by action name, kind, model, outcome and
        ``since <= at < until``."""
        check_limit(limit)
        t = action_records_table
        stmt = _filtered(
            sa.select(*(t.c[name] for name in ACTION_COLUMNS)), t,
            {"action": action, "kind": kind, "model": model, "outcome": outcome}, since, until,
        )  # fmt: skip
        stmt = stmt.order_by(t.c.at.desc(), t.c.id.desc()).limit(limit)
        with self._begin("reading action records") as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]

    def prune_alert_history(self, before: datetime) -> dict[str, int]:
        """Delete alert history and delivery attempts older than ``before`` and silences
        that ended before it, in one transaction; the rows deleted by table.  Kept
        however old: the newest changes of each alert still pending or firing and each
        group's newest successful delivery (what a new leader carries them on with: an
        alert firing for longer than the retention is not notified again).  Action
        records are kept: they are the audit trail of what was done to a model, one row
        per run (bounded by each action's cooldown)."""
        h, n = alert_history_table, alert_notifications_table
        # kept however old: what a new leader reads to carry on the alerts still active
        # (their newest changes) and what it counts as told (each group's newest delivery)
        carried = self._active_rows(RESTORE_LIMIT, needed=True).subquery()
        told = sa.select(sa.func.max(n.c.id)).where(n.c.outcome == "ok")
        deletes = {
            "alert_history": h.delete().where(
                h.c.at < before, h.c.id.not_in(sa.select(carried.c.id))
            ),
            "alert_notifications": n.delete().where(
                n.c.at < before, n.c.id.not_in(told.group_by(n.c.receiver, n.c.group_key))
            ),
            "silences": silences_table.delete().where(silences_table.c.ends_at < before),
        }
        with self._begin("pruning the alert history") as conn:
            return {name: int(conn.execute(stmt).rowcount) for name, stmt in deletes.items()}

    # -- history (inferwatch.history) ---------------------------------------------

    def write_history(self, models: Sequence[ModelRow], resources: Sequence[ResourceRow]) -> int:
        """Insert history rows (any level) in one transaction; return how many."""
        m = [model_row(r) for r in models]
        r = [resource_row(x) for x in resources]
        if not m and not r:
            return 0
        with self._begin(f"writing {len(m) + len(r)} history rows") as conn:
            if m:
                conn.execute(history_models_table.insert(), m)
            if r:
                conn.execute(history_resources_table.insert(), r)
        return len(m) + len(r)

    def query_model_history(
        self, model: str, *, version: str | None = None, since: float, until: float
    ) -> list[ModelRow]:
        """A model's history rows of both levels with ``since <= start < until``, by start:
        one range scan of the (model, level, start) index per level."""
        t = history_models_table
        stmt = sa.select(*_history_columns(t, MODEL_COLUMNS)).where(
            t.c.model == model, t.c.level.in_((0, 1)), t.c.start >= since, t.c.start < until
        )
        if version is not None:
            stmt = stmt.where(t.c.version == version)
        stmt = stmt.order_by(t.c.start, t.c.id)
        with self._begin("reading the model history") as conn:
            return [
                model_from_row(dict(zip(MODEL_COLUMNS, row, strict=True)))
                for row in conn.execute(stmt)
            ]

    def query_resource_history(self, *, since: float, until: float) -> list[ResourceRow]:
        """The resource rows of both levels with ``since <= start < until``, by start."""
        t = history_resources_table
        stmt = (
            sa.select(*_history_columns(t, RESOURCE_COLUMNS))
            .where(t.c.level.in_((0, 1)), t.c.start >= since, t.c.start < until)
            .order_by(t.c.start, t.c.id)
        )
        with self._begin("reading the resource history") as conn:
            return [
                resource_from_row(dict(zip(RESOURCE_COLUMNS, row, strict=True)))
                for row in conn.execute(stmt)
            ]

    def raw_history_before(
        self, before: float, *, limit: int | None = None
    ) -> tuple[list[ModelRow], list[ResourceRow]]:
        """The raw (level 0) rows that start before ``before``: what a fold replaces;
        oldest first, at most ``limit`` of each table."""
        m, r = history_models_table, history_resources_table
        with self._begin("reading the raw history") as conn:
            models = conn.execute(
                sa.select(*_history_columns(m, MODEL_COLUMNS))
                .where(m.c.level == RAW, m.c.start < before)
                .order_by(m.c.start, m.c.id)
                .limit(limit)
            )
            out_m = [model_from_row(dict(zip(MODEL_COLUMNS, row, strict=True))) for row in models]
            resources = conn.execute(
                sa.select(*_history_columns(r, RESOURCE_COLUMNS))
                .where(r.c.level == RAW, r.c.start < before)
                .order_by(r.c.start, r.c.id)
                .limit(limit)
            )
            return out_m, [
                resource_from_row(dict(zip(RESOURCE_COLUMNS, row, strict=True)))
                for row in resources
            ]

    def fold_history(
        self,
        before: float,
        models: Sequence[ModelRow],
        resources: Sequence[ResourceRow],
        *,
        expected: int | None = None,
    ) -> int:
        """Replace the raw rows that start before ``before`` by the rollup rows made of
        them, in one transaction (a reader sees either, never both or neither).

        ``expected``: the raw rows the rollups were made of.  When the delete removes
        another number (a second replica folded them first: on PostgreSQL its delete
        waits for ours, or ours for its), nothing is written and 0 returned, so two
        replicas sharing a store never double a rollup."""
        m, r = history_models_table, history_resources_table
        try:
            with self._begin("folding the history") as conn:
                deleted = int(conn.execute(
                    m.delete().where(m.c.level == RAW, m.c.start < before)).rowcount)  # fmt: skip
                deleted += int(conn.execute(
                    r.delete().where(r.c.level == RAW, r.c.start < before)).rowcount)  # fmt: skip
                if expected is not None and deleted != expected:
                    raise _FoldedElsewhere  # rolls the deletes back
                if models:
                    conn.execute(m.insert(), [model_row(x) for x in models])
                if resources:
                    conn.execute(r.insert(), [resource_row(x) for x in resources])
        except _FoldedElsewhere:
            return 0
        return deleted

    def prune_history(self, level: int, before: float) -> int:
        """Delete the history rows of ``level`` that start before ``before``."""
        m, r = history_models_table, history_resources_table
        with self._begin("pruning the history") as conn:
            n = int(conn.execute(m.delete().where(m.c.level == level, m.c.start < before)).rowcount)
            n += int(
                conn.execute(r.delete().where(r.c.level == level, r.c.start < before)).rowcount
            )
        return n
