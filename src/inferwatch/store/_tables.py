"""The store's schema as SQLAlchemy Core tables, and how values are encoded into it.

One schema serves SQLite and PostgreSQL: JSON columns become ``JSONB`` on
PostgreSQL, timestamps are stored in UTC and always read back timezone-aware
(SQLite keeps no offset, so :class:`UTCDateTime` re-attaches it).

These objects describe the *newest* schema; the Alembic migrations in
``inferwatch/store/migrations/versions`` create it, and
``tests/store/test_migrations.py`` checks that the two agree.  Change both together.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import msgspec
import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

__all__ = [
    "VERSION_TABLE",
    "UTCDateTime",
    "action_records_table",
    "alert_history_table",
    "alert_notifications_table",
    "evaluations_table",
    "history_models_table",
    "history_resources_table",
    "json_dumps",
    "json_roundtrip",
    "labels_table",
    "leases_table",
    "metadata",
    "models_table",
    "predictions_table",
    "quarantine_table",
    "references_table",
    "silences_table",
    "storable_text",
    "utc",
    "window_performance_table",
    "window_profiles_table",
]

#: Alembic's version table.  Not the default ``alembic_version``, so that inferwatch can
#: share a PostgreSQL database with an application that runs its own Alembic migrations.
VERSION_TABLE = "inferwatch_alembic_version"

#: Deterministic constraint and index names, so later migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime; a naive value is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """``TIMESTAMP WITH TIME ZONE`` that writes UTC and always reads an aware UTC datetime."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else utc(value)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else utc(value)


