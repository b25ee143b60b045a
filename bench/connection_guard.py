"""What the connection guard costs a request: uvicorn's httptools protocol with and without it.

The app is a bare ASGI callable answering ``{"status":"ok"}`` (nothing else per request),
so the protocol's own work is as large a share of a request as it can be.  Each server
runs under uvicorn with uvloop and httptools, access log off, pinned to core 0 with
``taskset``; wrk runs pinned to core 1 over keep-alive connections.  Rounds alternate
between ``stock`` (``HttpToolsProtocol``) and ``guarded``
(``ConnectionGuard(...).protocol()``, serve's defaults) so machine noise hits both alike.
Prints the median requests/s and p99 of each, and the server's CPU time per request
(user + system, from ``/proc/PID/stat``): on a machine shared with other work the
throughput swings, the CPU time a request costs much less.

``--micro`` measures the protocol alone, in this process: requests fed to one protocol
instance over a stand-in transport, the app the same bare callable, CPU time per request
(``time.thread_time``) of the stock protocol, of a subclass whose overrides only call
``super()`` (the price of overriding at all), and of the guarded one, in alternating runs.

A further figure, ``--new-connections``, has wrk send ``Connection: close`` so every request
is a new connection (admission, the deadline dicts and release all run per request).

    .venv/bin/python bench/connection_guard.py [--connections 50] [--seconds 5] [--rounds 3]

Needs Debian's ``wrk`` and ``taskset`` (util-linux), and at least 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SERVER = """
import sys
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from inferwatch.server._connections import ConnectionGuard, ConnectionLimits

BODY = b'{"status":"ok"}'
START = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"application/json"), (b"content-length", b"15")]}
END = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send(START)
    await send(END)


mode, port = sys.argv[1], int(sys.argv[2])
http = HttpToolsProtocol if mode == "stock" else ConnectionGuard(ConnectionLimits()).protocol()
uvicorn.run(app, host="127.0.0.1", port=port, http=http, loop="uvloop", access_log=False,
            log_level="warning", lifespan="off")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(port: int, connections: int, seconds: int, close: bool) -> tuple[float, float, int]:
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if close:
        cmd += ["-H", "Connection: close"]
    out = subprocess.run(
        [*cmd, f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99 is not None, out
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    total = re.search(r"(\d+) requests in", out)
    assert total is not None, out
    return rps, float(p99.group(1)) * scale, int(total.group(1))


class _Transport:
    """Just enough of an asyncio transport for a protocol to answer into."""

    closing = False

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, key: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5555)}.get(key)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def micro(rounds: int, n: int = 5000) -> None:
    import uvloop
    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    from inferwatch.server._connections import ConnectionGuard, ConnectionLimits

    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    end = {"type": "http.response.body", "body": b"{}"}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(start)
        await send(end)

    class PassThrough(HttpToolsProtocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)

        def on_headers_complete(self) -> None:
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()

    config = Config(app, access_log=False, log_level="warning", lifespan="off")
    config.load()
    request = b"GET /v1/models HTTP/1.1\r\nHost: x\r\nUser-Agent: wrk\r\n\r\n"

    async def per_request(cls: type[HttpToolsProtocol]) -> float:
        proto = cls(config=config, server_state=ServerState(), app_state={})
        proto.connection_made(_Transport())  # type: ignore[arg-type]
        t0 = time.thread_time()
        for _ in range(n):
            proto.data_received(request)
            while not proto.cycle.response_complete:
                await asyncio.sleep(0)
        took = time.thread_time() - t0
        proto.connection_lost(None)
        return took / n * 1e6

    async def run() -> None:
        guarded = ConnectionGuard(ConnectionLimits()).protocol()
        stock, passing, guarding = [], [], []
        for _ in range(rounds):
            a = await per_request(HttpToolsProtocol)
            p = await per_request(PassThrough)
            g = await per_request(guarded)
            b = await per_request(HttpToolsProtocol)
            stock.append((a + b) / 2)
            passing.append(p - (a + b) / 2)
            guarding.append(g - (a + b) / 2)
        q = statistics.quantiles
        print(f"stock protocol + bare app: {statistics.median(stock):.1f} us CPU per request")
        for name, extra in (("pass-through subclass", passing), ("guarded", guarding)):
            lo, _, hi = q(extra, n=4)
            print(f"{name}: {statistics.median(extra):+.2f} us (quartiles {lo:+.2f}, {hi:+.2f})")

    uvloop.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--new-connections", action="store_true")
    parser.add_argument("--micro", action="store_true")
    args = parser.parse_args()
    if args.micro:
        micro(max(args.rounds, 11))
        return
    results: dict[str, list[tuple[float, float, float]]] = {"stock": [], "guarded": []}
    for _ in range(args.rounds):
        for mode in results:
            port = free_port()
            proc = subprocess.Popen(
                ["taskset", "-c", "0", sys.executable, "-c", SERVER, mode, str(port)]
            )
            try:
                wait_up(port)
                run_wrk(port, args.connections, 1, args.new_connections)  # warm-up
                cpu = cpu_seconds(proc.pid)
                rps, p99, n = run_wrk(port, args.connections, args.seconds, args.new_connections)
                cpu_us = (cpu_seconds(proc.pid) - cpu) / n * 1e6
                results[mode].append((rps, p99, cpu_us))
            finally:
                proc.terminate()
                proc.wait(10)
    medians, cpus = {}, {}
    for mode, rows in results.items():
        rps = statistics.median(r for r, _, _ in rows)
        p99 = statistics.median(p for _, p, _ in rows)
        cpu = statistics.median(c for _, _, c in rows)
        medians[mode], cpus[mode] = rps, cpu
        print(
            f"{mode:8} {rps:8.0f} req/s  p99 {p99:6.2f} ms  CPU {cpu:6.1f} us/request  "
            f"rounds {[round(r) for r, _, _ in rows]} {[round(c, 1) for _, _, c in rows]}"
        )
    print(
        f"guarded/stock requests/s {medians['guarded'] / medians['stock']:.3f}; "
        f"CPU per request {cpus['guarded'] - cpus['stock']:+.1f} us"
    )


if __name__ == "__main__":
    main()
