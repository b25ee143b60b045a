"""The acceptance scenario over real HTTP: a webhook receiver down for 60 s, then back.

The engine and dispatcher run on a fake clock; the receiver is the notify package's real
``WebhookReceiver`` posting to a real HTTP server on loopback that does not exist for the
first minute (connection refused) and then takes everything.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from pydantic import SecretStr

from inferwatch.alerting import AlertEngine, Dispatcher
from inferwatch.notify import Notifier, WebhookReceiver
from tests.alerting._helpers import T0, FakeClock, outcome


class Hook:
    def __init__(self, port: int) -> None:
        self.port = port
        self.posts: list[dict[str, Any]] = []
        self.server: HTTPServer | None = None

    def start(self) -> None:
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                posts.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    with socket.socket() as s:  # a free port, closed again: nothing listens there yet
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    h = Hook(port)
    yield h
    h.stop()


def test_webhook_down_for_60s_gets_each_group_once_when_back(hook: Hook) -> None:
    clock = FakeClock()
    engine = AlertEngine(clock)
    url = SecretStr(f"http://127.0.0.1:{hook.port}/hook")
    with Notifier([WebhookReceiver("hook", url, timeout=2.0)]) as notifier:
        dispatcher = Dispatcher(
            engine,
            notifier,
            receivers=("hook",),
            group_wait=timedelta(seconds=30),
            repeat_interval=timedelta(hours=1),
        )
        outcomes = [
            outcome("critical", model="iris", for_seconds=0),
            outcome("warning", model="wine", rule="DriftHigh", for_seconds=0),
        ]

        def run(seconds: int) -> None:
            for _ in range(seconds):
                engine.evaluate(outcomes, clock.now)
                dispatcher.tick(clock.now)
                clock.advance(1)

        run(90)  # groups due at 30 s; the receiver is down until 90 s
        assert hook.posts == []
        hook.start()
        run(3700)
    errors = [a for a in dispatcher.attempts if a.outcome == "error"]
    oks = [a for a in dispatcher.attempts if a.outcome == "ok"]
    for key in ('{alertname="AccuracyLow",model="iris"}', '{alertname="DriftHigh",model="wine"}'):
        at = [(a.at - T0).total_seconds() for a in errors if a.group_key == key]
        assert at == [
            30,
            31,
            33,
            37,
            45,
            61,
        ]  # 1, 2, 4, 8, 16 s apart; the 7th try, 32 s later, succeeds
        assert all("ConnectError" in (a.error or "") for a in errors)
        assert [(a.at - T0).total_seconds() for a in oks if a.group_key == key] == [93, 93 + 3600]
    # exactly one POST per group after the outage, then one per repeat interval
    first = sorted(hook.posts[:2], key=lambda p: p["groupKey"])
    assert len(hook.posts) == 4
    assert [(p["groupKey"], p["status"], len(p["alerts"])) for p in first] == [
        ('{alertname="AccuracyLow",model="iris"}', "firing", 1),  # its warning is inhibited
        ('{alertname="DriftHigh",model="wine"}', "firing", 1),
    ]
    assert first[0]["alerts"][0]["labels"]["severity"] == "critical"
    assert first[0]["groupLabels"] == {"alertname": "AccuracyLow", "model": "iris"}
