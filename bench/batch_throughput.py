"""Rows per second for 1,000-row predict requests: ``inferwatch serve`` against the bare app.

The servers and model of ``bench/serve_throughput.py`` (20-feature logistic regression,
server pinned to core 0, wrk to core 1), but each request carries 1,000 rows of the breast
cancer data, and wrk keeps 4 connections busy.  Prints the median rows/s of inferwatch
(every row validated, predicted, logged to SQLite and profiled into the drift windows) and
of the faster bare FastAPI app (pydantic validation and ``predict_proba``, no monitoring),
and their ratio.

    .venv/bin/python bench/batch_throughput.py [--rows 1000] [--seconds 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import httpx
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from serve_throughput import WRK_SCRIPT, free_port, prepare, server, start, wrk  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="iw-batch-"))
    prepare(folder)
    ref = pd.read_csv(folder / "ref.csv").drop(columns="diagnosis")
    rows = ref.sample(args.rows, replace=True, random_state=0).to_dict("records")
    script = folder / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=json.dumps({"instances": rows})))
    env = {**os.environ, "PYTHONPATH": str(folder)}
    results: dict[str, list[float]] = {"inferwatch": [], "bare-sync": [], "bare-async": []}
    for r in range(args.rounds):
        for name in results:
            port = free_port()
            argv, url = server(name, folder, port, folder / f"r{r}.db")
            proc = start(argv, port, folder, env)
            try:
                got = httpx.post(url, json={"instances": rows}, timeout=30).json()
                assert len(got["predictions"]) == args.rows, got
                wrk(url, script, args.connections, 1)
                rps, _ = wrk(url, script, args.connections, args.seconds)
                results[name].append(rps * args.rows)
            finally:
                proc.terminate()
                proc.wait(60)
        print(f"round {r + 1}: " + ", ".join(f"{n} {v[-1]:.0f} rows/s" for n, v in results.items()))
    med = {n: statistics.median(v) for n, v in results.items()}
    best = max(("bare-sync", "bare-async"), key=lambda n: med[n])
    print(
        f"inferwatch: median {med['inferwatch']:.0f} rows/s (target >= 200,000) in "
        f"{args.rows}-row requests; {best}: {med[best]:.0f} rows/s; "
        f"ratio {med['inferwatch'] / med[best]:.2f}x"
    )
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
