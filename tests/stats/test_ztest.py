"""Two-proportion Z-test: the formula by hand, the chi-square law, Cohen's h."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from inferwatch.stats import (
    Counts,
    DriftInputError,
    EmptySampleError,
    chi_square,
    counts_from_values,
    z_test,
)


def test_by_hand() -> None:
    ref = Counts.from_mapping({"yes": 30, "no": 70})
    cur = Counts.from_mapping({"yes": 45, "no": 55})
    result = z_test(ref, cur)
    pooled = 75 / 200
    z = (0.45 - 0.30) / math.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 100))
    assert result.statistic == pytest.approx(z, abs=1e-12)
    assert result.statistic == pytest.approx(2.19089, abs=1e-5)
    assert result.p_value == pytest.approx(2 * scipy.stats.norm.sf(z), abs=1e-12)
    h = 2 * math.asin(math.sqrt(0.45)) - 2 * math.asin(math.sqrt(0.30))
    assert result.effect_size == pytest.approx(abs(h))
    assert result.details["cohens_h"] == pytest.approx(h)
    assert result.drift_detected


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_z_squared_is_the_uncorrected_two_by_two_chi_square(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n1, n2 = int(rng.integers(20, 2000)), int(rng.integers(20, 2000))
    ref = counts_from_values(rng.random(n1) < 0.3)
    cur = counts_from_values(rng.random(n2) < 0.35)
    z, chi = z_test(ref, cur), chi_square(ref, cur)
    assert z.statistic**2 == pytest.approx(chi.statistic, rel=1e-9)
    assert z.p_value == pytest.approx(chi.p_value, abs=1e-9)


def test_one_shared_category_is_no_drift() -> None:
    only = Counts.from_mapping({"x": 10})
    result = z_test(only, Counts.from_mapping({"x": 7}))
    assert (result.statistic, result.p_value) == (0.0, 1.0)


def test_missing_is_dropped_and_unseen_is_a_non_event() -> None:
    ref = Counts.from_mapping({"a": 50, "b": 50}, missing=10)
    cur = Counts.from_mapping({"a": 50, "c": 50}, missing=40)
    result = z_test(ref, cur)
    assert result.details["p_current"] == 0.5
    assert result.details["missing_current"] == 40
    assert result.details["unseen_categories"] == 1


def test_more_than_two_reference_categories_is_refused() -> None:
    ref = Counts.from_mapping({"a": 1, "b": 1, "c": 1})
    with pytest.raises(DriftInputError, match="use chi_square"):
        z_test(ref, ref)


def test_all_missing_is_a_clear_error() -> None:
    ref = Counts.from_mapping({"a": 1, "b": 1})
    with pytest.raises(EmptySampleError, match="current has no non-missing values"):
        z_test(ref, Counts((), np.zeros(0, dtype=np.int64), missing=5))
