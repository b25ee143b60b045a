"""Grouping and delivery: Alertmanager's aggregation groups, timers and retries, in-process.

An alert that a receiver may hear about (firing, or resolved after it was notified firing)
joins one aggregation group per receiver, keyed by its values of ``group_by`` (default
``alertname`` and ``model``).  Timers as Alertmanager defines them:

* ``group_wait``: a new group waits this long before its first notification (so alerts
  that start together arrive together);
* ``group_interval``: after a notification, the group is looked at again this often, and
  notified only if it changed (a new firing alert, a newly resolved one, or all resolved);
* ``repeat_interval``: an unchanged, still firing group is re-sent this often.

Delivery: a group has at most one notification in flight and no queue of past ones.  When
the receiver fails (``Notifier.send`` raises; an error whose ``retryable`` attribute is
False, such as a 4xx, is not retried before the next ``group_interval``) the attempt is
logged and retried after an
exponential backoff (``backoff_initial`` doubling up to ``backoff_max``; no jitter unless
``jitter`` > 0, then each delay is scaled down by up to that fraction at random).  Every
retry rebuilds the notification from the group's *current* alerts, so a receiver that comes
back gets the group once, as it is now: no burst of stale duplicates, and the repeat clock
starts from that delivery.  Silenced and inhibited alerts are left out when it is built.
The attempt log is a bounded deque, the groups are capped (``max_groups``; the excess is
counted, not kept): nothing grows without bound.
"""

from __future__ import annotations

import inspect
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Literal, Protocol

from inferwatch.alerting._engine import AlertEngine
from inferwatch.observation import Alert

__all__ = ["DeliveryAttempt", "Dispatcher", "Notifier", "group_key"]


