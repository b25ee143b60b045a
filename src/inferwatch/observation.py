"""What the pipeline records about predictions: one immutable batch per call.

Pure data (core layer): no I/O, no clock.  The ``Monitor`` builds these and hands
them to the metrics hook, the window profiles (later) and the prediction log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["Label", "Observation", "PredictionRecord"]


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One prediction as the store keeps it (one row of ``predictions``)."""

    id: str
    model: str
    version: str
    timestamp: datetime
    inputs: Mapping[str, Any]
    output: Any
    score: float | None
    latency_seconds: float | None
    trace_id: str | None = None
    probabilities: Mapping[str, float] | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """A batch of predictions made together by one model version.

    ``latency_seconds`` is the time of the whole batch (the request), shared by its rows.
    """

    model: str
    version: str
    records: Sequence[PredictionRecord]
    latency_seconds: float | None = None

    def __len__(self) -> int:
        return len(self.records)


@dataclass(frozen=True, slots=True)
class Label:
    """A ground-truth value that arrived for an earlier prediction (by its id)."""

    prediction_id: str
    value: Any
    timestamp: datetime
