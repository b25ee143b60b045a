"""The rows the history keeps: one per (model, version) and one for the resources, per
sampling interval (``level`` 0) or per rollup bucket (``level`` 1).

Each row holds *amounts over its span* (counts and bucket counts), not rates or
quantiles alone: amounts add up, so a row set can be re-bucketed to any coarser step, and
rolled up, without losing anything (a rate is ``sum(amount) / sum(seconds)``, a quantile is
recomputed from the summed bucket counts).  The quantiles are stored too, precomputed for
the row's own span, so a read at the stored resolution needs no recomputation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

__all__ = ["RAW", "ROLLUP", "ModelRow", "ResourceRow"]

#: ``level`` of a row written by the sampler, one per interval
RAW: Final = 0
#: ``level`` of a row folded from raw rows by the downsampler, one per rollup bucket
ROLLUP: Final = 1


@dataclass(slots=True)
class ModelRow:
    """One model version's traffic over ``[start, start + seconds)``."""

    model: str
    version: str
    level: int
    start: float  # Unix seconds
    seconds: float  # length of the span the amounts cover
    requests: float = 0.0  # prediction requests answered (any status)
    errors: float = 0.0  # of which answered with a 5xx status
    latency_count: float = 0.0
    latency_sum: float = 0.0
    #: request-duration bucket counts over the span, by upper bound as the exposition
    #: writes it (``"0.005"`` ... ``"+Inf"``), cumulative as Prometheus' buckets are
    latency_buckets: dict[str, float] = field(default_factory=dict)
    latency_p50: float | None = None
    latency_p95: float | None = None
    latency_p99: float | None = None
    confidence_sum: float = 0.0
    confidence_count: float = 0.0
    #: predictions over the span by predicted class (classifiers; empty for regression)
    classes: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class ResourceRow:
    """The host's, the process's and the GPUs' resources over ``[start, start + seconds)``:
    gauges as read at the end of the span, ``process_cpu_cores`` as the rate of the
    process's CPU seconds over it.  GPU values are keyed ``gpu.<index>.<name>``."""

    level: int
    start: float
    seconds: float
    values: dict[str, float] = field(default_factory=dict)
