"""A new evaluator leader carries on the alerts the old one left active.

Two alerting services on one store (a SQLite file, and a PostgreSQL database), each with
its own connection, stand for two replicas (or one process and its restart): the first
fires an alert and a real webhook on loopback hears it once; the second takes over and,
reading the store, keeps it firing with no new notification, keeps its acknowledgement,
and resolves it once when the condition clears.  A fake clock drives both (no sleeps);
the signal is a gauge the test sets (``process_resident_memory_bytes``, what the
``memory`` signal reads).  Then the same through ``build_app`` servers in a row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Gauge

from inferwatch.config import AlertingSettings
from inferwatch.errors import StoreError
from inferwatch.server._alerting import AlertingService, build_alerting
from inferwatch.store import MemoryStore, SQLStore
from tests.notify.conftest import Sink, sink
from tests.server._versions_models import Toggled
from tests.server.conftest import Trained
from tests.server.test_alerts import toggled

__all__ = ["sink", "toggled"]  # fixtures

T0 = datetime(2026, 11, 29, 12, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Memory:
    """The signal: a gauge in a registry of its own, set by the test."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.gauge = Gauge("process_resident_memory_bytes", "rss", registry=self.registry)


@pytest.fixture
def memory() -> Memory:
    return Memory()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated store's URL: a SQLite file, or a fresh database in the test cluster."""
    url: str = (
        f"sqlite:///{tmp_path / 'store.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_db_url")
    )
    store = SQLStore(url)
    store.upgrade()
    store.close()
    return url


def _service(
    store: Any,
    sink: Sink,
    clock: Clock,
    memory: Memory,
    *,
    for_: str = "0s",
    group_wait: float = 0,
    repeat: str = "1h",
) -> AlertingService:
    settings = AlertingSettings(
        rules=[{"name": "MemoryHigh", "signal": "memory", "aggregation": "last",
                "warning": 1000, "for": for_, "summary": "{{ $value }} bytes"}],
        receivers=[{"name": "hook", "type": "webhook", "url": sink.url}],
        route={"group_wait": group_wait, "group_interval": 1, "repeat_interval": repeat},
    )  # fmt: skip
    service = build_alerting(
        settings, registry=memory.registry, store=store, instance="test:0", clock=clock
    )
    assert service is not None
    return service


def _told(sink: Sink, status: str) -> list[dict[str, Any]]:
    return [a for r in sink.requests for a in r.json()["alerts"] if a["status"] == status]


def _moves(rows: Sequence[Any]) -> list[tuple[str, str]]:
    return [(t.from_state, t.to_state) for t in rows]


def test_a_new_leader_keeps_a_firing_alert_its_acknowledgement_and_resolves_it_once(
    url: str, sink: Sink, memory: Memory
) -> None:
    clock = Clock()
    memory.gauge.set(5000)
    old = _service(SQLStore(url), sink, clock, memory)
    assert _moves(old.run_once()) == [("inactive", "firing")]
    assert len(_told(sink, "firing")) == 1
    (alert,) = old.engine.alerts()
    old.acknowledge(alert.fingerprint, "ana", "on it")
    clock.advance(15)
    assert old.run_once() == []
    # the old leader dies here: it stops cycling; its rows are in the store

    clock.advance(20)
    new = _service(SQLStore(url), sink, clock, memory)  # another replica, its own connection
    assert new.run_once() == []  # still true: no transition...
    clock.advance(30)
    assert new.run_once() == []
    assert len(_told(sink, "firing")) == 1  # ...and no second notification
    (carried,) = new.engine.alerts()
    assert carried.fingerprint == alert.fingerprint
    assert carried.alert.status == "firing"
    assert carried.alert.starts_at == alert.alert.starts_at == T0
    assert carried.acknowledged_by == "ana"
    assert carried.acknowledged_at == T0
    # rendered again by the new leader, as the old one rendered it
    told = _told(sink, "firing")[0]["annotations"]
    assert carried.alert.annotations["summary"] == told["summary"]

    memory.gauge.set(0)
    clock.advance(15)
    assert _moves(new.run_once()) == [("firing", "resolved")]
    clock.advance(15)
    new.run_once()
    resolved = _told(sink, "resolved")
    assert len(resolved) == 1 and resolved[0]["labels"]["alertname"] == "MemoryHigh"
    assert len(_told(sink, "firing")) == 1

    history = new.store.query_alert_history(fingerprint=alert.fingerprint)
    assert [(r["from_state"], r["to_state"]) for r in reversed(history)] == [
        ("inactive", "firing"), ("firing", "acknowledged"), ("firing", "resolved")]  # fmt: skip
    old.stop()
    new.stop()


