"""The alert state machine: inactive -> pending -> firing -> resolved, per rule, labels, level.

Semantics follow Prometheus' alerting rules: a series whose condition holds becomes
*pending*; once it has held for the rule's ``for`` duration (at an evaluation) it is
*firing*; when the condition stops, a firing alert is *resolved* (and kept for
``resolve_retention`` so the dispatcher can send the resolution), a pending one goes back to
*inactive* and is forgotten.  A series missing from a cycle's outcomes reads as "condition
does not hold" (the model went away, the rule was removed): its alerts resolve too.

Each level is its own alert: a critical breach holds the critical condition *and* the
warning one, so a series going from warning to critical fires critical and keeps its
warning alert as it was; a firing critical *inhibits* the warning of the same rule and
labels (kept, marked, not notified).

The hot path is the series whose condition does *not* hold -- almost all of them: such an
outcome costs one attribute read.  Only breaching outcomes build a key, and only alerts in
state are walked to resolve what was not seen, so a cycle where nothing changes allocates
(almost) nothing.  No I/O, no wall clock: ``now`` comes from the caller or the injected
clock.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from inferwatch.alerting._model import (
    AlertState,
    AlertTransition,
    RuleOutcome,
    Severity,
    StoredAlert,
)
from inferwatch.alerting._silence import Silences
from inferwatch.observation import Alert

__all__ = ["ActiveAlert", "AlertEngine"]

_Key = tuple[str, tuple[tuple[str, str], ...], str]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def fingerprint(labels: Mapping[str, str]) -> str:
    """The same fingerprint as :attr:`inferwatch.observation.Alert.fingerprint`."""
    text = "\x00".join(f"{k}\x01{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Series:
    """One alert in state (mutable, reused every cycle: no churn while nothing changes)."""

    __slots__ = (
        "acked_at",
        "acked_by",
        "annotations",
        "carried",
        "ends_at",
        "fingerprint",
        "inhibited",
        "labels",
        "pair",
        "seen",
        "severity",
        "since",
        "starts_at",
        "state",
        "value",
    )

    def __init__(
        self,
        labels: dict[str, str],
        pair: tuple[str, tuple[tuple[str, str], ...]],
        severity: str,
        now: datetime,
    ) -> None:
        self.labels = labels
        self.pair = pair
        self.severity = severity
        self.fingerprint = fingerprint(labels)
        self.state: AlertState = "inactive"
        self.since = now  # when the condition started holding (this time)
        self.starts_at = now  # pending: since; firing: when it fired
        self.ends_at: datetime | None = None
        self.value = 0.0
        self.annotations: Mapping[str, str] = {}
        self.inhibited = False
        self.seen = -1
        #: who acknowledged it while it fires, and when (cleared when it resolves)
        self.acked_by: str | None = None
        self.acked_at: datetime | None = None
        #: restored from the store (AlertEngine.restore): held while its series has no data
        self.carried = False

    def alert(self) -> Alert:
        status = "pending" if self.state == "pending" else self.state
        assert status != "inactive"
        return Alert(
            labels=self.labels,
            annotations=self.annotations,
            status=status,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            value=self.value,
        )


@dataclass(frozen=True, slots=True)
class ActiveAlert:
    """An alert in the engine's state, with what mutes it (for ``GET /v1/alerts``)."""

    alert: Alert
    fingerprint: str
    inhibited: bool
    silenced_by: tuple[str, ...]
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None

    @property
    def muted(self) -> bool:
        return self.inhibited or bool(self.silenced_by)


