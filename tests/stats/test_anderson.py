"""Anderson-Darling k-sample: scipy's statistic and bounded p-value, the bound reported."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats

from inferwatch.stats import anderson_darling


def scipy_ad(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scipy's p-value cap notice
        res = scipy.stats.anderson_ksamp([ref, cur], variant="midrank")
    return float(res.statistic), float(res.pvalue)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("n1", "n2", "shift"), [(40, 40, 0.0), (300, 120, 0.2), (2000, 900, 0.5)])
def test_matches_scipy(seed: int, n1: int, n2: int, shift: float) -> None:
    rng = np.random.default_rng(seed)
    ref, cur = rng.normal(size=n1), rng.normal(shift, size=n2)
    ours = anderson_darling(ref, cur)
    statistic, p_value = scipy_ad(ref, cur)
    assert ours.statistic == pytest.approx(statistic, abs=1e-9)
    assert ours.p_value == pytest.approx(p_value, abs=1e-9)
    assert 0.0 <= ours.effect_size <= 1.0  # type: ignore[operator]


def test_the_p_value_bounds_are_reported_not_warned(rng: np.random.Generator) -> None:
    ref = rng.normal(size=500)
    capped = anderson_darling(ref, ref.copy())
    assert capped.p_value == 0.25
    assert capped.details["p_value_bound"] == "capped"
    floored = anderson_darling(ref, ref + 3.0)
    assert floored.p_value == 0.001
    assert floored.details["p_value_bound"] == "floored"
    inside = anderson_darling(ref, rng.normal(0.15, size=500))
    if 0.001 < inside.p_value < 0.25:  # type: ignore[operator]
        assert inside.details["p_value_bound"] is None


def test_one_shared_constant_is_no_drift() -> None:
    result = anderson_darling(np.full(50, 2.0), np.full(30, 2.0))
    assert (result.statistic, result.p_value) == (0.0, 1.0)
    assert not result.drift_detected
