"""What monitoring costs one single-row request, in microseconds, on the request's path and off it.

A monitor is built as ``inferwatch serve`` builds one (``Monitor.from_reference`` on the
20-feature breast cancer model of ``bench/serve_throughput.py``: validator, Prometheus
catalogue, live drift windows, SQLite store).  Timed per single-row request, median of
rounds of 5,000:

- **request path**: what a served request spends on monitoring beyond calling the model:
  ``validate`` (the schema check a bare app does with pydantic) is shown apart from
  ``log`` (metrics, confidence, the row queued for the store: ``block=False``, as the
  server calls it), the part the target "at most 10 µs a request" is about;
Times are CPU time (``time.thread_time``, ``time.process_time`` for the writer), not wall
time, so a busy machine (other processes on the core) changes them little.

- **background**: the writer thread's share per row (the SQLite insert and the live drift
  window's profile update), measured by draining the rows ``log`` queued.

Anchor: the same ``log`` with ``metrics=None``, i.e. only the row record and the queue.

    .venv/bin/python bench/monitor_overhead.py [--rows 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from inferwatch.monitor import Monitor

N_FEATURES = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    data = load_breast_cancer(as_frame=True)
    X = data.frame.iloc[:, :N_FEATURES]
    X.columns = [re.sub(r"\W+", "_", c) for c in X.columns]
    y = np.where(data.target == 1, "benign", "malignant")
    model = LogisticRegression(max_iter=5000).fit(X.to_numpy(), y)
    instances = X.to_dict("records")
    proba = model.predict_proba(X.to_numpy())
    outputs = model.classes_[proba.argmax(axis=1)].tolist()
    probabilities = [dict(zip(model.classes_, p.tolist(), strict=True)) for p in proba]
    scores = proba.max(axis=1).tolist()

    folder = Path(tempfile.mkdtemp(prefix="iw-overhead-"))
    timings: dict[str, list[float]] = {
        "validate": [],
        "log": [],
        "log, no metrics": [],
        "writer": [],
    }
    for r in range(args.rounds):
        for with_metrics in (True, False):
            monitor = Monitor.from_reference(
                X,
                model="cancer",
                version="1",
                store=f"sqlite:///{folder}/r{r}-{with_metrics}.db",
                evaluation_interval=None,
                # the writer sleeps until close(), so log and writer are timed apart
                queue_size=args.rows + 10,
                batch_size=args.rows + 1,
                flush_interval=3600.0,
            )
            if not with_metrics:
                monitor.metrics = None
            monitor.start()
            n = len(instances)
            t0 = time.thread_time()
            for i in range(args.rows):
                monitor.validate([instances[i % n]])
            validate = (time.thread_time() - t0) / args.rows
            t0 = time.thread_time()
            for i in range(args.rows):
                j = i % n
                monitor.log(
                    "cancer",
                    "1",
                    [instances[j]],
                    [outputs[j]],
                    scores=[scores[j]],
                    probabilities=[probabilities[j]],
                    latency_seconds=0.001,
                    block=False,
                )
            logged = (time.thread_time() - t0) / args.rows
            t0 = time.process_time()  # the writer thread's CPU (this thread only waits)
            monitor.close()
            writer = (time.process_time() - t0) / args.rows
            if with_metrics:
                timings["validate"].append(validate)
                timings["log"].append(logged)
                timings["writer"].append(writer)
            else:
                timings["log, no metrics"].append(logged)
    med = {k: statistics.median(v) * 1e6 for k, v in timings.items()}
    print(f"validate (a bare app's pydantic check does this): {med['validate']:.1f} µs")
    print(
        f"log on the request path: {med['log']:.1f} µs (target <= 10 µs); "
        f"without metrics {med['log, no metrics']:.1f} µs"
    )
    print(
        f"writer thread, per row after the request (store + drift window): {med['writer']:.1f} µs"
    )


if __name__ == "__main__":
    main()