def test_a_pending_alert_keeps_its_for_clock(url: str, sink: Sink, memory: Memory) -> None:
    clock = Clock()
    memory.gauge.set(5000)
    old = _service(SQLStore(url), sink, clock, memory, for_="60s")
    assert _moves(old.run_once()) == [("inactive", "pending")]
    clock.advance(30)
    new = _service(SQLStore(url), sink, clock, memory, for_="60s")
    assert new.run_once() == []  # pending since T0, not since the takeover
    assert new.engine.alerts()[0].alert.starts_at == T0
    clock.advance(31)  # 61 s after it started holding: it fires now, not at 90 s
    assert _moves(new.run_once()) == [("pending", "firing")]
    assert len(_told(sink, "firing")) == 1
    old.stop()
    new.stop()


def test_a_repeat_is_due_from_the_old_leaders_last_delivery(
    url: str, sink: Sink, memory: Memory
) -> None:
    clock = Clock()
    memory.gauge.set(5000)
    old = _service(SQLStore(url), sink, clock, memory, repeat="1h")
    old.run_once()
    assert len(_told(sink, "firing")) == 1
    clock.advance(30 * 60)
    new = _service(SQLStore(url), sink, clock, memory, repeat="1h")
    new.run_once()
    clock.advance(29 * 60)
    new.run_once()
    assert len(_told(sink, "firing")) == 1  # 59 min after the delivery: not yet
    clock.advance(2 * 60)
    new.run_once()
    assert len(_told(sink, "firing")) == 2  # an hour after the old leader's delivery
    old.stop()
    new.stop()


def test_an_alert_the_old_leader_never_told_is_told_once(
    url: str, sink: Sink, memory: Memory
) -> None:
    clock = Clock()
    memory.gauge.set(5000)
    old = _service(SQLStore(url), sink, clock, memory, group_wait=30)
    assert _moves(old.run_once()) == [("inactive", "firing")]
    assert sink.requests == []  # waiting group_wait when it died
    clock.advance(40)
    new = _service(SQLStore(url), sink, clock, memory, group_wait=30)
    new.run_once()  # group_wait counted from when it fired: due already
    clock.advance(5)
    new.run_once()
    assert len(_told(sink, "firing")) == 1
    old.stop()
    new.stop()


def test_a_new_leader_mutes_what_the_old_one_muted(url: str, sink: Sink, memory: Memory) -> None:
    """Silences made or expired through the old leader after the new one started are
    reloaded at the takeover: the new leader neither notifies a silenced alert nor keeps
    muting one whose silence was expired early."""
    clock = Clock()
    memory.gauge.set(5000)
    old = _service(SQLStore(url), sink, clock, memory)
    new = _service(SQLStore(url), sink, clock, memory)  # started: a follower
    early = new.add_silence(["alertname=Other"], starts_at=T0, ends_at=T0 + timedelta(hours=1),
                            author="bo")  # fmt: skip
    old.silences.load(old.store.load_silences(now=T0))  # as old's start would have
    old.expire_silence(early.id)  # ...and it ends early, through the old leader
    made = old.add_silence(["alertname=MemoryHigh"], starts_at=T0,
                           ends_at=T0 + timedelta(hours=1), author="ana")  # fmt: skip
    old.run_once()
    assert sink.requests == []  # silenced on the old leader
    clock.advance(30)
    new.run_once()  # takes over
    (alert,) = new.engine.alerts()
    assert alert.alert.status == "firing" and alert.silenced_by == (made.id,)
    assert sink.requests == []  # still muted: not notified by the new leader either
    assert new.silences.get(early.id).ends_at == T0  # type: ignore[union-attr]
    clock.advance(3600)  # the silence runs out: now it is news
    new.run_once()
    assert len(_told(sink, "firing")) == 1
    old.stop()
    new.stop()


class Unanswering(MemoryStore):
    """A store whose reads of the alert state fail (down at the takeover)."""

    def query_active_alerts(self, *, limit: int = 10_000) -> Any:
        raise StoreError("store is down (test)")


