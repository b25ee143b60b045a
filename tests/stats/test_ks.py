"""Kolmogorov-Smirnov: scipy's answers in exact mode, a proven bound in binned mode."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from inferwatch._binned import Binned, bin_values
from inferwatch.stats import KS, EmptySampleError, ks_binned, ks_test, quantile_edges

SIZES = [(30, 30), (200, 57), (1000, 1500), (9999, 4000)]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("n1", "n2"), SIZES)
def test_exact_matches_scipy_auto(seed: int, n1: int, n2: int) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=n1)
    cur = rng.normal(0.1, 1.1, size=n2)
    ours = ks_test(ref, cur)
    theirs = scipy.stats.ks_2samp(ref, cur, method="auto")
    assert ours.statistic == pytest.approx(theirs.statistic, abs=1e-9)
    assert ours.p_value == pytest.approx(theirs.pvalue, abs=1e-9)
    assert ours.effect_size == ours.statistic
    assert ours.details["p_value_method"] == "exact"


@pytest.mark.parametrize("seed", [0, 1])
def test_large_samples_use_scipys_asymptotic_branch_from_one_sort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.lognormal(size=12_000)
    cur = rng.lognormal(0.01, 1.0, size=15_001)
    ours = ks_test(ref, cur)
    theirs = scipy.stats.ks_2samp(ref, cur, method="auto")
    assert ours.details["p_value_method"] == "asymptotic"
    assert ours.statistic == pytest.approx(theirs.statistic, abs=1e-9)
    assert ours.p_value == pytest.approx(theirs.pvalue, abs=1e-9)


def test_where_scipys_exact_computation_fails_its_fallback_is_recorded() -> None:
    rng = np.random.default_rng(126)
    ref, cur = rng.normal(size=5), rng.normal(size=5)
    with pytest.warns(RuntimeWarning, match="Switching to"):
        theirs = scipy.stats.ks_2samp(ref, cur, method="auto")
    ours = ks_test(ref, cur)  # no warning escapes (filterwarnings = error)
    assert ours.p_value == pytest.approx(theirs.pvalue, abs=1e-9)
    assert ours.details["p_value_method"].startswith("asymptotic")


def test_ties_match_scipy(rng: np.random.Generator) -> None:
    ref = rng.integers(0, 5, size=300).astype(float)
    cur = rng.integers(0, 6, size=200).astype(float)
    theirs = scipy.stats.ks_2samp(ref, cur)
    ours = ks_test(ref, cur)
    assert (ours.statistic, ours.p_value) == pytest.approx((theirs.statistic, theirs.pvalue))


def test_missing_values_are_dropped_and_reported(rng: np.random.Generator) -> None:
    ref = rng.normal(size=100)
    cur = np.concatenate((ref[:80], [np.nan] * 20))
    result = ks_test(ref, cur)
    assert result.details["missing_current"] == 20
    assert result.details["n_current"] == 80
    theirs = scipy.stats.ks_2samp(ref, ref[:80])
    assert result.p_value == pytest.approx(theirs.pvalue, abs=1e-9)


def test_binned_p_value_is_the_asymptotic_one_at_the_effective_n(rng: np.random.Generator) -> None:
    ref, cur = rng.normal(size=800), rng.normal(0.3, size=500)
    edges = quantile_edges(ref, 10)
    result = ks_binned(bin_values(ref, edges), bin_values(cur, edges))
    n_eff = round(800 * 500 / 1300)
    assert result.p_value == pytest.approx(scipy.stats.kstwo.sf(result.statistic, n_eff))
    assert result.mode == "binned"


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    lognormal=st.booleans(),
    n1=st.integers(5, 1500),
    n2=st.integers(5, 1500),
    bins=st.integers(1, 40),
    shift=st.floats(-1.0, 1.0),
)
def test_binned_is_within_the_largest_bin_share_below_exact(
    seed: int, lognormal: bool, n1: int, n2: int, bins: int, shift: float
) -> None:
    rng = np.random.default_rng(seed)
    draw = rng.lognormal if lognormal else rng.normal
    ref, cur = draw(0.0, 1.0, size=n1), draw(shift, 1.0, size=n2)
    edges = quantile_edges(ref, bins)
    ref_b, cur_b = bin_values(ref, edges), bin_values(cur, edges)
    exact = ks_test(ref, cur).statistic
    binned = ks_binned(ref_b, cur_b).statistic
    max_share = max(ref_b.counts.max() / n1, cur_b.counts.max() / n2)
    assert binned <= exact + 1e-12
    assert exact - binned <= max_share + 1e-12


def test_binned_statistics_of_many_pairs_equal_ks_binned_pair_by_pair() -> None:
    """What calibration resamples: every row's ``D_b`` bit for bit as ``ks_binned``'s,
    missing entries and empty bins included, and the same calibrated threshold."""
    from inferwatch.evaluate._calibration import calibrate
    from inferwatch.stats._ks import ks_binned_statistics

    rng = np.random.default_rng(5)
    edges = np.linspace(-2.0, 3.0, 16)
    shares = rng.dirichlet(np.ones(18))  # [missing, under, 15 bins, over]
    shares[5] = 0.0  # an empty bin
    shares /= shares.sum()
    refs = rng.multinomial(700, shares, size=200)
    curs = rng.multinomial(90, rng.dirichlet(np.ones(18)), size=200)
    got = ks_binned_statistics(refs, curs)
    want = [
        ks_binned(
            Binned(edges, a[1:].astype(np.int64), int(a[0])),
            Binned(edges, b[1:].astype(np.int64), int(b[0])),
        ).statistic
        for a, b in zip(refs, curs, strict=True)
    ]
    assert got.tolist() == want
    reference = Binned(edges, refs[0][1:].astype(np.int64), int(refs[0][0]))
    slow = dataclasses.replace(KS, binned_statistics=None)
    fast_cal = calibrate(KS, reference, 120, resamples=300, quantile=0.95,
                         rng=np.random.default_rng(1))  # fmt: skip
    slow_cal = calibrate(slow, reference, 120, resamples=300, quantile=0.95,
                         rng=np.random.default_rng(1))  # fmt: skip
    assert fast_cal.threshold == slow_cal.threshold
    assert np.array_equal(fast_cal.null, slow_cal.null)
    empty = refs[:2].copy()
    empty[1, 1:] = 0
    with pytest.raises(EmptySampleError):
        ks_binned_statistics(empty, curs[:2])
