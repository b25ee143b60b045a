"""Dataset checks: duplicate rows against pandas, missing columns, staleness."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from inferwatch.quality import QualityThresholds, dataset_quality, duplicate_rows


@pytest.mark.parametrize("n", [0, 1, 10, 5000])
def test_duplicate_rows_match_pandas(n: int, rng: np.random.Generator) -> None:
    a = rng.integers(0, 4, n)
    b = rng.choice([0.5, 1.5, np.nan], n)
    c = rng.integers(0, 3, n)  # e.g. dictionary codes of a string column
    expected = int(pd.DataFrame({"a": a, "b": b, "c": c}).duplicated().sum())
    assert duplicate_rows([a, b, c]) == expected


def test_column_order_and_values_matter() -> None:
    a = np.array([1, 2])
    b = np.array([2, 1])
    assert duplicate_rows([a, b]) == 0  # rows (1,2) and (2,1) differ
    assert duplicate_rows([np.array([0.0, -0.0]), np.array([1, 1])]) == 1  # 0.0 == -0.0


def test_duplicate_rows_rejects_objects_and_ragged_columns() -> None:
    with pytest.raises(TypeError, match="integer codes"):
        duplicate_rows([np.array(["a", "b"], dtype=object)])
    with pytest.raises(ValueError, match="same length"):
        duplicate_rows([np.array([1, 2]), np.array([1])])


def test_dataset_problems() -> None:
    dq = dataset_quality(
        100,
        [],
        duplicates=10,
        missing_columns=("age",),
        newest_timestamp=1000.0,
        now=5000.0,
        thresholds=QualityThresholds(max_duplicate_share=0.05, max_staleness_seconds=3600),
    )
    assert dq.duplicate_share == pytest.approx(0.1)
    assert dq.staleness_seconds == 4000.0
    assert set(dq.problems) == {"missing_columns", "duplicate_rows", "stale"}
    assert dq.failed
    assert dataset_quality(100, [], duplicates=10).problems == ()  # duplicates alone don't fail
