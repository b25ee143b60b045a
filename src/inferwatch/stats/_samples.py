"""Sample preparation shared by the tests: sorted finite values, pooled CDFs, count vectors.

Numeric exact tests that need finite values (KS, Wasserstein, Anderson-Darling,
Cramér-von Mises, energy) sort each sample once (:func:`finite_sorted`) and read
everything else from the sorted arrays; NaN (missing) and +/-inf (non-finite) are dropped
and counted in the result's details.

Binned statistics (PSI, Jensen-Shannon, KL, Hellinger) compare count vectors that keep
missing and out-of-range values as entries of their own: ``Binned.full()`` =
``[missing, under, bins..., over]`` for numbers, :func:`~inferwatch.stats._base.align`
for categories. On raw numeric arrays the bins are the reference's quantiles
(:func:`quantile_edges`), counted on both sides with ``bin_values``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from inferwatch._binned import Binned, bin_values
from inferwatch._typing import FloatArray
from inferwatch.stats._base import (
    Counts,
    DriftInputError,
    DriftResult,
    EmptySampleError,
    Mode,
    align,
    make_result,
)

__all__ = [
    "PooledCdf",
    "Sample",
    "cdf_rms",
    "distance_result",
    "finite_sorted",
    "pooled_cdf",
    "quantile_edges",
    "sample_details",
    "vectors_from_binned",
    "vectors_from_counts",
    "vectors_from_values",
]


IntArray = npt.NDArray[np.int64]
Vectors = tuple[IntArray, IntArray, dict[str, Any]]


@dataclass(frozen=True)
class Sample:
    """The finite values of one sample, sorted, and what was dropped to get them."""

    values: FloatArray
    missing: int
    non_finite: int


def finite_sorted(values: npt.ArrayLike, side: str) -> Sample:
    """Sort the finite values of ``values`` once; raise if there are none."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise EmptySampleError(f"{side} is empty")
    # The batch report hands in sorted finite values: one comparison pass proves it (NaN
    # fails every comparison, and sorted values are finite when both ends are), no copy.
    if np.isfinite(arr[0]) and np.isfinite(arr[-1]) and bool(np.all(arr[:-1] <= arr[1:])):
        return Sample(arr, 0, 0)
    finite = np.isfinite(arr)
    missing = int(np.isnan(arr).sum())
    kept = arr[finite]
    if kept.size == 0:
        raise EmptySampleError(
            f"{side} has no finite values ({missing} missing, "
            f"{arr.size - missing} infinite of {arr.size})"
        )
    # The batch report hands in values it has already sorted; an O(n) check skips the sort.
    ordered = kept if bool(np.all(kept[:-1] <= kept[1:])) else np.sort(kept)
    return Sample(ordered, missing, int(arr.size - kept.size - missing))


def sample_details(reference: Sample, current: Sample) -> dict[str, Any]:
    """Sample sizes (finite values) and the missing / non-finite counts dropped."""
    return {
        "n_reference": int(reference.values.size),
        "n_current": int(current.values.size),
        "missing_reference": reference.missing,
        "missing_current": current.missing,
        "non_finite_reference": reference.non_finite,
        "non_finite_current": current.non_finite,
    }


@dataclass(frozen=True)
class PooledCdf:
    """Both empirical CDFs at each distinct pooled value, and what sits between them.

    ``reference[i]`` and ``current[i]`` are the right-continuous ECDFs at the i-th
    smallest distinct value of the pooled sample, ``ties[i]`` how many pooled values
    equal it, ``deltas[i]`` the gap to the next distinct value (one fewer entry). At the
    last value both CDFs are 1. ``integral g(F_ref - F_cur) dx`` is
    ``sum(g(diff[:-1]) * deltas)`` (scipy's ``_cdf_distance``) and a sum over the pooled
    sample is ``sum(ties * g(diff))``.
    """

    reference: FloatArray
    current: FloatArray
    ties: npt.NDArray[np.intp]
    deltas: FloatArray

    @property
    def diff(self) -> FloatArray:
        return self.reference - self.current

    @property
    def n_pooled(self) -> int:
        return int(self.ties.sum())

    @property
    def has_ties(self) -> bool:
        return bool(self.ties.size < self.n_pooled)


def pooled_cdf(reference: FloatArray, current: FloatArray) -> PooledCdf:
    """ECDFs of two *sorted* samples on their pooled values, in linear time after the sorts.

    A stable argsort of two concatenated sorted runs is a merge (timsort finds the two
    runs); the reference's CDF is then a running count of reference positions, read at
    the last element of each run of equal values.
    """
    both = np.concatenate((reference, current))
    order = np.argsort(both, kind="stable")
    pooled = both[order]
    ref_count = np.cumsum(order < reference.size)
    ends = np.flatnonzero(np.append(pooled[1:] != pooled[:-1], True))
    ref_at = ref_count[ends]
    ref_cdf = ref_at / reference.size
    cur_cdf = (ends + 1 - ref_at) / current.size
    ties = np.diff(ends, prepend=-1)
    return PooledCdf(ref_cdf, cur_cdf, ties, np.diff(pooled[ends]))


