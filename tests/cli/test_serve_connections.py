"""``inferwatch serve`` against hostile connections, as a user runs it: a real process.

A liveness probe answers in under 100 ms while 200 clients are connected (16 of them
hammering predict), and 2,000 half-sent requests neither exhaust the server's file
descriptors nor keep a new client from ``/healthz``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
import yaml

from inferwatch.demo import make_customers, prepare_workdir, to_instances
from tests.cli.conftest import ServerProcess


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile")
    prepare_workdir(path, port=0, n_reference=1000)
    return path


def configured(workdir: Path, tmp_path: Path, **server: object) -> Path:
    config = yaml.safe_load((workdir / "inferwatch.yaml").read_text())
    config["server"].update(server)
    config["alerting"] = {}  # its evaluation loop is not what is measured here
    for key in ("path", "schema", "reference"):
        config["models"][0][key] = str(workdir / config["models"][0][key])
    path = tmp_path / "inferwatch.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


#: the load, in a process of its own so that the probe's timings are not the load's:
#: PREDICTING keep-alive clients sending predict requests back to back, CHECKING ones
#: asking /healthz ten times a second each, and IDLE connections holding half a request;
#: runs until stdin closes, then prints the statuses of the answers as JSON
LOAD = """
import asyncio, json, sys
host, port, predicting, checking, idle = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:6])
body = sys.argv[6].encode()
predict = (
    b"POST /v1/models/churn/predict HTTP/1.1\\r\\nHost: x\\r\\n"
    b"content-type: application/json\\r\\ncontent-length: %d\\r\\n\\r\\n" % len(body)
) + body
health = b"GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"
statuses = {}


async def client(stop, request, pause):
    reader, writer = await asyncio.open_connection(host, port)
    while not stop.is_set():
        await asyncio.sleep(pause)
        writer.write(request)
        head = await reader.readuntil(b"\\r\\n\\r\\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\\r\\n")[0])
        await reader.readexactly(length)
        key = f"{request.split()[1].decode()} {int(head.split()[1])}"
        statuses[key] = statuses.get(key, 0) + 1
    writer.close()


async def half_open(stop):
    _, writer = await asyncio.open_connection(host, port)
    writer.write(b"POST /v1/models/churn/predict HTTP/1.1\\r\\nHost: x\\r\\n")
    await stop.wait()
    writer.close()


async def main():
    stop = asyncio.Event()
    tasks = [asyncio.create_task(half_open(stop)) for _ in range(idle)]
    tasks += [asyncio.create_task(client(stop, predict, 0)) for _ in range(predicting)]
    tasks += [asyncio.create_task(client(stop, health, 0.1)) for _ in range(checking)]
    print("running", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    stop.set()
    await asyncio.gather(*tasks)
    print(json.dumps(statuses), flush=True)


asyncio.run(main())
"""


def probe_healthz(host: str, port: int) -> float:
    """Seconds for ``GET /healthz`` on a new connection, as a kubelet's probe makes it."""
    start = time.perf_counter()
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    took = time.perf_counter() - start
    assert answer.startswith(b"HTTP/1.1 200"), answer
    return took


def probe_p99(host: str, port: int, seconds: float) -> tuple[float, float, int]:
    """The probe's median and 99th percentile over ``seconds`` of probes 20 ms apart
    (enough probes for a 99th percentile that is not the maximum), and how many."""
    probe = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        probe.append(probe_healthz(host, port))
        time.sleep(0.02)
    probe.sort()
    return probe[len(probe) // 2], probe[int(0.99 * len(probe))], len(probe)


@pytest.mark.slow
def test_healthz_answers_a_probe_in_under_100ms_with_200_clients_connected(
    workdir: Path, tmp_path: Path
) -> None:
    # 200 connections: 16 predicting back to back (the acceptance load), 84
    # asking /healthz ten times a second, 100 holding half a request.  Before the connection
    # guard the probe took 0.5-1.1 s here (the issue: 1.3-3.0 s).  This machine is shared:
    # up to three 4 s windows, the first under 100 ms passes (a slow server fails all).
    body = json.dumps({"instances": to_instances(make_customers(1, np.random.default_rng(0)))})
    config = configured(workdir, tmp_path)
    server = ServerProcess(
        ["serve", "-c", str(config), "--store", f"sqlite:///{tmp_path / 'p.db'}"], cwd=tmp_path
    )
    windows = []
    try:
        server.wait_ready()
        url = urlsplit(server.base)
        assert url.hostname is not None and url.port is not None
        load = subprocess.Popen(
            [sys.executable, "-c", LOAD, url.hostname, f"{url.port}", "16", "84", "100", body],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert load.stdin is not None and load.stdout is not None
        assert load.stdout.readline().strip() == "running"
        time.sleep(0.5)
        for _ in range(3):
            windows.append(probe_p99(url.hostname, url.port, 4.0))
            if windows[-1][1] < 0.100:
                break
        load.stdin.close()
        statuses = json.loads(load.stdout.readline())
        load.wait(30)
    finally:
        server.stop()
    assert set(statuses) == {"/v1/models/churn/predict 200", "/healthz 200"}
    assert statuses["/v1/models/churn/predict 200"] > 50
    assert all(n > 30 for _, _, n in windows), windows
    report = [f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms" for p50, p99, _ in windows]
    assert windows[-1][1] < 0.100, report


def test_2000_half_sent_requests_neither_exhaust_fds_nor_keep_out_a_new_client(
    workdir: Path, tmp_path: Path
) -> None:
    limit = 100
    config = configured(workdir, tmp_path, max_connections=limit)
    server = ServerProcess(
        ["serve", "-c", str(config), "--store", f"sqlite:///{tmp_path / 'p.db'}"], cwd=tmp_path
    )
    socks: list[socket.socket] = []
    try:
        server.wait_ready()
        url = urlsplit(server.base)
        assert url.hostname is not None and url.port is not None
        before = open_fds(server.proc.pid)
        most = before
        for i in range(2000):
            sock = socket.create_connection((url.hostname, url.port), timeout=10)
            sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            socks.append(sock)
            if i % 100 == 0:
                most = max(most, open_fds(server.proc.pid))
        time.sleep(0.5)
        most = max(most, open_fds(server.proc.pid))
        # the limit (and the refused ones draining) bound the descriptors the attack holds
        assert most - before <= limit + 16
        start = time.monotonic()
        probe = httpx.get(f"{server.base}/healthz", timeout=5)
        assert probe.status_code == 200
        assert time.monotonic() - start < 1.0
        metrics = httpx.get(f"{server.base}/metrics").text
        evicted = next(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith('inferwatch_connections_closed_total{reason="evicted"}')
        )
        assert evicted >= 2000 - limit
    finally:
        for sock in socks:
            sock.close()
        server.stop()
