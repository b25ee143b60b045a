"""PSI: hand-computed cases, the bin count honoured, missing and unseen entries."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inferwatch._binned import Binned
from inferwatch.stats import Counts, psi, psi_binned, psi_counts
from inferwatch.stats._psi import psi_value

EDGES = np.array([0.0, 1.0, 2.0, 3.0])


def binned(bins: list[int], under: int = 0, over: int = 0, missing: int = 0) -> Binned:
    return Binned(EDGES, np.array([under, *bins, over], dtype=np.int64), missing)


def test_three_bins_by_hand() -> None:
    # p = (0.5, 0.3, 0.2), q = (0.3, 0.3, 0.4); missing/under/over empty on both sides
    # PSI = (0.3 - 0.5) ln(0.3 / 0.5) + 0 + (0.4 - 0.2) ln(0.4 / 0.2)
    #     = 0.2 * 0.5108256238 + 0.2 * 0.6931471806 = 0.2407945609
    result = psi_binned(binned([50, 30, 20]), binned([30, 30, 40]))
    assert result.statistic == pytest.approx(0.2407945609, abs=1e-9)
    assert result.drift_detected
    assert result.details["epsilon"] == 1e-4
    assert result.details["log_base"] == "e"


def test_an_empty_bin_is_floored_at_epsilon() -> None:
    # p = (1, 0 -> 1e-4), q = (0.5, 0.5)
    expected = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    value = psi_value(np.array([100, 0]), np.array([50, 50]))
    assert value == pytest.approx(expected, abs=1e-12)
    assert value == pytest.approx(4.6043185, abs=1e-6)


def test_missing_and_out_of_range_are_entries() -> None:
    same = psi_binned(binned([50, 30, 20]), binned([50, 30, 20]))
    assert same.statistic == 0.0
    missing = psi_binned(binned([50, 30, 20]), binned([40, 24, 16], missing=20))
    over = psi_binned(binned([50, 30, 20]), binned([40, 24, 16], over=20))
    expected = (0.2 - 1e-4) * math.log(0.2 / 1e-4) + 3 * 0.0  # shares inside are unchanged
    shrink = sum((0.8 * p - p) * math.log(0.8) for p in (0.5, 0.3, 0.2))
    assert missing.statistic == pytest.approx(expected + shrink, abs=1e-12)
    assert over.statistic == pytest.approx(missing.statistic, abs=1e-12)


def test_the_bin_count_is_honoured(rng: np.random.Generator) -> None:
    ref, cur = rng.normal(size=5000), rng.normal(0.2, size=5000)
    five, twenty = psi(ref, cur, bins=5), psi(ref, cur, bins=20)
    assert five.details["bins_used"] == 5
    assert twenty.details["bins_used"] == 20
    assert five.statistic != twenty.statistic
    assert five.details["bins"] == 5


def test_tied_quantiles_are_merged(rng: np.random.Generator) -> None:
    ref = np.concatenate((np.zeros(700), rng.normal(size=300)))
    result = psi(ref, ref.copy(), bins=10)
    assert result.details["bins_used"] < 10
    assert result.statistic == 0.0


def test_categories_unseen_in_the_reference_give_a_finite_score() -> None:
    ref = Counts.from_mapping({"a": 60, "b": 40})
    cur = Counts.from_mapping({"a": 50, "b": 30, "new": 20})
    result = psi_counts(ref, cur)
    expected = (
        (0.5 - 0.6) * math.log(0.5 / 0.6)
        + (0.3 - 0.4) * math.log(0.3 / 0.4)
        + (0.2 - 1e-4) * math.log(0.2 / 1e-4)
    )
    assert result.statistic == pytest.approx(expected, abs=1e-12)
    assert result.details["unseen_categories"] == 1


def test_binned_and_exact_agree_on_the_same_bins(rng: np.random.Generator) -> None:
    from inferwatch._binned import bin_values
    from inferwatch.stats import quantile_edges

    ref, cur = rng.normal(size=1000), rng.normal(0.5, size=800)
    edges = quantile_edges(ref, 10)
    exact = psi(ref, cur)
    assert exact.mode == "exact"
    assert psi_binned(bin_values(ref, edges), bin_values(cur, edges)).statistic == exact.statistic