def cdf_rms(cdf: PooledCdf) -> float:
    """``sqrt(integral (F_ref - F_cur)^2 dH)`` over the pooled sample ``H``: in [0, 1].

    The Cramér-von Mises distance: a bounded effect size for the ECDF tests whose own
    statistics grow with the sample size (the last pooled value adds 0).
    """
    return float(np.sqrt(np.dot(cdf.ties, cdf.diff**2) / cdf.n_pooled))


def quantile_edges(reference: FloatArray, bins: int) -> FloatArray:
    """Edges at the finite reference's quantiles ``0, 1/bins, ..., 1`` with ties merged.

    The outer edges are the reference's minimum and maximum, so reference values never
    fall in the under/overflow bins. A constant reference ``c`` gets the one bin
    ``[c, nextafter(c, inf)]``; a reference with no finite value gets the placeholder
    ``[0, 1]`` (every comparison then rests on the missing and out-of-range entries).
    """
    if bins < 1:
        raise DriftInputError(f"bins must be at least 1, got {bins}")
    finite = reference[np.isfinite(reference)]
    if finite.size == 0:
        return np.array([0.0, 1.0])
    edges = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)))
    if edges.size == 1:
        edges = np.array([edges[0], np.nextafter(edges[0], np.inf)])
    return edges.astype(np.float64)


def _check_totals(reference: IntArray, current: IntArray) -> None:
    for side, vec in (("reference", reference), ("current", current)):
        if int(vec.sum()) == 0:
            raise EmptySampleError(f"{side} is empty")


def vectors_from_values(reference: FloatArray, current: FloatArray, bins: int) -> Vectors:
    """Reference-quantile bins counted on both raw samples: ``[missing, under, ..., over]``."""
    ref = np.asarray(reference, dtype=np.float64).reshape(-1)
    cur = np.asarray(current, dtype=np.float64).reshape(-1)
    if ref.size == 0:
        raise EmptySampleError("reference is empty")
    if cur.size == 0:
        raise EmptySampleError("current is empty")
    edges = quantile_edges(ref, bins)
    ref_binned, cur_binned = bin_values(ref, edges), bin_values(cur, edges)
    ref_vec, cur_vec, details = vectors_from_binned(ref_binned, cur_binned)
    details.update(binning=f"reference quantiles ({bins} requested)", bins=bins)
    return ref_vec, cur_vec, details


def vectors_from_binned(reference: Binned, current: Binned) -> Vectors:
    """``full()`` of two :class:`Binned` that share their edges."""
    if not np.array_equal(reference.edges, current.edges):
        raise DriftInputError("reference and current were binned on different edges")
    ref_vec, cur_vec = reference.full(), current.full()
    _check_totals(ref_vec, cur_vec)
    details: dict[str, Any] = {
        "binning": "reference bins",
        "bins_used": int(reference.edges.size - 1),
        "entries": "[missing, under, bins..., over]",
        "n_reference": int(ref_vec.sum()),
        "n_current": int(cur_vec.sum()),
        "missing_reference": reference.missing,
        "missing_current": current.missing,
    }
    return ref_vec, cur_vec, details


def vectors_from_counts(reference: Counts, current: Counts) -> Vectors:
    """Aligned category counts: reference categories, unseen ones, then missing."""
    ref_vec, cur_vec, labels = align(reference, current)
    _check_totals(ref_vec, cur_vec)
    details: dict[str, Any] = {
        "binning": "categories",
        "entries": "[reference categories..., unseen..., missing]",
        "n_categories": len(labels) - 1,
        "unseen_categories": len(labels) - 1 - len(reference.categories),
        "n_reference": int(ref_vec.sum()),
        "n_current": int(cur_vec.sum()),
        "missing_reference": reference.missing,
        "missing_current": current.missing,
    }
    return ref_vec, cur_vec, details


def distance_result(
    name: str,
    value: Callable[[IntArray, IntArray], float],
    vectors: Vectors,
    threshold: float,
    mode: Mode,
    about: Mapping[str, Any],
) -> DriftResult:
    """Run a distance on two count vectors; its value is also its effect size."""
    ref_vec, cur_vec, details = vectors
    stat = value(ref_vec, cur_vec)
    details.update(about)
    return make_result(name, "distance", stat, None, threshold, stat, mode, details)