class Notifier(Protocol):
    """Sends one group's alerts to one receiver; raises when the receiver did not take them."""

    def send(self, receiver: str, group_key: str, alerts: Sequence[Alert]) -> None: ...


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One try to deliver one group to one receiver (a row the store will persist)."""

    receiver: str
    group_key: str
    attempt: int  # 1 for the first try of a notification, 2 for its first retry, ...
    at: datetime
    outcome: Literal["ok", "error"]
    alerts: int
    error: str | None = None
    retry_at: datetime | None = None


def group_key(labels: Mapping[str, str], group_by: Sequence[str]) -> str:
    """``{alertname="x",model="y"}`` from the ``group_by`` labels the alert has."""
    inner = ",".join(f'{k}="{labels[k]}"' for k in group_by if k in labels)
    return "{" + inner + "}"


class _Group:
    __slots__ = (
        "attempt",
        "due",
        "fps",
        "key",
        "labels",
        "last_firing",
        "last_resolved",
        "last_sent_at",
        "notified_firing",
        "receiver",
        "resolved_alerts",
    )

    def __init__(self, receiver: str, key: str, due: datetime) -> None:
        self.receiver = receiver
        self.key = key
        self.labels: dict[str, str] = {}
        self.fps: set[str] = set()
        self.due = due
        self.attempt = 0  # failed tries of the notification in flight
        self.last_firing: set[str] | None = None  # None: never notified
        self.last_resolved: set[str] = set()
        self.last_sent_at: datetime | None = None
        self.notified_firing: set[str] = set()
        #: resolved alerts not yet told, kept in case the engine drops them first
        self.resolved_alerts: dict[str, Alert] = {}


class Dispatcher:
    """Turns the engine's alerts into notifications; driven by :meth:`tick` (no threads, no sleeps).

    ``route`` maps an alert's labels to the receivers that get it (default: every name in
    ``receivers``).
    """

    def __init__(
        self,
        engine: AlertEngine,
        notifier: Notifier,
        *,
        receivers: Sequence[str] = ("default",),
        route: Callable[[Mapping[str, str]], Sequence[str]] | None = None,
        group_by: Sequence[str] = ("alertname", "model"),
        group_wait: timedelta = timedelta(seconds=30),
        group_interval: timedelta = timedelta(minutes=5),
        repeat_interval: timedelta = timedelta(hours=4),
        backoff_initial: timedelta = timedelta(seconds=1),
        backoff_max: timedelta = timedelta(minutes=1),
        jitter: float = 0.0,
        rng: random.Random | None = None,
        max_groups: int = 10_000,
        attempt_log_size: int = 10_000,
    ) -> None:
        if not 0.0 <= jitter < 1.0:
            raise ValueError("jitter must be in [0, 1)")
        if backoff_initial <= timedelta(0) or backoff_max < backoff_initial:
            raise ValueError("backoff_initial must be > 0 and <= backoff_max")
        self.engine = engine
        self.notifier = notifier
        fixed = tuple(receivers)
        self.route = route if route is not None else (lambda _labels: fixed)
        self.group_by = tuple(group_by)
        self.group_wait = group_wait
        self.group_interval = group_interval
        self.repeat_interval = repeat_interval
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.jitter = jitter
        self.rng = rng if rng is not None else random.Random()
        self.max_groups = max_groups
        self.attempts: deque[DeliveryAttempt] = deque(maxlen=attempt_log_size)
        #: times a new group was refused because ``max_groups`` groups were open
        self.refused_groups = 0
        self._groups: dict[tuple[str, str], _Group] = {}
        self._member_of: dict[str, set[tuple[str, str]]] = {}
        self._routes: dict[str, tuple[tuple[str, str], ...]] = {}
        self._unplaced: set[str] = set()
        # a notifier that takes the group's labels (Alertmanager's payloads carry
        # groupLabels) gets them as a keyword; the protocol itself needs only three arguments
        try:
            params = inspect.signature(notifier.send).parameters
        except (TypeError, ValueError):
            params = MappingProxyType({})
        self._pass_group_labels = "group_labels" in params

    # -- public ----------------------------------------------------------------------
    def tick(self, now: datetime) -> list[DeliveryAttempt]:
        """Join new alerts to their groups, flush the groups that are due; returns the attempts."""
        self._sync(now)
        made: list[DeliveryAttempt] = []
        for gid, g in list(self._groups.items()):
            if now >= g.due:
                self._flush(gid, g, now, made)
        self.attempts.extend(made)
        return made

    def restore(self, delivered: Mapping[tuple[str, str], datetime], now: datetime) -> int:
        """Rebuild the groups of the engine's firing alerts after :meth:`AlertEngine.restore`,
        marking as already told what the previous leader delivered; returns how many
        alerts count as told.

        ``delivered``: the newest successful delivery per (receiver, group key), from the
        store's delivery attempts.  An alert that fired at or before its group's newest
        delivery, and is not muted now, counts as notified: it is not sent again until
        ``repeat_interval`` has passed since that delivery (as Alertmanager repeats), and
        its resolve is sent.  One that fired after it (the old leader died before telling)
        is news, sent at the group's next flush; a group that was never delivered waits
        ``group_wait`` from its first alert's start, as it would have.  What the
        dispatcher held before is dropped, as the engine's state was.
        """
        self._groups.clear()
        self._member_of.clear()
        self._routes.clear()
        self._unplaced = set()
        self._sync(now)
        engine = self.engine
        silences = engine.silences
        told = 0
        for gid, g in self._groups.items():
            firing = [
                s for fp in g.fps if (s := engine.get(fp)) is not None and s.state == "firing"
            ]
            if not firing:
                continue
            sent = delivered.get(gid)
            notified = {
                s.fingerprint
                for s in firing
                if sent is not None
                and s.starts_at <= sent
                and not (s.inhibited or silences.silenced_by(s.labels, now))
            }
            if sent is not None and notified:
                g.last_firing = set(notified)
                g.notified_firing = set(notified)
                g.last_sent_at = sent
                g.due = sent + self.group_interval  # past: looked at on the first tick
                told += len(notified)
            else:
                g.due = min(s.starts_at for s in firing) + self.group_wait
        return told

    def backoff(self, attempt: int) -> timedelta:
        """Delay before retry number ``attempt`` (1: after the first failure)."""
        base = self.backoff_initial * (2 ** min(attempt - 1, 30))
        delay: timedelta = min(base, self.backoff_max)
        if self.jitter:
            delay = delay * (1.0 - self.jitter * self.rng.random())
        return delay

    def groups(self) -> list[tuple[str, str, int]]:
        """(receiver, group key, alerts in it) for every group, for status pages."""
        return sorted((g.receiver, g.key, len(g.fps)) for g in tuple(self._groups.values()))

    # -- internals -------------------------------------------------------------------
    def _sync(self, now: datetime) -> None:
        member_of = self._member_of
        routes = self._routes
        fired = self.engine.take_fired()
        if self._unplaced:  # refused a group earlier (max_groups): try again
            fired.extend(s for fp in self._unplaced if (s := self.engine.get(fp)) is not None)
            self._unplaced = set()
        for s in fired:
            if s.state != "firing":
                continue  # resolved: told through the groups it is in, or nothing to tell
            fp = s.fingerprint
            gids = routes.get(fp)
            joined = member_of.get(fp)
            if gids is not None and joined is not None and len(joined) == len(gids):
                continue  # in every group it belongs to (the common case: nothing to do)
            if gids is None:
                key = group_key(s.labels, self.group_by)
                gids = routes[fp] = tuple((r, key) for r in dict.fromkeys(self.route(s.labels)))
            if joined is None:
                joined = member_of[fp] = set()
            for gid in gids:
                if gid in joined:
                    continue
                g = self._groups.get(gid)
                if g is None:
                    if len(self._groups) >= self.max_groups:
                        self.refused_groups += 1
                        if len(self._unplaced) < self.max_groups:
                            self._unplaced.add(fp)
                        continue
                    g = self._groups[gid] = _Group(gid[0], gid[1], now + self.group_wait)
                    g.labels = {k: s.labels[k] for k in self.group_by if k in s.labels}
                g.fps.add(fp)
                joined.add(gid)
            if not joined:
                del member_of[fp]

    def _leave(self, gid: tuple[str, str], fp: str) -> None:
        g = self._groups.get(gid)
        if g is not None:
            g.fps.discard(fp)
            g.notified_firing.discard(fp)
            g.resolved_alerts.pop(fp, None)
        groups = self._member_of.get(fp)
        if groups is not None:
            groups.discard(gid)
            if not groups:
                del self._member_of[fp]
                self._routes.pop(fp, None)

    def _flush(
        self, gid: tuple[str, str], g: _Group, now: datetime, made: list[DeliveryAttempt]
    ) -> None:
        engine = self.engine
        silences = engine.silences
        firing: list[Alert] = []
        firing_fps: set[str] = set()
        resolved: list[Alert] = []
        resolved_fps: set[str] = set()
        for fp in list(g.fps):
            s = engine.get(fp)
            if s is None or s.state == "pending":
                # dropped after its resolve window, or resolved and pending again: the
                # receiver that heard it fire still hears it resolve (from the snapshot)
                told = g.resolved_alerts.get(fp)
                if told is not None and fp in g.notified_firing:
                    resolved.append(told)
                    resolved_fps.add(fp)
                elif s is None or fp not in g.notified_firing:
                    self._leave(gid, fp)
                continue
            if s.state == "firing":
                g.resolved_alerts.pop(fp, None)
                if s.inhibited or silences.silenced_by(s.labels, now):
                    continue
                firing.append(s.alert())
                firing_fps.add(fp)
            elif fp in g.notified_firing:
                told = g.resolved_alerts[fp] = s.alert()
                resolved.append(told)
                resolved_fps.add(fp)
            else:
                self._leave(gid, fp)  # resolved without ever being notified: nothing to tell
        if not (firing or resolved):
            # everything muted (or all told): nothing to send; a later un-mute is news again
            g.last_firing = None if g.last_firing is None else set()
            g.last_resolved = set()
            needs = False
        else:
            acked = {fp for fp in firing_fps if getattr(engine.get(fp), "acked_by", None)}
            needs = self._needs_update(g, firing_fps, resolved_fps, now, acked)
        if not needs:
            g.attempt = 0
            if not g.fps:
                del self._groups[gid]
            else:
                g.due = now + self.group_interval
            return
        alerts = firing + resolved
        g.attempt += 1
        try:
            if self._pass_group_labels:
                self.notifier.send(g.receiver, g.key, alerts, group_labels=g.labels)  # type: ignore[call-arg]
            else:
                self.notifier.send(g.receiver, g.key, alerts)
        except Exception as exc:  # a receiver's failure is logged and retried, never raised
            if getattr(exc, "retryable", True) is False:
                # the same request cannot succeed (a 4xx: bad URL, revoked key): no backoff
                # loop; the group is tried again at its next group_interval, like a new flush
                made.append(
                    DeliveryAttempt(
                        g.receiver,
                        g.key,
                        g.attempt,
                        now,
                        "error",
                        len(alerts),
                        f"{type(exc).__name__}: {exc}",
                        None,
                    )
                )
                g.attempt = 0
                g.due = now + self.group_interval
                return
            retry_at = now + self.backoff(g.attempt)
            made.append(
                DeliveryAttempt(
                    g.receiver,
                    g.key,
                    g.attempt,
                    now,
                    "error",
                    len(alerts),
                    f"{type(exc).__name__}: {exc}",
                    retry_at,
                )
            )
            g.due = retry_at
            return
        made.append(DeliveryAttempt(g.receiver, g.key, g.attempt, now, "ok", len(alerts)))
        g.attempt = 0
        g.last_firing = firing_fps
        g.last_resolved = resolved_fps
        g.last_sent_at = now
        g.notified_firing |= firing_fps
        for fp in resolved_fps:  # told: a resolved alert leaves the group
            self._leave(gid, fp)
        if not g.fps:
            del self._groups[gid]
        else:
            g.due = now + self.group_interval

    def _needs_update(
        self,
        g: _Group,
        firing: set[str],
        resolved: set[str],
        now: datetime,
        acked: set[str] | None = None,
    ) -> bool:
        """Alertmanager's rule (notify/DedupStage.needsUpdate); an unchanged group whose
        firing alerts are all acknowledged is not repeated."""
        if g.last_firing is None:
            return bool(firing)
        if not firing <= g.last_firing:
            return True  # something new fires
        if not firing:
            return bool(g.last_firing) or bool(resolved - g.last_resolved)
        if not resolved <= g.last_resolved:
            return True
        assert g.last_sent_at is not None
        if acked and firing <= acked:
            return False  # acknowledged: someone is on it, no repeat (PagerDuty's ack)
        return now - g.last_sent_at >= self.repeat_interval
