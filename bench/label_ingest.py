"""Label ingestion into the live performance summaries: labels a second.

A binary classifier's predictions (with class probabilities) are folded into the live
performance windows, then their labels arrive in batches of ``--batch`` (the size of a
feedback request or an ingest page) and :meth:`PerformanceWindows.add_labels` joins each
to its window by prediction time, updates the window's summary, its labelled view and
its stream detectors.  The store write (an upsert per batch) is not part of this figure:
``bench/label_join.py`` measures the store side.  Goal: at least 200k labels/s.  The
anchor is River's streaming ``metrics.Accuracy`` + ``metrics.ROCAUC`` updated one pair at a
time on the same labels, measured in the same run.

    .venv/bin/python bench/label_ingest.py [--rows 200000] [--batch 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

import numpy as np

from inferwatch.concept import ErrorStreamMonitor
from inferwatch.observation import LabelledPrediction, PredictionRecord
from inferwatch.performance_windows import PerformanceSetup, PerformanceWindows

NOW = 1_800_000_000.0


def fixture(rows: int) -> tuple[list[PredictionRecord], list[str]]:
    rng = np.random.default_rng(0)
    p1 = rng.random(rows)
    ts = NOW - rng.random(rows) * 3 * 3600
    records = [
        PredictionRecord(
            f"p{i}",
            "m",
            "1",
            datetime.fromtimestamp(ts[i], UTC),
            {},
            "1" if p1[i] >= 0.5 else "0",
            float(max(p1[i], 1 - p1[i])),
            None,
            None,
            {"0": float(1 - p1[i]), "1": float(p1[i])},
        )
        for i in range(rows)
    ]
    labels = ["1" if u < p else "0" for u, p in zip(rng.random(rows), p1, strict=True)]
    return records, labels


def ours(records: list[PredictionRecord], labels: list[str], batch: int) -> float:
    errors = np.random.default_rng(1).random(10_000) < 0.25
    setup = PerformanceSetup(
        "m", "1", "classification", classes=("0", "1"),
        detector=ErrorStreamMonitor.from_reference(errors.astype(np.float64)),
    )  # fmt: skip
    pw = PerformanceWindows([setup], window_seconds=3600.0, retention=48, clock=lambda: NOW)
    for lo in range(0, len(records), 5000):
        pw.add("m", "1", records[lo : lo + 5000])
    received = datetime.fromtimestamp(NOW, UTC)
    items = [LabelledPrediction(r, y, received) for r, y in zip(records, labels, strict=True)]
    t = time.perf_counter()
    for lo in range(0, len(items), batch):
        pw.add_labels("m", "1", items[lo : lo + batch])
    return time.perf_counter() - t


def river(records: list[PredictionRecord], labels: list[str]) -> float:
    from river import metrics

    acc, auc = metrics.Accuracy(), metrics.ROCAUC()
    t = time.perf_counter()
    for r, y in zip(records, labels, strict=True):
        truth = y == "1"
        acc.update(truth, r.output == "1")
        auc.update(truth, {False: r.probabilities["0"], True: r.probabilities["1"]})  # type: ignore[index]
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    records, labels = fixture(args.rows)
    t_ours = statistics.median(ours(records, labels, args.batch) for _ in range(args.repeat))
    t_river = statistics.median(river(records, labels) for _ in range(args.repeat))
    print(
        f"ours: {args.rows / t_ours / 1e3:.0f}k labels/s (batches of {args.batch}; goal >= 200k); "
        f"River Accuracy+ROCAUC one at a time: {args.rows / t_river / 1e3:.0f}k labels/s; "
        f"ratio {t_river / t_ours:.1f}x"
    )


if __name__ == "__main__":
    main()
