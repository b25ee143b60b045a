"""Counters, gauges and histograms for the series every prediction request touches.

prometheus_client's ``Counter.inc`` and ``Histogram.observe`` cost 0.7 and 1.4 µs on an
idle core (2 and 4 µs on a busy one): each takes a lock per value and a histogram walks
its buckets in Python, incrementing a locked value per bucket.  A served request updates
about eight such values, which alone would spend the 10 µs a request the serving issue
allows monitoring.  These keep each child's values in plain Python fields behind one lock
and find a histogram's bucket with :func:`bisect.bisect_left`, about five times cheaper,
and hand prometheus_client finished families at scrape time, so the exposition (names,
labels, ``_created`` series, exemplars, text and OpenMetrics) is prometheus_client's own.
``tests/test_hotmetrics.py`` checks the output equals prometheus_client's for the same
observations.

Only the per-request series use these (``metrics.Metrics`` says which); everything else
stays prometheus_client's.
"""

from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from typing import Generic, Literal, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar
from prometheus_client.utils import floatToGoString

__all__ = [
    "HotCounter",
    "HotCounterFamily",
    "HotGauge",
    "HotGaugeFamily",
    "HotHistogram",
    "HotHistogramFamily",
]

Kind = Literal["counter", "gauge", "histogram"]


class HotCounter:
    """A counter child: :meth:`inc` only goes up; an exemplar (labels) is kept, the latest,
    as prometheus_client keeps it."""

    __slots__ = ("_lock", "created", "exemplar", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()
        self.exemplar: tuple[Mapping[str, str], float, float] | None = None
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0, exemplar: Mapping[str, str] | None = None) -> None:
        if amount < 0:
            raise ValueError("counters can only be incremented by non-negative amounts")
        with self._lock:
            self.value += amount
            if exemplar is not None:  # the caller's dict is kept: it must not change it
                self.exemplar = (exemplar, amount, time.time())


class HotGauge:
    """A gauge child: set, inc and dec."""

    __slots__ = ("_lock", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self._lock = threading.Lock()

    def set(self, value: float) -> None:
        self.value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        with self._lock:
            self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        with self._lock:
            self.value -= amount


class HotHistogram:
    """A histogram child; ``bounds`` end with +Inf.  An exemplar (labels) is kept per bucket,
    the latest one, as prometheus_client keeps it."""

    __slots__ = ("_lock", "bounds", "counts", "created", "exemplars", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.sum = 0.0
        # (labels, value, time) tuples, made Exemplars at scrape time: cheaper per observe
        self.exemplars: list[tuple[Mapping[str, str], float, float] | None] = [None] * len(bounds)
        self.created = time.time()
        self._lock = threading.Lock()

    def observe(self, amount: float, exemplar: Mapping[str, str] | None = None) -> None:
        # NaN compares false with every bound: prometheus_client counts it in no finite
        # bucket, so it lands in +Inf here as there
        i = bisect_left(self.bounds, amount) if amount == amount else len(self.bounds) - 1
        with self._lock:
            self.counts[i] += 1
            self.sum += amount
            if exemplar is not None:  # the caller's dict is kept: it must not change it
                self.exemplars[i] = (exemplar, amount, time.time())


ChildT = TypeVar("ChildT", HotCounter, HotGauge, HotHistogram)


class _Family(Collector, Generic[ChildT]):
    """One metric family of hot children, registered on ``registry`` like a prometheus_client
    metric: ``labels(*values)`` gives (and creates once) the child for those values.
    A subclass names its ``kind`` and makes its children (``_new``)."""

    kind: Kind

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        *,
        buckets: Sequence[float] = (),
        registry: CollectorRegistry | None = None,
    ) -> None:
        kind = self.kind
        if kind == "counter" and name.endswith("_total"):
            name = name[: -len("_total")]
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        bounds = [float(b) for b in buckets]
        if kind == "histogram":
            if not bounds or bounds != sorted(bounds):
                raise ValueError(f"{name}: buckets must be given in increasing order")
            if bounds[-1] != math.inf:
                bounds.append(math.inf)
        self.bounds = tuple(bounds)
        self._children: dict[tuple[str, ...], ChildT] = {}
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    def labels(self, *values: str) -> ChildT:
        key = tuple(str(v) for v in values)
        child = self._children.get(key)
        if child is not None:
            return child
        if len(key) != len(self.labelnames):
            raise ValueError(f"{self.name}: {len(self.labelnames)} label values expected")
        with self._lock:
            child = self._children.get(key)
            if child is None:
                child = self._new()
                # copy on write: collect() iterates a dict nobody mutates
                self._children = {**self._children, key: child}
        return child

    def _new(self) -> ChildT:
        raise NotImplementedError

    def _family(self) -> Metric:
        if self.kind == "counter":
            return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        if self.kind == "gauge":
            return GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        les = [floatToGoString(b) for b in self.bounds]  # type: ignore[no-untyped-call]
        for key, child in self._children.items():
            if isinstance(child, HotCounter):
                assert isinstance(family, CounterMetricFamily)
                seen = child.exemplar
                family.add_metric(
                    key,
                    child.value,
                    created=child.created,
                    exemplar=None if seen is None else Exemplar(dict(seen[0]), seen[1], seen[2]),
                )
            elif isinstance(child, HotGauge):
                assert isinstance(family, GaugeMetricFamily)
                family.add_metric(key, child.value)
            else:
                assert isinstance(family, HistogramMetricFamily)
                with child._lock:
                    counts, total = list(child.counts), child.sum
                    exemplars = list(child.exemplars)
                buckets: list[tuple[str, float] | tuple[str, float, Exemplar]] = []
                running = 0
                for le, count, exemplar in zip(les, counts, exemplars, strict=True):
                    running += count
                    if exemplar is None:
                        buckets.append((le, float(running)))
                    else:
                        seen, value, at = exemplar
                        buckets.append((le, float(running), Exemplar(dict(seen), value, at)))
                family.add_metric(key, buckets, total)
                family.add_sample(
                    self.name + "_created",
                    dict(zip(self.labelnames, key, strict=True)),
                    child.created,
                )
        yield family


class HotCounterFamily(_Family[HotCounter]):
    kind = "counter"

    def _new(self) -> HotCounter:
        return HotCounter()


class HotGaugeFamily(_Family[HotGauge]):
    kind = "gauge"

    def _new(self) -> HotGauge:
        return HotGauge()


class HotHistogramFamily(_Family[HotHistogram]):
    """Needs ``buckets`` (increasing; +Inf is added)."""

    kind = "histogram"

    def _new(self) -> HotHistogram:
        return HotHistogram(self.bounds)
