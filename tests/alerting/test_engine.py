"""The state machine with a fake clock: for-durations, flapping, resolve, levels, inhibition."""

from __future__ import annotations

import sys
import threading
from datetime import timedelta

import pytest

from inferwatch.alerting import AlertEngine, AlertTransition, RuleOutcome
from inferwatch.observation import Alert
from tests.alerting._helpers import FakeClock, outcome


def moves(rows: list[AlertTransition]) -> list[tuple[str, str, str]]:
    return [(r.labels["severity"], r.from_state, r.to_state) for r in rows]


def states(engine: AlertEngine) -> dict[str, str]:
    return {a.alert.severity: a.alert.status for a in engine.alerts()}


def test_pending_fires_only_after_holding_for_its_duration() -> None:
    clock = FakeClock()
    engine = AlertEngine(clock)
    assert moves(engine.evaluate([outcome("warning")])) == [("warning", "inactive", "pending")]
    clock.advance(30)
    assert engine.evaluate([outcome("warning")]) == []
    clock.advance(29)
    assert engine.evaluate([outcome("warning")]) == []
    assert states(engine) == {"warning": "pending"}
    clock.advance(1)  # 60 s held
    rows = engine.evaluate([outcome("warning", value=0.7)])
    assert moves(rows) == [("warning", "pending", "firing")]
    assert rows[0].value == 0.7 and rows[0].at == clock.now
    (active,) = engine.alerts()
    assert active.alert.starts_at == clock.now
    assert active.alert.labels == {
        "model": "iris",
        "alertname": "AccuracyLow",
        "severity": "warning",
    }
    assert active.fingerprint == Alert(active.alert.labels, {}, "firing", clock.now).fingerprint
    assert rows[0].fingerprint == active.fingerprint


def test_zero_for_fires_at_once() -> None:
    engine = AlertEngine(FakeClock())
    rows = engine.evaluate([outcome("warning", for_seconds=0)])
    assert moves(rows) == [("warning", "inactive", "firing")]


def test_flapping_condition_never_fires_and_pending_goes_back_to_inactive() -> None:
    clock = FakeClock()
    engine = AlertEngine(clock)
    history = []
    for _ in range(10):  # holds 40 s, stops, holds again: the for-clock restarts each time
        history += engine.evaluate([outcome("warning")])
        clock.advance(40)
        history += engine.evaluate([outcome(None)])
        clock.advance(20)
    assert {m[2] for m in moves(history)} == {"pending", "inactive"}
    assert len(engine) == 0


def test_resolve_then_drop_after_retention_and_refire_is_a_new_alert() -> None:
    clock = FakeClock()
    engine = AlertEngine(clock, resolve_retention=timedelta(minutes=5))
    engine.evaluate([outcome("warning", for_seconds=0)])
    first_start = clock.now
    clock.advance(10)
    rows = engine.evaluate([outcome(None)])
    assert moves(rows) == [("warning", "firing", "resolved")]
    (a,) = engine.alerts()
    assert a.alert.status == "resolved" and a.alert.ends_at == clock.now
    assert a.alert.starts_at == first_start
    clock.advance(60)
    assert engine.evaluate([]) == [] and len(engine) == 1  # kept for the retention
    # back within the retention: a new alert (new start), pending again
    clock.advance(60)
    rows = engine.evaluate([outcome("warning", for_seconds=30)])
    assert moves(rows) == [("warning", "resolved", "pending")]
    (a,) = engine.alerts()
    assert a.alert.starts_at == clock.now and a.alert.ends_at is None
    clock.advance(1)
    engine.evaluate([])
    assert len(engine) == 0  # a pending alert that stops is forgotten
    engine.evaluate([outcome("warning", for_seconds=0)])
    clock.advance(1)
    engine.evaluate([])
    clock.advance(299)
    engine.evaluate([])
    assert len(engine) == 1
    clock.advance(1)
    engine.evaluate([])
    assert len(engine) == 0  # dropped once the resolve window is over


def test_absent_series_resolves() -> None:
    clock = FakeClock()
    engine = AlertEngine(clock)
    engine.evaluate(
        [outcome("critical", for_seconds=0), outcome("critical", model="wine", for_seconds=0)]
    )
    clock.advance(15)
    rows = engine.evaluate([outcome("critical", for_seconds=0)])  # wine's model went away
    assert sorted((r.labels["model"], r.labels["severity"], r.to_state) for r in rows) == [
        ("wine", "critical", "resolved"),
        ("wine", "warning", "resolved"),
    ]


