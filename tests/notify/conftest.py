"""A real HTTP server on 127.0.0.1:0 that records what receivers POST to it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from inferwatch.observation import Alert, AlertStatus


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Sink:
    """What the server received, and how it answers the next requests."""

    url: str
    requests: list[Recorded] = field(default_factory=list)
    status: int = 200
    answer: bytes = b"ok"
    delay: float = 0.0


@pytest.fixture
def sink() -> Iterator[Sink]:
    state = Sink(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            state.requests.append(Recorded(self.path, dict(self.headers.items()), body))
            if state.delay:
                time.sleep(state.delay)
            try:
                self.send_response(state.status)
                self.send_header("Content-Length", str(len(state.answer)))
                self.end_headers()
                self.wfile.write(state.answer)
            except OSError:  # the client gave up (a timeout test)
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    state.url = f"http://{host!s}:{port}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def make_alert(
    name: str = "DriftHigh",
    *,
    status: AlertStatus = "firing",
    severity: str = "critical",
    model: str = "churn",
    summary: str = "drift share 0.62 above 0.5",
    **labels: str,
) -> Alert:
    ends = datetime(2026, 11, 29, 16, 30, 0, 250000, tzinfo=UTC) if status == "resolved" else None
    return Alert(
        labels={"alertname": name, "severity": severity, "model": model, **labels},
        annotations={"summary": summary, "description": f"{name} on {model}"},
        status=status,
        starts_at=datetime(2026, 11, 29, 16, 0, 5, 123000, tzinfo=UTC),
        ends_at=ends,
        value=0.62,
        generator_url="http://inferwatch.local/v1/alerts",
    )
