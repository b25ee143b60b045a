"""Performance estimated before labels arrive (confidence-based and direct loss estimation),
and reconciled with the realised value once they do."""

from __future__ import annotations

from inferwatch.estimate._cbpe import (
    CBPE,
    CLASSIFICATION_METRICS,
    DEFAULT_BINS,
    realised_classification,
)
from inferwatch.estimate._dle import DLE, REGRESSION_METRICS
from inferwatch.estimate._result import Estimate, Reconciliation, Verdict, reconcile

__all__ = [
    "CBPE",
    "CLASSIFICATION_METRICS",
    "DEFAULT_BINS",
    "DLE",
    "REGRESSION_METRICS",
    "Estimate",
    "Reconciliation",
    "Verdict",
    "realised_classification",
    "reconcile",
]
