"""Requests per second under wrk: ``inferwatch serve`` against the bare FastAPI app it replaces.

The model is a logistic regression on 20 numeric features of scikit-learn's breast cancer
data (the issue's "20-feature logistic regression").  Three servers serve it, one at a
time, each pinned to core 0 with ``taskset`` while wrk runs pinned to core 1:

- ``inferwatch``: ``inferwatch serve --model model.joblib --reference ref.csv`` with its
  defaults (SQLite store, every prediction logged, metrics, drift windows);
- ``bare-sync`` and ``bare-async``: what a user writes without inferwatch, a FastAPI app
  with a pydantic body model calling ``predict_proba`` on a numpy row, in a ``def`` and in
  an ``async def`` handler.  No monitoring at all.

All run under the same uvicorn (with uvloop and httptools when installed, as ``inferwatch``
gets them).  Rounds alternate between the servers so that machine noise hits each alike;
the script prints the median requests/s and p99 of each and the ratio of inferwatch's
requests/s to the faster bare app's.  Single-row requests, keep-alive connections.

    .venv/bin/python bench/serve_throughput.py [--connections 64] [--seconds 5] [--rounds 3]

Needs Debian's ``wrk`` and ``taskset`` (util-linux), and at least 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import joblib
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

N_FEATURES = 20
HERE = Path(__file__).resolve().parent
PYTHON = sys.executable


BARE_APP = """
import joblib
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel, create_model

FEATURES = {features!r}
model = joblib.load({model!r})
Instance = create_model("Instance", **{{f: (float, ...) for f in FEATURES}})


class Body(BaseModel):
    instances: list[Instance]


app = FastAPI()


def _answer(body: Body) -> dict:
    X = np.array([[getattr(i, f) for f in FEATURES] for i in body.instances])
    proba = model.predict_proba(X)
    labels = model.classes_[proba.argmax(axis=1)]
    return {{"predictions": [
        {{"prediction": str(c), "probabilities": dict(zip(map(str, model.classes_), p.tolist()))}}
        for c, p in zip(labels, proba)
    ]}}


@app.post("/sync/predict")
def predict_sync(body: Body) -> dict:
    return _answer(body)


@app.post("/async/predict")
async def predict_async(body: Body) -> dict:
    return _answer(body)
"""

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{body}]]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(folder: Path) -> tuple[list[str], dict[str, float]]:
    data = load_breast_cancer(as_frame=True)
    X = data.frame.iloc[:, :N_FEATURES]
    X.columns = [re.sub(r"\W+", "_", c) for c in X.columns]
    y = np.where(data.target == 1, "benign", "malignant")
    model = LogisticRegression(max_iter=5000).fit(X.to_numpy(), y)
    joblib.dump(model, folder / "model.joblib")
    ref = X.copy()
    ref["diagnosis"] = model.predict(X.to_numpy())
    ref.to_csv(folder / "ref.csv", index=False)
    (folder / "bare_app.py").write_text(
        BARE_APP.format(features=list(X.columns), model=str(folder / "model.joblib"))
    )
    instance = {str(c): float(X.iloc[0][c]) for c in X.columns}
    return list(X.columns), instance


def start(argv: list[str], port: int, cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["taskset", "-c", "0", *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code < 500:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{argv} exited with {proc.returncode}")
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{argv} did not start")


def server(name: str, folder: Path, port: int, db: Path) -> tuple[list[str], str]:
    """The command line and predict URL of ``inferwatch`` or ``bare-sync``/``bare-async``."""
    if name == "inferwatch":
        exe = str(Path(PYTHON).parent / "inferwatch")
        argv = [exe, "serve", "--model", str(folder / "model.joblib"),
                "--reference", str(folder / "ref.csv"), "--prediction", "diagnosis",
                "--name", "cancer", "--port", str(port), "--store", f"sqlite:///{db}"]  # fmt: skip
        return argv, f"http://127.0.0.1:{port}/v1/models/cancer/predict"
    uvicorn = [PYTHON, "-m", "uvicorn", "--log-level", "warning", "--no-access-log"]
    argv = [*uvicorn, "bare_app:app", "--port", str(port)]
    return argv, f"http://127.0.0.1:{port}/{name.split('-')[1]}/predict"


def wrk(url: str, script: Path, connections: int, seconds: float) -> tuple[float, float]:
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
         "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    assert p99 is not None, out
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0}[p99.group(2)]
    return rps, float(p99.group(1)) * scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        sys.exit("needs wrk (apt install wrk) and taskset")
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("needs 2 cores: one for the server, one for wrk")

    folder = Path(tempfile.mkdtemp(prefix="iw-throughput-"))
    _, instance = prepare(folder)
    body = json.dumps({"instances": [instance]})
    script = folder / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=body))
    env = {**os.environ, "PYTHONPATH": str(folder)}

    results: dict[str, list[tuple[float, float]]] = {
        "inferwatch": [],
        "bare-sync": [],
        "bare-async": [],
    }
    for r in range(args.rounds):
        for name in results:
            port = free_port()
            argv, url = server(name, folder, port, folder / f"r{r}.db")
            proc = start(argv, port, folder, env)
            try:
                # the answers agree before they are timed
                got = httpx.post(url, json={"instances": [instance]}, timeout=10).json()
                assert got["predictions"][0]["prediction"] in ("benign", "malignant"), got
                wrk(url, script, args.connections, 1.0)  # warm-up
                results[name].append(wrk(url, script, args.connections, args.seconds))
            finally:
                proc.terminate()
                proc.wait(30)
        print(f"round {r + 1}: " + ", ".join(f"{n} {v[-1][0]:.0f}/s" for n, v in results.items()))

    med = {
        n: (statistics.median(x for x, _ in v), statistics.median(p for _, p in v))
        for n, v in results.items()
    }
    for name, (rps, p99) in med.items():
        print(f"{name:>11}: median {rps:8.0f} requests/s, p99 {p99 * 1e3:6.1f} ms")
    best = max(("bare-sync", "bare-async"), key=lambda n: med[n][0])
    ratio = med["inferwatch"][0] / med[best][0]
    print(
        f"inferwatch / {best}: {ratio:.2f}x the requests/s (target >= 1.3x); "
        f"p99 {med['inferwatch'][1] * 1e3:.1f} ms vs {med[best][1] * 1e3:.1f} ms "
        f"({args.connections} connections, single-row requests, {args.rounds} rounds)"
    )
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
