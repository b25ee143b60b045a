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


def _rows_of(
    holder: str, rows: Sequence[Mapping[str, Any]], at: datetime, payload: str, count: str
) -> list[dict[str, Any]]:
    """Rows to store: ``payload`` (a dict, as JSON text) and ``count`` of each input row."""
    if not holder:
        raise ValueError(f"a window {payload}'s holder must not be empty")
    return [
        {
            "model": str(r["model"]),
            "version": str(r["version"]),
            "window_start": float(r["window_start"]),
            "holder": holder,
            payload: json.dumps(r[payload], separators=(",", ":")),
            count: int(r[count]),
            "updated_at": at,
        }
        for r in rows
    ]


def _loaded(row: Any, payload: str, count: str) -> dict[str, Any]:
    return {
        "holder": row["holder"],
        "window_start": float(row["window_start"]),
        payload: json.loads(row[payload]),
        count: int(row[count]),
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


# -- the two tables' shared SQL and in-memory parts ----------------------------------------


class _SQLWindows:
    """Upsert, one window's rows and the prune, for either window table."""

    _engine: sa.Engine

    def _begin(self, action: str) -> AbstractContextManager[sa.Connection]:
        raise NotImplementedError  # pragma: no cover - SQLStore provides it

    def _upsert(self, t: sa.Table, values: list[dict[str, Any]], columns: tuple[str, ...],
                action: str) -> int:  # fmt: skip
        if not values:
            return 0
        insert = (
            postgresql.insert(t) if self._engine.dialect.name == "postgresql" else sqlite.insert(t)
        )
        stmt = insert.values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.model, t.c.version, t.c.window_start, t.c.holder],
            set_={c: stmt.excluded[c] for c in (*columns, "updated_at")},
        )
        with self._begin(action) as conn:
            conn.execute(stmt)
        return len(values)

    def _window_rows(
        self, t: sa.Table, model: str, version: str, start: float, exclude: str | None, action: str
    ) -> Sequence[Any]:
        query = sa.select(t).where(
            t.c.model == model, t.c.version == version, t.c.window_start == float(start)
        )
        if exclude is not None:
            query = query.where(t.c.holder != exclude)
        with self._begin(action) as conn:
            return conn.execute(query.order_by(t.c.holder)).mappings().all()

    def _prune(self, t: sa.Table, before: float, action: str) -> int:
        with self._begin(action) as conn:
            done = conn.execute(sa.delete(t).where(t.c.window_start < float(before))).rowcount
        return max(int(done or 0), 0)


_Held = dict[tuple[str, str, float, str], dict[str, Any]]


def _held_window(
    held: _Held, model: str, version: str, start: float, exclude: str | None
) -> list[dict[str, Any]]:
    """One window's rows of an in-memory table (call under its lock), by holder."""
    return [
        v
        for (m, ver, s, h), v in sorted(held.items())
        if (m, ver, s) == (model, version, float(start)) and h != exclude
    ]


def _held_prune(held: _Held, before: float) -> int:
    """Delete an in-memory table's rows of windows before ``before`` (under its lock)."""
    old = [k for k in held if k[2] < float(before)]
    for k in old:
        del held[k]
    return len(old)