def _jsonable(obj: Any) -> Any:
    """``json`` fallback for the few non-JSON types that reach the store (numpy above all).

    Called only for objects ``json`` cannot encode itself, so plain rows pay nothing.
    """
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, Decimal):
        return float(obj)
    if isinstance(obj, set | frozenset):
        return list(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", errors="replace")
    raise TypeError(f"cannot store a value of type {type(obj).__name__} as JSON")


def _finite(obj: Any) -> Any:
    """``obj`` with NaN and infinities replaced by None (JSON, and so JSONB, has no NaN)."""
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: _finite(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(value) for value in obj]
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    return obj


#: What no store can hold in a JSON string: U+0000 (PostgreSQL's JSONB refuses it, and
#: its text columns refuse the byte) and lone surrogates (no UTF-8 encoding exists).
_UNSTORABLE_CHAR = re.compile("[\x00\ud800-\udfff]")
#: The same in encoded JSON: the encoder escapes U+0000 as ``\u0000`` (a false positive
#: on an escaped backslash followed by ``u0000`` costs only a second, unchanged pass).
_UNSTORABLE_JSON = re.compile("\\\\u0000|[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def storable_text(text: str) -> str:
    """``text`` with U+0000 and lone surrogates replaced by U+FFFD (the replacement character)."""
    return _UNSTORABLE_CHAR.sub(REPLACEMENT, text)


def _storable(obj: Any) -> Any:
    """``obj`` with every string and key passed through :func:`storable_text`."""
    if isinstance(obj, str):
        return storable_text(obj)
    if isinstance(obj, dict):
        return {
            (storable_text(k) if isinstance(k, str) else k): _storable(v) for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [_storable(value) for value in obj]
    return obj


_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_jsonable
)


def _fast_hook(obj: Any) -> Any:
    """msgspec's fallback: what :func:`_jsonable` gives, for the types msgspec lacks."""
    return _jsonable(obj)


#: msgspec for the common row (about 5x the standard library's speed in the writer
#: thread, which encodes three JSON columns per prediction); NaN and infinities become
#: null as ``_finite`` makes them
_FAST = msgspec.json.Encoder(enc_hook=_fast_hook, decimal_format="number")
#: scalars msgspec encodes as the standard path does (it writes datetimes as RFC 3339
#: with ``Z`` and bytes as base64, so those take the standard path)
_PLAIN = frozenset(
    {float, int, str, bool, type(None), np.float64, np.float32, np.int64, np.int32, np.bool_}
)


def json_dumps(obj: Any) -> str:
    """Encode one JSON column value; numpy values become plain numbers, NaN becomes null.

    U+0000 and lone surrogates in strings and keys become U+FFFD, on every dialect:
    PostgreSQL's JSONB cannot hold the first and no UTF-8 database the second, and one
    such character must not cost the row (let alone its batch).  msgspec encodes the
    common row (a lone surrogate makes it raise; U+0000 comes out escaped, found by a
    substring test); anything else takes the standard library's path and a regex scan.
    """
    if _plain(obj):
        try:
            out = _FAST.encode(obj).decode()
        except (UnicodeEncodeError, TypeError, ValueError, OverflowError):
            pass
        else:
            if "\\u0000" not in out:
                return out
    try:
        out = _ENCODER.encode(obj)
    except ValueError:  # a non-finite float: rare, so the common path stays one call
        out = _ENCODER.encode(_finite(obj))
    if _UNSTORABLE_JSON.search(out) is None:
        return out
    return _ENCODER.encode(_finite(_storable(obj)))


def _plain(obj: Any) -> bool:
    """True when ``obj`` is a scalar or a dict of scalars with string keys (a row's
    inputs, an output, probabilities): what msgspec encodes exactly as the standard path
    does.  Anything else (nested values, datetimes, bytes) takes the standard path."""
    if type(obj) is dict:
        plain = _PLAIN
        return all(type(v) in plain for v in obj.values()) and all(type(k) is str for k in obj)
    return type(obj) in _PLAIN


def json_roundtrip(obj: Any) -> Any:
    """What a JSON column gives back for ``obj`` (the in-memory store stores this)."""
    return None if obj is None else json.loads(json_dumps(obj))


# none_as_null: Python None in a nullable column is SQL NULL, not the JSON literal null.
JSONType = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

models_table = sa.Table(
    "models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("version", sa.String(100), nullable=False),
    sa.Column("flavor", sa.String(50), nullable=False),
    sa.Column("uri", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False, default=_utcnow),
    sa.UniqueConstraint("name", "version"),
)

references_table = sa.Table(
    "references",  # a reserved word: SQLAlchemy and Alembic quote it on every dialect
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("version", sa.String(100), nullable=False),
    sa.Column("uri", sa.Text, nullable=True),
    sa.Column("n_rows", sa.BigInteger, nullable=False),
    sa.Column("schema", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False, default=_utcnow),
    sa.UniqueConstraint("model", "version"),
)

predictions_table = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("version", sa.String(100), nullable=False),
    sa.Column("ts", UTCDateTime, nullable=False),
    sa.Column("inputs", JSONType, nullable=False),
    sa.Column("output", JSONType, nullable=True),
    sa.Column("probabilities", JSONType, nullable=True),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("latency_seconds", sa.Float, nullable=True),
    sa.Column("trace_id", sa.String(64), nullable=True),
    sa.Index(None, "model", "version", "ts"),
)

labels_table = sa.Table(
    "labels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # not a foreign key: a label may arrive before its prediction row is flushed
    sa.Column("prediction_id", sa.String(36), nullable=False),
    sa.Column("value", JSONType, nullable=True),
    sa.Column("ts", UTCDateTime, nullable=False),  # when the label was recorded
    # the prediction the label was joined with when accepted (NULL for rows written before
    # migration 0004 and for bare labels): windows are by prediction time
    sa.Column("model", sa.String(200), nullable=True),
    sa.Column("version", sa.String(100), nullable=True),
    sa.Column("prediction_ts", UTCDateTime, nullable=True),
    sa.Column("received_at", UTCDateTime, nullable=True),
    sa.Column("delay_seconds", sa.Float, nullable=True),  # received_at - prediction_ts
    # the prediction's values, copied: a window's pairs are read without a join (0004)
    sa.Column("output", JSONType, nullable=True),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("probabilities", JSONType, nullable=True),
    # one label per prediction: a repeated label replaces (ON CONFLICT DO UPDATE)
    sa.Index("uq_labels_prediction_id", "prediction_id", unique=True),
    sa.Index(None, "model", "version", "prediction_ts"),
)

# Rows the store refused on their own (split out of their batch by the prediction-log
# writer): kept as ASCII-escaped JSON text, which any database holds, with the reason.
quarantine_table = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("prediction_id", sa.String(36), nullable=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("version", sa.String(100), nullable=False),
    sa.Column("quarantined_at", UTCDateTime, nullable=False, default=_utcnow),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("row", sa.Text, nullable=False),
    sa.Index(None, "model", "version", "quarantined_at"),
)

evaluations_table = sa.Table(
    "evaluations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("version", sa.String(100), nullable=False),
    sa.Column("window_start", UTCDateTime, nullable=False),
    sa.Column("window_end", UTCDateTime, nullable=False),
    sa.Column("evaluated_at", UTCDateTime, nullable=False),
    # drift, missing_share, out_of_range_share, unseen_share, dataset_drift_share
    sa.Column("metric", sa.String(100), nullable=False),
    sa.Column("feature", sa.String(200), nullable=True),
    sa.Column("test", sa.String(100), nullable=True),
    sa.Column("value", sa.Float, nullable=True),  # NULL when not finite (NaN, inf)
    sa.Column("threshold", sa.Float, nullable=True),
    sa.Column("status", sa.String(20), nullable=False),  # ok, warning, critical
    sa.Column("details", JSONType, nullable=True),
    sa.Index(None, "model", "version", "evaluated_at"),
)

# -- alerting (migration 0005) ------------------------------------------------------

# One row per alert state change (the engine's AlertTransition): what fired, when, why.
alert_history_table = sa.Table(
    "alert_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("fingerprint", sa.String(32), nullable=False),
    sa.Column("alertname", sa.String(200), nullable=False),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("model", sa.String(200), nullable=True),  # alerts of no model (CPU) have none
    sa.Column("labels", JSONType, nullable=False),
    sa.Column("from_state", sa.String(20), nullable=False),
    sa.Column("to_state", sa.String(20), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("value", sa.Float, nullable=True),  # NULL when not finite
    # the rendered summary/description (migration 0010; NULL before it and for acks): what
    # a new leader's restored alert carries until its first cycle renders them again
    sa.Column("annotations", JSONType, nullable=True),
    sa.Index(None, "at"),
    sa.Index(None, "model", "at"),
    sa.Index(None, "alertname", "at"),
    sa.Index(None, "fingerprint", "at"),
)

# One row per try to deliver a group to a receiver (the dispatcher's DeliveryAttempt).
alert_notifications_table = sa.Table(
    "alert_notifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("receiver", sa.String(200), nullable=False),
    sa.Column("group_key", sa.Text, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),  # ok, error
    sa.Column("alerts", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("retry_at", UTCDateTime, nullable=True),
    sa.Index(None, "at"),
    sa.Index(None, "receiver", "at"),
)

# The silences, so a restart keeps them (Alertmanager keeps them in its snapshot).
silences_table = sa.Table(
    "silences",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("matchers", JSONType, nullable=False),  # [{"name", "op", "value"}, ...]
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("ends_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index(None, "ends_at"),
)

# Every automated action (rollback, retrain, scale) run or skipped, with its evidence.
action_records_table = sa.Table(
    "action_records",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("action", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),  # rollback, retrain, scale
    sa.Column("model", sa.String(200), nullable=True),
    sa.Column("version", sa.String(100), nullable=True),
    sa.Column("fingerprint", sa.String(32), nullable=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),  # ok, error, skipped
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("evidence", JSONType, nullable=True),
    sa.Index(None, "at"),
    sa.Index(None, "action", "model", "at"),
    sa.Index(None, "model", "at"),
)

# -- history (migration 0006) -------------------------------------------------------

# One row per model version per sampling interval (level 0) or rollup bucket (level 1):
# amounts over the span (inferwatch.history._rows.ModelRow).  Times are Unix seconds (the
# API's unit; a float keeps sub-second intervals).  The range read is one index range scan
# on (model, level, start); pruning and folding scan (level, start).
history_models_table = sa.Table(
    "history_models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("version", sa.String(100), nullable=False),
    sa.Column("level", sa.SmallInteger, nullable=False),  # 0 raw, 1 rollup
    sa.Column("start", sa.Float, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("requests", sa.Float, nullable=False),
    sa.Column("errors", sa.Float, nullable=False),
    sa.Column("latency_count", sa.Float, nullable=False),
    sa.Column("latency_sum", sa.Float, nullable=False),
    sa.Column("latency_buckets", JSONType, nullable=False),
    sa.Column("latency_p50", sa.Float, nullable=True),
    sa.Column("latency_p95", sa.Float, nullable=True),
    sa.Column("latency_p99", sa.Float, nullable=True),
    sa.Column("confidence_sum", sa.Float, nullable=False),
    sa.Column("confidence_count", sa.Float, nullable=False),
    sa.Column("classes", JSONType, nullable=False),
    sa.Index(None, "model", "level", "start"),
    sa.Index(None, "level", "start"),
)

# The resources (host, process, GPUs) per interval or rollup bucket: name -> value.
history_resources_table = sa.Table(
    "history_resources",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("level", sa.SmallInteger, nullable=False),
    sa.Column("start", sa.Float, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("values", JSONType, nullable=False),
    sa.Index(None, "level", "start"),
)

# -- leases (migration 0007) --------------------------------------------------------

# One row per lease (``evaluator``: the replica that judges windows and runs the alert
# engine).  A replica takes a lease that is free or expired and renews it while it lives
# (inferwatch.lease.Leadership); ``holder`` names the process.
leases_table = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("acquired_at", UTCDateTime, nullable=False),
    sa.Column("renewed_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

# Each replica's share of the live drift windows (migration 0008): the judging replica adds
# the other holders' profiles of a window to its own (inferwatch.shared_windows).  The
# profile is JSON text (ASCII-escaped, NaN kept) without its bins.
window_profiles_table = sa.Table(
    "window_profiles",
    metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("version", sa.String(100), primary_key=True),
    sa.Column("window_start", sa.Float(), primary_key=True),
    sa.Column("holder", sa.String(200), primary_key=True),
    sa.Column("profile", sa.Text(), nullable=False),
    sa.Column("rows", sa.BigInteger(), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_window_profiles_window_start", "window_start"),
)

# Each replica's share of the live performance (label) windows (migration 0009): the
# judging replica adds the other holders' states of a window to its own
# (inferwatch.shared_windows).  ``changes`` is the holder's change counter of the window.
window_performance_table = sa.Table(
    "window_performance",
    metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("version", sa.String(100), primary_key=True),
    sa.Column("window_start", sa.Float(), primary_key=True),
    sa.Column("holder", sa.String(200), primary_key=True),
    sa.Column("state", sa.Text(), nullable=False),
    sa.Column("changes", sa.BigInteger(), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_window_performance_window_start", "window_start"),
)
