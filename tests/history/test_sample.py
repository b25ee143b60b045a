"""The sampler on a real metrics registry: counter and bucket deltas per interval, the
quantiles against an independent numpy computation, resets never negative, and the
re-bucketing and rollups keeping every amount."""

from __future__ import annotations

import math

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from inferwatch.history import (
    RAW,
    ROLLUP,
    SAMPLE_NAMES,
    ModelRow,
    ResourceRow,
    Sampler,
    choose_step,
    fold_models,
    fold_resources,
    model_columns,
    resource_columns,
)
from inferwatch.metrics import LATENCY_BUCKETS, Metrics, registry_samples


def _numpy_quantile(q: float, buckets: dict[str, float]) -> float:
    """histogram_quantile by hand: cumulative counts over the upper bounds, the first bucket
    reaching the rank, linear inside it (from 0 for the first bucket)."""
    les = np.array([math.inf if k == "+Inf" else float(k) for k in buckets])
    order = np.argsort(les)
    les, cum = les[order], np.array(list(buckets.values()))[order]
    rank = q * cum[-1]
    b = int(np.searchsorted(cum, rank, side="left"))
    if b == len(les) - 1:  # the +Inf bucket: the highest finite bound
        return float(les[-2])
    lower, below = (0.0, 0.0) if b == 0 else (les[b - 1], cum[b - 1])
    return float(lower + (les[b] - lower) * (rank - below) / (cum[b] - below))


class _Served:
    """A real Metrics catalogue with one classifier's children."""

    def __init__(self) -> None:
        self.metrics = Metrics(CollectorRegistry(), process=False, resources=False)
        self.registry = self.metrics.registry
        m = self.metrics
        self.ok = m.requests.labels("m", "1", "200")
        self.err = m.requests.labels("m", "1", "500")
        self.latency = m.request_duration.labels("m", "1")
        self.conf = m.confidence.labels("m", "1")
        self.yes = m.predictions.labels("m", "1", "yes")
        self.no = m.predictions.labels("m", "1", "no")

    def read(self) -> list[tuple[str, dict[str, str], float]]:
        return registry_samples(self.registry, SAMPLE_NAMES)


def test_one_interval_gives_the_deltas_and_the_bucket_quantiles() -> None:
    s = _Served()
    rng = np.random.default_rng(3)
    sampler = Sampler()
    for v in rng.exponential(0.02, 50):  # before the baseline: not in the interval
        s.latency.observe(v)
    assert sampler.step(100.0, s.read()) == ([], None)

    latencies = rng.lognormal(-4, 1.0, 400)
    for v in latencies:
        s.latency.observe(float(v))
    s.ok.inc(390)
    s.err.inc(10)
    conf = rng.uniform(0.5, 1.0, 300)
    for c in conf:
        s.conf.observe(float(c))
    s.yes.inc(120)
    s.no.inc(180)
    rows, _ = sampler.step(110.0, s.read())

    (row,) = rows
    assert (row.model, row.version, row.level, row.start, row.seconds) == (
        "m",
        "1",
        RAW,
        100.0,
        10.0,
    )
    assert (row.requests, row.errors) == (400.0, 10.0)
    assert row.latency_count == 400 and row.latency_buckets["+Inf"] == 400
    edges = [le for le in LATENCY_BUCKETS if math.isfinite(le)]
    expected = np.searchsorted(np.sort(latencies), edges, side="right")
    assert [row.latency_buckets[str(float(le))] for le in edges] == pytest.approx(expected)
    for q, got in zip((0.5, 0.95, 0.99), (row.latency_p50, row.latency_p95, row.latency_p99),
                      strict=True):  # fmt: skip
        assert got == pytest.approx(_numpy_quantile(q, row.latency_buckets))
    assert row.confidence_sum / row.confidence_count == pytest.approx(conf.mean())
    assert row.classes == {"yes": 120.0, "no": 180.0}


def test_a_counter_reset_gives_no_negative_amount() -> None:
    s = _Served()
    sampler = Sampler()
    s.ok.inc(1000)
    for _ in range(20):
        s.latency.observe(0.5)
    sampler.step(0.0, s.read())
    s.ok.inc(50)
    sampler.step(10.0, s.read())
    fresh = _Served()  # a restart: every counter from zero, and a little traffic since
    fresh.ok.inc(7)
    for _ in range(3):
        fresh.latency.observe(0.01)

    (row,), _ = sampler.step(20.0, fresh.read())

    assert row.requests == 7.0  # what the new process counted, as rate() reads a reset
    assert row.latency_count == 3.0
    assert all(v >= 0 for v in row.latency_buckets.values())
    assert row.latency_p99 is not None and row.latency_p99 <= 0.025
    assert row.start == 10.0
    _, series, _ = model_columns([row], 10.0, 20.0, 10.0)
    assert series["requests_per_second"] == [0.7]
    assert sampler.step(20.0, fresh.read()) == ([], None)  # not after the last: refused
    assert sampler.out_of_order == 1


