"""Evaluation: turn reference and current data (or window profiles) into drift verdicts.

``evaluate_batch`` compares raw columns (reports and checks); ``LiveEvaluator`` compares a
window profile with the reference profile, with thresholds calibrated at the window's
size; ``EvaluationLoop`` judges the server's current windows on an interval;
``live_target`` builds one model's live pipeline (bins, profile, windows, evaluator, the
model's outputs on the reference) from its reference, for the server and the library.
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
from inferwatch.evaluate._reference import (
    MAX_SCORED_REFERENCE_ROWS,
    SCORE_BATCH_ROWS,
    live_target,
    output_task,
    score_reference,
)
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
    "MAX_SCORED_REFERENCE_ROWS",
    "MultivariateResult",
    "NumericColumn",
    "SCORE_BATCH_ROWS",
    "SortedColumn",
    "evaluate_batch",
    "evaluation_rows",
    "live_target",
    "output_task",
    "score_reference",
]
