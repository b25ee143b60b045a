"""The thread runner: cycles on its own, hands transitions on, survives a bad cycle, stops."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta

from inferwatch.alerting import AlertEngine, AlertRunner, AlertTransition, Dispatcher, RuleOutcome
from inferwatch.observation import Alert
from tests.alerting._helpers import FakeClock, outcome


class Sink:
    def __init__(self) -> None:
        self.sent: list[int] = []
        self.rows: list[AlertTransition] = []
        self.done = threading.Event()

    def send(self, receiver: str, group_key: str, alerts: Sequence[Alert]) -> None:
        self.sent.append(len(alerts))
        self.done.set()


def test_runner_cycles_stores_transitions_and_survives_errors() -> None:
    clock = FakeClock()
    engine = AlertEngine(clock)
    sink = Sink()
    dispatcher = Dispatcher(engine, sink, group_wait=timedelta(0))
    calls = {"n": 0}
    errors: list[BaseException] = []

    def outcomes() -> list[RuleOutcome]:
        calls["n"] += 1
        clock.advance(1)
        if calls["n"] == 1:
            raise RuntimeError("rule source broke")
        return [outcome("warning", for_seconds=2)]

    runner = AlertRunner(
        engine,
        dispatcher,
        outcomes,
        interval=0.01,
        on_transitions=sink.rows.extend,
        on_error=errors.append,
    )
    runner.start()
    try:
        assert sink.done.wait(10), "no notification within 10 s"
    finally:
        runner.stop()
    assert not runner.running
    assert runner.errors == 1 and isinstance(errors[0], RuntimeError)
    assert [(r.from_state, r.to_state) for r in sink.rows[:2]] == [
        ("inactive", "pending"),
        ("pending", "firing"),
    ]
    assert sink.sent[0] == 1


def test_runner_calls_on_lead_before_its_first_cycle_and_after_each_gain_of_the_gate() -> None:
    """The server restores the alerts of the previous leader in ``on_lead``: once when the
    runner starts leading, again each time its gate opens after being shut (the lease
    lost and taken back), never while it keeps leading."""
    clock = FakeClock()
    engine = AlertEngine(clock)
    dispatcher = Dispatcher(engine, Sink(), group_wait=timedelta(0))
    gates = iter([True, True, False, False, True, True, False, True])
    events: list[str] = []
    done = threading.Event()

    def gate() -> bool:
        opened = next(gates, None)
        if opened is None:
            done.set()
            return False
        return opened

    def outcomes() -> list[RuleOutcome]:
        events.append("cycle")
        return []

    runner = AlertRunner(engine, dispatcher, outcomes, interval=0.001,
                         on_lead=lambda: events.append("lead"))  # fmt: skip
    runner.gate = gate
    runner.start()
    try:
        assert done.wait(10), "the gate sequence did not run out within 10 s"
    finally:
        runner.stop()
    assert events == ["lead", "cycle", "cycle", "lead", "cycle", "cycle", "lead", "cycle"]


def test_a_failing_on_lead_is_reported_and_the_cycle_runs() -> None:
    clock = FakeClock()
    engine = AlertEngine(clock)
    errors: list[BaseException] = []

    def on_lead() -> None:
        raise RuntimeError("store gone")

    runner = AlertRunner(engine, Dispatcher(engine, Sink()),
                         lambda: [outcome("warning", for_seconds=0)],
                         on_error=errors.append, on_lead=on_lead)  # fmt: skip
    moved = runner.run_once()
    assert [(t.from_state, t.to_state) for t in moved] == [("inactive", "firing")]
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
    runner.run_once()
    assert len(errors) == 1  # once per gain, not every cycle