class AlertEngine:
    """Holds every pending, firing and recently resolved alert; one :meth:`evaluate` a cycle.

    ``resolve_retention``: how long a resolved alert stays (listed, and sendable as
    resolved) before it is dropped; Prometheus keeps them 15 minutes.
    """

    def __init__(
        self,
        clock: Callable[[], datetime] = _utc_now,
        *,
        resolve_retention: timedelta = timedelta(minutes=15),
        silences: Silences | None = None,
    ) -> None:
        self.clock = clock
        self.resolve_retention = resolve_retention
        self.silences = silences if silences is not None else Silences()
        self._series: dict[_Key, _Series] = {}
        self._by_fingerprint: dict[str, _Series] = {}
        self._cycle = 0
        self._touched: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        #: fired since the dispatcher last looked (by fingerprint: bounded by the alerts held)
        self._fired: dict[str, _Series] = {}
        # evaluate() and the readers (alerts(), from a server's request threads) take it;
        # evaluate() and Dispatcher.tick() run on one thread (AlertRunner's)
        self._lock = threading.Lock()
        #: bumped whenever an alert changes state or mute (a reader can cache its view on it)
        self.generation = 0
        #: until when a restored alert whose series is missing from the outcomes is held
        #: as it was (no data yet after a restart) instead of resolved; None: no restore
        #: window open
        self._carry_until: datetime | None = None

    # -- the cycle -------------------------------------------------------------------
    def evaluate(
        self, outcomes: Iterable[RuleOutcome], now: datetime | None = None
    ) -> list[AlertTransition]:
        """Apply one cycle's outcomes; returns every state change, in order, as history rows."""
        if now is None:
            now = self.clock()
        with self._lock:
            return self._evaluate(outcomes, now)

    def _evaluate(self, outcomes: Iterable[RuleOutcome], now: datetime) -> list[AlertTransition]:
        self._cycle += 1
        cycle = self._cycle
        series = self._series
        out: list[AlertTransition] = []
        get = series.get
        hold = self._hold
        carry = self._carry_until
        if carry is not None and now >= carry:
            carry = self._carry_until = None
        # while restored alerts are carried: every series the outcomes name, breaching or
        # not (only then: the hot path below stays one attribute read per quiet series)
        present: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        for o in outcomes:
            sev = o.severity
            if sev is None:
                if carry is not None and o.value == o.value:  # judged on a value (not NaN)
                    present.add((o.rule, tuple(sorted(o.labels.items()))))
                continue
            rule = o.rule
            items = tuple(sorted(o.labels.items()))
            if carry is not None:
                present.add((rule, items))
            # the common case inline: an alert already firing stays firing
            s = get((rule, items, sev))
            if s is not None and s.state == "firing":
                s.seen = cycle
                s.value = o.value
                s.annotations = o.annotations
            else:
                hold((rule, items), o, sev, now, cycle, out)
            if sev == "critical" and "warning" in o.levels:
                s = get((rule, items, "warning"))
                if s is not None and s.state == "firing":
                    s.seen = cycle
                    s.value = o.value
                    s.annotations = o.annotations
                else:
                    hold((rule, items), o, "warning", now, cycle, out)
        # what was not held this cycle: pending -> inactive, firing -> resolved, expire resolved
        drop: list[_Key] = []
        retention = self.resolve_retention
        for key, s in series.items():
            if s.seen == cycle:
                continue
            if carry is not None and s.carried and s.pair not in present:
                continue  # restored, and its series has no data yet: held as it was
            if s.state == "pending":
                out.append(self._move(s, "inactive", now))
                drop.append(key)
            elif s.state == "firing":
                s.ends_at = now
                s.acked_by = s.acked_at = None  # an acknowledgement lasts until it resolves
                out.append(self._move(s, "resolved", now))
            elif s.state == "resolved" and s.ends_at is not None and now - s.ends_at >= retention:
                drop.append(key)
        for key in drop:
            gone = series.pop(key)
            self._by_fingerprint.pop(gone.fingerprint, None)
            self._fired.pop(gone.fingerprint, None)
        if self._touched:
            self._inhibit(self._touched)
            self._touched = set()
        return out

    def _hold(
        self,
        pair: tuple[str, tuple[tuple[str, str], ...]],
        o: RuleOutcome,
        sev: Severity,
        now: datetime,
        cycle: int,
        out: list[AlertTransition],
    ) -> None:
        key = (pair[0], pair[1], sev)
        s = self._series.get(key)
        if s is None:
            labels = dict(pair[1])
            labels["alertname"] = o.rule
            labels["severity"] = sev
            s = _Series(labels, pair, sev, now)
            self._series[key] = s
            self._by_fingerprint[s.fingerprint] = s
        s.seen = cycle
        s.value = o.value
        s.annotations = o.annotations
        state = s.state
        if state == "firing" or (
            state == "pending" and (now - s.since).total_seconds() < o.for_seconds
        ):
            return
        if state == "pending":
            s.starts_at = now
            out.append(self._move(s, "firing", now))
            return
        # inactive (new) or resolved (back again): a new alert starts
        s.since = s.starts_at = now
        s.ends_at = None
        if o.for_seconds <= 0:
            out.append(self._move(s, "firing", now))
        else:
            out.append(self._move(s, "pending", now))

    def _move(self, s: _Series, to: AlertState, now: datetime) -> AlertTransition:
        self.generation += 1
        row = AlertTransition(s.fingerprint, s.labels, s.state, to, now, s.value, s.annotations)
        s.state = to
        self._touched.add(s.pair)
        if to == "firing":
            self._fired[s.fingerprint] = s
        return row

    def _inhibit(self, pairs: Iterable[tuple[str, tuple[tuple[str, str], ...]]]) -> None:
        """A firing critical mutes the warning of the same rule and labels.

        Only the (rule, labels) pairs whose alerts changed state this cycle can change.
        """
        series = self._series
        for rule, items in pairs:
            warning = series.get((rule, items, "warning"))
            if warning is None:
                continue
            critical = series.get((rule, items, "critical"))
            muted = critical is not None and critical.state == "firing"
            if muted != warning.inhibited:
                warning.inhibited = muted
                self.generation += 1

    # -- reading the state -----------------------------------------------------------
    def alerts(
        self, now: datetime | None = None, *, include_pending: bool = True
    ) -> list[ActiveAlert]:
        """Every alert in state (pending, firing, resolved within retention), with its mutes."""
        if now is None:
            now = self.clock()
        out = []
        with self._lock:
            held = list(self._series.values())
        for s in held:
            if s.state == "pending" and not include_pending:
                continue
            out.append(
                ActiveAlert(
                    s.alert(), s.fingerprint, s.inhibited, self.silences.silenced_by(s.labels, now),
                    s.acked_by, s.acked_at,
                )
            )  # fmt: skip
        out.sort(key=lambda a: (a.alert.name, a.fingerprint))
        return out

    def acknowledge(
        self, fp: str, author: str, comment: str = "", now: datetime | None = None
    ) -> AlertTransition:
        """Mark the firing alert ``fp`` acknowledged by ``author`` until it resolves: its
        repeat notifications stop (the dispatcher skips a repeat of acknowledged alerts, as
        PagerDuty's acknowledgement stops escalation); news (another alert firing, this one
        resolving) is still sent.  Returns the alert-history row recording it.  Raises
        KeyError for an unknown fingerprint, ValueError when the alert is not firing."""
        if now is None:
            now = self.clock()
        with self._lock:
            s = self._by_fingerprint.get(fp)
            if s is None:
                raise KeyError(fp)
            if s.state != "firing":
                raise ValueError(f"alert {fp} is {s.state}, not firing")
            s.acked_by, s.acked_at = author, now
            self.generation += 1
            labels = {**s.labels, "acknowledged_by": author, "acknowledgement_comment": comment}
            return AlertTransition(fp, labels, "firing", "acknowledged", now, s.value)

    def restore(
        self,
        alerts: Iterable[StoredAlert],
        *,
        grace: timedelta = timedelta(0),
        now: datetime | None = None,
    ) -> int:
        """Make the engine's state the alerts a previous engine left active; returns how
        many it holds.

        Why: the store's history outlives the process, the engine's memory does not.  A
        replica that takes the evaluator lease (or a single process that restarts) would
        otherwise start empty, and an alert firing before would go pending, fire again
        after its ``for`` and notify again; an acknowledgement would be forgotten.  A
        restored pending alert keeps its ``for`` clock (``since``); a restored firing one
        keeps its start and acknowledgement, and is handed to the dispatcher as fired
        (:meth:`Dispatcher.restore` then marks what its groups already told).  The next
        :meth:`evaluate` treats them as if this engine had held them all along: still
        true, nothing changes; no longer true, a firing one resolves (and that resolve is
        sent), a pending one goes inactive.  No transition rows are made: nothing changed.

        ``grace``: for this long after ``now`` a restored alert whose series is missing
        from the outcomes is held as it was rather than resolved.  A restarted process
        has no sample history, and a new leader none of the cycles it skipped, so a rate
        or a quantile over a window has no value for a cycle or two: without the grace
        every restored alert on such a signal would resolve at once and fire (and notify)
        again a cycle later.  A series the outcomes name as not breaching (a ``None``
        severity with a value: see :meth:`carrying`) resolves at once, grace or not; one
        still missing when the grace ends resolves then.

        What the engine held before is dropped (a leader that lost the lease and took it
        back holds a stale picture; the store has the other leader's).  An alert whose
        labels lack ``alertname`` or a ``severity`` of warning/critical is left out.
        """
        if now is None:
            now = self.clock()
        with self._lock:
            self._carry_until = now + grace if grace > timedelta(0) else None
            self._series.clear()
            self._by_fingerprint.clear()
            self._fired.clear()
            self._touched = set()
            for a in alerts:
                labels = {str(k): str(v) for k, v in a.labels.items()}
                rule = labels.get("alertname")
                sev = labels.get("severity")
                if not rule or sev not in ("warning", "critical"):
                    continue
                if a.state not in ("pending", "firing"):
                    continue
                items = tuple(sorted((k, v) for k, v in labels.items()
                                     if k not in ("alertname", "severity")))  # fmt: skip
                key: _Key = (rule, items, sev)
                if key in self._series:
                    continue  # the newest one came first
                s = _Series(labels, (rule, items), sev, a.since)
                s.state = a.state
                s.starts_at = a.starts_at
                s.value = a.value
                s.annotations = a.annotations
                s.carried = True
                if a.state == "firing":
                    s.acked_by, s.acked_at = a.acknowledged_by, a.acknowledged_at
                    self._fired[s.fingerprint] = s
                self._series[key] = s
                self._by_fingerprint[s.fingerprint] = s
                self._touched.add(s.pair)
            if self._touched:
                self._inhibit(self._touched)
                self._touched = set()
            self.generation += 1
            return len(self._series)

    def carrying(self, now: datetime | None = None) -> bool:
        """Whether restored alerts are still held through their grace (see :meth:`restore`):
        while so, the caller should hand over every judged series, breaching or not
        (``RuleEvaluator.outcomes(quiet=True)``), so that "judged fine" resolves a
        restored alert at once and only "no data" holds it."""
        until = self._carry_until
        return until is not None and (self.clock() if now is None else now) < until

    def get(self, fp: str) -> _Series | None:
        """The live series behind a fingerprint (engine-internal; the dispatcher reads it)."""
        return self._by_fingerprint.get(fp)

    def notifiable(self) -> Iterable[_Series]:
        """Alerts that a receiver may hear about: firing, or resolved (within retention)."""
        return (s for s in self._series.values() if s.state != "pending")

    def take_fired(self) -> list[_Series]:
        """The alerts that started firing since the last call (the dispatcher's new work)."""
        fired = list(self._fired.values())
        self._fired.clear()
        return fired

    def __len__(self) -> int:
        return len(self._series)
