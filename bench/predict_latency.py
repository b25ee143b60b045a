"""Single-row predict: inferwatch's monitored server against a bare FastAPI app, same model.

Both apps serve the demo churn model (scikit-learn pipeline) under uvicorn on 127.0.0.1;
one httpx client sends the same single-row requests to each, alternating rounds so that
machine noise hits both alike.  Prints medians and the ratio of requests per second
(inferwatch / bare; above 1 means faster than the bare app), and the cost of
``Monitor.log`` alone per request.

    .venv/bin/python bench/predict_latency.py [--requests 2000]
"""

from __future__ import annotations

import argparse
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
from fastapi import FastAPI
from pydantic import BaseModel

from inferwatch.config import load_settings
from inferwatch.demo import make_customers, prepare_workdir, to_instances
from inferwatch.models import load_model
from inferwatch.monitor import Monitor
from inferwatch.server import build_app
from inferwatch.store import MemoryStore


class Instance(BaseModel):
    age: int
    tenure_months: int
    income: float
    monthly_spend: float
    support_tickets: int
    plan: str
    region: str
    autopay: bool


class Body(BaseModel):
    instances: list[Instance]


def bare_app(model_path: Path) -> FastAPI:
    """What a user would write without inferwatch: pydantic body, predict_proba, JSON out."""
    adapter = load_model(model_path, feature_names=[
        "age", "tenure_months", "income", "monthly_spend", "support_tickets",
        "plan", "region", "autopay",
    ])  # fmt: skip

    app = FastAPI()

    @app.post("/v1/models/churn/predict")
    def predict(body: Body) -> dict[str, Any]:
        preds = adapter.predict([i.model_dump() for i in body.instances])
        return {
            "predictions": [
                {"prediction": p.value, "probabilities": p.probabilities} for p in preds
            ]
        }

    return app


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


def timed(client: httpx.Client, bodies: list[bytes]) -> list[float]:
    out = []
    for body in bodies:
        t0 = time.perf_counter()
        resp = client.post("/v1/models/churn/predict", content=body)
        out.append(time.perf_counter() - t0)
        if resp.status_code != 200:
            sys.exit(f"unexpected {resp.status_code}: {resp.text}")
    return out


def monitor_cost(n: int = 20_000, *, metrics: bool = False, repeat: int = 5) -> float:
    """Median seconds per single-row ``Monitor.log`` (the writer thread's share included),
    without live metrics or with the default Prometheus catalogue."""
    row = to_instances(make_customers(1, np.random.default_rng(0)))
    costs = []
    for _ in range(repeat):
        mon = Monitor(
            MemoryStore(),
            metrics="prometheus" if metrics else None,
            queue_size=n + 1,
            flush_interval=60,
        )
        t0 = time.perf_counter()
        for _ in range(n):
            mon.log("churn", "1", row, ["no"], scores=[0.8])
        costs.append((time.perf_counter() - t0) / n)
        mon.close()
    return statistics.median(costs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import json

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = prepare_workdir(workdir, port=0, n_reference=2000)
        settings = load_settings(config, {"store": {"url": "memory://"}})
        ours = serve(build_app(settings))
        bare = serve(bare_app(workdir / "model.joblib"))
        rng = np.random.default_rng(1)
        bodies = [
            json.dumps({"instances": [r]}).encode()
            for r in to_instances(make_customers(args.requests, rng))
        ]
        per_round = max(len(bodies) // args.rounds, 1)
        lat: dict[str, list[float]] = {"inferwatch": [], "bare": []}
        hdr = {"content-type": "application/json"}
        with (
            httpx.Client(base_url=ours[2], headers=hdr) as c_ours,
            httpx.Client(base_url=bare[2], headers=hdr) as c_bare,
        ):
            timed(c_ours, bodies[:50])  # warm up
            timed(c_bare, bodies[:50])
            for r in range(args.rounds):
                chunk = bodies[r * per_round : (r + 1) * per_round]
                lat["inferwatch"] += timed(c_ours, chunk)
                lat["bare"] += timed(c_bare, chunk)
        for server, thread, _ in (ours, bare):
            server.should_exit = True
            thread.join(30)
    med = {k: statistics.median(v) for k, v in lat.items()}
    print(f"requests per app      {len(lat['bare'])} single-row, sequential, one client")
    print(f"bare FastAPI median   {med['bare'] * 1e3:.3f} ms")
    print(f"inferwatch median     {med['inferwatch'] * 1e3:.3f} ms")
    print(f"ratio (req/s inferwatch / bare) {med['bare'] / med['inferwatch']:.2f}x")
    bare_log, with_metrics = monitor_cost(), monitor_cost(metrics=True)
    print(f"Monitor.log per single-row call, no metrics      {bare_log * 1e6:.1f} us")
    print(f"Monitor.log per single-row call, default metrics {with_metrics * 1e6:.1f} us")


if __name__ == "__main__":
    main()
