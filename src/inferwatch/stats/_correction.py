"""Multiple-testing corrections for the p-values of many columns tested at once.

Testing 50 columns at p < 0.05 flags about 2.5 of them by chance alone. Adjusting the
p-values, and comparing the adjusted ones to the threshold, bounds that:

* :func:`bonferroni` — ``min(1, m * p)``: controls the family-wise error rate (the chance
  of any false alarm); strict.
* :func:`benjamini_hochberg` — controls the false discovery rate (the expected share of
  false alarms among the flagged columns). Sorted ascending, ``p_(i) * m / i``, then a
  running minimum from the largest down, clipped to [0, 1]; equal to
  ``scipy.stats.false_discovery_control(p, method="bh")``.

Both take any sequence of p-values in [0, 1] (NaN refused) and return a float64 array
in the input's order. ``CORRECTIONS`` maps the config names to the functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from inferwatch._typing import FloatArray
from inferwatch.stats._base import DriftInputError

__all__ = ["CORRECTIONS", "benjamini_hochberg", "bonferroni"]


def _check(p_values: Sequence[float] | npt.ArrayLike) -> FloatArray:
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise DriftInputError("p-values must lie in [0, 1] (no NaN)")
    return p


def bonferroni(p_values: Sequence[float] | npt.ArrayLike) -> FloatArray:
    """Bonferroni-adjusted p-values, ``min(1, m * p)``."""
    p = _check(p_values)
    return np.minimum(p * p.size, 1.0)


def benjamini_hochberg(p_values: Sequence[float] | npt.ArrayLike) -> FloatArray:
    """Benjamini-Hochberg-adjusted p-values (false discovery rate)."""
    p = _check(p_values)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (m / np.arange(1, m + 1))
    scaled = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = np.clip(scaled, 0.0, 1.0)
    return adjusted


CORRECTIONS: Mapping[str, Callable[[Sequence[float] | npt.ArrayLike], FloatArray]] = {
    "bonferroni": bonferroni,
    "benjamini_hochberg": benjamini_hochberg,
}
