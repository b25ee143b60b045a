"""The server's alerting service under a store outage: alerts still fire and reach the
receiver; the history and delivery attempts wait in memory and are written once the store
is back; a silence the store cannot take is refused, not half made."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from inferwatch.config import AlertingSettings
from inferwatch.errors import StoreError
from inferwatch.metrics import Metrics
from inferwatch.server._alerting import MAX_PENDING_ROWS, build_alerting
from inferwatch.store import MemoryStore
from tests.notify.conftest import Sink, sink

__all__ = ["sink"]


class FlakyStore(MemoryStore):
    """A MemoryStore whose alert writes fail while ``down``."""

    down = False

    def _fail_if_down(self) -> None:
        if self.down:
            raise StoreError("store is down (test)")

    def write_alert_transitions(self, rows: Sequence[Any]) -> int:
        self._fail_if_down()
        return super().write_alert_transitions(rows)

    def write_delivery_attempts(self, rows: Sequence[Any]) -> int:
        self._fail_if_down()
        return super().write_delivery_attempts(rows)

    def save_silence(self, silence: Any) -> None:
        self._fail_if_down()
        super().save_silence(silence)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 29, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _service(store: FlakyStore, sink: Sink, clock: Clock) -> Any:
    settings = AlertingSettings(
        rules=[{"name": "MemoryUsed", "signal": "memory", "aggregation": "last",
                "warning": 1, "for": "0s", "summary": "{{ $value }} bytes"}],
        receivers=[{"name": "hook", "type": "webhook", "url": sink.url}],
        route={"group_wait": 0, "group_interval": 1, "repeat_interval": "1h"},
    )  # fmt: skip
    metrics = Metrics(process=True)  # process_resident_memory_bytes: always above 1 byte
    service = build_alerting(
        settings, registry=metrics.registry, store=store, instance="test:0", clock=clock
    )
    assert service is not None
    return service


def test_alerts_reach_the_receiver_while_the_store_is_down_and_rows_follow(
    sink: Sink,
) -> None:
    store, clock = FlakyStore(), Clock()
    service = _service(store, sink, clock)
    store.down = True
    moved = service.run_once()
    assert [(t.from_state, t.to_state) for t in moved] == [("inactive", "firing")]
    assert len(sink.requests) == 1  # delivered although nothing could be stored
    assert sink.requests[0].json()["alerts"][0]["labels"]["alertname"] == "MemoryUsed"
    assert service.store_errors >= 1
    store.down = False
    assert store.query_alert_history() == []
    clock.now += timedelta(seconds=15)
    service.run_once()  # the buffered rows go in with this cycle
    history = store.query_alert_history()
    assert [(r["from_state"], r["to_state"]) for r in history] == [("inactive", "firing")]
    attempts = store.query_delivery_attempts()
    assert [(a["receiver"], a["outcome"]) for a in attempts] == [("hook", "ok")]
    assert service.dropped_rows == 0
    service.stop()


def test_the_buffer_is_bounded(sink: Sink) -> None:
    store, clock = FlakyStore(), Clock()
    service = _service(store, sink, clock)
    store.down = True
    rows = service.run_once() * (MAX_PENDING_ROWS + 5)
    service._on_transitions(rows)
    assert service.dropped_rows >= 5
    assert len(service._pending_transitions) == MAX_PENDING_ROWS
    store.down = False
    service.stop()  # a last write on stop
    assert len(store.query_alert_history(limit=MAX_PENDING_ROWS)) == MAX_PENDING_ROWS


def test_a_silence_the_store_refuses_is_not_made(sink: Sink) -> None:
    store, clock = FlakyStore(), Clock()
    service = _service(store, sink, clock)
    store.down = True
    with pytest.raises(StoreError):
        service.add_silence(["alertname=MemoryUsed"], starts_at=clock.now,
                            ends_at=clock.now + timedelta(hours=1), author="ana")  # fmt: skip
    assert service.silences.list(clock.now) == []
    service.run_once()
    assert len(sink.requests) == 1  # not muted by a silence that was never stored
    store.down = False
    made = service.add_silence(["alertname=MemoryUsed"], starts_at=clock.now,
                               ends_at=clock.now + timedelta(hours=1), author="ana")  # fmt: skip
    assert [s.id for s in store.load_silences(now=clock.now)] == [made.id]
    service.stop()


def test_history_older_than_the_retention_is_pruned_hourly(sink: Sink) -> None:
    store, clock = FlakyStore(), Clock()
    service = _service(store, sink, clock)
    service.retention = timedelta(days=1)
    service.run_once()  # fires: one history row, one delivery attempt
    assert len(store.query_alert_history()) == 1
    first = clock.now
    clock.now += timedelta(days=2)
    service.run_once()  # the first prune of this service: the day-old rows go...
    # ...but those a new leader carries the alert on with: it still fires (its firing
    # row), and its group's newest delivery tells that it was notified
    assert [(r["to_state"], r["at"]) for r in store.query_alert_history()] == [("firing", first)]
    second = clock.now  # this cycle's repeat of the still firing group
    assert [a["at"] for a in store.query_delivery_attempts()] == [second, first]
    clock.now += timedelta(days=2)
    service.run_once()  # a newer delivery tells the same: the first one goes
    assert [a["at"] for a in store.query_delivery_attempts()] == [clock.now, second]
    service.stop()
