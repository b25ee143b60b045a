"""Kolmogorov-Smirnov two-sample test (two-sided), on raw arrays and on reference bins.

Statistic ``D = sup_x |F_ref(x) - F_cur(x)|`` over the empirical CDFs. Two-sided, so a
shift in either direction counts (a one-sided test, like the one-sided Mann-Whitney
some tools ship, misses half of the shifts). Drift when ``p < threshold`` (default
0.05). The effect size is ``D`` itself: in [0, 1] and not growing with the sample size.

Exact mode (raw arrays) matches ``_scipy_stats().ks_2samp(ref, cur, method="auto")``:

* NaN is dropped and counted as ``missing_*``, +/-inf dropped and counted as
  ``non_finite_*`` (a missingness shift is the binned statistics' job);
* when both samples have at most 10,000 finite values the p-value is scipy's exact one
  (``ks_2samp(method="exact")``, scipy's own ``auto`` rule); where scipy's exact
  computation fails (it does for some tiny samples, e.g. 5 against 5) scipy falls back
  to the asymptotic p-value with a warning: the result says so in ``p_value_method``;
* above that, ``D`` is read from the samples sorted once (:func:`pooled_cdf`) and the
  p-value is Smirnov's asymptotic ``kstwo.sf(D, round(n m / (n + m)))`` — scipy's
  ``asymp`` branch without its second sort. Mind its cost: when p is small (about
  ``n_eff D^2 >= 2.2``) scipy sums the exact Smirnov series, O(n_eff): about 0.5 s at
  ``n_eff = 500,000`` (two 1M-row samples). The default rule only picks KS for
  references of at most 1,000 rows, where ``n_eff < 1,000``.

Binned mode: ``D_b = max_j |F_ref(e_j) - F_cur(e_j)|`` over the bin edges, the CDFs
being cumulative shares of ``[under, bins..., over]`` among non-missing values (missing
is left out, as in exact mode). Every edge value is a value (or limit) of the exact ECDF
difference, and inside a bin each CDF moves by at most that bin's share, so
``D_b <= D <= D_b + max_bin max(p_bin, q_bin)`` (tested). The p-value is the asymptotic
one at the effective size ``round(n m / (n + m))``; since ``D_b <= D`` it errs towards
no drift.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt

from inferwatch._binned import Binned
from inferwatch._typing import FloatArray
from inferwatch.stats._base import DriftResult, DriftTest, EmptySampleError, make_result
from inferwatch.stats._samples import (
    finite_sorted,
    pooled_cdf,
    sample_details,
    vectors_from_binned,
)

__all__ = ["KS", "ks_binned", "ks_binned_statistics", "ks_test"]


def _scipy_stats() -> Any:
    """scipy.stats, imported on first use: its 0.6 s import is paid only by tests that need it."""
    import scipy.stats

    return scipy.stats


_NAME = "ks"
_MAX_EXACT_N = 10_000  # scipy's MAX_AUTO_N: "auto" is exact up to this size
_FORMULA = "D = max |F_ref - F_cur|"


def _asymptotic_p(d: float, n1: int, n2: int) -> float:
    en = n1 * n2 / (n1 + n2)
    return float(np.clip(_scipy_stats().kstwo.sf(d, max(1.0, float(np.round(en)))), 0.0, 1.0))


def _scipy_exact(reference: FloatArray, current: FloatArray) -> tuple[float, float, str]:
    """scipy's exact p-value; where scipy's own exact computation fails, its fallback."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = _scipy_stats().ks_2samp(reference, current, method="exact")
    method = "exact"
    for w in caught:
        # e.g. n = m = 5: rounding puts the exact probability a hair above 1, and scipy
        # warns and switches to the asymptotic distribution; record that instead
        if issubclass(w.category, RuntimeWarning) and "Switching to" in str(w.message):
            method = "asymptotic (scipy's exact computation failed)"
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return float(res.statistic), float(res.pvalue), method


def ks_test(reference: FloatArray, current: FloatArray, threshold: float = 0.05) -> DriftResult:
    """Two-sample KS test on raw values; statistic and p-value as ``ks_2samp(method="auto")``."""
    ref = finite_sorted(reference, "reference")
    cur = finite_sorted(current, "current")
    n1, n2 = ref.values.size, cur.values.size
    if max(n1, n2) <= _MAX_EXACT_N:
        d, p, method = _scipy_exact(ref.values, cur.values)
    else:
        cdf = pooled_cdf(ref.values, cur.values)
        d = float(np.max(np.abs(cdf.diff)))
        p, method = _asymptotic_p(d, n1, n2), "asymptotic"
    details: dict[str, Any] = {
        "formula": _FORMULA,
        "p_value_method": method,
        **sample_details(ref, cur),
    }
    return make_result(_NAME, "p_value", d, p, threshold, d, "exact", details)


def ks_binned(reference: Binned, current: Binned, threshold: float = 0.05) -> DriftResult:
    """KS on reference bins: ``D`` at the bin edges, asymptotic p-value at the effective n."""
    ref_vec, cur_vec, details = vectors_from_binned(reference, current)
    ref_counts, cur_counts = ref_vec[1:], cur_vec[1:]  # drop the missing entry
    n1, n2 = int(ref_counts.sum()), int(cur_counts.sum())
    if n1 == 0 or n2 == 0:
        side = "reference" if n1 == 0 else "current"
        raise EmptySampleError(f"{side} has no non-missing values")
    ref_cdf = np.cumsum(ref_counts)[:-1] / n1
    cur_cdf = np.cumsum(cur_counts)[:-1] / n2
    d = float(np.max(np.abs(ref_cdf - cur_cdf)))
    details.update(
        formula=_FORMULA + " at bin edges",
        p_value_method="asymptotic at n_eff = round(n m / (n + m))",
        n_reference=n1,
        n_current=n2,
        max_bin_share=float(max(np.max(ref_counts) / n1, np.max(cur_counts) / n2)),
    )
    return make_result(
        _NAME, "p_value", d, _asymptotic_p(d, n1, n2), threshold, d, "binned", details
    )


def ks_binned_statistics(
    references: npt.NDArray[np.int64], currents: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """``ks_binned``'s ``D_b`` of each pair of rows (full vectors ``[missing, under,
    bins..., over]`` on the same edges), computed as it computes it, with no p-value: the
    statistics a live threshold's calibration resamples.  The Smirnov p-value costs
    milliseconds a pair, the statistic microseconds for all of them."""
    ref = np.asarray(references, dtype=np.int64)[:, 1:]  # drop the missing entry
    cur = np.asarray(currents, dtype=np.int64)[:, 1:]
    n1, n2 = ref.sum(axis=1), cur.sum(axis=1)
    if (n1 == 0).any() or (n2 == 0).any():
        side = "reference" if (n1 == 0).any() else "current"
        raise EmptySampleError(f"{side} has no non-missing values")
    ref_cdf = np.cumsum(ref, axis=1)[:, :-1] / n1[:, None]
    cur_cdf = np.cumsum(cur, axis=1)[:, :-1] / n2[:, None]
    out: npt.NDArray[np.float64] = np.max(np.abs(ref_cdf - cur_cdf), axis=1)
    return out


KS = DriftTest(
    name=_NAME,
    display_name="Kolmogorov-Smirnov",
    kinds=frozenset({"numeric"}),
    statistic_kind="p_value",
    default_threshold=0.05,
    exact=ks_test,
    binned=ks_binned,
    binned_statistics=ks_binned_statistics,
)
