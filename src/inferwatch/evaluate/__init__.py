"""Evaluation: turn reference and current data (or window profiles) into drift verdicts.

``evaluate_batch`` compares raw columns (reports and checks); ``LiveEvaluator`` compares a
window profile with the reference profile, with thresholds calibrated at the window's
size; ``EvaluationLoop`` judges the server's current windows on an interval;
``live_target`` builds one model's live pipeline (bins, profile, windows, evaluator, the
model's outputs on the reference) from its reference, for the server and the library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inferwatch.evaluate._batch import (
    CategoricalColumn,
    ColumnInput,
    NumericColumn,
    SortedColumn,
    evaluate_batch,
)
from inferwatch.evaluate._results import ColumnDrift, DriftOptions, DriftReport, MultivariateResult

if TYPE_CHECKING:
    from inferwatch.evaluate._live import Calibration, CalibrationMode, LiveEvaluator
    from inferwatch.evaluate._loop import EvaluationLoop, LiveTarget, evaluation_rows
    from inferwatch.evaluate._performance import (
        detection_rows,
        performance_rows,
        performance_setup,
        recompute_windows,
    )
    from inferwatch.evaluate._reference import (
        MAX_SCORED_REFERENCE_ROWS,
        SCORE_BATCH_ROWS,
        live_target,
        output_task,
        score_reference,
    )

# The live side (profiles, windows, calibration) loads on first use: a batch report
# (`inferwatch report`, `check`) needs none of it, and its start-up is part of its time.
_LAZY = {
    "Calibration": "_live",
    "CalibrationMode": "_live",
    "LiveEvaluator": "_live",
    "EvaluationLoop": "_loop",
    "LiveTarget": "_loop",
    "evaluation_rows": "_loop",
    "MAX_SCORED_REFERENCE_ROWS": "_reference",
    "SCORE_BATCH_ROWS": "_reference",
    "live_target": "_reference",
    "output_task": "_reference",
    "score_reference": "_reference",
    "performance_setup": "_performance",
    "recompute_windows": "_performance",
    "performance_rows": "_performance",
    "detection_rows": "_performance",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'inferwatch.evaluate' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"inferwatch.evaluate.{module}"), name)
    globals()[name] = value
    return value


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
    "detection_rows",
    "evaluate_batch",
    "evaluation_rows",
    "live_target",
    "output_task",
    "performance_rows",
    "performance_setup",
    "recompute_windows",
    "score_reference",
]
