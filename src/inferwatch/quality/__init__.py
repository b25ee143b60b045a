"""Data quality: missing, out-of-range, unseen categories, outliers, constants, duplicates."""

from __future__ import annotations

from inferwatch.quality._checks import (
    MAX_UNSEEN_REPORTED,
    CategoricalReference,
    NumericReference,
    categorical_limits,
    categorical_quality,
    numeric_limits,
    numeric_quality,
    split_numeric,
    with_problems,
)
from inferwatch.quality._dataset import RowHasher, dataset_quality, duplicate_rows
from inferwatch.quality._limits import beta_binomial_upper
from inferwatch.quality._results import DatasetQuality, FeatureQuality, QualityThresholds

__all__ = [
    "CategoricalReference",
    "DatasetQuality",
    "FeatureQuality",
    "MAX_UNSEEN_REPORTED",
    "NumericReference",
    "QualityThresholds",
    "RowHasher",
    "beta_binomial_upper",
    "categorical_limits",
    "categorical_quality",
    "dataset_quality",
    "duplicate_rows",
    "numeric_limits",
    "numeric_quality",
    "split_numeric",
    "with_problems",
]
