"""The built-in alert engine as the server runs it, wired to the app's metrics and store.

Every ``alerting.evaluation_interval`` one thread (:class:`~inferwatch.alerting.AlertRunner`)
reads the app's own registry as a scrape would (:func:`~inferwatch.metrics.registry_samples`,
only the families the rules read, with the ``instance`` label Prometheus would add),
judges every rule with :class:`~inferwatch.alerting.RuleEvaluator`, moves the alerts
through :class:`~inferwatch.alerting.AlertEngine`, and lets the
:class:`~inferwatch.alerting.Dispatcher` deliver the groups that are due.

What happens around the cycle, and why it is shaped so:

* State changes and delivery attempts go to the store.  A store that is down must not
  stop alerting (an outage is exactly when alerts matter), so these writes never raise
  into the cycle: rows that could not be written wait in a bounded buffer
  (:data:`MAX_PENDING_ROWS`, the oldest dropped and counted) and are written with the next
  cycle's.
* Silences are kept in the store, so a restart keeps them: loaded at start, written when
  one is added or expired through the API.  The in-memory set is the source of truth
  while running; a failed write is reported to the caller (the API answers 503 and the
  silence is not created), so the two cannot disagree silently.
* The engine's state outlives the process through the store: when this process starts
  leading (its first cycle, or the first after it takes the evaluator lease from another
  replica) :meth:`AlertingService.restore` reads the alerts the history says are pending
  or firing, with their acknowledgements, and the newest successful delivery of each
  group, so an alert firing before a takeover or restart stays firing with no new
  notification (until ``repeat_interval`` after that delivery), a pending one keeps its
  ``for`` clock, and one no longer true resolves (its resolve sent) at the first cycle.
  A store that does not answer then is a logged warning and an empty start.
* ``hooks`` (the automated actions of ``alerting.actions``,
  :class:`~inferwatch.actions.ActionRunner`) get each cycle's transitions after they are
  recorded; an error there is logged, never fatal to the cycle.  A rollback action
  switches the served version in the :class:`ModelRegistry`.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from inferwatch.alerting import (
    RESTORE_LIMIT,
    ActiveAlert,
    AlertEngine,
    AlertRunner,
    AlertTransition,
    DeliveryAttempt,
    Dispatcher,
    Matcher,
    RuleEvaluator,
    RuleOutcome,
    Silence,
    Silences,
)
from inferwatch.config import AlertingSettings
from inferwatch.errors import StoreError
from inferwatch.metrics import Metrics, registry_samples
from inferwatch.ports import AlertStore
from inferwatch.server._registry import ModelRegistry

__all__ = ["MAX_PENDING_ROWS", "AlertingService", "build_alerting"]

log = logging.getLogger("inferwatch.alerting")

#: history rows and delivery attempts kept for the store while it is down
MAX_PENDING_ROWS = 10_000
#: how often the history older than ``alerting.history_retention`` is deleted
PRUNE_EVERY = timedelta(hours=1)
#: evaluation rows an action's evidence carries
EVIDENCE_ROWS = 50
#: how long restored alerts whose series have no data yet are held (AlertEngine.restore's
#: grace): at least this, and at least RESTORE_GRACE_CYCLES evaluation intervals (a rate
#: needs two samples in its window, so two cycles after a restart it has a value)
RESTORE_GRACE = timedelta(minutes=1)
RESTORE_GRACE_CYCLES = 4

TransitionHook = Callable[[Sequence[AlertTransition]], None]


def _now() -> datetime:
    return datetime.now(UTC)


class AlertingService:
    """Evaluator, engine, dispatcher and runner of one server; ``start()`` / ``stop()``."""

    def __init__(
        self,
        evaluator: RuleEvaluator,
        engine: AlertEngine,
        dispatcher: Dispatcher,
        *,
        registry: CollectorRegistry,
        store: AlertStore,
        interval: float,
        instance: str,
        hooks: Sequence[TransitionHook] = (),
        receivers: Sequence[str] = (),
        close: Callable[[], None] | None = None,
        retention: timedelta | None = None,
    ) -> None:
        self.evaluator = evaluator
        self.engine = engine
        self.dispatcher = dispatcher
        self.registry = registry
        self.store = store
        self.instance = instance
        self.hooks = list(hooks)
        self.receivers = list(receivers)
        self._close = close
        self.retention = retention
        self._pruned_at: datetime | None = None
        self._names = evaluator.sample_names
        self._pending_transitions: deque[AlertTransition] = deque(maxlen=MAX_PENDING_ROWS)
        self._pending_attempts: deque[DeliveryAttempt] = deque(maxlen=MAX_PENDING_ROWS)
        #: rows that could not be written and were dropped (the buffer was full)
        self.dropped_rows = 0
        self.store_errors = 0
        self._silence_reload_failing = False
        self._store_lock = threading.Lock()
        self.runner = AlertRunner(
            engine,
            dispatcher,
            self._outcomes,
            interval=interval,
            on_transitions=self._on_transitions,
            on_attempts=self._on_attempts,
            on_error=self._on_error,
            on_lead=self.restore,
        )

    # -- the cycle -------------------------------------------------------------------
    def _prune(self) -> None:
        """Drop history older than the retention, at most once per :data:`PRUNE_EVERY`."""
        now = self.engine.clock()
        if self.retention is None or (
            self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY
        ):
            return
        self._pruned_at = now
        try:
            deleted = self.store.prune_alert_history(now - self.retention)
        except Exception as exc:  # next hour, then
            log.warning("could not prune the alert history: %s", exc)
            return
        if any(deleted.values()):
            log.info("pruned alert history older than %s: %s", self.retention, deleted)

    def _outcomes(self) -> list[RuleOutcome]:
        self._prune()
        self.reload_silences()  # one made through another replica mutes from this cycle
        # rows a store outage held back go in first (a quiet cycle has no rows of its own)
        if self._pending_transitions:
            self._write(self._pending_transitions, (), "write_alert_transitions")
        if self._pending_attempts:
            self._write(self._pending_attempts, (), "write_delivery_attempts")
        samples = registry_samples(self.registry, self._names, labels={"instance": self.instance})
        now = self.engine.clock()
        self.evaluator.observe(now, samples)
        # just after a restore, every judged series (not only the breaching ones), so a
        # restored alert judged fine resolves now and only one with no data yet is held
        return self.evaluator.outcomes(now, quiet=self.engine.carrying(now))

    def _on_transitions(self, transitions: Sequence[AlertTransition]) -> None:
        for t in transitions:
            if t.to_state in ("firing", "resolved"):
                log.warning(
                    "alert %s %s: %s", t.labels.get("alertname"), t.to_state, dict(t.labels)
                )
        self._write(self._pending_transitions, transitions, "write_alert_transitions")
        for hook in self.hooks:
            try:
                hook(transitions)
            except Exception:  # an action must never stop alerting
                log.exception("an alert action failed")

    def _on_attempts(self, attempts: Sequence[DeliveryAttempt]) -> None:
        for a in attempts:
            if a.outcome == "error":
                log.warning(
                    "delivery to %s failed (attempt %d, group %s): %s",
                    a.receiver,
                    a.attempt,
                    a.group_key,
                    a.error,
                )
        self._write(self._pending_attempts, attempts, "write_delivery_attempts")

    def _write(self, pending: deque[Any], rows: Iterable[Any], method: str) -> None:
        with self._store_lock:
            room = pending.maxlen or 0
            for row in rows:
                if len(pending) >= room:
                    self.dropped_rows += 1
                pending.append(row)
            if not pending:
                return
            batch = list(pending)
            try:
                getattr(self.store, method)(batch)
            except Exception as exc:  # StoreError, or anything the driver raises
                self.store_errors += 1
                log.warning("could not write %d alert rows (kept for the next cycle): %s",
                            len(batch), exc)  # fmt: skip
                return
            pending.clear()

    def restore(self) -> int:
        """Carry on the alerts active when the previous leader (or this process, before
        a restart) stopped; returns how many the engine holds after it.

        Called by the runner before its first cycle as leader.  Rows this process still
        holds for the store are written first, so the read sees them.  The stored
        silences are reloaded too (one made or expired through another replica since
        this process started: the new leader mutes what the old one muted).  The read is
        bounded (:data:`~inferwatch.alerting.RESTORE_LIMIT` alerts, a few rows
        each); a store that does not answer leaves the engine as it is (empty at a
        start: alerts then fire and notify again, as before restoring existed).  A
        restored alert whose series has no data yet (a rate needs two samples) is held
        for :data:`RESTORE_GRACE` or :data:`RESTORE_GRACE_CYCLES` cycles, whichever is
        longer, rather than resolved and fired again.
        """
        self._write(self._pending_transitions, (), "write_alert_transitions")
        self._write(self._pending_attempts, (), "write_delivery_attempts")
        now = self.engine.clock()
        # first: a silence made or expired through another replica since this start
        self.reload_silences(quiet=False)
        try:
            alerts = self.store.query_active_alerts(limit=RESTORE_LIMIT)
            starts = [a.starts_at for a in alerts if a.state == "firing"]
            delivered = (
                self.store.query_last_deliveries(since=min(starts), limit=RESTORE_LIMIT)
                if starts
                else {}
            )
        except Exception as exc:  # StoreError, or anything the driver raises
            self.store_errors += 1
            log.warning("could not read the alerts active before this process led "
                        "(starting without them): %s", exc)  # fmt: skip
            return len(self.engine)
        grace = max(RESTORE_GRACE, RESTORE_GRACE_CYCLES * timedelta(seconds=self.runner.interval))
        held = self.engine.restore(alerts, grace=grace, now=now)
        told = self.dispatcher.restore(delivered, now)
        if held:
            log.warning("carrying on %d alerts active before this process led "
                        "(%d firing, %d of them already notified)", held, len(starts),
                        told)  # fmt: skip
        return held

    def reload_silences(self, *, quiet: bool = True) -> bool:
        """Take in the stored silences: one made or expired through another replica (its
        own engine does not run, so the store is where it lands).  Called before every
        cycle, so a silence made anywhere in the fleet mutes within one evaluation
        interval; True when something changed.  A store that does not answer keeps the
        silences held (logged once per outage when ``quiet``)."""
        now = self.engine.clock()
        try:
            stored = self.store.load_silences(include_expired=True)
        except Exception as exc:
            self.store_errors += 1
            if not quiet or not self._silence_reload_failing:
                log.warning("could not reload the stored silences: %s", exc)
            self._silence_reload_failing = True
            return False
        self._silence_reload_failing = False
        # as at a start, an unknown silence that already ended is not taken in
        known = [s for s in stored if s.ends_at > now or self.silences.get(s.id)]
        if self.silences.load(known):
            self.engine.generation += 1
            return True
        return False

    @property
    def leads(self) -> bool:
        """Whether this process runs the alert engine (it holds the evaluator lease, or
        there is no lease to hold)."""
        gate = self.runner.gate
        return gate is None or bool(gate())

    def alerts_view(self) -> list[ActiveAlert]:
        """The alerts ``GET /v1/alerts`` lists.  On the leader, the engine's.  On a replica
        whose engine does not run (a follower), what the leader left in the store: the
        active alerts as a new leader would restore them, with the stored silences'
        verdicts, so every replica behind one Service lists the same alerts (as of the
        leader's last written cycle).  Raises when the store does not answer there."""
        if self.leads:
            return self.engine.alerts()
        now = self.engine.clock()
        silences = Silences()
        silences.load(self.store.load_silences(now=now))
        scratch = AlertEngine(self.engine.clock, silences=silences)
        scratch.restore(self.store.query_active_alerts(limit=RESTORE_LIMIT), now=now)
        return scratch.alerts()

    def _on_error(self, exc: BaseException) -> None:
        log.error("alert evaluation cycle failed", exc_info=exc)

    # -- silences --------------------------------------------------------------------
    @property
    def silences(self) -> Silences:
        return self.engine.silences

    def add_silence(
        self,
        matchers: Sequence[str],
        *,
        starts_at: datetime,
        ends_at: datetime,
        author: str,
        comment: str = "",
    ) -> Silence:
        """Create a silence and store it; raises ValueError for a bad one and StoreError
        (the silence not created) when the store cannot take it."""
        parsed = tuple(Matcher.parse(m) for m in matchers)
        if ends_at <= starts_at:
            raise ValueError("a silence must end after it starts")
        # built and stored first, then muting: a silence the store refused never mutes
        silence = Silence(uuid.uuid4().hex, parsed, starts_at, ends_at, author, comment)
        try:
            self.store.save_silence(silence)
        except Exception as exc:
            raise StoreError(f"could not store the silence: {exc}") from exc
        self.silences.add(parsed, starts_at, ends_at, author, comment, id=silence.id)
        self.engine.generation += 1
        return silence

    def expire_silence(self, silence_id: str) -> Silence:
        """End a silence now (KeyError when unknown).  Stored first, then ended here: the
        silences are reloaded from the store every cycle (one made or ended through another
        replica lands there), so an end the store did not take would come back; a store
        that refuses it raises ``StoreError`` and the silence stays as it was."""
        held = self.silences.get(silence_id)
        if held is None:
            raise KeyError(silence_id)
        ended = Silences()
        ended.load([held])
        silence = ended.expire(silence_id, self.engine.clock())
        try:
            self.store.save_silence(silence)
        except Exception as exc:
            raise StoreError(f"could not record the end of the silence: {exc}") from exc
        self.silences.load([silence])
        self.engine.generation += 1
        return silence

    def acknowledge(self, fp: str, author: str, comment: str = "") -> AlertTransition:
        """Acknowledge a firing alert (``AlertEngine.acknowledge``: KeyError unknown,
        ValueError not firing) and record it in the alert history; a store that is down
        gets the row at the next cycle, as any transition (bounded, never raised)."""
        row = self.engine.acknowledge(fp, author, comment)
        self._write(self._pending_transitions, [row], "write_alert_transitions")
        return row

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        try:
            stored = self.store.load_silences(now=self.engine.clock())
        except Exception as exc:  # serve without them rather than not at all
            log.warning("could not load the stored silences: %s", exc)
            stored = []
        for silence in stored:  # one bad silence must not keep the others out
            if self.silences.get(silence.id) is not None:
                continue
            try:
                self.silences.add(
                    silence.matchers,
                    silence.starts_at,
                    silence.ends_at,
                    silence.author,
                    silence.comment,
                    id=silence.id,
                )
            except ValueError as exc:
                log.warning("stored silence %s left out: %s", silence.id, exc)
        self.runner.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.runner.stop(timeout)
        # a last try for what the store did not take yet
        self._write(self._pending_transitions, (), "write_alert_transitions")
        self._write(self._pending_attempts, (), "write_delivery_attempts")
        if self._close is not None:
            self._close()

    def run_once(self) -> list[AlertTransition]:
        """One cycle now (``POST /v1/alerts/evaluate`` and tests)."""
        return self.runner.run_once()


def _close_all(closers: Sequence[Callable[[], None]]) -> None:
    for close in closers:
        try:
            close()
        except Exception:  # one failing close must not leave the others open
            log.exception("closing the alerting service")


def _evidence_of(store: Any, models: ModelRegistry | None) -> Callable[[str], dict[str, Any]]:
    """What an action's record carries besides the alert: the model's live version and its
    newest evaluation rows (drift, quality, performance), read from the store."""

    def evidence(model: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if models is not None and model in models:
            out["live_version"] = models.live[model].version
            # lets a restart keep a rollback (server._registry.switch_to_restore)
            out["configured_version"] = models.configured(model)
        try:
            out["evaluations"] = store.query_evaluations(model, limit=EVIDENCE_ROWS)
        except Exception as exc:  # the store being down must not stop the action
            out["evaluations_error"] = str(exc)
        return out

    return evidence


def _rollback_of(models: ModelRegistry) -> Callable[[str], tuple[str, str] | None]:
    def rollback(model: str) -> tuple[str, str] | None:
        if model not in models:
            return None
        change = models.rollback(model, reason="alert action (alerting.actions)")
        return None if change is None else (change.from_version, change.to_version)

    return rollback


def build_alerting(
    settings: AlertingSettings,
    *,
    registry: CollectorRegistry,
    store: AlertStore,
    instance: str,
    external_url: str = "",
    hooks: Sequence[TransitionHook] = (),
    clock: Callable[[], datetime] = _now,
    models: ModelRegistry | None = None,
    metrics: Metrics | None = None,
) -> AlertingService | None:
    """The service for ``alerting.*`` (None when alerting is off or there are no rules).

    ``models``: the served versions, which a rollback action switches.  Raises
    ConfigError for a receiver whose secret cannot be read (at start, not at the first
    alert).
    """
    from inferwatch.notify import build_notifier

    rules = settings.to_rules()
    slos = settings.to_slos()
    if not settings.enabled or not (rules or slos):
        return None
    band_score = None
    if any(getattr(r, "band", None) for r in rules):
        from inferwatch.alerting import BandHistory

        band_score = BandHistory().band_score
    evaluator = RuleEvaluator(rules, slos, band_score=band_score)
    engine = AlertEngine(clock, silences=Silences())
    notifier = build_notifier(settings.receivers, external_url=external_url)
    closers: list[Callable[[], None]] = [notifier.close]
    hooks = list(hooks)
    if settings.actions:
        from inferwatch.actions import ActionRunner, engine_lookup

        actions = ActionRunner(
            settings.actions,
            store,
            rollback=_rollback_of(models) if models is not None else None,
            evidence=_evidence_of(store, models),
            alerts=engine_lookup(engine),
            metrics=metrics,
            clock=clock,
        )
        hooks.append(actions.on_transitions)
        closers.insert(0, actions.close)
    route = settings.route
    names = notifier.names
    dispatcher = Dispatcher(
        engine,
        notifier,
        receivers=names,
        route=settings.to_route().receivers_for,
        group_by=route.group_by,
        group_wait=timedelta(seconds=route.group_wait),
        group_interval=timedelta(seconds=route.group_interval),
        repeat_interval=timedelta(seconds=route.repeat_interval),
    )
    return AlertingService(
        evaluator,
        engine,
        dispatcher,
        registry=registry,
        store=store,
        interval=settings.evaluation_interval,
        instance=instance,
        hooks=hooks,
        receivers=names,
        close=lambda: _close_all(closers),
        retention=timedelta(seconds=settings.history_retention),
    )
