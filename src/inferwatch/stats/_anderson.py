"""Anderson-Darling k-sample test (two samples), as ``_scipy_stats().anderson_ksamp``.

Statistic: Scholz and Stephens' standardised ``A2 = (A2kN - (k - 1)) / sigma`` with the
midrank variant for ties (``variant="midrank"``), which weighs the tails more than KS
does. Drift when ``p < threshold`` (default 0.05). Finite values only: NaN is dropped and
counted as ``missing_*``, +/-inf as ``non_finite_*``.

p-value: scipy interpolates a table and caps the result to [0.001, 0.25] (with a
warning). We keep that p-value instead of ``method=PermutationMethod()`` (9,999
resamples of the pooled data: far too slow for a report over many columns at 1M rows);
the cap cannot change a verdict at any threshold in (0.001, 0.25], the default 0.05
included, and ``details["p_value_bound"]`` says when the true p-value lies beyond a bound
(``"capped"``: >= 0.25, ``"floored"``: <= 0.001). scipy's warning is handled by that
field rather than raised.

When both samples are one and the same constant, scipy's statistic is undefined; the
result is ``statistic = 0`` (the statistic's mean under no drift), ``p_value = 1``.

Heavily tied data: the midrank statistic is standardised with the continuous-case
variance, so it flags more than the threshold promises: two Poisson(3) samples of 200
and 150 values from one distribution are flagged in 8.5% of 1,000 seeded draws at 0.05
(5.6% for normal data). Prefer KS or chi-square for discrete columns with few values.

Effect size: the A2 statistic grows with n, so the result reports the Cramér-von Mises
distance ``sqrt(integral (F_ref - F_cur)^2 dH)`` (in [0, 1]) of the same samples.
"""

from __future__ import annotations

import warnings
from typing import Any

from inferwatch._typing import FloatArray
from inferwatch.stats._base import DriftResult, DriftTest, make_result
from inferwatch.stats._samples import cdf_rms, finite_sorted, pooled_cdf, sample_details

__all__ = ["ANDERSON_DARLING", "anderson_darling"]


def _scipy_stats() -> Any:
    """scipy.stats, imported on first use: its 0.6 s import is paid only by tests that need it."""
    import scipy.stats

    return scipy.stats


_NAME = "anderson_darling"
_P_MIN, _P_MAX = 0.001, 0.25  # scipy's interpolation table


def anderson_darling(
    reference: FloatArray, current: FloatArray, threshold: float = 0.05
) -> DriftResult:
    """Two-sample Anderson-Darling test on finite values (scipy, midrank variant)."""
    ref = finite_sorted(reference, "reference")
    cur = finite_sorted(current, "current")
    details: dict[str, Any] = {
        "formula": "A2 = (A2kN - (k - 1)) / sigma, midrank (Scholz & Stephens 1987)",
        "p_value_method": "scipy table interpolation, bounded to [0.001, 0.25]",
        **sample_details(ref, cur),
    }
    lo = min(ref.values[0], cur.values[0])
    hi = max(ref.values[-1], cur.values[-1])
    if lo == hi:
        details["p_value_bound"] = "undefined: one distinct value in both samples"
        return make_result(_NAME, "p_value", 0.0, 1.0, threshold, 0.0, "exact", details)
    with warnings.catch_warnings():
        # the bound is reported in details["p_value_bound"] below
        warnings.filterwarnings("ignore", "p-value (capped|floored)", UserWarning)
        res = _scipy_stats().anderson_ksamp([ref.values, cur.values], variant="midrank")
    p = float(res.pvalue)
    details["p_value_bound"] = "capped" if p >= _P_MAX else "floored" if p <= _P_MIN else None
    effect = cdf_rms(pooled_cdf(ref.values, cur.values))
    return make_result(
        _NAME, "p_value", float(res.statistic), p, threshold, effect, "exact", details
    )


ANDERSON_DARLING = DriftTest(
    name=_NAME,
    display_name="Anderson-Darling k-sample",
    kinds=frozenset({"numeric"}),
    statistic_kind="p_value",
    default_threshold=0.05,
    exact=anderson_darling,
)
