"""Predict latency, ``store.durability`` buffered against strict, on SQLite.

Two ``inferwatch serve`` apps (the demo churn model, each on its own SQLite file, under
uvicorn on 127.0.0.1) get the same single-row requests from ``--clients`` threads,
alternating rounds so that machine noise hits both alike.  Buffered answers at once and
writes behind; strict answers only once the row is committed (the writer takes the buffer
at once, so concurrent requests share a commit).  Prints p50 and p99 of each and their
ratios (strict / buffered).

    .venv/bin/python bench/durability_latency.py [--requests 2000] [--clients 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn

from inferwatch.config import load_settings
from inferwatch.demo import make_customers, prepare_workdir, to_instances
from inferwatch.server import build_app


def serve(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(600):
        if server.started:
            break
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


def timed(base: str, bodies: list[bytes], clients: int) -> list[float]:
    """Latencies of ``bodies`` sent by ``clients`` threads, each with its own connection."""
    out: list[float] = []
    lock = threading.Lock()
    hdr = {"content-type": "application/json"}

    def run(part: list[bytes]) -> None:
        mine = []
        with httpx.Client(base_url=base, headers=hdr, timeout=30) as client:
            for body in part:
                t0 = time.perf_counter()
                resp = client.post("/v1/models/churn/predict", content=body)
                mine.append(time.perf_counter() - t0)
                if resp.status_code != 200:
                    sys.exit(f"unexpected {resp.status_code}: {resp.text}")
        with lock:
            out.extend(mine)

    threads = [threading.Thread(target=run, args=(bodies[i::clients],)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = prepare_workdir(workdir, port=0, n_reference=2000)
        apps = {}
        for mode in ("buffered", "strict"):
            store = {"url": f"sqlite:///{workdir}/{mode}.db", "durability": mode}
            apps[mode] = serve(build_app(load_settings(config, {"store": store})))
        rng = np.random.default_rng(1)
        bodies = [
            json.dumps({"instances": [r]}).encode()
            for r in to_instances(make_customers(args.requests, rng))
        ]
        per_round = max(len(bodies) // args.rounds, 1)
        lat: dict[str, list[float]] = {"buffered": [], "strict": []}
        for _, _, base in apps.values():
            timed(base, bodies[:50], args.clients)  # warm up
        for r in range(args.rounds):
            chunk = bodies[r * per_round : (r + 1) * per_round]
            for mode, (_, _, base) in apps.items():
                lat[mode] += timed(base, chunk, args.clients)
        for server, thread, _ in apps.values():
            server.should_exit = True
            thread.join(30)
    p = {m: (pct(v, 50), pct(v, 99)) for m, v in lat.items()}
    print(f"{len(lat['strict'])} single-row requests per mode, {args.clients} client(s), SQLite")
    for mode in ("buffered", "strict"):
        print(f"{mode:9} p50 {p[mode][0] * 1e3:7.3f} ms   p99 {p[mode][1] * 1e3:7.3f} ms")
    print(
        f"strict / buffered: p50 {p['strict'][0] / p['buffered'][0]:.2f}x, "
        f"p99 {p['strict'][1] / p['buffered'][1]:.2f}x"
    )


if __name__ == "__main__":
    main()
