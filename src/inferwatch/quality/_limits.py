"""Quality limits from the reference: the largest share that sampling explains.

A share (missing values, outliers, values out of the reference's range, unseen
categories) is a problem only when it rose beyond what drawing the current rows from the
reference's own distribution would give.  A fixed cap (the old "5% outliers") fails a
file checked against itself whenever the reference itself is past the cap: a skewed
column can have 7% of its values beyond Tukey's fences.

**The null model.** If both samples come from one distribution whose share ``p`` of
"event" rows is unknown, what the reference tells about ``p`` is its count ``k_ref`` of
``n_ref``; the count ``K`` that ``n`` current rows would then show is beta-binomial,
``K ~ BetaBinomial(n, a, b)``: binomial given ``p``, with ``p ~ Beta(a, b)`` carrying the
reference's uncertainty.  The limit is that distribution's upper ``quantile`` (default
0.9999): the current count passes it by chance at most once in 10,000 checks, so a
30-column table with three or four shares each fails a half-split of itself in well under
1% of runs.  Unlike a normal two-proportion bound it is exact for small counts and never
negative, and its variance, ``n p (1 - p) (1 + n / n_ref)`` for large samples, is the
two-proportion test's, so it needs no resampling (the live evaluator's calibration
resamples because its statistics have no closed form; a count does).  ``a``, ``b`` per
share:

* **missing, outliers**: ``Beta(k_ref + 1/2, n_ref - k_ref + 1/2)``, the reference's own
  share with Jeffreys' prior (so 0 of ``n_ref`` still allows a few, about ``7.5 n / n_ref``
  at the default quantile, not none).  Outliers are counted on the reference's own fences.
* **out of range**: 0 in the reference by construction, but a new value of a continuous
  distribution falls outside the range of ``n_ref`` values with probability
  ``2 / (n_ref + 1)``; the share of the distribution outside the range is exactly
  ``Beta(2, n_ref - 1)`` (order statistics), so ``K`` over the current's finite values
  is exactly ``BetaBinomial(n_finite, 2, n_ref_finite - 1)``.  Ties (discrete columns)
  only make out-of-range values rarer, so the limit errs towards passing.
* **unseen categories**: 0 in the reference by construction; the chance that a new row
  brings a category the reference never had is Good-Turing's ``f1 / n_ref`` (``f1``,
  ``f2``: reference categories seen exactly once, twice).  That estimate is itself noisy,
  with variance about ``(f1 + 2 f2) / n_ref²`` (Esty 1983), more than a Beta with
  ``f1`` successes carries when many categories are rare, so the Beta is ``Beta(f1 + 2 f2
  + 1/2, n_ref - f1 - 2 f2 + 1/2)`` over the non-missing rows: its spread matches that
  variance and its mean errs high by ``2 f2 / n_ref``, towards passing.  A
  high-cardinality column (ids, models, zip codes) is allowed its expected trickle of
  new values; a column of a few frequent categories is allowed almost none.

**Practical tolerance.** At a million rows sampling explains almost nothing, so the
limit also never falls below the reference's share plus ``relative_tolerance`` (10%) of
it, Evidently's default for its missing-values test (``lte=approx(reference,
relative=0.1)``), which alone fails small samples by chance.  Out-of-range and unseen
shares are 0 in the reference, so for them only sampling counts.

**Cost.** One quantile per share, found by summing the probability mass upward from
``mean - 10 sd`` (the mass below is under 1e-20): a few thousand terms at a million rows,
with numpy and one ``math.lgamma`` per block, no scipy import.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "DEFAULT_QUANTILE",
    "DEFAULT_RELATIVE_TOLERANCE",
    "beta_binomial_upper",
    "out_of_range_limit",
    "share_limit",
    "unseen_limit",
]

DEFAULT_QUANTILE = 0.9999
DEFAULT_RELATIVE_TOLERANCE = 0.1
_JEFFREYS = 0.5
_BELOW_SD = 10.0


def _log_pmf(k: int, n: int, a: float, b: float) -> float:
    """``log P(K = k)`` for ``K ~ BetaBinomial(n, a, b)``."""
    lg = math.lgamma
    log_choose = lg(n + 1) - lg(k + 1) - lg(n - k + 1)
    return log_choose + lg(k + a) + lg(n - k + b) - lg(n + a + b) - (lg(a) + lg(b) - lg(a + b))


def beta_binomial_upper(n: int, a: float, b: float, quantile: float) -> int:
    """Smallest ``k`` with ``P(K <= k) >= quantile``, ``K ~ BetaBinomial(n, a, b)``
    (``scipy.stats.betabinom.ppf``; ``a, b > 0``)."""
    if n <= 0:
        return 0
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    if not (a > 0 and b > 0):
        raise ValueError(f"a and b must be positive, got {a}, {b}")
    s = a + b
    mean = n * a / s
    sd = math.sqrt(n * a * b * (s + n) / (s * s * (s + 1)))
    k0 = max(0, math.floor(mean - _BELOW_SD * sd))
    block = max(256, int(1.6 * _BELOW_SD * sd))  # one block: mean - 10 sd .. mean + 6 sd
    cdf = 0.0
    while k0 <= n:
        k1 = min(n, k0 + block)  # this block covers k0..k1
        ks = np.arange(k0, k1, dtype=np.float64)
        # log P(k + 1) - log P(k) = log((n - k)(k + a) / ((k + 1)(n - k - 1 + b)))
        steps = np.log((n - ks) * (ks + a) / ((ks + 1.0) * (n - ks - 1.0 + b)))
        log_pmf = _log_pmf(k0, n, a, b) + np.concatenate(([0.0], np.cumsum(steps)))
        cum = cdf + np.cumsum(np.exp(log_pmf))
        hit = int(np.searchsorted(cum, quantile, side="left"))
        if hit < len(cum):
            return k0 + hit
        cdf = float(cum[-1])
        k0 = k1 + 1
    return n


def share_limit(
    k_ref: int,
    n_ref: int,
    n: int,
    *,
    quantile: float = DEFAULT_QUANTILE,
    relative_tolerance: float = DEFAULT_RELATIVE_TOLERANCE,
) -> int:
    """The largest count of ``n`` current rows that is not a rise over ``k_ref`` of
    ``n_ref`` reference rows (missing values, outliers)."""
    if n <= 0:
        return 0
    sampling = beta_binomial_upper(
        n, k_ref + _JEFFREYS, max(n_ref - k_ref, 0) + _JEFFREYS, quantile
    )
    tolerated = math.floor(k_ref / n_ref * (1.0 + relative_tolerance) * n) if n_ref else n
    return max(sampling, min(tolerated, n))


def out_of_range_limit(
    n_ref_finite: int, n_finite: int, *, quantile: float = DEFAULT_QUANTILE
) -> int:
    """The largest count of ``n_finite`` current values outside the range of
    ``n_ref_finite`` reference values that sampling explains."""
    if n_finite <= 0:
        return 0
    if n_ref_finite <= 0:
        return n_finite  # no range to be outside of
    return beta_binomial_upper(n_finite, 2.0, max(n_ref_finite - 1, 1), quantile)


def unseen_limit(
    singletons: int,
    doubletons: int,
    n_ref_present: int,
    n_present: int,
    *,
    quantile: float = DEFAULT_QUANTILE,
) -> int:
    """The largest count of ``n_present`` non-missing current values in categories the
    reference never had that sampling explains (``singletons``, ``doubletons``:
    reference categories seen once, twice)."""
    if n_present <= 0:
        return 0
    if n_ref_present <= 0:
        return n_present
    rare = min(singletons + 2 * doubletons, n_ref_present)
    a = rare + _JEFFREYS
    b = n_ref_present - rare + _JEFFREYS
    return beta_binomial_upper(n_present, a, b, quantile)