def test_a_store_that_does_not_answer_at_the_takeover_is_an_empty_start(
    sink: Sink, memory: Memory, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    memory.gauge.set(5000)
    service = _service(Unanswering(), sink, clock, memory)
    with caplog.at_level(logging.WARNING, logger="inferwatch.alerting"):
        assert _moves(service.run_once()) == [("inactive", "firing")]  # alerting goes on
    assert "could not read the alerts active before" in caplog.text
    assert service.store_errors == 1 and service.runner.errors == 0
    assert len(_told(sink, "firing")) == 1
    service.stop()


def test_a_restarted_server_keeps_its_firing_alert_and_acknowledgement(
    trained: Trained, tmp_path: Path, sink: Sink
) -> None:
    """The same through ``build_app`` and the routes: the first server fires and is
    acknowledged, then stops (releasing the evaluator lease); the next one on the same
    SQLite file lists the alert firing and acknowledged and does not notify it again; a
    third, whose rule no longer holds, resolves it and sends the resolve once."""
    from inferwatch.config import load_settings
    from inferwatch.server import build_app
    from tests.server.conftest import TestClient
    from tests.server.test_alerts import _auth, _config, _until

    def config(threshold: float) -> Path:
        rule = {"name": "MemoryUsed", "signal": "memory", "aggregation": "last",
                "warning": threshold, "for": "0s", "summary": "{{ $value }} bytes"}  # fmt: skip
        return _config(trained, tmp_path, sink, rules=[rule])

    def alerts(client: TestClient) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = client.get("/v1/alerts", headers=_auth("read")).json()[
            "alerts"
        ]
        return listed

    with TestClient(build_app(load_settings(config(1)))) as client:
        _until(lambda: _told(sink, "firing"))
        (first,) = alerts(client)
        fp = first["fingerprint"]
        ack = {"author": "ana", "comment": "on it"}
        done = client.post(f"/v1/alerts/{fp}/acknowledge", json=ack, headers=_auth("admin"))
        assert done.status_code == 200, done.text

    with TestClient(build_app(load_settings(config(1)))) as client:
        carried = _until(lambda: [a for a in alerts(client) if a["fingerprint"] == fp])[0]
        assert carried["state"] == "firing"
        assert carried["acknowledged_by"] == "ana"
        assert carried["starts_at"] == first["starts_at"]
        time.sleep(0.5)  # five evaluation cycles of the new server
        assert len(_told(sink, "firing")) == 1

    with TestClient(build_app(load_settings(config(1e15)))) as client:
        _until(lambda: _told(sink, "resolved"))
        time.sleep(0.5)
        assert [a["state"] for a in alerts(client)] == ["resolved"]
    (resolved,) = _told(sink, "resolved")
    (fired,) = _told(sink, "firing")
    # resolved at the third server's first cycle: the annotations are the stored ones
    assert resolved["annotations"]["summary"] == fired["annotations"]["summary"]


def test_a_restarted_server_holds_a_latency_alert_until_its_window_has_data(
    trained: Trained, tmp_path: Path, sink: Sink, toggled: type[Toggled]
) -> None:
    """A p99 over a window has no value until the restarted server has two samples of
    traffic: the restored alert is held meanwhile (not resolved and fired again), stays
    firing on the new traffic with no second notification, and resolves once."""
    from inferwatch.config import load_settings
    from inferwatch.server import build_app
    from tests.server.conftest import TestClient, instances, make_frame
    from tests.server.test_alerts import SLOW, _auth, _config, _received, _until

    path = _config(trained, tmp_path, sink)  # SlowModel: p99 over 3 s, critical 0.25 s
    body = {"instances": instances(make_frame(np.random.default_rng(1), 1))}

    def predict(client: TestClient) -> None:
        r = client.post("/v1/models/churn/predict", json=body, headers=_auth("predict"))
        assert r.status_code == 200

    def critical(client: TestClient) -> dict[str, Any]:
        alerts = client.get("/v1/alerts", headers=_auth("read")).json()["alerts"]
        found: dict[str, Any] = next(a for a in alerts if a["labels"]["severity"] == "critical")
        return found

    toggled.delay = SLOW
    with TestClient(build_app(load_settings(path))) as client:
        for _ in range(3):
            predict(client)
        _until(lambda: _received(sink, "firing", "critical"))

    with TestClient(build_app(load_settings(path))) as client:
        time.sleep(0.5)  # five cycles with no latency sample yet: held, not resolved
        assert critical(client)["state"] == "firing"
        for _ in range(3):
            predict(client)
        time.sleep(0.5)
        assert critical(client)["state"] == "firing"
        assert _received(sink, "resolved", "critical") == []
        assert len(_received(sink, "firing", "critical")) == 1
        toggled.delay = 0.0

        def resolved() -> list[dict[str, Any]]:
            predict(client)  # fast traffic pushes the slow requests out of the 3 s window
            return _received(sink, "resolved", "critical")

        _until(resolved, timeout=15)
        assert critical(client)["state"] == "resolved"
    assert len(_received(sink, "resolved", "critical")) == 1
    assert len(_received(sink, "firing", "critical")) == 1
