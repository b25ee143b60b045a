"""Leases in the store: one row per lease, taken when free or expired, renewed by its holder.

The evaluator and the alert engine must run in exactly one replica of a fleet that shares
one PostgreSQL.  A lease row is the simplest lock that survives its holder's death: the
holder renews it every third of its time to live, and when the holder dies (SIGKILL, a
lost node) the row expires and another replica takes it.  Taking and renewing are one
conditional ``UPDATE`` (held by me, or expired) followed, when no row exists yet, by an
``INSERT ... ON CONFLICT DO NOTHING``; under PostgreSQL's READ COMMITTED the second of two
racing updates re-reads the row the first committed and matches nothing, so exactly one
replica wins.  Times are the replicas' own clocks (UTC): they must agree to well within
the time to live, which NTP gives.

:class:`SQLLeases` is mixed into :class:`~inferwatch.store.SQLStore`;
:class:`MemoryLeases` into :class:`~inferwatch.store.MemoryStore`.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from inferwatch.store._tables import leases_table, utc

__all__ = ["MemoryLeases", "SQLLeases"]

_LEASE_COLUMNS = ("name", "holder", "acquired_at", "renewed_at", "expires_at")


def _times(ttl_seconds: float, now: datetime | None) -> tuple[datetime, datetime]:
    if not ttl_seconds > 0:
        raise ValueError(f"a lease's time to live must be positive, not {ttl_seconds!r}")
    at = utc(now) if now is not None else datetime.now(UTC)
    return at, at + timedelta(seconds=ttl_seconds)


class SQLLeases:
    """Lease methods of the SQL store (needs the store's ``_begin`` and ``_engine``)."""

    _engine: sa.Engine

    def _begin(self, action: str) -> AbstractContextManager[sa.Connection]:
        raise NotImplementedError  # pragma: no cover - SQLStore provides it

    def acquire_lease(
        self, name: str, holder: str, ttl_seconds: float, *, now: datetime | None = None
    ) -> bool:
        """Take or renew lease ``name`` for ``holder`` until ``now + ttl_seconds``; True
        when ``holder`` holds it afterwards, False when another holder's lease is live."""
        at, expires = _times(ttl_seconds, now)
        t = leases_table
        with self._begin(f"taking the lease {name!r}") as conn:
            taken = conn.execute(
                sa.update(t)
                .where(t.c.name == name, sa.or_(t.c.holder == holder, t.c.expires_at < at))
                .values(
                    holder=holder,
                    renewed_at=at,
                    expires_at=expires,
                    # a renewal keeps the start of the holder's term
                    acquired_at=sa.case((t.c.holder == holder, t.c.acquired_at), else_=at),
                )
            ).rowcount
            if taken:
                return True
            insert = (
                postgresql.insert(t)
                if self._engine.dialect.name == "postgresql"
                else sqlite.insert(t)
            )
            row = {"name": name, "holder": holder, "acquired_at": at, "renewed_at": at,
                   "expires_at": expires}  # fmt: skip
            # RETURNING, not rowcount: psycopg reports -1 for a skipped ON CONFLICT insert
            stmt = insert.values(row).on_conflict_do_nothing().returning(t.c.name)
            return conn.execute(stmt).first() is not None

    def release_lease(self, name: str, holder: str) -> bool:
        """Give lease ``name`` up if ``holder`` holds it (at a graceful stop, so another
        replica need not wait for it to expire); True when it was held."""
        t = leases_table
        past = datetime(1970, 1, 1, tzinfo=UTC)
        with self._begin(f"releasing the lease {name!r}") as conn:
            done = conn.execute(
                sa.update(t).where(t.c.name == name, t.c.holder == holder).values(expires_at=past)
            ).rowcount
        return bool(done)

    def query_lease(self, name: str) -> dict[str, Any] | None:
        """Lease ``name``'s row (holder, acquired_at, renewed_at, expires_at), or None."""
        t = leases_table
        with self._begin(f"reading the lease {name!r}") as conn:
            row = conn.execute(sa.select(t).where(t.c.name == name)).mappings().first()
        return None if row is None else {k: row[k] for k in _LEASE_COLUMNS}


class MemoryLeases:
    """Lease methods of the in-memory store: the same rules, one process."""

    available: bool
    _leases: dict[str, dict[str, Any]]
    _lease_lock: threading.Lock

    def _check(self, action: str) -> None:
        raise NotImplementedError  # pragma: no cover - MemoryStore provides it

    def acquire_lease(
        self, name: str, holder: str, ttl_seconds: float, *, now: datetime | None = None
    ) -> bool:
        self._check(f"taking the lease {name!r}")
        at, expires = _times(ttl_seconds, now)
        with self._lease_lock:
            row = self._leases.get(name)
            if row is not None and row["holder"] != holder and row["expires_at"] >= at:
                return False
            start = row["acquired_at"] if row is not None and row["holder"] == holder else at
            self._leases[name] = {"name": name, "holder": holder, "acquired_at": start,
                                  "renewed_at": at, "expires_at": expires}  # fmt: skip
            return True

    def release_lease(self, name: str, holder: str) -> bool:
        self._check(f"releasing the lease {name!r}")
        with self._lease_lock:
            row = self._leases.get(name)
            if row is None or row["holder"] != holder:
                return False
            row["expires_at"] = datetime(1970, 1, 1, tzinfo=UTC)
            return True

    def query_lease(self, name: str) -> dict[str, Any] | None:
        self._check(f"reading the lease {name!r}")
        with self._lease_lock:
            row = self._leases.get(name)
            return None if row is None else dict(row)
