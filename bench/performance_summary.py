"""Rows per second into the performance summaries: ``observe`` + ``add_labels`` per batch.

The live path feeds each window's summary in small batches (a request's rows, a feedback
call's labels), so the figure that matters is the rate on 1,000-row batches, not on one
big array.  On a shared machine the wall time counts other processes' turns, so the CPU
time (``time.process_time``; numpy runs these on one thread) is printed beside it.
Classification: 2 and 10 classes with an (n, k) score matrix on 200 bins; regression:
predictions and labels.  Goal: >= 1M rows/s each.  Prints the median of ``--runs``
timings of ``--rows`` rows.

    .venv/bin/python bench/performance_summary.py --rows 1000000 --batch 1000 --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from inferwatch.performance import ClassificationSummary, RegressionSummary


def _classification(k: int, rows: int, batch: int) -> Callable[[], None]:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(k), rows)
    yp = p.argmax(axis=1).astype(np.intp)
    yt = np.where(rng.random(rows) < 0.8, yp, rng.integers(0, k, rows)).astype(np.intp)

    def run() -> None:
        s = ClassificationSummary([f"c{i}" for i in range(k)])
        for i in range(0, rows, batch):
            s.observe(yp[i : i + batch], p[i : i + batch])
            s.add_labels(yt[i : i + batch], yp[i : i + batch], p[i : i + batch])

    return run


def _regression(rows: int, batch: int) -> Callable[[], None]:
    rng = np.random.default_rng(0)
    yt = rng.normal(100.0, 30.0, rows)
    yp = yt + rng.normal(0.0, 10.0, rows)

    def run() -> None:
        s = RegressionSummary()
        for i in range(0, rows, batch):
            s.observe(yp[i : i + batch])
            s.add_labels(yt[i : i + batch], yp[i : i + batch])

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    cases = {
        "classification k=2": _classification(2, args.rows, args.batch),
        "classification k=10": _classification(10, args.rows, args.batch),
        "regression": _regression(args.rows, args.batch),
    }
    for name, run in cases.items():
        wall, cpu = [], []
        for _ in range(args.runs):
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        w, c = statistics.median(wall), statistics.median(cpu)
        print(
            f"{name:20s} {args.rows / w / 1e6:5.2f} M rows/s wall ({w:.3f} s), "
            f"{args.rows / c / 1e6:5.2f} M rows/s of CPU time ({c:.3f} s)"
        )


if __name__ == "__main__":
    main()
