"""Chi-square homogeneity test: scipy's contingency answer, unseen categories, sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from inferwatch.stats import Counts, chi_square, counts_from_values


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("n1", "n2"), [(50, 50), (80, 3000), (2000, 120)])
def test_matches_chi2_contingency_without_correction(seed: int, n1: int, n2: int) -> None:
    rng = np.random.default_rng(seed)
    cats = ["a", "b", "c", "d"]
    ref = counts_from_values(rng.choice(cats, p=[0.4, 0.3, 0.2, 0.1], size=n1))
    cur = counts_from_values(rng.choice(cats, p=[0.35, 0.3, 0.2, 0.15], size=n2))
    result = chi_square(ref, cur)
    table = np.vstack((ref.counts, cur.counts))  # both have every category, no missing
    table = table[:, table.sum(axis=0) > 0]
    theirs = scipy.stats.chi2_contingency(table, correction=False)
    assert result.statistic == pytest.approx(theirs.statistic, abs=1e-9)
    assert result.p_value == pytest.approx(theirs.pvalue, abs=1e-9)
    assert result.effect_size == pytest.approx(math.sqrt(theirs.statistic / table.sum()))


def test_an_unseen_category_gives_a_large_finite_statistic() -> None:
    ref = Counts.from_mapping({"a": 500, "b": 500})
    cur = Counts.from_mapping({"a": 40, "b": 40, "new": 20})
    result = chi_square(ref, cur)
    assert math.isfinite(result.statistic)
    assert result.drift_detected
    assert result.details["unseen_categories"] == 1
    assert result.details["dof"] == 2  # a, b, new; the empty missing entry is left out


def test_a_missingness_shift_is_an_entry() -> None:
    ref = Counts.from_mapping({"a": 500, "b": 500})
    cur = Counts.from_mapping({"a": 400, "b": 400}, missing=200)
    result = chi_square(ref, cur)
    assert result.drift_detected
    theirs = scipy.stats.chi2_contingency([[500, 500, 0], [400, 400, 200]], correction=False)
    assert result.statistic == pytest.approx(theirs.statistic)


def test_one_non_empty_entry_is_no_drift() -> None:
    only = Counts.from_mapping({"a": 10})
    result = chi_square(only, Counts.from_mapping({"a": 3}))
    assert (result.statistic, result.p_value, result.effect_size) == (0.0, 1.0, 0.0)


def test_false_alarm_rate_holds_with_a_small_reference_and_a_large_current() -> None:
    # the goodness-of-fit form treats 60 reference rows as the truth and over-flags
    probs, cats = [0.5, 0.3, 0.2], ["a", "b", "c"]
    flagged = 0
    for seed in range(300):
        rng = np.random.default_rng(seed)
        ref = counts_from_values(rng.choice(cats, p=probs, size=60))
        cur = counts_from_values(rng.choice(cats, p=probs, size=5000))
        flagged += chi_square(ref, cur).drift_detected
    assert flagged / 300 <= 0.08
