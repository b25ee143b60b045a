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
