"""Stored history rows in, what the API answers out: columns on a regular time grid, and
the rollup rows the downsampler folds raw rows into.

**Re-bucketing.** Rows hold amounts over their span, so a bucket of ``step`` seconds sums
the amounts of the rows starting in it (a row longer than the step, a rollup read at a finer
step, is spread over the buckets it covers in proportion to the overlap).  Its rates are
``sum(amount) / covered seconds`` (the seconds its rows cover, per version; the longest
version's when versions are summed), so a server that was down for part of a bucket shows
the rate while it ran, and a bucket with no row is a gap (``None``), not a zero.

**Rollups: quantiles recomputed from summed buckets.** A rollup row keeps the summed
bucket counts of the raw rows it replaces, and its p50/p95/p99 are Prometheus'
``histogram_quantile`` over those sums: exactly what ``histogram_quantile(0.99,
rate(..._bucket[5m]))`` answers for the bucket.  The alternative, the max of the raw p99s,
is cheaper but is no quantile of anything (one slow 10-second interval with two requests
would set the 5-minute p99 for thousands of requests) and cannot be re-bucketed again;
keeping ~15 bucket counts per row costs a few hundred bytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Final

from inferwatch.history._rows import ROLLUP, ModelRow, ResourceRow
from inferwatch.history._sample import quantiles

__all__ = [
    "MAX_POINTS",
    "MODEL_SERIES",
    "RESOURCE_SERIES",
    "choose_step",
    "fold_models",
    "fold_resources",
    "model_columns",
    "resource_columns",
    "summarise",
]

#: the most points a read may ask for (Prometheus refuses more than 11,000 per series)
MAX_POINTS: Final = 11_000
#: the default step aims at no more than this many points
TARGET_POINTS: Final = 600

MODEL_SERIES: Final = (
    "requests_per_second",
    "errors_per_second",
    "error_ratio",
    "latency_p50_seconds",
    "latency_p95_seconds",
    "latency_p99_seconds",
    "confidence_mean",
)
RESOURCE_SERIES: Final = (
    "host_cpu_ratio",
    "host_memory_used_bytes",
    "host_memory_total_bytes",
    "process_cpu_cores",
    "process_resident_memory_bytes",
)


def choose_step(span: float, interval: float, rollup: float) -> float:
    """The default step: the finest stored resolution (``interval``, then ``rollup``) that
    gives at most :data:`TARGET_POINTS` points over ``span``; past that a multiple of the
    rollup.  Never below the sampling interval."""
    for resolution in (interval, rollup):
        if span / resolution <= TARGET_POINTS:
            return resolution
    return rollup * math.ceil(span / (rollup * TARGET_POINTS))


def _grid(start: float, end: float, step: float) -> tuple[float, int]:
    """The first bucket's start (a multiple of ``step``, so links and refreshes line up)
    and the number of buckets covering ``[start, end]``."""
    first = math.floor(start / step) * step
    return first, max(math.ceil((end - first) / step), 1)


def _spread(
    start: float, seconds: float, first: float, step: float, n: int
) -> list[tuple[int, float]]:
    """The buckets a row lands in, with the share of it each gets."""
    if seconds <= step or seconds <= 0:
        i = math.floor((start - first) / step)
        return [(i, 1.0)] if 0 <= i < n else []
    out = []
    end = start + seconds
    i = math.floor((start - first) / step)
    while i < n:
        lo, hi = first + i * step, first + (i + 1) * step
        if lo >= end:
            break
        overlap = min(hi, end) - max(lo, start)
        if i >= 0 and overlap > 0:
            out.append((i, overlap / seconds))
        i += 1
    return out


class _Acc:
    __slots__ = ("buckets", "classes", "conf_n", "conf_s", "covered", "errors", "lat_n",
                 "lat_s", "requests")  # fmt: skip

    def __init__(self) -> None:
        self.requests = self.errors = self.lat_n = self.lat_s = self.conf_s = self.conf_n = 0.0
        self.buckets: dict[str, float] = {}
        self.classes: dict[str, float] = {}
        self.covered: dict[str, float] = {}  # version -> seconds

    def add(self, r: ModelRow, share: float) -> None:
        self.requests += r.requests * share
        self.errors += r.errors * share
        self.lat_n += r.latency_count * share
        self.lat_s += r.latency_sum * share
        self.conf_s += r.confidence_sum * share
        self.conf_n += r.confidence_count * share
        for le, c in r.latency_buckets.items():
            self.buckets[le] = self.buckets.get(le, 0.0) + c * share
        for cls, c in r.classes.items():
            self.classes[cls] = self.classes.get(cls, 0.0) + c * share
        self.covered[r.version] = self.covered.get(r.version, 0.0) + r.seconds * share

    def seconds(self) -> float:
        return max(self.covered.values(), default=0.0)


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def model_columns(
    rows: Iterable[ModelRow], start: float, end: float, step: float
) -> tuple[list[float], dict[str, list[float | None]], dict[str, list[float | None]]]:
    """``t``, ``series`` and ``classes`` of the history route (api.md item 2) from the rows
    of one model (one version, or all of them summed)."""
    first, n = _grid(start, end, step)
    accs: list[_Acc | None] = [None] * n
    for r in rows:
        for i, share in _spread(r.start, r.seconds, first, step, n):
            acc = accs[i]
            if acc is None:
                acc = accs[i] = _Acc()
            acc.add(r, share)
    series: dict[str, list[float | None]] = {name: [None] * n for name in MODEL_SERIES}
    totals: dict[str, float] = {}
    for a in accs:
        for c, k in (a.classes if a is not None else {}).items():
            totals[c] = totals.get(c, 0.0) + k
    # a class never predicted in the range (the pre-made overflow child) is no series
    names = sorted(c for c, k in totals.items() if k > 0)
    classes: dict[str, list[float | None]] = {c: [None] * n for c in names}
    for i, acc in enumerate(accs):
        if acc is None:
            continue
        secs = acc.seconds()
        series["requests_per_second"][i] = _ratio(acc.requests, secs)
        series["errors_per_second"][i] = _ratio(acc.errors, secs)
        series["error_ratio"][i] = _ratio(acc.errors, acc.requests)
        p50, p95, p99 = quantiles(acc.buckets) if acc.lat_n > 0 else (None, None, None)
        series["latency_p50_seconds"][i] = p50
        series["latency_p95_seconds"][i] = p95
        series["latency_p99_seconds"][i] = p99
        series["confidence_mean"][i] = _ratio(acc.conf_s, acc.conf_n)
        total = sum(acc.classes.values())
        for c in names:
            classes[c][i] = _ratio(acc.classes.get(c, 0.0), total)
    return [first + i * step for i in range(n)], series, classes


def summarise(rows: Iterable[ModelRow]) -> dict[str, float | None]:
    """One model's headline over all ``rows`` (the overview's last 5 minutes):
    requests_per_second, error_ratio, latency_p99_seconds."""
    acc = _Acc()
    for r in rows:
        acc.add(r, 1.0)
    secs = acc.seconds()
    p99 = quantiles(acc.buckets)[2] if acc.lat_n > 0 else None
    return {
        "requests_per_second": _ratio(acc.requests, secs) if secs > 0 else None,
        "error_ratio": _ratio(acc.errors, acc.requests),
        "latency_p99_seconds": p99,
    }


def resource_columns(
    rows: Iterable[ResourceRow], start: float, end: float, step: float
) -> tuple[list[float], dict[str, list[float | None]], dict[str, dict[str, list[float | None]]]]:
    """``t``, ``series`` and ``gpus`` of the resources route (api.md item 3): each value the
    time-weighted mean of the rows in the bucket."""
    first, n = _grid(start, end, step)
    sums: list[dict[str, list[float]] | None] = [None] * n
    for r in rows:
        for i, share in _spread(r.start, r.seconds, first, step, n):
            got = sums[i]
            if got is None:
                got = sums[i] = {}
            w = max(r.seconds * share, 1e-9)
            for name, v in r.values.items():
                acc = got.setdefault(name, [0.0, 0.0])
                acc[0] += v * w
                acc[1] += w
    series: dict[str, list[float | None]] = {name: [None] * n for name in RESOURCE_SERIES}
    gpus: dict[str, dict[str, list[float | None]]] = {}
    for i, got in enumerate(sums):
        if got is None:
            continue
        for name, (s, w) in got.items():
            value = s / w
            if name.startswith("gpu."):
                _, index, metric = name.split(".", 2)
                gpu = gpus.setdefault(index, {})
                gpu.setdefault(metric, [None] * n)[i] = value
            elif name in series:
                series[name][i] = value
    for gpu in gpus.values():
        for metric in ("utilization_ratio", "memory_used_bytes"):
            gpu.setdefault(metric, [None] * n)
    return [first + i * step for i in range(n)], series, gpus


def fold_models(rows: Sequence[ModelRow], rollup: float) -> list[ModelRow]:
    """Rollup rows (level 1) of ``rows``: one per model version per ``rollup``-second bucket
    (by row start), amounts summed, quantiles recomputed from the summed buckets."""
    out: dict[tuple[str, str, float], ModelRow] = {}
    for r in rows:
        b = math.floor(r.start / rollup) * rollup
        key = (r.model, r.version, b)
        got = out.get(key)
        if got is None:
            got = out[key] = ModelRow(r.model, r.version, ROLLUP, b, 0.0)
        got.seconds += r.seconds
        got.requests += r.requests
        got.errors += r.errors
        got.latency_count += r.latency_count
        got.latency_sum += r.latency_sum
        got.confidence_sum += r.confidence_sum
        got.confidence_count += r.confidence_count
        for le, c in r.latency_buckets.items():
            got.latency_buckets[le] = got.latency_buckets.get(le, 0.0) + c
        for cls, c in r.classes.items():
            got.classes[cls] = got.classes.get(cls, 0.0) + c
    for got in out.values():
        got.latency_p50, got.latency_p95, got.latency_p99 = quantiles(got.latency_buckets)
    return list(out.values())


def fold_resources(rows: Sequence[ResourceRow], rollup: float) -> list[ResourceRow]:
    """Rollup rows of resource rows: each value's time-weighted mean per bucket."""
    acc: dict[float, tuple[list[float], dict[str, list[float]]]] = {}
    for r in rows:
        b = math.floor(r.start / rollup) * rollup
        secs, values = acc.setdefault(b, ([0.0], {}))
        secs[0] += r.seconds
        w = max(r.seconds, 1e-9)
        for name, v in r.values.items():
            got = values.setdefault(name, [0.0, 0.0])
            got[0] += v * w
            got[1] += w
    return [
        ResourceRow(ROLLUP, b, secs[0], {k: s / w for k, (s, w) in values.items()})
        for b, (secs, values) in sorted(acc.items())
    ]
