"""Evaluation: turn reference and current data (or window profiles) into drift verdicts."""

from __future__ import annotations

from inferwatch.evaluate._batch import (
    CategoricalColumn,
    ColumnInput,
    NumericColumn,
    SortedColumn,
    evaluate_batch,
)
from inferwatch.evaluate._model import ColumnDrift, DriftOptions, DriftReport, MultivariateResult

__all__ = [
    "CategoricalColumn",
    "ColumnDrift",
    "ColumnInput",
    "DriftOptions",
    "DriftReport",
    "MultivariateResult",
    "NumericColumn",
    "SortedColumn",
    "evaluate_batch",
]
