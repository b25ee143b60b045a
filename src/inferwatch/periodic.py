"""One background thread that calls a function every so often until it is stopped.

Six parts of a server run on such a thread: the evaluation loop, the alert runner, the
evaluator lease, the history sampler, window sharing and a worker's checkpoints.  Each
needs the same few things, which :class:`Periodic` holds once: a daemon thread started
once, a wait that a stop cuts short, a failed round that is logged and never ends the
thread, and a stop that joins with a limit and says whether the thread ended.

``fixed_rate``: rounds are due at start + k * interval (a slow round is followed at once,
missed rounds are skipped rather than run in a burst), as a sampler wants; otherwise the
interval is the pause after each round, as a judge or a renewal wants.

Written by hand: the standard library's ``threading.Timer`` fires once, and a scheduler
(``sched``, APScheduler) adds a queue where one loop and one ``Event`` suffice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["Periodic"]

log = logging.getLogger("inferwatch")


class Periodic:
    """Calls ``tick`` every ``interval`` seconds on a daemon thread named ``name``.

    ``first_now`` runs the first round as soon as the thread starts (else after one
    interval).  ``on_error`` receives an exception a round raised (else it is logged).

    >>> seen = []
    >>> p = Periodic(lambda: seen.append(1), 0.01, name="doc", first_now=True)
    >>> p.start()
    True
    >>> p.stop(1.0), len(seen) >= 1, p.running
    (True, True, False)
    """

    def __init__(
        self,
        tick: Callable[[], object],
        interval: float,
        *,
        name: str,
        first_now: bool = False,
        fixed_rate: bool = False,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be positive, not {interval!r}")
        self.tick = tick
        self.interval = float(interval)
        self.name = name
        self.first_now = first_now
        self.fixed_rate = fixed_rate
        self.on_error = on_error
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called: a long round may check it and end early."""
        return self._stop.is_set()

    def start(self) -> bool:
        """Start the thread; False (and nothing done) while it already runs."""
        if self.running:
            return False
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return True

    def _round(self) -> None:
        try:
            self.tick()
        except Exception as exc:  # one bad round must not end the thread
            if self.on_error is not None:
                self.on_error(exc)
            else:
                log.exception("%s: a round failed", self.name)

    def _run(self) -> None:
        if self.first_now:
            self._round()
        next_at = time.monotonic() + self.interval
        while True:
            delay = max(next_at - time.monotonic(), 0.0) if self.fixed_rate else self.interval
            if self._stop.wait(delay):
                return
            self._round()
            if self.fixed_rate:
                next_at += self.interval
                if next_at < time.monotonic():  # behind: skip the missed rounds
                    next_at = time.monotonic()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop and join the thread; False when it is still in a round after ``timeout``."""
        self._stop.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            return False
        self._thread = None
        return True

    def __repr__(self) -> str:
        return f"Periodic({self.name!r}, interval={self.interval}, running={self.running})"