class SQLWindowPerformance(_SQLWindows):
    """Window performance methods of the SQL store (needs its ``_begin`` and ``_engine``)."""

    def save_window_performance(self, holder: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Write ``holder``'s performance states (each row: ``model``, ``version``,
        ``window_start`` in epoch seconds, ``state`` as ``WindowPerformance.to_dict()``,
        ``changes``), replacing its earlier row of the same window; returns how many."""
        values = _rows_of(holder, rows, datetime.now(UTC), "state", "changes")
        return self._upsert(window_performance_table, values, ("state", "changes"),
                            f"saving {len(values)} window performance states")  # fmt: skip

    def load_window_performance(
        self, model: str, version: str, window_start: float, *, exclude_holder: str | None = None
    ) -> list[dict[str, Any]]:
        """Every holder's stored state of one window (but ``exclude_holder``'s): dicts with
        ``holder``, ``window_start``, ``state`` (a dict), ``changes``, ``updated_at``."""
        found = self._window_rows(
            window_performance_table, model, version, window_start, exclude_holder,
            f"reading the window performance of {model}:{version}",
        )  # fmt: skip
        return [_loaded(r, "state", "changes") for r in found]

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
        return self._prune(window_performance_table, before, "pruning window performance states")


class MemoryWindowPerformance:
    """Window performance methods of the in-memory store: the same rules, one process."""

    _window_performance: _Held
    _window_lock: threading.Lock

    def _check(self, action: str) -> None:
        raise NotImplementedError  # pragma: no cover - MemoryStore provides it

    def save_window_performance(self, holder: str, rows: Sequence[Mapping[str, Any]]) -> int:
        self._check("saving window performance states")
        values = _rows_of(holder, rows, datetime.now(UTC), "state", "changes")
        with self._window_lock:
            for v in values:
                self._window_performance[(v["model"], v["version"], v["window_start"], holder)] = v
        return len(values)

    def load_window_performance(
        self, model: str, version: str, window_start: float, *, exclude_holder: str | None = None
    ) -> list[dict[str, Any]]:
        self._check(f"reading the window performance of {model}:{version}")
        with self._window_lock:
            found = _held_window(
                self._window_performance, model, version, window_start, exclude_holder
            )
        return [_loaded(v, "state", "changes") for v in found]

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
            return _held_prune(self._window_performance, before)


class SQLWindowProfiles(SQLWindowPerformance):
    """Window profile methods of the SQL store (needs its ``_begin`` and ``_engine``)."""

    def save_window_profiles(self, holder: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Write ``holder``'s profiles (each row: ``model``, ``version``, ``window_start``
        in epoch seconds, ``profile`` as ``FrameProfile.to_dict(include_bins=False)``,
        ``rows``), replacing its earlier row of the same window; returns how many."""
        values = _rows_of(holder, rows, datetime.now(UTC), "profile", "rows")
        return self._upsert(window_profiles_table, values, ("profile", "rows"),
                            f"saving {len(values)} window profiles")  # fmt: skip

    def load_window_profiles(
        self, model: str, version: str, window_start: float, *, exclude_holder: str | None = None
    ) -> list[dict[str, Any]]:
        """Every holder's stored profile of one window (but ``exclude_holder``'s): dicts
        with ``holder``, ``window_start``, ``profile`` (a dict), ``rows``, ``updated_at``."""
        found = self._window_rows(
            window_profiles_table, model, version, window_start, exclude_holder,
            f"reading the window profiles of {model}:{version}",
        )  # fmt: skip
        return [_loaded(r, "profile", "rows") for r in found]

    def prune_window_profiles(self, before: float) -> int:
        """Delete the profiles of windows starting before ``before`` (epoch seconds)."""
        return self._prune(window_profiles_table, before, "pruning window profiles")


class MemoryWindowProfiles(MemoryWindowPerformance):
    """Window profile methods of the in-memory store: the same rules, one process."""

    _window_profiles: _Held

    def save_window_profiles(self, holder: str, rows: Sequence[Mapping[str, Any]]) -> int:
        self._check("saving window profiles")
        values = _rows_of(holder, rows, datetime.now(UTC), "profile", "rows")
        with self._window_lock:
            for v in values:
                self._window_profiles[(v["model"], v["version"], v["window_start"], holder)] = v
        return len(values)

    def load_window_profiles(
        self, model: str, version: str, window_start: float, *, exclude_holder: str | None = None
    ) -> list[dict[str, Any]]:
        self._check(f"reading the window profiles of {model}:{version}")
        with self._window_lock:
            held = self._window_profiles
            found = _held_window(held, model, version, window_start, exclude_holder)
        return [_loaded(v, "profile", "rows") for v in found]

    def prune_window_profiles(self, before: float) -> int:
        self._check("pruning window profiles")
        with self._window_lock:
            return _held_prune(self._window_profiles, before)