def test_warning_to_critical_fires_critical_and_keeps_warning() -> None:
    clock = FakeClock()
    engine = AlertEngine(clock)
    engine.evaluate([outcome("warning")])
    clock.advance(60)
    assert moves(engine.evaluate([outcome("warning")])) == [("warning", "pending", "firing")]
    clock.advance(15)
    # worse: critical starts its own for-clock; the warning condition still holds
    assert moves(engine.evaluate([outcome("critical")])) == [("critical", "inactive", "pending")]
    assert states(engine) == {"warning": "firing", "critical": "pending"}
    assert not any(a.inhibited for a in engine.alerts())  # a pending critical mutes nothing
    clock.advance(60)
    assert moves(engine.evaluate([outcome("critical")])) == [("critical", "pending", "firing")]
    by_sev = {a.alert.severity: a for a in engine.alerts()}
    assert by_sev["warning"].inhibited and by_sev["warning"].alert.status == "firing"
    assert not by_sev["critical"].inhibited
    # back to warning only: critical resolves, the warning is no longer inhibited
    clock.advance(15)
    assert moves(engine.evaluate([outcome("warning")])) == [("critical", "firing", "resolved")]
    by_sev = {a.alert.severity: a for a in engine.alerts()}
    assert not by_sev["warning"].inhibited and by_sev["warning"].alert.status == "firing"


def test_inhibition_is_per_rule_and_labels() -> None:
    engine = AlertEngine(FakeClock())
    engine.evaluate(
        [
            outcome("critical", for_seconds=0),
            outcome("warning", model="wine", for_seconds=0),
            outcome("warning", rule="DriftHigh", for_seconds=0),
        ]
    )
    muted = {
        (a.alert.name, a.alert.labels["model"], a.alert.severity): a.inhibited
        for a in engine.alerts()
    }
    assert muted == {
        ("AccuracyLow", "iris", "critical"): False,
        ("AccuracyLow", "iris", "warning"): True,
        ("AccuracyLow", "wine", "warning"): False,
        ("DriftHigh", "iris", "warning"): False,
    }


def test_rule_without_warning_level_has_only_a_critical_alert() -> None:
    engine = AlertEngine(FakeClock())
    o = RuleOutcome("NoTraffic", {"model": "iris"}, "critical", 0.0, 0.0, levels=("critical",))
    assert moves(engine.evaluate([o])) == [("critical", "inactive", "firing")]


def test_label_order_does_not_split_a_series() -> None:
    clock = FakeClock()
    engine = AlertEngine(clock)
    engine.evaluate([RuleOutcome("R", {"model": "m", "feature": "f"}, "warning", 1.0, 10.0)])
    clock.advance(10)
    rows = engine.evaluate([RuleOutcome("R", {"feature": "f", "model": "m"}, "warning", 1.0, 10.0)])
    assert moves(rows) == [("warning", "pending", "firing")]
    assert len(engine) == 1


def test_clock_is_used_when_now_is_not_given() -> None:
    clock = FakeClock()
    engine = AlertEngine(clock)
    clock.advance(123)
    (row,) = engine.evaluate([outcome("warning")])
    assert row.at == clock.now


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"severity": "error"}, "severity"),
        ({"for_seconds": -1.0}, "for_seconds"),
        ({"for_seconds": float("nan")}, "for_seconds"),
        ({"levels": ()}, "levels"),
        ({"levels": ("page",)}, "levels"),
    ],
)
def test_bad_outcomes_are_refused_before_the_engine_sees_them(
    kwargs: dict[str, object], match: str
) -> None:
    base: dict[str, object] = {
        "rule": "R",
        "labels": {"model": "m"},
        "severity": "warning",
        "value": 1.0,
    }
    with pytest.raises(ValueError, match=match):
        RuleOutcome(**{**base, **kwargs})  # type: ignore[arg-type]


def test_alerts_can_be_read_while_another_thread_evaluates() -> None:
    """The server lists alerts from request threads while the runner thread evaluates."""
    clock = FakeClock()
    engine = AlertEngine(clock, resolve_retention=timedelta(0))
    engine.silences.add(["model=~m1.*"], clock.now, clock.now + timedelta(days=1), "ana")
    stop = threading.Event()
    failures: list[BaseException] = []
    cycles = [0]

    def churn() -> None:
        try:
            k = 0
            while not stop.is_set():  # a different half of 4,000 series breaches each cycle
                engine.evaluate(
                    [
                        outcome("warning", model=f"m{i}", for_seconds=0)
                        for i in range(k % 2, 4000, 2)
                    ]
                )
                k += 1
                cycles[0] = k
        except BaseException as exc:
            failures.append(exc)

    worker = threading.Thread(target=churn)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, so a race would show
    worker.start()
    try:
        reads = 0
        while cycles[0] < 20 and not failures:
            listed = engine.alerts()
            reads += 1
            assert all(a.alert.status in ("pending", "firing", "resolved") for a in listed)
    finally:
        stop.set()
        worker.join(30)
        sys.setswitchinterval(interval)
    assert failures == [] and reads > 0
