"""One evaluator in a fleet: the replica that holds the store's ``evaluator`` lease.

Engine layer.  Several replicas of the server share one PostgreSQL; each records and
answers predictions, but judging windows and running the alert engine must happen once,
or every replica would fire the same alerts.  :class:`Leadership` takes the lease row
(:class:`~inferwatch.ports.LeaseStore`) at start, renews it every third of its time to
live on its own thread, and tells the evaluation loop and the alert runner, through their
``gate``, whether this replica may run a cycle.  A single process takes the lease at once,
so nothing changes for it.

When the holder dies (SIGKILL, a lost node), its row expires after ``ttl_seconds`` and the
next renewal round of another replica takes it: the lease moves within ``ttl_seconds +
ttl_seconds / 3`` (40 s at the default 30 s).  A graceful stop releases the row, so the
lease moves within one renewal round.

A store that cannot answer changes nothing: a leader stays leader and a follower stays
follower until the store answers again (a leader that stepped down during an outage would
leave a single replica with no alerting while its store is down).  The cost: during a
partition that cuts the leader off the store but not the others, two replicas judge
until the store returns, and a receiver may get an alert twice.

Write by hand: a lease over a table the project already has is a dozen lines of SQL;
a coordination service (etcd, ZooKeeper, Kubernetes' Lease objects) would add a
component that a single process or a plain PostgreSQL deployment does not have.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Callable
from typing import Final

from inferwatch.periodic import Periodic
from inferwatch.ports import LeaseStore

__all__ = ["EVALUATOR_LEASE", "Leadership", "default_holder"]

log = logging.getLogger("inferwatch.lease")

#: the lease that the evaluation loop and the alert engine run under
EVALUATOR_LEASE: Final = "evaluator"


def default_holder() -> str:
    """A holder id naming this process: host, pid and a random tag (a pid is reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Leadership:
    """Holds (or waits for) lease ``name`` in ``store`` for ``holder``.

    ``on_change(is_leader)`` is called on every change (and once by :meth:`start`), e.g.
    to set ``inferwatch_evaluator_leader``.  :attr:`is_leader` is the gate the evaluator
    and the alert runner read before each cycle.
    """

    def __init__(
        self,
        store: LeaseStore,
        *,
        name: str = EVALUATOR_LEASE,
        holder: str | None = None,
        ttl_seconds: float = 30.0,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        if not ttl_seconds > 0:
            raise ValueError(f"ttl_seconds must be positive, not {ttl_seconds!r}")
        self.store = store
        self.name = name
        self.holder = holder or default_holder()
        self.ttl_seconds = ttl_seconds
        self.renew_seconds = ttl_seconds / 3
        self.on_change = on_change
        #: called after each renewal round on the lease's thread, leader or not (replicas
        #: follow each other's model switches there: ``server._switches``)
        self.on_round: Callable[[], None] | None = None
        self.errors = 0
        self._leader = False
        self._thread: Periodic | None = None

    @property
    def is_leader(self) -> bool:
        return self._leader

    def tick(self) -> bool:
        """One renewal round: take or renew the lease; return whether this replica leads.

        A store error keeps the current role (see the module docstring) and is counted.
        """
        try:
            held = self.store.acquire_lease(self.name, self.holder, self.ttl_seconds)
        except Exception as exc:
            self.errors += 1
            log.warning("lease %r: the store did not answer, keeping the role (%s): %s",
                        self.name, "leader" if self._leader else "follower", exc)  # fmt: skip
            return self._leader
        if held != self._leader:
            self._leader = held
            news = "now leading" if held else "lost to another replica"
            log.warning("lease %r: %s (holder %s)", self.name, news, self.holder)
            if self.on_change is not None:
                self.on_change(held)
        return held

    def start(self) -> bool:
        """Try once now (so a single process leads from its first cycle), then keep
        renewing on a thread; return whether this replica leads."""
        leading = self.tick()
        if self.on_change is not None:
            self.on_change(leading)
        if self._thread is None:
            self._thread = Periodic(self._round, self.renew_seconds, name="inferwatch-lease")
            self._thread.start()
        return leading

    def _round(self) -> None:
        self.tick()
        if self.on_round is not None:
            try:
                self.on_round()
            except Exception:  # a bug there must not end the renewals
                log.exception("lease %r: the round's follower failed", self.name)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop renewing and release the lease if held, so another replica takes it at
        its next round instead of after the time to live."""
        if self._thread is not None:
            self._thread.stop(timeout)
            self._thread = None
        if self._leader:
            try:
                self.store.release_lease(self.name, self.holder)
            except Exception as exc:
                log.warning("lease %r: could not release it (%s); it expires in %ss",
                            self.name, exc, self.ttl_seconds)  # fmt: skip
            self._leader = False
            if self.on_change is not None:
                self.on_change(False)
