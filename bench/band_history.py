"""Threshold-free rules in the built-in engine: BandHistory's cost per evaluation cycle.

``--rules`` band rules (half without seasonality, half daily; 7 days of history at 5-minute
steps, the defaults) on ``--models`` models: ``rules x models`` series, each scored once a
cycle (``band_score``: record, then score), cycles every 15 s.  The histories are filled
with a week of values first.  Most cycles find the window's median and MAD cached (the
history changes only when a step passes); one cycle in 20 crosses a step and sorts every
series' window again (2,017 points without seasonality, 21 daily).  The anchor, measured
in the same run: the same scores computed from scratch each call by the core's
``robust_score`` over the window (what a cache-less engine would do).  Also prints the
memory the rings hold.

    .venv/bin/python bench/band_history.py [--rules 10] [--models 100] [--cycles 40]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from inferwatch.alerting import BandHistory
from inferwatch.rules import load_rules, robust_score
from inferwatch.rules._band import window_slots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rules", type=int, default=10)
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=40)
    args = parser.parse_args()
    rules = load_rules(
        {"rules": [{"name": f"Unusual{i}", "signal": "latency",
                    "unusual": {"seasonality": "daily" if i % 2 else "none"}}
                   for i in range(args.rules)]}
    )  # fmt: skip
    labels = [{"model": f"m{j}"} for j in range(args.models)]
    rng = np.random.default_rng(0)
    history = BandHistory()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    week = 7 * 288
    raw = rng.normal(0.2, 0.01, week)
    for k in range(week):
        now = t0 + timedelta(minutes=5 * k)
        for rule in rules:
            for lab in labels:
                history.record(rule, lab, now, float(raw[k]))
    base = t0 + timedelta(days=7)
    steady: list[float] = []
    crossing: list[float] = []
    naive: list[float] = []
    for c in range(args.cycles):
        now = base + timedelta(seconds=15 * c + 7)
        values = rng.normal(0.2, 0.01, len(rules) * len(labels)).tolist()
        start = time.perf_counter()
        i = 0
        for rule in rules:
            for lab in labels:
                history.band_score(rule, lab, now, values[i])
                i += 1
        ms = (time.perf_counter() - start) * 1000
        (crossing if c % 20 == 0 else steady).append(ms)
        if c < 3:  # the anchor: the window rebuilt and scored from scratch, every call
            now_ms = int(now.timestamp() * 1000)
            start = time.perf_counter()
            i = 0
            for rule in rules:
                assert rule.band is not None
                for _lab in labels:
                    slots = window_slots(rule.band, now_ms)
                    robust_score(raw[(slots - slots.min()) % week], values[i])
                    i += 1
            naive.append((time.perf_counter() - start) * 1000)
    series = len(history)
    cap = max(r.band.capacity() for r in rules if r.band is not None)
    print(f"{series} band series, 7d of history at 5m steps, one cycle every 15 s")
    print(f"  steady cycle (window cached): median {statistics.median(steady):.1f} ms")
    print(f"  cycle crossing a step (every window sorted): {statistics.median(crossing):.1f} ms")
    print(f"  anchor, no cache (each call sorts its window): {statistics.median(naive):.1f} ms")
    print(f"  rings: {series * cap * 16 / 2**20:.1f} MiB ({cap} points x 16 bytes per series)")


if __name__ == "__main__":
    main()
