"""Successive reads of the metrics registry turned into one row set per interval.

Each cycle :meth:`Sampler.step` gets the time and the registry's samples (the plain
``(sample_name, labels, value)`` triples :func:`inferwatch.metrics.registry_samples`
reads, as a scrape would) and returns what happened since the previous cycle: one
:class:`~inferwatch.history._rows.ModelRow` per (model, version) and one
:class:`~inferwatch.history._rows.ResourceRow`.  Counters become deltas, histograms
bucket-count deltas (the latency quantiles are Prometheus' ``histogram_quantile`` over
them, by the alert evaluator's own ``bucket_quantile``, so the dashboard's p99 is the
alert rules' p99 over the same span).

**Resets.** A counter below its previous value was reset (a restart, a re-registered
family): its delta is its whole current value, as Prometheus' ``rate()`` counts it, never
a negative amount.  A histogram is taken as reset when its count or any bucket went down
(all its buckets are then new).  A series seen for the first time after the first cycle
started from zero within the interval (prometheus_client creates children at zero), so its
delta is its value; the first cycle only sets the baseline.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Final

from inferwatch.alerting._evaluate import bucket_quantile
from inferwatch.history._rows import RAW, ModelRow, ResourceRow

__all__ = ["SAMPLE_NAMES", "Sampler", "quantiles"]

REQUESTS: Final = "inferwatch_requests_total"
LATENCY: Final = "inferwatch_request_duration_seconds"
CONFIDENCE: Final = "inferwatch_prediction_confidence"
PREDICTIONS: Final = "inferwatch_predictions_total"
PROCESS_CPU: Final = "process_cpu_seconds_total"

#: resource gauges kept as read, by their name in the history
GAUGES: Final = {
    "inferwatch_host_cpu_utilization_ratio": "host_cpu_ratio",
    "inferwatch_host_memory_used_bytes": "host_memory_used_bytes",
    "inferwatch_host_memory_total_bytes": "host_memory_total_bytes",
    "process_resident_memory_bytes": "process_resident_memory_bytes",
}
GPU_GAUGES: Final = {
    "inferwatch_gpu_utilization_ratio": "utilization_ratio",
    "inferwatch_gpu_memory_used_bytes": "memory_used_bytes",
}

#: every sample name the sampler reads (the registry reader skips collectors of no other)
SAMPLE_NAMES: Final = frozenset(
    {
        REQUESTS,
        f"{LATENCY}_bucket",
        f"{LATENCY}_sum",
        f"{LATENCY}_count",
        f"{CONFIDENCE}_sum",
        f"{CONFIDENCE}_count",
        PREDICTIONS,
        PROCESS_CPU,
        *GAUGES,
        *GPU_GAUGES,
    }
)

#: the quantiles each row keeps
QUANTILES: Final = (0.5, 0.95, 0.99)

_Key = tuple[str, ...]


def _delta(value: float, before: float | None) -> float:
    """A counter's increase since ``before`` (None: the series is new, it started at 0;
    a drop: it was reset and counted ``value`` since)."""
    if before is None or value < before:
        return value
    return value - before


def quantiles(buckets: Mapping[str, float]) -> tuple[float | None, ...]:
    """p50, p95, p99 of cumulative bucket counts by ``le`` (None where Prometheus' answer
    is NaN: no observations)."""
    pairs = [(math.inf if le == "+Inf" else float(le), n) for le, n in buckets.items()]
    out: list[float | None] = []
    for q in QUANTILES:
        v = bucket_quantile(q, list(pairs)) if pairs else math.nan
        out.append(None if math.isnan(v) else v)
    return tuple(out)


class _Latency:
    __slots__ = ("buckets", "count", "sum")

    def __init__(self) -> None:
        self.buckets: dict[str, float] = {}
        self.count: float | None = None
        self.sum: float | None = None


class Sampler:
    """Turns successive registry reads into per-interval rows (see the module docstring).

    Keeps only the previous read's values (one float per series): memory is bounded by the
    series the registry holds, itself bounded by the label budgets of ``metrics.py``."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, _Key], float] = {}
        self._last_t: float | None = None
        #: cycles refused because their time was not after the previous one
        self.out_of_order = 0

    def step(
        self, now: float, samples: Iterable[tuple[str, Mapping[str, str], float]]
    ) -> tuple[list[ModelRow], ResourceRow | None]:
        """The rows for ``(previous now, now]``; nothing on the first call (it only sets the
        baseline) or when ``now`` is not after the previous call."""
        if self._last_t is not None and now <= self._last_t:
            self.out_of_order += 1
            return [], None
        current: dict[tuple[str, _Key], float] = {}
        requests: dict[_Key, list[tuple[str, float]]] = {}
        latency: dict[_Key, _Latency] = {}
        conf: dict[_Key, list[float]] = {}
        classes: dict[_Key, list[tuple[str, float]]] = {}
        gauges: dict[str, float] = {}
        cpu: float | None = None
        for name, labels, value in samples:
            if not math.isfinite(value):
                continue
            if name in GAUGES:
                gauges[GAUGES[name]] = value
                continue
            if name in GPU_GAUGES:
                gauges[f"gpu.{labels.get('gpu', '0')}.{GPU_GAUGES[name]}"] = value
                continue
            if name == PROCESS_CPU:
                cpu = value
                continue
            mv: _Key = (labels.get("model", ""), labels.get("version", ""))
            if name == REQUESTS:
                key = (*mv, labels.get("status", ""))
                current[(name, key)] = value
                requests.setdefault(mv, []).append((labels.get("status", ""), value))
            elif name == PREDICTIONS:
                cls = labels.get("predicted_class", "")
                current[(name, (*mv, cls))] = value
                classes.setdefault(mv, []).append((cls, value))
            elif name.startswith(LATENCY):
                got = latency.setdefault(mv, _Latency())
                if name.endswith("_bucket"):
                    le = labels.get("le", "+Inf")
                    current[(name, (*mv, le))] = value
                    got.buckets[le] = value
                elif name.endswith("_sum"):
                    current[(name, mv)] = got.sum = value
                else:
                    current[(name, mv)] = got.count = value
            elif name.startswith(CONFIDENCE):
                current[(name, mv)] = value
                conf.setdefault(mv, [math.nan, math.nan])[0 if name.endswith("_sum") else 1] = value
        if cpu is not None:
            current[(PROCESS_CPU, ())] = cpu
        before, t0 = self._last, self._last_t
        self._last, self._last_t = current, now
        if t0 is None:
            return [], None
        seconds = now - t0
        rows: dict[_Key, ModelRow] = {}

        def row(mv: _Key) -> ModelRow:
            got = rows.get(mv)
            if got is None:
                got = rows[mv] = ModelRow(mv[0], mv[1], RAW, t0, seconds)
            return got

        for mv, statuses in requests.items():
            r = row(mv)
            for status, value in statuses:
                d = _delta(value, before.get((REQUESTS, (*mv, status))))
                r.requests += d
                if status.startswith("5"):
                    r.errors += d
        for mv, lat in latency.items():
            r = row(mv)
            prev = {le: before.get((f"{LATENCY}_bucket", (*mv, le))) for le in lat.buckets}
            prev_count = before.get((f"{LATENCY}_count", mv))
            reset = prev_count is None or (lat.count is not None and lat.count < prev_count)
            reset = reset or any(p is None or v < p for (le, v), p in
                                 zip(lat.buckets.items(), prev.values(), strict=True))  # fmt: skip
            if reset:
                r.latency_buckets = dict(lat.buckets)
                r.latency_count = lat.count or 0.0
                r.latency_sum = lat.sum or 0.0
            else:
                r.latency_buckets = {le: v - (prev[le] or 0.0) for le, v in lat.buckets.items()}
                r.latency_count = (lat.count or 0.0) - (prev_count or 0.0)
                r.latency_sum = _delta(lat.sum or 0.0, before.get((f"{LATENCY}_sum", mv)))
            r.latency_p50, r.latency_p95, r.latency_p99 = quantiles(r.latency_buckets)
        for mv, (s, n) in conf.items():
            r = row(mv)
            prev_n = before.get((f"{CONFIDENCE}_count", mv))
            if math.isnan(n) or math.isnan(s):
                continue
            if prev_n is None or n < prev_n:
                r.confidence_sum, r.confidence_count = s, n
            else:
                r.confidence_count = n - prev_n
                r.confidence_sum = s - before.get((f"{CONFIDENCE}_sum", mv), 0.0)
        for mv, counts in classes.items():
            r = row(mv)
            for cls, value in counts:
                d = _delta(value, before.get((PREDICTIONS, (*mv, cls))))
                r.classes[cls] = r.classes.get(cls, 0.0) + d
        resources = None
        if gauges or cpu is not None:
            values = dict(gauges)
            prev_cpu = before.get((PROCESS_CPU, ()))
            if cpu is not None and prev_cpu is not None and seconds > 0:
                values["process_cpu_cores"] = _delta(cpu, prev_cpu) / seconds
            resources = ResourceRow(RAW, t0, seconds, values)
        return list(rows.values()), resources
