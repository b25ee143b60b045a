"""Restoring an engine and its dispatcher from what a previous engine left (what the store
gives a new evaluator leader): mutes are worked out again, a muted alert is not counted as
told, and what the engine held before is replaced."""

from __future__ import annotations

from datetime import timedelta

from inferwatch.alerting import AlertEngine, Dispatcher, StoredAlert
from tests.alerting._helpers import T0, FakeClock, outcome
from tests.alerting.test_dispatch import Receiver


def _stored(engine: AlertEngine) -> list[StoredAlert]:
    """What the store would say of ``engine``'s alerts (all firing here)."""
    return [
        StoredAlert(a.fingerprint, a.alert.labels, "firing", a.alert.starts_at,
                    a.alert.starts_at, a.alert.value or 0.0, a.alert.annotations)
        for a in engine.alerts()
    ]  # fmt: skip


def test_an_inhibited_warning_restored_is_news_once_its_critical_resolves() -> None:
    clock = FakeClock()
    old = AlertEngine(clock)
    old.evaluate([outcome("critical", for_seconds=0)])  # critical, and the warning under it
    assert [(a.alert.severity, a.inhibited) for a in old.alerts()] == [
        ("critical", False), ("warning", True)]  # fmt: skip

    clock.advance(60)
    new = AlertEngine(clock)
    assert new.restore(_stored(old)) == 2
    assert {a.alert.severity: a.inhibited for a in new.alerts()} == {
        "critical": False, "warning": True}  # fmt: skip
    rx = Receiver()
    rx.clock = clock
    dispatcher = Dispatcher(new, rx, group_wait=timedelta(seconds=30),
                            group_interval=timedelta(seconds=10),
                            repeat_interval=timedelta(hours=1))  # fmt: skip
    key = '{alertname="AccuracyLow",model="iris"}'
    # the old leader told the group at T0 + 30 s: the critical only (the warning was muted)
    assert dispatcher.restore({("default", key): T0 + timedelta(seconds=30)}, clock.now) == 1

    new.evaluate([outcome("critical", for_seconds=0)])
    dispatcher.tick(clock.now)
    assert rx.sent == []  # nothing changed: nothing sent
    clock.advance(10)
    new.evaluate([outcome("warning", for_seconds=0)])  # the critical clears, the warning holds
    dispatcher.tick(clock.now)
    assert [rows for *_, rows in rx.sent] == [
        [("iris", "critical", "resolved"), ("iris", "warning", "firing")]]  # fmt: skip


def test_restore_replaces_what_the_engine_held_and_skips_alerts_it_cannot_key() -> None:
    clock = FakeClock()
    engine = AlertEngine(clock)
    engine.evaluate([outcome("warning", model="wine", for_seconds=0)])
    iris = {"alertname": "AccuracyLow", "severity": "warning", "model": "iris"}
    kept = StoredAlert("x", iris, "pending", T0, T0, 0.5)
    odd = StoredAlert("y", {"alertname": "AccuracyLow", "severity": "page"}, "firing", T0,
                      T0, 0.5)  # fmt: skip
    assert engine.restore([kept, odd]) == 1
    (alert,) = engine.alerts()
    assert alert.alert.labels == iris and alert.alert.status == "pending"
    # the restored pending alert fires when its for (60 s) has run from T0, not from now
    clock.advance(59)
    assert engine.evaluate([outcome("warning", for_seconds=60)]) == []
    clock.advance(1)
    assert [(t.from_state, t.to_state) for t in engine.evaluate(
        [outcome("warning", for_seconds=60)])] == [("pending", "firing")]  # fmt: skip


def test_a_restored_alert_is_held_while_its_series_has_no_data() -> None:
    """After a restart the rates and quantiles have no value for a cycle or two: a restored
    alert missing from the outcomes is held through the grace; named as not breaching it
    resolves at once; still missing when the grace ends, it resolves then."""
    clock = FakeClock()
    iris = {"alertname": "AccuracyLow", "severity": "warning", "model": "iris"}
    wine = iris | {"model": "wine"}
    engine = AlertEngine(clock)
    engine.restore([StoredAlert("a", iris, "firing", T0, T0, 0.5),
                    StoredAlert("b", wine, "firing", T0, T0, 0.5)],
                   grace=timedelta(seconds=60), now=T0)  # fmt: skip
    clock.advance(15)
    assert engine.evaluate([]) == []  # no data yet: both held
    assert [a.alert.status for a in engine.alerts()] == ["firing", "firing"]
    clock.advance(15)
    moved = engine.evaluate([outcome(None, model="iris")])  # iris judged, and fine
    assert [(t.labels["model"], t.to_state) for t in moved] == [("iris", "resolved")]
    # a new alert is not carried: missing, it resolves as ever
    clock.advance(1)
    engine.evaluate([outcome("warning", rule="DriftHigh", for_seconds=0)])
    clock.advance(1)
    assert [t.labels["alertname"] for t in engine.evaluate([])] == ["DriftHigh"]
    clock.advance(28)  # 60 s after the restore: wine never had data, it resolves now
    moved = engine.evaluate([])
    assert [(t.labels["model"], t.to_state) for t in moved] == [("wine", "resolved")]
