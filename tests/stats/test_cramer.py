"""Cramér-von Mises: scipy's answers on untied data, a correct statistic on tied data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from inferwatch.stats import EmptySampleError, cramer_von_mises


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("n1", "n2"), [(5, 7), (20, 20), (21, 30), (300, 500), (1000, 20)])
def test_matches_scipy_without_ties(seed: int, n1: int, n2: int) -> None:
    rng = np.random.default_rng(seed)
    ref, cur = rng.normal(size=n1), rng.normal(0.3, size=n2)
    ours = cramer_von_mises(ref, cur)
    theirs = scipy.stats.cramervonmises_2samp(ref, cur, method="auto")
    assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-9, abs=1e-12)
    assert ours.p_value == pytest.approx(theirs.pvalue, abs=1e-9)
    expected = "exact" if max(n1, n2) <= 20 else "asymptotic"
    assert ours.details["p_value_method"] == expected


def test_the_effect_size_is_the_distance_behind_the_statistic(rng: np.random.Generator) -> None:
    ref, cur = rng.normal(size=400), rng.normal(0.5, size=300)
    result = cramer_von_mises(ref, cur)
    n1, n2 = 400, 300
    assert result.effect_size == pytest.approx(
        np.sqrt(result.statistic * (n1 + n2) / (n1 * n2)), rel=1e-9
    )


def test_ties_do_not_fake_drift_where_scipys_midranks_do() -> None:
    ref, cur = np.full(200, 3.0), np.full(150, 3.0)
    assert scipy.stats.cramervonmises_2samp(ref, cur).pvalue < 1e-5  # scipy's defect
    ours = cramer_von_mises(ref, cur)
    assert (ours.statistic, ours.p_value) == (0.0, 1.0)
    two_values = cramer_von_mises(np.repeat([0.0, 1.0], 100), np.repeat([0.0, 1.0], 75))
    assert two_values.statistic == 0.0
    assert two_values.details["ties"] is True


def test_false_alarm_rate_on_tied_data_stays_near_the_threshold() -> None:
    flagged = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        ref, cur = rng.poisson(3, size=200).astype(float), rng.poisson(3, size=150).astype(float)
        flagged += cramer_von_mises(ref, cur).drift_detected
    assert flagged / 200 <= 0.09


def test_needs_two_values_per_sample() -> None:
    with pytest.raises(EmptySampleError, match="at least two"):
        cramer_von_mises(np.array([1.0, np.nan]), np.arange(5.0))
