"""A small thread that drives the engine and the dispatcher for a server.

Everything that decides lives in :class:`AlertEngine` and :class:`Dispatcher` (driven by a
fake clock in tests); this only calls them every ``interval`` seconds on a daemon thread,
hands each cycle's transitions to ``on_transitions`` and its delivery attempts to
``on_attempts`` (the server writes both to the store) and survives a bad
cycle (the error goes to ``on_error``; the next cycle runs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from inferwatch.alerting._dispatch import DeliveryAttempt, Dispatcher
from inferwatch.alerting._engine import AlertEngine
from inferwatch.alerting._model import AlertTransition, RuleOutcome
from inferwatch.periodic import Periodic

__all__ = ["AlertRunner"]


class AlertRunner:
    """``start()``/``stop()``; one cycle = outcomes -> evaluate -> transitions sink -> tick."""

    def __init__(
        self,
        engine: AlertEngine,
        dispatcher: Dispatcher,
        outcomes: Callable[[], Iterable[RuleOutcome]],
        *,
        interval: float = 15.0,
        on_transitions: Callable[[Sequence[AlertTransition]], None] | None = None,
        on_attempts: Callable[[Sequence[DeliveryAttempt]], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_lead: Callable[[], object] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0")
        self.engine = engine
        self.dispatcher = dispatcher
        self.outcomes = outcomes
        self.interval = interval
        self.on_transitions = on_transitions
        self.on_attempts = on_attempts
        self.on_error = on_error
        #: called before the first cycle after this runner starts leading (its first
        #: cycle, or the first one its ``gate`` lets through after it was shut): the
        #: server restores the alerts the previous leader left active there
        self.on_lead = on_lead
        self._leading = False
        self.cycles = 0
        self.errors = 0
        self._thread: Periodic | None = None
        #: read before each cycle: False skips it (a replica without the evaluator
        #: lease, inferwatch.lease); None runs every cycle
        self.gate: Callable[[], bool] | None = None

    def run_once(self) -> list[AlertTransition]:
        """One cycle at the engine's clock (what the thread calls; tests may call it directly)."""
        if not self._leading:
            self._leading = True
            if self.on_lead is not None:
                try:
                    self.on_lead()
                except Exception as exc:  # a failed restore starts empty, never stops alerting
                    if self.on_error is not None:
                        self.on_error(exc)
        now = self.engine.clock()
        transitions = self.engine.evaluate(self.outcomes(), now)
        if transitions and self.on_transitions is not None:
            self.on_transitions(transitions)
        attempts = self.dispatcher.tick(now)
        if attempts and self.on_attempts is not None:
            self.on_attempts(attempts)
        self.engine.silences.purge(now)
        self.cycles += 1
        return transitions

    def _cycle(self) -> None:
        if self.gate is not None and not self.gate():
            self._leading = False  # when it opens again, restore first
            return
        try:
            self.run_once()
        except Exception as exc:  # a bad cycle must not end alerting
            self.errors += 1
            if self.on_error is not None:
                self.on_error(exc)

    def start(self) -> None:
        """Run a cycle now and every ``interval`` seconds after, on a thread."""
        if self.running:
            return
        self._thread = Periodic(self._cycle, self.interval, name="inferwatch-alerts",
                                first_now=True)  # fmt: skip
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is not None and self._thread.stop(timeout):
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.running
