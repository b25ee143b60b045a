"""Normalised Wasserstein distance: scipy's answers, the constant-reference scale, bounds."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from inferwatch._binned import Binned, bin_values
from inferwatch.stats import quantile_edges, wasserstein, wasserstein_binned


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("n1", "n2"), [(10, 10), (300, 77), (5000, 20_000)])
def test_exact_matches_scipy_over_the_reference_std(seed: int, n1: int, n2: int) -> None:
    rng = np.random.default_rng(seed)
    ref, cur = rng.normal(5.0, 2.0, size=n1), rng.lognormal(1.5, 0.4, size=n2)
    ours = wasserstein(ref, cur)
    expected = scipy.stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert ours.statistic == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert ours.effect_size == ours.statistic
    assert ours.details["distance"] == pytest.approx(scipy.stats.wasserstein_distance(ref, cur))


def test_a_shift_of_a_tenth_of_a_std_sits_at_the_threshold(rng: np.random.Generator) -> None:
    ref = rng.normal(size=200_000)
    assert wasserstein(ref, ref + 0.1).statistic == pytest.approx(0.1 / np.std(ref), rel=1e-9)


def test_a_constant_reference_is_scaled_by_the_pooled_std() -> None:
    result = wasserstein(np.zeros(100), np.ones(100))
    assert result.statistic == pytest.approx(2.0)  # W = 1, pooled std = 0.5
    assert result.details["scale_source"].startswith("pooled")
    same = wasserstein(np.full(10, 7.0), np.full(5, 7.0))
    assert same.statistic == 0.0


def test_binned_distance_of_two_uniform_bins_is_their_gap() -> None:
    edges = np.array([0.0, 1.0, 2.0])
    ref = Binned(edges, np.array([0, 10, 0, 0], dtype=np.int64))
    cur = Binned(edges, np.array([0, 0, 10, 0], dtype=np.int64))
    result = wasserstein_binned(ref, cur)
    assert result.details["distance"] == pytest.approx(1.0)  # U[0,1] against U[1,2]
    assert result.details["scale"] == pytest.approx(np.sqrt(1 / 12))


def _tails(values: npt.NDArray[np.float64], edges: npt.NDArray[np.float64]) -> float:
    return float(np.mean(np.maximum(edges[0] - values, 0) + np.maximum(values - edges[-1], 0)))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    lognormal=st.booleans(),
    n1=st.integers(5, 1500),
    n2=st.integers(5, 1500),
    bins=st.integers(1, 60),
    shift=st.floats(-1.0, 1.0),
)
def test_binned_distance_is_within_the_documented_bound(
    seed: int, lognormal: bool, n1: int, n2: int, bins: int, shift: float
) -> None:
    rng = np.random.default_rng(seed)
    draw = rng.lognormal if lognormal else rng.normal
    ref, cur = draw(0.0, 1.0, size=n1), draw(shift, 1.0, size=n2)
    edges = quantile_edges(ref, bins)
    ref_b, cur_b = bin_values(ref, edges), bin_values(cur, edges)
    exact = wasserstein(ref, cur).details["distance"]
    binned = wasserstein_binned(ref_b, cur_b).details["distance"]
    widths = np.diff(edges)
    inside = (ref_b.counts[1:-1] / n1 + cur_b.counts[1:-1] / n2) @ widths / 2
    bound = inside + _tails(ref, edges) + _tails(cur, edges)
    assert abs(binned - exact) <= bound + 1e-9


def test_fine_bins_agree_with_exact(rng: np.random.Generator) -> None:
    ref, cur = rng.normal(size=50_000), rng.normal(0.25, 1.2, size=40_000)
    edges = quantile_edges(ref, 200)
    exact = wasserstein(ref, cur).statistic
    binned = wasserstein_binned(bin_values(ref, edges), bin_values(cur, edges)).statistic
    assert binned == pytest.approx(exact, abs=0.02)


@pytest.mark.parametrize("block", [1, 3, 64, 1 << 16])
@pytest.mark.parametrize(
    ("n", "m"), [(1, 1), (1, 9), (9, 1), (5, 3), (100, 37), (37, 100), (500, 500)]
)
def test_blocked_sorted_w1_matches_scipy(n: int, m: int, block: int) -> None:
    from inferwatch.stats._wasserstein import sorted_w1

    rng = np.random.default_rng(n * 1000 + m)
    a = np.sort(rng.normal(size=n))
    b = np.sort(rng.normal(0.3, 1.2, size=m))
    ties = np.sort(rng.integers(0, 4, size=n).astype(float))
    assert sorted_w1(a, b, block) == pytest.approx(
        scipy.stats.wasserstein_distance(a, b), rel=1e-12
    )
    assert sorted_w1(ties, b, block) == pytest.approx(
        scipy.stats.wasserstein_distance(ties, b), rel=1e-12, abs=1e-15
    )


@pytest.mark.parametrize(("n", "m"), [(5, 3), (100, 37), (400, 200), (500, 500)])
def test_sorted_w1_integer_path_matches_scipy(
    n: int, m: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past 2**53 breakpoint units the arithmetic runs in int64; forced here on small data."""
    import inferwatch.stats._wasserstein as w

    monkeypatch.setattr(w, "_EXACT_FLOAT", 0)
    rng = np.random.default_rng(n + m)
    a = np.sort(rng.integers(0, 6, size=n).astype(float))  # ties on both sides
    b = np.sort(rng.integers(1, 7, size=m).astype(float))
    for block in (1, 7, 1 << 13):
        assert w.sorted_w1(a, b, block) == pytest.approx(
            scipy.stats.wasserstein_distance(a, b), rel=1e-12
        )
