"""Grouping, timers, mutes and delivery with retries, driven second by second on a fake clock."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from datetime import timedelta

import pytest

from inferwatch.alerting import AlertEngine, Dispatcher, RuleOutcome
from inferwatch.observation import Alert
from tests.alerting._helpers import FakeClock, outcome


class Receiver:
    """A notifier that records what it took, and refuses while ``down``."""

    def __init__(self) -> None:
        self.down = False
        self.down_for: set[str] = set()
        self.sent: list[tuple[float, str, str, list[tuple[str, str, str]]]] = []
        self.clock: FakeClock | None = None

    def send(self, receiver: str, group_key: str, alerts: Sequence[Alert]) -> None:
        if self.down or receiver in self.down_for:
            raise ConnectionRefusedError("receiver is down")
        assert self.clock is not None
        at = (self.clock.now - T_START).total_seconds()
        rows: list[tuple[str, str, str]] = sorted(
            (a.labels["model"], a.severity, str(a.status)) for a in alerts
        )
        self.sent.append((at, receiver, group_key, rows))


T_START = FakeClock().now


class Rig:
    def __init__(self, **kwargs: object) -> None:
        self.clock = FakeClock()
        self.engine = AlertEngine(self.clock)
        self.rx = Receiver()
        self.rx.clock = self.clock
        opts: dict[str, object] = {
            "group_wait": timedelta(seconds=30),
            "group_interval": timedelta(minutes=5),
            "repeat_interval": timedelta(hours=1),
        }
        opts.update(kwargs)
        self.dispatcher = Dispatcher(self.engine, self.rx, **opts)  # type: ignore[arg-type]
        self.outcomes: list[RuleOutcome] = []

    def run(self, seconds: int, step: int = 1) -> None:
        """Evaluate and tick every ``step`` seconds for ``seconds``."""
        for _ in range(0, seconds, step):
            self.engine.evaluate(self.outcomes, self.clock.now)
            self.dispatcher.tick(self.clock.now)
            self.clock.advance(step)


def test_group_wait_collects_alerts_that_start_together() -> None:
    rig = Rig()
    rig.outcomes = [outcome("warning", for_seconds=0)]
    rig.run(10)
    rig.outcomes.append(outcome("warning", for_seconds=0, feature="age"))  # same group
    rig.outcomes.append(outcome("warning", model="wine", for_seconds=0))  # another group
    rig.run(60)
    assert [(t, k, len(rows)) for t, _, k, rows in rig.rx.sent] == [
        (30.0, '{alertname="AccuracyLow",model="iris"}', 2),
        (40.0, '{alertname="AccuracyLow",model="wine"}', 1),
    ]


def test_group_interval_and_repeat_interval() -> None:
    rig = Rig()
    rig.outcomes = [outcome("warning", for_seconds=0)]
    rig.run(60)
    assert [t for t, *_ in rig.rx.sent] == [30.0]
    # a new alert joins the group: told at the next group_interval tick, not before
    rig.outcomes.append(outcome("warning", for_seconds=0, feature="age"))
    rig.run(300)
    assert [t for t, *_ in rig.rx.sent] == [30.0, 330.0]
    assert len(rig.rx.sent[-1][3]) == 2
    # unchanged: nothing until the repeat interval (1 h after the last send), then once per hour
    rig.run(3 * 3600 - 360, step=5)
    assert [t for t, *_ in rig.rx.sent] == [30.0, 330.0, 330.0 + 3600, 330.0 + 7200]


def test_resolution_is_sent_once_then_the_group_is_gone() -> None:
    rig = Rig()
    rig.outcomes = [outcome("warning", for_seconds=0)]
    rig.run(60)
    rig.outcomes = []
    rig.run(600)
    assert [(t, rows) for t, _, _, rows in rig.rx.sent] == [
        (30.0, [("iris", "warning", "firing")]),
        (330.0, [("iris", "warning", "resolved")]),
    ]
    assert rig.dispatcher.groups() == []


def test_alert_resolved_before_group_wait_is_never_sent() -> None:
    rig = Rig()
    rig.outcomes = [outcome("warning", for_seconds=0)]
    rig.run(10)
    rig.outcomes = []
    rig.run(1000)
    assert rig.rx.sent == []


def test_inhibited_warning_is_not_notified() -> None:
    rig = Rig()
    rig.outcomes = [
        outcome("critical", for_seconds=0),
        outcome("warning", model="wine", for_seconds=0),
    ]
    rig.run(60)
    sent = {k: rows for _, _, k, rows in rig.rx.sent}
    assert sent == {
        '{alertname="AccuracyLow",model="iris"}': [("iris", "critical", "firing")],
        '{alertname="AccuracyLow",model="wine"}': [("wine", "warning", "firing")],
    }


def test_silenced_alert_is_not_notified_until_the_silence_expires() -> None:
    rig = Rig()
    rig.engine.silences.add(
        ['model=~"ir.*"', "severity!=critical"],
        rig.clock.now,
        rig.clock.now + timedelta(minutes=10),
        author="ana",
    )
    rig.outcomes = [
        outcome("warning", for_seconds=0),
        outcome("warning", model="wine", for_seconds=0),
    ]
    rig.run(60)
    assert [rows for *_, rows in rig.rx.sent] == [[("wine", "warning", "firing")]]
    (iris,) = [a for a in rig.engine.alerts() if a.alert.labels["model"] == "iris"]
    assert iris.silenced_by and iris.alert.status == "firing"  # still in state, only muted
    rig.run(900)  # the silence ends at 600 s; the next group_interval tick tells the receiver
    assert [(t, rows) for t, *_, rows in rig.rx.sent][1] == (630.0, [("iris", "warning", "firing")])


def test_routes_to_several_receivers_each_with_its_own_group() -> None:
    rig = Rig(
        route=lambda labels: ("slack", "pager") if labels["severity"] == "critical" else ("slack",)
    )
    rig.outcomes = [outcome("critical", for_seconds=0, rule="LatencyHigh")]
    rig.run(40)
    assert sorted((r, rows[0][1]) for _, r, _, rows in rig.rx.sent) == [
        ("pager", "critical"),
        ("slack", "critical"),
    ]


def test_receiver_down_60s_gets_the_group_once_with_growing_backoff() -> None:
    rig = Rig()
    rig.rx.down = True
    rig.outcomes = [outcome("critical", for_seconds=0)]
    rig.run(40)  # group_wait ends at 30 s: first try fails
    rig.outcomes.append(outcome("critical", model="iris", for_seconds=0, feature="age"))
    rig.run(50)  # at 90 s the receiver is still down
    rig.rx.down = False
    rig.run(3600 - 91, step=1)
    errors = [a for a in rig.dispatcher.attempts if a.outcome == "error"]
    oks = [a for a in rig.dispatcher.attempts if a.outcome == "ok"]
    # tries at 30, 31, 33, 37, 45, 61, 93 s (1, 2, 4, 8, 16, 32 s apart: doubling, capped at 60)
    at = [(a.at - T_START).total_seconds() for a in rig.dispatcher.attempts]
    assert at == [30, 31, 33, 37, 45, 61, 93]
    gaps = [b - a for a, b in itertools.pairwise(at)]
    assert gaps == sorted(gaps) and len(set(gaps)) == len(gaps)  # growing backoff
    assert [a.attempt for a in errors] == [1, 2, 3, 4, 5, 6]
    assert all(a.error and "ConnectionRefusedError" in a.error for a in errors)
    assert all(a.retry_at is not None and a.retry_at > a.at for a in errors)
    # back: exactly one delivery of the group, with its current alerts (both series)
    assert len(oks) == 1 and oks[0].attempt == 7
    assert [(t, len(rows)) for t, _, _, rows in rig.rx.sent] == [(93.0, 2)]
    # and nothing more within the repeat interval; then exactly one repeat
    rig.run(3600)
    assert [t for t, *_ in rig.rx.sent] == [93.0, 93.0 + 3600]


def test_backoff_is_capped_and_jitter_only_shortens() -> None:
    engine = AlertEngine(FakeClock())
    d = Dispatcher(
        engine, Receiver(), backoff_initial=timedelta(seconds=1), backoff_max=timedelta(seconds=60)
    )
    assert [d.backoff(n).total_seconds() for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    j = Dispatcher(engine, Receiver(), jitter=0.5, rng=random.Random(1))
    for n in range(1, 10):
        got = j.backoff(n).total_seconds()
        assert d.backoff(n).total_seconds() * 0.5 <= got <= d.backoff(n).total_seconds()
    with pytest.raises(ValueError, match="jitter"):
        Dispatcher(engine, Receiver(), jitter=1.0)


def test_nothing_floods_when_the_receiver_stays_down() -> None:
    rig = Rig(max_groups=5, attempt_log_size=50)
    rig.rx.down = True
    rig.outcomes = [outcome("warning", model=f"m{i}", for_seconds=0) for i in range(20)]
    rig.run(6 * 3600, step=10)
    assert len(rig.dispatcher.groups()) == 5 and rig.dispatcher.refused_groups > 0
    assert len(rig.dispatcher.attempts) == 50
    # each group tries at most once a backoff_max (60 s) once backed off: ~360 tries in 6 h
    last = list(rig.dispatcher.attempts)
    per_group = {a.group_key for a in last}
    assert len(per_group) <= 5
    assert max(a.attempt for a in last) <= 6 * 3600 // 60 + 10


def test_resolution_reaches_a_receiver_down_longer_than_the_resolve_window() -> None:
    rig = Rig()
    rig.outcomes = [outcome("warning", for_seconds=0)]
    rig.run(60)
    rig.rx.down = True
    rig.outcomes = []
    rig.run(20 * 60)  # resolved at 60 s, dropped by the engine at 16 min; still down
    assert len(rig.engine) == 0
    rig.rx.down = False
    rig.run(120)
    assert [rows for *_, rows in rig.rx.sent] == [
        [("iris", "warning", "firing")],
        [("iris", "warning", "resolved")],
    ]
    assert rig.dispatcher.groups() == []


def test_refiring_reaches_a_receiver_that_was_told_it_resolved() -> None:
    rig = Rig(receivers=("slack", "pager"))
    rig.outcomes = [outcome("warning", for_seconds=0)]
    rig.run(60)  # both told it fires at 30 s
    rig.rx.down_for = {"pager"}
    rig.outcomes = []
    rig.run(300)  # resolved at 60 s; slack is told at 330 s, pager keeps failing
    rig.outcomes = [outcome("warning", for_seconds=0)]
    rig.run(100)  # fires again at 360 s
    slack = [(t, rows[0][2]) for t, r, _, rows in rig.rx.sent if r == "slack"]
    assert slack == [(30.0, "firing"), (330.0, "resolved"), (390.0, "firing")]
    assert [rows[0][2] for _, r, _, rows in rig.rx.sent if r == "pager"] == ["firing"]


class Refused(Exception):
    retryable = False


def test_a_non_retryable_failure_waits_for_the_next_group_interval() -> None:
    rig = Rig()
    calls: list[float] = []

    def send(receiver: str, group_key: str, alerts: Sequence[Alert]) -> None:
        calls.append((rig.clock.now - T_START).total_seconds())
        raise Refused("403 forbidden")

    rig.rx.send = send  # type: ignore[method-assign]
    rig.outcomes = [outcome("warning", for_seconds=0)]
    rig.run(700)
    assert calls == [30.0, 330.0, 630.0]  # no backoff loop, one try per group_interval
    assert all(a.retry_at is None and a.outcome == "error" for a in rig.dispatcher.attempts)