def _rows(n: int, rng: np.random.Generator) -> list[ModelRow]:
    rows = []
    for i in range(n):
        k = float(rng.integers(0, 50))
        fast = float(rng.integers(0, int(k) + 1))
        rows.append(ModelRow("m", "1", RAW, 1000.0 + 10 * i, 10.0, requests=k,
                             errors=float(rng.integers(0, 3)), latency_count=k,
                             latency_buckets={"0.1": fast, "1.0": k, "+Inf": k},
                             confidence_sum=0.8 * k, confidence_count=k,
                             classes={"a": fast, "b": k - fast}))  # fmt: skip
    return rows


def test_rebucketing_and_rollups_keep_every_amount() -> None:
    rng = np.random.default_rng(5)
    rows = _rows(90, rng)  # 1000 .. 1890: 900 s
    total = sum(r.requests for r in rows)

    t, series, classes = model_columns(rows, 1000.0, 1900.0, 60.0)
    assert t[0] == 960.0 and t[-1] == 1860.0  # grid on multiples of the step
    # a rate is per second the rows cover (the first and last buckets only partly)
    covered = [sum(r.seconds for r in rows if b <= r.start < b + 60.0) for b in t]
    assert covered[0] == 20.0 and covered[-1] == 40.0
    rates = series["requests_per_second"]
    assert None not in rates
    assert sum((v or 0.0) * c for v, c in zip(rates, covered, strict=True)) == pytest.approx(total)
    assert classes["a"][3] == pytest.approx(
        sum(r.classes["a"] for r in rows if t[3] <= r.start < t[4])
        / sum(r.requests for r in rows if t[3] <= r.start < t[4])
    )

    rollups = fold_models(rows, 300.0)
    assert [(r.level, r.start, r.seconds) for r in rollups] == [
        (ROLLUP, 900.0, 200.0), (ROLLUP, 1200.0, 300.0), (ROLLUP, 1500.0, 300.0),
        (ROLLUP, 1800.0, 100.0),
    ]  # fmt: skip
    assert sum(r.requests for r in rollups) == total
    assert sum(r.classes["a"] for r in rollups) == sum(r.classes["a"] for r in rows)
    for r in rollups:  # quantiles recomputed from the summed buckets
        assert r.latency_p99 == pytest.approx(_numpy_quantile(0.99, r.latency_buckets))
    # a rollup read at a finer step is spread over the buckets it covers
    _, fine, _ = model_columns(rollups[1:2], 1200.0, 1500.0, 60.0)
    assert fine["requests_per_second"] == pytest.approx([rollups[1].requests / 300.0] * 5)


def test_resources_average_by_time_and_gpus_regroup() -> None:
    rows = [ResourceRow(RAW, 0.0 + 10 * i, 10.0, {"host_cpu_ratio": i / 10,
                        "gpu.0.utilization_ratio": 0.5, "gpu.1.memory_used_bytes": 1e9})
            for i in range(6)]  # fmt: skip
    t, series, gpus = resource_columns(rows, 0.0, 60.0, 30.0)
    assert t == [0.0, 30.0]
    assert series["host_cpu_ratio"] == pytest.approx([0.1, 0.4])
    assert series["process_cpu_cores"] == [None, None]
    assert gpus["0"]["utilization_ratio"] == [0.5, 0.5]
    assert gpus["1"]["memory_used_bytes"] == [1e9, 1e9]
    assert gpus["1"]["utilization_ratio"] == [None, None]
    (folded,) = fold_resources(rows, 300.0)
    assert folded.values["host_cpu_ratio"] == pytest.approx(0.25)


def test_the_default_step() -> None:
    assert choose_step(3600, 10, 300) == 10  # 360 points
    assert choose_step(86_400, 10, 300) == 300  # 288
    assert choose_step(30 * 86_400, 10, 300) == 4500  # a multiple of the rollup: 576 points


def test_resources_from_gauges_and_the_process_cpu_counter() -> None:
    sampler = Sampler()

    def read(cpu: float, util: float) -> list[tuple[str, dict[str, str], float]]:
        return [
            ("process_cpu_seconds_total", {}, cpu),
            ("process_resident_memory_bytes", {}, 3e8),
            ("inferwatch_host_cpu_utilization_ratio", {}, 0.25),
            ("inferwatch_gpu_utilization_ratio", {"gpu": "0"}, util),
            ("inferwatch_gpu_memory_used_bytes", {"gpu": "1"}, 2e9),
            ("inferwatch_gpu_memory_total_bytes", {"gpu": "1"}, 8e9),  # not kept
        ]

    sampler.step(0.0, read(10.0, 0.5))
    _, res = sampler.step(10.0, read(25.0, 0.75))

    assert res is not None and (res.start, res.seconds) == (0.0, 10.0)
    assert res.values == {
        "process_cpu_cores": 1.5,  # 15 CPU seconds over 10 s
        "process_resident_memory_bytes": 3e8,
        "host_cpu_ratio": 0.25,
        "gpu.0.utilization_ratio": 0.75,
        "gpu.1.memory_used_bytes": 2e9,
    }
    _, res = sampler.step(20.0, read(4.0, 0.75))  # a restart: CPU seconds from zero
    assert res is not None and res.values["process_cpu_cores"] == 0.4
