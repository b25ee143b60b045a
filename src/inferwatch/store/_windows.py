"""Window profiles and performance states in the store: each replica's share of the live
drift and performance (label) windows.

Replicas that share one PostgreSQL each profile the predictions they answer; the replica
that judges (the evaluator lease's holder) must judge all of them.  Every replica writes
its open and recently closed window profiles here under its holder id
(:meth:`save_window_profiles`, an upsert: a holder has one row per window, the newest);
the judge reads the other holders' rows of a window (:meth:`load_window_profiles`) and
merges them into its own (``inferwatch.shared_windows``).  Rows of windows older than
every replica keeps are deleted by :meth:`prune_window_profiles`.

The profile is stored as JSON text written by :func:`json.dumps` (ASCII-escaped, so a
client's stray U+0000 in a category cannot break PostgreSQL; NaN kept, which JSONB
refuses), without its bins: the reader has them and checks their fingerprint.

:class:`SQLWindowProfiles` is mixed into :class:`~inferwatch.store.SQLStore`;
:class:`MemoryWindowProfiles` into :class:`~inferwatch.store.MemoryStore`.

The performance windows follow the same rules in their own table (``window_performance``,
migration 0009): each holder's ``WindowPerformance.to_dict()`` of a window, upserted, with
the holder's change counter of it (``changes``).  The judge lists the others' (window,
holder, changes) cheaply, without the states (:meth:`list_window_performance`), to see
which windows changed since it last looked, and reads the states of one window at a time
(:meth:`load_window_performance`).  :class:`SQLWindowPerformance` and
:class:`MemoryWindowPerformance` are the bases of the two window-profile mixins, so both
stores have them.  Every SQL call runs in the store's ``_begin``: bounded by the store's
statement timeout like every other call.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from inferwatch.store._tables import window_performance_table, window_profiles_table

__all__ = [
    "MemoryWindowPerformance",
    "MemoryWindowProfiles",
    "SQLWindowPerformance",
    "SQLWindowProfiles",
]


def _rows_of(holder: str, rows: Sequence[Mapping[str, Any]], at: datetime) -> list[dict[str, Any]]:
    if not holder:
        raise ValueError("a window profile's holder must not be empty")
    out = []
    for r in rows:
        out.append(
            {
                "model": str(r["model"]),
                "version": str(r["version"]),
                "window_start": float(r["window_start"]),
                "holder": holder,
                "profile": json.dumps(r["profile"], separators=(",", ":")),
                "rows": int(r["rows"]),
                "updated_at": at,
            }
        )
    return out


def _loaded(row: Any) -> dict[str, Any]:
    return {
        "holder": row["holder"],
        "window_start": float(row["window_start"]),
        "profile": json.loads(row["profile"]),
        "rows": int(row["rows"]),
        "updated_at": row["updated_at"],
    }


def _performance_rows_of(
    holder: str, rows: Sequence[Mapping[str, Any]], at: datetime
) -> list[dict[str, Any]]:
    if not holder:
        raise ValueError("a window performance state's holder must not be empty")
    return [
        {
            "model": str(r["model"]),
            "version": str(r["version"]),
            "window_start": float(r["window_start"]),
            "holder": holder,
            "state": json.dumps(r["state"], separators=(",", ":")),
            "changes": int(r["changes"]),
            "updated_at": at,
        }
        for r in rows
    ]


def _performance_loaded(row: Any) -> dict[str, Any]:
    return {
        "holder": row["holder"],
        "window_start": float(row["window_start"]),
        "state": json.loads(row["state"]),
        "changes": int(row["changes"]),
        "updated_at": row["updated_at"],
    }


def _performance_listed(row: Any) -> dict[str, Any]:
    return {
        "model": row["model"],
        "version": row["version"],
        "window_start": float(row["window_start"]),
        "holder": row["holder"],
        "changes": int(row["changes"]),
    }


class SQLWindowPerformance:
    """Window performance methods of the SQL store (needs its ``_begin`` and ``_engine``)."""

    _engine: sa.Engine

    def _begin(self, action: str) -> AbstractContextManager[sa.Connection]:
        raise NotImplementedError  # pragma: no cover - SQLStore provides it

    def save_window_performance(self, holder: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Write ``holder``'s performance states (each row: ``model``, ``version``,
        ``window_start`` in epoch seconds, ``state`` as ``WindowPerformance.to_dict()``,
        ``changes``), replacing its earlier row of the same window; returns how many."""
        values = _performance_rows_of(holder, rows, datetime.now(UTC))
        if not values:
            return 0
        t = window_performance_table
        insert = (
            postgresql.insert(t) if self._engine.dialect.name == "postgresql" else sqlite.insert(t)
        )
        stmt = insert.values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.model, t.c.version, t.c.window_start, t.c.holder],
            set_={
                "state": stmt.excluded.state,
                "changes": stmt.excluded.changes,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        with self._begin(f"saving {len(values)} window performance states") as conn:
            conn.execute(stmt)
        return len(values)

    def load_window_performance(
        self, model: str, version: str, window_start: float, *, exclude_holder: str | None = None
    ) -> list[dict[str, Any]]:
        """Every holder's stored state of one window (but ``exclude_holder``'s): dicts with
        ``holder``, ``window_start``, ``state`` (a dict), ``changes``, ``updated_at``."""
        t = window_performance_table
        query = sa.select(t).where(
            t.c.model == model, t.c.version == version, t.c.window_start == float(window_start)
        )
        if exclude_holder is not None:
            query = query.where(t.c.holder != exclude_holder)
        with self._begin(f"reading the window performance of {model}:{version}") as conn:
            found = conn.execute(query.order_by(t.c.holder)).mappings().all()
        return [_performance_loaded(r) for r in found]

    def list_window_performance(
        self, since: float, *, exclude_holder: str | None = None
    ) -> list[dict[str, Any]]:
        """The stored rows of windows starting at ``since`` or later, without their states:
        dicts with ``model``, ``version``, ``window_start``, ``holder``, ``changes``."""
        t = window_performance_table
        query = sa.select(t.c.model, t.c.version, t.c.window_start, t.c.holder, t.c.changes)
        query = query.where(t.c.window_start >= float(since))
        if exclude_holder is not None:
            query = query.where(t.c.holder != exclude_holder)
        order = (t.c.window_start, t.c.model, t.c.version, t.c.holder)
        with self._begin("listing the window performance states") as conn:
            found = conn.execute(query.order_by(*order)).mappings().all()
        return [_performance_listed(r) for r in found]

    def prune_window_performance(self, before: float) -> int:
        """Delete the states of windows starting before ``before`` (epoch seconds)."""
        t = window_performance_table
        with self._begin("pruning window performance states") as conn:
            done = conn.execute(sa.delete(t).where(t.c.window_start < float(before))).rowcount
        return max(int(done or 0), 0)


class MemoryWindowPerformance:
    """Window performance methods of the in-memory store: the same rules, one process."""

    _window_performance: dict[tuple[str, str, float, str], dict[str, Any]]
    _window_lock: threading.Lock

    def _check(self, action: str) -> None:
        raise NotImplementedError  # pragma: no cover - MemoryStore provides it

    def save_window_performance(self, holder: str, rows: Sequence[Mapping[str, Any]]) -> int:
        self._check("saving window performance states")
        values = _performance_rows_of(holder, rows, datetime.now(UTC))
        with self._window_lock:
            for v in values:
                self._window_performance[(v["model"], v["version"], v["window_start"], holder)] = v
        return len(values)

    def load_window_performance(
        self, model: str, version: str, window_start: float, *, exclude_holder: str | None = None
    ) -> list[dict[str, Any]]:
        self._check(f"reading the window performance of {model}:{version}")
        start = float(window_start)
        with self._window_lock:
            found = [
                v
                for (m, ver, s, h), v in sorted(self._window_performance.items())
                if (m, ver, s) == (model, version, start) and h != exclude_holder
            ]
        return [_performance_loaded(v) for v in found]

    def list_window_performance(
        self, since: float, *, exclude_holder: str | None = None
    ) -> list[dict[str, Any]]:
        self._check("listing the window performance states")
        with self._window_lock:
            found = [
                v
                for (_, _, s, h), v in self._window_performance.items()
                if s >= float(since) and h != exclude_holder
            ]
        found.sort(key=lambda v: (v["window_start"], v["model"], v["version"], v["holder"]))
        return [_performance_listed(v) for v in found]

    def prune_window_performance(self, before: float) -> int:
        self._check("pruning window performance states")
        with self._window_lock:
            old = [k for k in self._window_performance if k[2] < float(before)]
            for k in old:
                del self._window_performance[k]
        return len(old)


class SQLWindowProfiles(SQLWindowPerformance):
    """Window profile methods of the SQL store (needs its ``_begin`` and ``_engine``)."""

    _engine: sa.Engine

    def _begin(self, action: str) -> AbstractContextManager[sa.Connection]:
        raise NotImplementedError  # pragma: no cover - SQLStore provides it

    def save_window_profiles(self, holder: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Write ``holder``'s profiles (each row: ``model``, ``version``, ``window_start``
        in epoch seconds, ``profile`` as ``FrameProfile.to_dict(include_bins=False)``,
        ``rows``), replacing its earlier row of the same window; returns how many."""
        values = _rows_of(holder, rows, datetime.now(UTC))
        if not values:
            return 0
        t = window_profiles_table
        insert = (
            postgresql.insert(t) if self._engine.dialect.name == "postgresql" else sqlite.insert(t)
        )
        stmt = insert.values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.model, t.c.version, t.c.window_start, t.c.holder],
            set_={
                "profile": stmt.excluded.profile,
                "rows": stmt.excluded.rows,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        with self._begin(f"saving {len(values)} window profiles") as conn:
            conn.execute(stmt)
        return len(values)

    def load_window_profiles(
        self, model: str, version: str, window_start: float, *, exclude_holder: str | None = None
    ) -> list[dict[str, Any]]:
        """Every holder's stored profile of one window (but ``exclude_holder``'s): dicts
        with ``holder``, ``window_start``, ``profile`` (a dict), ``rows``, ``updated_at``."""
        t = window_profiles_table
        query = sa.select(t).where(
            t.c.model == model, t.c.version == version, t.c.window_start == float(window_start)
        )
        if exclude_holder is not None:
            query = query.where(t.c.holder != exclude_holder)
        with self._begin(f"reading the window profiles of {model}:{version}") as conn:
            found = conn.execute(query.order_by(t.c.holder)).mappings().all()
        return [_loaded(r) for r in found]

    def prune_window_profiles(self, before: float) -> int:
        """Delete the profiles of windows starting before ``before`` (epoch seconds)."""
        t = window_profiles_table
        with self._begin("pruning window profiles") as conn:
            done = conn.execute(sa.delete(t).where(t.c.window_start < float(before))).rowcount
        return max(int(done or 0), 0)


class MemoryWindowProfiles(MemoryWindowPerformance):
    """Window profile methods of the in-memory store: the same rules, one process."""

    _window_profiles: dict[tuple[str, str, float, str], dict[str, Any]]
    _window_lock: threading.Lock

    def _check(self, action: str) -> None:
        raise NotImplementedError  # pragma: no cover - MemoryStore provides it

    def save_window_profiles(self, holder: str, rows: Sequence[Mapping[str, Any]]) -> int:
        self._check("saving window profiles")
        values = _rows_of(holder, rows, datetime.now(UTC))
        with self._window_lock:
            for v in values:
                self._window_profiles[(v["model"], v["version"], v["window_start"], holder)] = v
        return len(values)

    def load_window_profiles(
        self, model: str, version: str, window_start: float, *, exclude_holder: str | None = None
    ) -> list[dict[str, Any]]:
        self._check(f"reading the window profiles of {model}:{version}")
        start = float(window_start)
        with self._window_lock:
            found = [
                v
                for (m, ver, s, h), v in sorted(self._window_profiles.items())
                if (m, ver, s) == (model, version, start) and h != exclude_holder
            ]
        return [_loaded(v) for v in found]

    def prune_window_profiles(self, before: float) -> int:
        self._check("pruning window profiles")
        with self._window_lock:
            old = [k for k in self._window_profiles if k[2] < float(before)]
            for k in old:
                del self._window_profiles[k]
        return len(old)
