"""Energy distance normalised by the reference's standard deviation.

``E = sqrt(2 * integral (F_ref(x) - F_cur(x))^2 dx)`` (Székely's energy distance for
one dimension, ``scipy.stats.energy_distance``), divided by ``np.std(reference)``, or by
the pooled std when the reference is constant (as for Wasserstein). Finite values only:
NaN is dropped and counted as ``missing_*``, +/-inf as ``non_finite_*``. Computed from
the samples sorted once and merged.

Threshold: drift when ``E / std >= 0.1`` (default). For two normal samples whose means
differ by a small ``d`` standard deviations, ``E / std ~ pi^(-1/4) d ~ 0.75 d``, so
0.1 flags a mean shift of about 0.13 standard deviations, a little less sensitive
than Wasserstein's 0.1 (a shift of 0.1). The statistic is its own effect size.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from inferwatch._typing import FloatArray
from inferwatch.stats._base import DriftResult, DriftTest, make_result
from inferwatch.stats._samples import finite_sorted, pooled_cdf, sample_details
from inferwatch.stats._wasserstein import normalise

__all__ = ["ENERGY_DISTANCE", "energy_distance"]

_NAME = "energy_distance"


def energy_distance(
    reference: FloatArray, current: FloatArray, threshold: float = 0.1
) -> DriftResult:
    """``scipy.stats.energy_distance(ref, cur) / np.std(ref)`` on the finite values."""
    ref = finite_sorted(reference, "reference")
    cur = finite_sorted(current, "current")
    cdf = pooled_cdf(ref.values, cur.values)
    distance = float(np.sqrt(2.0) * np.sqrt(np.dot(cdf.diff[:-1] ** 2, cdf.deltas)))
    ref_std = float(np.std(ref.values))
    pooled_std = 0.0 if ref_std > 0 else float(np.std(np.concatenate((ref.values, cur.values))))
    stat, scale, source = normalise(distance, ref_std, pooled_std)
    details: dict[str, Any] = {
        "formula": "E = sqrt(2 * integral (F_ref - F_cur)^2 dx) / scale",
        "distance": distance,
        "scale": scale,
        "scale_source": source,
        **sample_details(ref, cur),
    }
    return make_result(_NAME, "distance", stat, None, threshold, stat, "exact", details)


ENERGY_DISTANCE = DriftTest(
    name=_NAME,
    display_name="Energy distance (normalised)",
    kinds=frozenset({"numeric"}),
    statistic_kind="distance",
    default_threshold=0.1,
    exact=energy_distance,
)
