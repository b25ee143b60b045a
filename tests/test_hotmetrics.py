"""The hot-path metric families expose exactly what prometheus_client's own would."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from inferwatch._hotmetrics import HotCounterFamily, HotGaugeFamily, HotHistogramFamily
from inferwatch.metrics import LATENCY_BUCKETS


def _without_created(text: str) -> list[str]:
    # creation times differ by the microseconds between the two objects' creation
    return [line for line in text.splitlines() if "_created" not in line]


def _created(text: str) -> list[str]:
    return [line.rsplit(" ", 1)[0] for line in text.splitlines() if "_created" in line]


@pytest.mark.parametrize("openmetrics", [False, True])
def test_exposition_equals_prometheus_client(openmetrics: bool) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    values = np.random.default_rng(3).lognormal(-5, 2, 2000).tolist()
    values += [0.0, 0.0005, 0.001, 10.0, 11.0, math.inf]  # on the bounds, past them
    a = HotHistogramFamily("t_seconds", "Doc.", ["model"], buckets=LATENCY_BUCKETS, registry=ours)
    b = Histogram("t_seconds", "Doc.", ["model"], buckets=LATENCY_BUCKETS, registry=theirs)
    c = HotCounterFamily("t_requests_total", "Doc.", ["model", "status"], registry=ours)
    d = Counter("t_requests_total", "Doc.", ["model", "status"], registry=theirs)
    e = HotGaugeFamily("t_inflight", "Doc.", ["model"], registry=ours)
    f = Gauge("t_inflight", "Doc.", ["model"], registry=theirs)
    for i, v in enumerate(values):
        model = ("a", "b")[i % 2]
        exemplar = {"trace_id": f"{i:032x}"} if i % 7 == 0 else None
        a.labels(model).observe(v, exemplar)
        b.labels(model).observe(v, exemplar)
        c.labels(model, str(200 + i % 3)).inc()
        d.labels(model, str(200 + i % 3)).inc()
        e.labels(model).inc(2)
        f.labels(model).inc(2)
        e.labels(model).dec()
        f.labels(model).dec()
    render = generate_openmetrics if openmetrics else generate_latest
    mine, reference = render(ours).decode(), render(theirs).decode()
    if openmetrics:  # exemplar timestamps differ by the time between the two observes
        mine = "\n".join(
            line.rsplit(" ", 1)[0] if " # " in line else line for line in mine.splitlines()
        )
        reference = "\n".join(
            line.rsplit(" ", 1)[0] if " # " in line else line for line in reference.splitlines()
        )
        assert " # {trace_id=" in mine
    assert _without_created(mine) == _without_created(reference)
    assert _created(mine) == _created(reference)


def test_concurrent_increments_are_not_lost() -> None:
    counter = HotCounterFamily("c_total", "Doc.", ["m"]).labels("x")
    histogram = HotHistogramFamily("h", "Doc.", ["m"], buckets=(1.0, 2.0)).labels("x")

    def work() -> None:
        for _ in range(20_000):
            counter.inc()
            histogram.observe(1.5)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.value == 80_000
    assert histogram.counts == [0, 80_000, 0] and histogram.sum == 120_000


def test_bad_use_is_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        HotCounterFamily("c_total", "Doc.", ["m"]).labels("x").inc(-1)
    with pytest.raises(ValueError, match="label values"):
        HotCounterFamily("c_total", "Doc.", ["m"]).labels("x", "y")
    with pytest.raises(ValueError, match="increasing"):
        HotHistogramFamily("h", "Doc.", [], buckets=(2.0, 1.0))
    registry = CollectorRegistry()
    HotCounterFamily("dup_total", "Doc.", [], registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        Counter("dup_total", "Doc.", registry=registry)
