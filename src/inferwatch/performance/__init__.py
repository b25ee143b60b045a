"""Model performance as mergeable summaries: classification and regression accumulators."""

from __future__ import annotations

from collections.abc import Sequence

from inferwatch.performance._classification import (
    DEFAULT_SCORE_BINS,
    ECE_BINS,
    ClassificationSummary,
    class_indices,
)
from inferwatch.performance._compare import (
    Comparison,
    compare_means,
    compare_proportions,
    compare_summaries,
)
from inferwatch.performance._regression import RegressionSummary

__all__ = [
    "DEFAULT_SCORE_BINS",
    "ECE_BINS",
    "ClassificationSummary",
    "Comparison",
    "RegressionSummary",
    "class_indices",
    "compare_means",
    "compare_proportions",
    "compare_summaries",
    "summary_for",
]


def summary_for(
    task: str, classes: Sequence[str] | None = None, *, bins: int = DEFAULT_SCORE_BINS
) -> ClassificationSummary | RegressionSummary:
    """An empty summary for a model's task: ``"classification"`` (``classes`` required,
    in the model's score-column order) or ``"regression"``."""
    if task == "regression":
        return RegressionSummary()
    if task == "classification":
        if not classes:
            raise ValueError("a classification summary needs the model's classes")
        return ClassificationSummary(classes, bins=bins)
    raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
