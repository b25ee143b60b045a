"""Evaluation: turn reference and current data (or window profiles) into drift verdicts.

``evaluate_batch`` compares raw columns (reports and checks); ``LiveEvaluator`` compares a
window profile with the reference profile, with thresholds calibrated at the window's
size; ``EvaluationLoop`` judges the server's current windows on an interval.
"""

from __future__ import annotations

from inferwatch.evaluate._batch import (
    CategoricalColumn,
    ColumnInput,
    NumericColumn,
    SortedColumn,
    evaluate_batch,
)
from inferwatch.evaluate._live import Calibration, CalibrationMode, LiveEvaluator
from inferwatch.evaluate._loop import EvaluationLoop, LiveTarget, evaluation_rows
from inferwatch.evaluate._results import ColumnDrift, DriftOptions, DriftReport, MultivariateResult

__all__ = [
    "Calibration",
    "CalibrationMode",
    "CategoricalColumn",
    "ColumnDrift",
    "ColumnInput",
    "DriftOptions",
    "DriftReport",
    "EvaluationLoop",
    "LiveEvaluator",
    "LiveTarget",
    "MultivariateResult",
    "NumericColumn",
    "SortedColumn",
    "evaluate_batch",
    "evaluation_rows",
]
