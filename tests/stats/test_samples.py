"""Sample preparation: finite values, pooled CDFs, reference-quantile bins."""

from __future__ import annotations

import numpy as np
import pytest

from inferwatch.stats import EmptySampleError, quantile_edges
from inferwatch.stats._samples import cdf_rms, finite_sorted, pooled_cdf


def test_finite_sorted_counts_what_it_drops() -> None:
    sample = finite_sorted(np.array([3.0, np.nan, -np.inf, 1.0, np.inf, np.nan]), "current")
    assert sample.values.tolist() == [1.0, 3.0]
    assert (sample.missing, sample.non_finite) == (2, 2)
    with pytest.raises(EmptySampleError, match=r"current has no finite values \(1 missing, 1"):
        finite_sorted(np.array([np.nan, np.inf]), "current")
    with pytest.raises(EmptySampleError, match="reference is empty"):
        finite_sorted(np.array([]), "reference")


def test_pooled_cdf_matches_a_direct_evaluation(rng: np.random.Generator) -> None:
    a = np.sort(rng.integers(0, 20, size=50).astype(float))  # ties on purpose
    b = np.sort(rng.integers(5, 30, size=70).astype(float))
    cdf = pooled_cdf(a, b)
    pooled = np.sort(np.concatenate((a, b)))
    distinct, ties = np.unique(pooled, return_counts=True)
    np.testing.assert_array_equal(cdf.reference, [(a <= z).mean() for z in distinct])
    np.testing.assert_array_equal(cdf.current, [(b <= z).mean() for z in distinct])
    np.testing.assert_array_equal(cdf.ties, ties)
    np.testing.assert_array_equal(cdf.deltas, np.diff(distinct))
    assert cdf.n_pooled == 120
    assert cdf.has_ties
    direct = np.sqrt(np.mean([((a <= z).mean() - (b <= z).mean()) ** 2 for z in pooled]))
    assert cdf_rms(cdf) == pytest.approx(direct, rel=1e-12)


def test_pooled_cdf_of_untied_samples(rng: np.random.Generator) -> None:
    a, b = np.sort(rng.normal(size=30)), np.sort(rng.normal(size=20))
    cdf = pooled_cdf(a, b)
    assert not cdf.has_ties
    assert cdf.reference.size == 50
    assert (cdf.reference[-1], cdf.current[-1]) == (1.0, 1.0)


def test_quantile_edges_honour_the_bin_count(rng: np.random.Generator) -> None:
    values = rng.normal(size=1000)
    for bins in (1, 5, 10, 37):
        edges = quantile_edges(values, bins)
        assert edges.size == bins + 1
        assert edges[0] == values.min()
        assert edges[-1] == values.max()
        assert np.all(np.diff(edges) > 0)


def test_quantile_edges_merge_ties_and_survive_degenerate_references() -> None:
    tied = np.concatenate((np.zeros(800), np.arange(1.0, 201.0)))
    assert quantile_edges(tied, 10).size < 11
    constant = quantile_edges(np.full(10, 3.0), 10)
    assert constant[0] == 3.0
    assert constant.size == 2
    assert constant[1] > 3.0
    assert quantile_edges(np.array([np.nan, np.inf]), 10).tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="bins must be at least 1"):
        quantile_edges(np.arange(3.0), 0)
