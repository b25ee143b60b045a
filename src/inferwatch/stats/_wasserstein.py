"""Wasserstein-1 distance normalised by the reference's standard deviation.

``W = integral |F_ref(x) - F_cur(x)| dx`` (the earth mover's distance), divided by a scale
so that the score reads "in reference standard deviations" and one threshold fits every
column: default 0.1, Evidently's (a drift when the distribution moved by a tenth of a
standard deviation or more). The statistic is its own effect size; no p-value.

Scale: ``np.std(reference)`` (population, ddof=0, finite values). When the reference is
constant the pooled standard deviation of both samples is used instead (so a constant
reference against another constant gives a finite, scale-free number, where dividing by
a floor like Evidently's 0.001 gives an arbitrary one); when both are the same constant
the distance is 0.

Exact mode matches ``scipy.stats.wasserstein_distance(ref, cur) / np.std(ref)`` on
finite values (NaN dropped as ``missing_*``, +/-inf as ``non_finite_*``), computed from
the samples sorted once and merged (:func:`pooled_cdf`).

Binned mode: each interior bin's mass is spread uniformly over the bin (both CDFs are
linear inside a bin, so ``|F_ref - F_cur|`` is integrated exactly per bin), and the
under/overflow masses are placed on the outer edges. The reference's scale is the
standard deviation of that same binned model (bin midpoints plus ``width**2 / 12``).
Bound, before normalising: moving each sample to its binned model costs at most half a
bin width per unit of mass inside the edges, plus the distance of out-of-range values to
the nearest edge, so ``|W_binned - W| <= sum_bins (p_j + q_j) * width_j / 2 + tails``
(``tails = E_ref[dist(X, [e_0, e_K])] + E_cur[...]``, zero when all values lie within the
edges); tested on fine bins.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from inferwatch._binned import Binned
from inferwatch._typing import FloatArray
from inferwatch.stats._base import DriftResult, DriftTest, EmptySampleError, make_result
from inferwatch.stats._samples import (
    finite_sorted,
    sample_details,
    vectors_from_binned,
)

__all__ = ["WASSERSTEIN", "normalise", "wasserstein", "wasserstein_binned"]

_NAME = "wasserstein"
_FORMULA = "W = integral |F_ref - F_cur| dx / scale"


def normalise(distance: float, reference_std: float, pooled_std: float) -> tuple[float, float, str]:
    """``(distance / scale, scale, source)``: the reference std, else the pooled one."""
    if reference_std > 0:
        return distance / reference_std, reference_std, "reference std"
    if pooled_std > 0:
        return distance / pooled_std, pooled_std, "pooled std (reference is constant)"
    return 0.0, 0.0, "none (both samples are the same constant)"


W1_BLOCK = 1 << 13  # breakpoints per block: 64 kB temporaries stay in cache and off mmap
_EXACT_FLOAT = 2**53  # integers below this are exact in float64


def sorted_w1(a: FloatArray, b: FloatArray, block: int = W1_BLOCK) -> float:
    """Wasserstein-1 distance of two *sorted* samples, in linear time, without a sort or merge.

    ``W1 = integral_0^1 |Qa(u) - Qb(u)| du`` with the empirical quantile functions, which
    are constant between the breakpoints ``i/n`` and ``j/m``.  On the common denominator
    ``n*m`` every piece of the integral ends at a breakpoint ``i*m`` or ``j*n``, so the sum
    is taken over each sample's own breakpoints, each with the width back to the previous
    breakpoint of either sample (``ceil(i*m/n) - 1`` of the ``j*n`` lie below ``i*m``) and
    the other sample's quantile there.  No merged order is built: two passes over
    contiguous blocks, one division each, and gathers at increasing indices.  Equal to
    ``scipy.stats.wasserstein_distance`` (the same integral over the CDFs) to rounding.
    """
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        return float("nan")
    # breakpoint arithmetic is exact in float64 below 2**53 (faster than int64 division);
    # past it, in int64
    exact_float = n * m < _EXACT_FLOAT
    dtype = np.float64 if exact_float else np.int64
    fn: Any = float(n) if exact_float else n
    fm: Any = float(m) if exact_float else m
    total = 0.0
    for i0 in range(0, n, block):  # pieces ending at a's breakpoints i*m, i = i0+1 ..
        i: npt.NDArray[Any] = np.arange(i0 + 1, min(i0 + block, n) + 1, dtype=dtype)
        im = i * fm
        kb = _ceil_div(im, fn) - 1  # b's quantile index on the piece (the j*n below i*m)
        width = im - np.maximum(im - fm, kb * fn)
        diff = np.abs(a[i0 : i0 + len(i)] - b[kb.astype(np.intp)])
        total += float(np.dot(width.astype(np.float64, copy=False), diff))
    for j0 in range(0, m, block):  # pieces ending at b's breakpoints j*n, j = j0+1 ..
        j: npt.NDArray[Any] = np.arange(j0 + 1, min(j0 + block, m) + 1, dtype=dtype)
        jn = j * fn
        ka = _ceil_div(jn, fm) - 1  # a's quantile index on the piece
        # the previous breakpoint: the last i*m at or below j*n (a tie gives width 0,
        # so a piece ending at both samples' breakpoints is counted once)
        width = jn - np.maximum(jn - fn, _floor_div(jn, fm) * fm)
        diff = np.abs(a[ka.astype(np.intp)] - b[j0 : j0 + len(j)])
        total += float(np.dot(width.astype(np.float64, copy=False), diff))
    return total / (float(n) * float(m))


def _ceil_div(x: npt.NDArray[Any], d: Any) -> npt.NDArray[Any]:
    out: npt.NDArray[Any] = np.ceil(x / d) if x.dtype == np.float64 else -(-x // d)
    return out


def _floor_div(x: npt.NDArray[Any], d: Any) -> npt.NDArray[Any]:
    out: npt.NDArray[Any] = np.floor(x / d) if x.dtype == np.float64 else x // d
    return out


def wasserstein(reference: FloatArray, current: FloatArray, threshold: float = 0.1) -> DriftResult:
    """``wasserstein_distance(ref, cur) / np.std(ref)`` on the finite values."""
    ref = finite_sorted(reference, "reference")
    cur = finite_sorted(current, "current")
    distance = sorted_w1(ref.values, cur.values)
    ref_std = float(np.std(ref.values))
    pooled_std = 0.0 if ref_std > 0 else float(np.std(np.concatenate((ref.values, cur.values))))
    stat, scale, source = normalise(distance, ref_std, pooled_std)
    details: dict[str, Any] = {
        "formula": _FORMULA,
        "distance": distance,
        "scale": scale,
        "scale_source": source,
        **sample_details(ref, cur),
    }
    return make_result(_NAME, "distance", stat, None, threshold, stat, "exact", details)


def _model(edges: FloatArray, shares: FloatArray) -> tuple[float, float]:
    """Mean and std of the binned model: uniform inside bins, tails on the outer edges."""
    widths = np.diff(edges)
    centres = np.concatenate(([edges[0]], (edges[:-1] + edges[1:]) / 2, [edges[-1]]))
    within = np.concatenate(([0.0], widths**2 / 12, [0.0]))
    mean = float(np.dot(shares, centres))
    var = float(np.dot(shares, (centres - mean) ** 2 + within))
    return mean, float(np.sqrt(max(var, 0.0)))


def binned_distance(edges: FloatArray, ref_shares: FloatArray, cur_shares: FloatArray) -> float:
    """``integral |F_ref - F_cur|`` with both CDFs linear inside each bin.

    ``*_shares`` are ``[under, bins..., over]`` shares of the non-missing values.
    """
    diff = np.cumsum(ref_shares) - np.cumsum(cur_shares)
    d0, d1 = diff[:-2], diff[1:-1]  # the CDF difference at each bin's left and right end
    a0, a1 = np.abs(d0), np.abs(d1)
    widths = np.diff(edges)
    same_sign = d0 * d1 >= 0
    total = a0 + a1
    crossing = np.divide(d0**2 + d1**2, total, out=np.zeros_like(total), where=total > 0)
    area = np.where(same_sign, total, crossing) * widths / 2
    return float(area.sum())


def wasserstein_binned(reference: Binned, current: Binned, threshold: float = 0.1) -> DriftResult:
    """Normalised Wasserstein on reference bins (uniform mass in bins, tails on the edges)."""
    ref_vec, cur_vec, details = vectors_from_binned(reference, current)
    ref_counts, cur_counts = ref_vec[1:], cur_vec[1:]  # drop the missing entry
    n1, n2 = int(ref_counts.sum()), int(cur_counts.sum())
    if n1 == 0 or n2 == 0:
        side = "reference" if n1 == 0 else "current"
        raise EmptySampleError(f"{side} has no non-missing values")
    ref_shares, cur_shares = ref_counts / n1, cur_counts / n2
    distance = binned_distance(reference.edges, ref_shares, cur_shares)
    _, ref_std = _model(reference.edges, ref_shares)
    pooled_std = 0.0
    if ref_std == 0:
        _, pooled_std = _model(reference.edges, (ref_counts + cur_counts) / (n1 + n2))
    stat, scale, source = normalise(distance, ref_std, pooled_std)
    details.update(
        formula=_FORMULA + " on binned CDFs (uniform within bins, tails at the edges)",
        distance=distance,
        scale=scale,
        scale_source=source + " of the binned model",
        n_reference=n1,
        n_current=n2,
    )
    return make_result(_NAME, "distance", stat, None, threshold, stat, "binned", details)


WASSERSTEIN = DriftTest(
    name=_NAME,
    display_name="Wasserstein distance (normalised)",
    kinds=frozenset({"numeric"}),
    statistic_kind="distance",
    default_threshold=0.1,
    exact=wasserstein,
    binned=wasserstein_binned,
)
