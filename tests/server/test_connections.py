"""Hostile connections against a real uvicorn server on loopback, set up as ``serve`` does.

Slow headers and slow bodies get 408 and a close, half-sent connections cannot hold the
server's connection slots against a new client, a server whose every connection is busy
refuses the next one with 503 JSON, and a flood of bad connections logs a few lines.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn

from inferwatch.cli._serve import _uvicorn_config
from inferwatch.config import ServerSettings
from inferwatch.models import ModelPrediction
from inferwatch.schema import infer_schema
from inferwatch.server._connections import ConnectionGuard, QuietLogFilter
from tests.server.conftest import AppFactory, Served


@dataclass
class Running:
    port: int
    guard: ConnectionGuard
    quiet: QuietLogFilter

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self, timeout: float = 10.0) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return sock


@contextmanager
def running(served: Served, open_health: bool = True, **server: Any) -> Iterator[Running]:
    """``served``'s app behind uvicorn, configured by ``serve``'s own function, port 0."""
    config, guard, quiet = _uvicorn_config(
        served.app, ServerSettings(port=0, **server), "WARNING", open_health=open_health
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not uv.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        port = uv.servers[0].sockets[0].getsockname()[1]
        yield Running(port, guard, quiet)
    finally:
        uv.should_exit = True
        thread.join(30)
        quiet.detach()


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    with suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def answer(raw: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body) if body else None


def closed(served: Served, reason: str) -> float:
    return served.sample("inferwatch_connections_closed_total", reason=reason)


def test_headers_that_do_not_arrive_in_time_get_408_and_a_close(make_app: AppFactory) -> None:
    served = make_app()
    with running(served, header_timeout_seconds=0.5) as server:
        slow = server.connect()
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow")  # never finished
        silent = server.connect()  # sends nothing at all
        start = time.monotonic()
        raw = read_all(slow)
        waited = time.monotonic() - start
        status, headers, body = answer(raw)
        assert status == 408
        assert headers["connection"] == "close"
        assert body["error"]["code"] == "request_timeout"
        assert "server.header_timeout_seconds" in body["error"]["message"]
        assert 0.4 < waited < 3.0
        assert read_all(silent) == b""  # an unused connection is closed unanswered
        assert closed(served, "header_timeout") == 2
        # the server still answers, and a prompt client is not timed out
        assert httpx.get(f"{server.base}/healthz").status_code == 200


def test_a_keep_alive_connection_gets_the_header_timeout_again_for_its_next_request(
    make_app: AppFactory,
) -> None:
    served = make_app()
    with running(served, header_timeout_seconds=0.6, keepalive_timeout_seconds=30) as server:
        sock = server.connect()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        time.sleep(0.3)
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # the next request, never finished
        status, _, body = answer(read_all(sock))
        assert status == 408
        assert body["error"]["code"] == "request_timeout"
        assert closed(served, "header_timeout") == 1


def test_a_body_that_does_not_arrive_in_time_gets_408_and_nothing_is_stored(
    make_app: AppFactory, good_rows: list[dict[str, Any]]
) -> None:
    served = make_app()
    handler = Collect()
    records = handler.records
    try:
        with running(served, body_timeout_seconds=0.5) as server:
            # after uvicorn.Config: its logging set-up replaces the logger's handlers
            logging.getLogger("uvicorn.error").addHandler(handler)
            sock = server.connect()
            sock.sendall(
                b"POST /v1/models/churn/predict HTTP/1.1\r\nHost: x\r\n"
                b"content-type: application/json\r\ncontent-length: 5000\r\n\r\n"
                b'{"instances": [{"age": 4'
            )
            start = time.monotonic()
            status, headers, body = answer(read_all(sock))
            waited = time.monotonic() - start
            assert status == 408
            assert headers["connection"] == "close"
            assert body["error"]["code"] == "request_timeout"
            assert "server.body_timeout_seconds" in body["error"]["message"]
            assert 0.4 < waited < 3.0
            assert closed(served, "body_timeout") == 1
            # the same route still serves a client that sends its body
            ok = httpx.post(f"{server.base}/v1/models/churn/predict", json={"instances": good_rows})
            assert ok.status_code == 200
        assert served.monitor.close()
        assert served.store.count_predictions("churn", "1") == len(good_rows)
    finally:
        logging.getLogger("uvicorn.error").removeHandler(handler)
    # a dropped slow body is not an application error with a traceback
    assert not [r for r in records if r.levelno >= logging.ERROR], [r.getMessage() for r in records]


def test_half_sent_connections_cannot_keep_a_new_client_from_healthz(
    make_app: AppFactory,
) -> None:
    served = make_app()
    limit, attackers = 64, 2000
    with running(served, max_connections=limit) as server:
        socks = []
        try:
            for _ in range(attackers):
                sock = server.connect()
                sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n")  # half a request
                socks.append(sock)
            deadline = time.monotonic() + 20
            while closed(served, "evicted") < attackers - limit:
                assert time.monotonic() < deadline, closed(served, "evicted")
                time.sleep(0.05)
            assert server.guard.open <= limit
            assert served.sample("inferwatch_open_connections") <= limit
            start = time.monotonic()
            probe = httpx.get(f"{server.base}/healthz", timeout=5)
            took = time.monotonic() - start
            assert probe.status_code == 200
            assert took < 1.0
            # evicted connections got a 503 JSON answer for their half request
            status, headers, body = answer(read_all(socks[0]))
            assert status == 503
            assert body["error"]["code"] == "connection_limit"
            assert headers["retry-after"] == "1"
        finally:
            for sock in socks:
                sock.close()


class BlockingModel:
    """A model whose calls wait until released: predict requests stay busy (inside the app,
    answered later) for as long as the test wants."""

    flavor = "python"
    classes = None

    def __init__(self) -> None:
        self.release = threading.Event()

    def predict(self, instances: Any) -> list[ModelPrediction]:
        self.release.wait(20)
        return [ModelPrediction(2 * row["x"]) for row in instances]


def test_past_the_limit_with_every_connection_busy_a_new_client_gets_503(
    make_app: AppFactory,
) -> None:
    model = BlockingModel()
    schema = infer_schema({"x": np.arange(50, dtype=np.float64)})
    served = make_app(extra_models=[("blocking", model, schema)])
    limit = 6
    body = b'{"instances": [{"x": 1.0}]}'
    request = (
        b"POST /v1/models/blocking/predict HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    with running(served, max_connections=limit) as server:
        busy = []
        try:
            for _ in range(limit):
                sock = server.connect()
                sock.sendall(request)
                busy.append(sock)
            deadline = time.monotonic() + 10
            # every request is inside the app, waiting for the model
            while served.sample("inferwatch_inflight_requests", model="blocking") < limit:
                assert time.monotonic() < deadline, "the requests did not reach the model"
                time.sleep(0.02)
            refused = httpx.get(f"{server.base}/healthz", timeout=5)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            assert refused.headers["connection"] == "close"
            error = refused.json()["error"]
            assert error["code"] == "connection_limit"
            assert "server.max_connections=6" in error["message"]
            assert closed(served, "refused") == 1
            model.release.set()
            for sock in busy:  # the busy requests finish as if nothing happened
                assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        finally:
            model.release.set()
            for sock in busy:
                sock.close()
        # their keep-alive connections are idle now: a new client takes one's place
        assert httpx.get(f"{server.base}/healthz", timeout=5).status_code == 200


def test_a_flood_of_bad_connections_logs_a_bounded_number_of_lines(
    make_app: AppFactory,
) -> None:
    served = make_app()
    handler = Collect()
    records = handler.records
    error_log = logging.getLogger("uvicorn.error")
    flood = 20_000
    try:
        with running(served) as server:
            error_log.addHandler(handler)  # after uvicorn.Config set up its logging
            server.quiet.interval = 3600.0  # one window, however slow this machine is

            def send_garbage(n: int) -> None:
                for _ in range(n):
                    with server.connect() as sock:
                        sock.sendall(b"\x16\x03\x01\x02\x00garbage\r\n\r\n")
                        read_all(sock)

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(send_garbage, [flood // 8] * 8))
            assert closed(served, "invalid_http") == flood
            lines = [r.getMessage() for r in records]
            invalid = [m for m in lines if m == "Invalid HTTP request received."]
            assert len(invalid) == server.quiet.burst  # the first few, then nothing
            assert server.quiet.suppressed_total >= flood - len(lines)
            server.quiet.interval = 0.0  # the window is over: the summary is written
            server.quiet.flush()
    finally:
        error_log.removeHandler(handler)
    summaries = [r.getMessage() for r in records if "more like" in r.getMessage()]
    assert len(summaries) == 1
    assert f"and {flood - server.quiet.burst:,} more like 'Invalid HTTP" in summaries[0]
    assert len(records) < 20


def test_an_open_healthz_is_answered_by_the_guard_and_a_keyed_one_by_the_app(
    make_app: AppFactory,
) -> None:
    served = make_app()
    with running(served) as server:
        fast = httpx.get(f"{server.base}/healthz")
        assert fast.status_code == 200 and fast.json() == {"status": "ok"}
        assert "x-request-id" not in fast.headers  # the app's middleware did not run
        # the app's own route says the same
        assert httpx.get(f"{server.base}/healthz?x=1").json() == fast.json()
        # pipelined behind a request the app answers: both answered, in order
        sock = server.connect()
        sock.sendall(
            b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        raw = read_all(sock)
        first, second = raw.split(b"HTTP/1.1 ")[1:]
        assert first.startswith(b"200") and b'"models"' in first
        assert second.startswith(b"200") and second.endswith(b'{"status":"ok"}')
    keyed = make_app(keys=True, auth={"open_health": False})
    with running(keyed, open_health=False) as server:
        assert httpx.get(f"{server.base}/healthz").status_code == 401


# -- the log filter on its own clock -------------------------------------------------------


def record(msg: str, name: str = "uvicorn.error") -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, None, None)


def test_the_quiet_filter_passes_a_burst_per_interval_and_then_summarises() -> None:
    now = [0.0]
    quiet = QuietLogFilter(burst=3, interval=10.0, clock=lambda: now[0])
    handler = Collect()
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    try:
        passed = [quiet.filter(record("Invalid HTTP request received.")) for _ in range(1000)]
        assert passed[:3] == [True] * 3 and not any(passed[3:])
        assert quiet.filter(record("Exception in ASGI application\n...")) is True  # other kind
        now[0] = 9.9
        assert quiet.filter(record("Invalid HTTP request received.")) is False
        assert handler.records == []
        now[0] = 10.0  # a new window: the summary of the old one, then lines pass again
        assert quiet.filter(record("Invalid HTTP request received.")) is True
        summaries = [r.getMessage() for r in handler.records]
        assert summaries == [
            "... and 998 more like 'Invalid HTTP request received.' in the last 10 s"
        ]
        for _ in range(5):
            quiet.filter(record("Invalid HTTP request received."))
        now[0] = 25.0
        quiet.flush()  # nothing more arrived: the guard's sweep writes the summary
        assert handler.records[-1].getMessage() == (
            "... and 3 more like 'Invalid HTTP request received.' in the last 15 s"
        )
    finally:
        logger.removeHandler(handler)


def test_the_quiet_filter_keys_messages_by_their_first_line_and_bounds_the_kinds() -> None:
    quiet = QuietLogFilter(burst=1, interval=10.0, clock=lambda: 0.0)
    # asyncio formats the transport (addresses) into its message: one kind all the same
    assert quiet.filter(record("Fatal error on transport\nprotocol: <a 1.2.3.4:5>", "asyncio"))
    assert not quiet.filter(record("Fatal error on transport\nprotocol: <b 6.7.8.9:1>", "asyncio"))
    for i in range(QuietLogFilter.MAX_KINDS * 2):  # unbounded kinds share one window
        quiet.filter(record(f"distinct message {i}"))
    assert len(quiet._windows) <= QuietLogFilter.MAX_KINDS + 1


FIT = """
import json, logging, resource, sys
from inferwatch.server._connections import fit_to_fd_limit
logging.basicConfig(level=logging.WARNING, format="%(message)s")
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2])))
fitted = fit_to_fd_limit(1024)
print(json.dumps([fitted, resource.getrlimit(resource.RLIMIT_NOFILE)[0]]))
"""


@pytest.mark.parametrize(
    ("soft", "hard", "fitted", "raised_to"),
    [
        (256, 4096, 1024, 1024 + 64 + 128),  # the soft limit is raised as far as needed
        (256, 600, (600 - 128) * 16 // 17, 600),  # the hard limit bites: fewer connections
    ],
)
def test_max_connections_fits_the_open_file_limit(
    soft: int, hard: int, fitted: int, raised_to: int
) -> None:
    # in a process of its own: a lowered hard limit cannot be raised again
    out = subprocess.run(
        [sys.executable, "-c", FIT, str(soft), str(hard)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == [fitted, raised_to]
    if fitted < 1024:
        assert "does not fit the open-file limit (600)" in out.stderr
    else:
        assert out.stderr == ""


def test_access_log_is_off_unless_asked(served: Served) -> None:
    """A line per request would cost throughput and repeat what the store records."""
    quiet_default = _uvicorn_config(served.app, ServerSettings(port=0), "INFO")
    quiet_default[2].detach()
    assert quiet_default[0].access_log is False
    asked = _uvicorn_config(served.app, ServerSettings(port=0, access_log=True), "INFO")
    asked[2].detach()
    assert asked[0].access_log is True
