"""Jensen-Shannon distance, Kullback-Leibler divergence and Hellinger distance.

All three compare the shares ``p`` (reference) and ``q`` (current) of aligned count
vectors: ``[missing, under, bins..., over]`` on reference bins (raw numeric arrays are
binned on ``bins=10`` reference quantiles, as for PSI) or ``[reference categories...,
unseen..., missing]``; so a missingness shift or a new category moves them. Each is its
own effect size; drift when the value reaches the threshold (default 0.1 for each, as
in Evidently).

* **Jensen-Shannon distance**, natural log: ``sqrt((KL(p||m) + KL(q||m)) / 2)`` with
  ``m = (p + q) / 2``; in ``[0, sqrt(ln 2)] = [0, 0.833]`` and equal to
  ``scipy.spatial.distance.jensenshannon(p, q)`` (scipy's default base). That is the
  distance Evidently compares with its 0.1 threshold (its ``jensenshannon`` test calls
  scipy with ``base=None``), so the default rule's "Jensen-Shannon >= 0.1" means the same
  here as there. ``base=2`` (a keyword of every function below) gives the other common
  scale, in [0, 1], which is the natural-log value divided by ``sqrt(ln 2)``: 0.1 in
  base 2 is 0.083 in natural log, so a base-2 reading of Evidently's threshold is 1.2x
  stricter. No epsilon is needed (``0 * log 0 = 0``), as in Evidently (which calls it
  with ``feel_zeroes=False``).
* **KL divergence** ``KL(ref || cur) = sum p_i ln(p_i / q_i)``, natural log (Evidently's
  direction). An empty entry makes it infinite, so both share vectors are smoothed
  additively, ``(share + eps) / (1 + k * eps)`` with ``eps = 1e-4`` and ``k`` entries:
  finite, still summing to 1, still >= 0. (Frouros' 1e-308 floor keeps it finite only
  in name: one empty bin adds ``p * 709``.)
* **Hellinger distance** ``sqrt(sum (sqrt p_i - sqrt q_i)^2 / 2)``; in [0, 1], no epsilon.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from inferwatch._binned import Binned
from inferwatch._typing import FloatArray
from inferwatch.stats._base import Counts, DriftResult, DriftTest
from inferwatch.stats._samples import (
    IntArray,
    distance_result,
    vectors_from_binned,
    vectors_from_counts,
    vectors_from_values,
)


def rel_entr(x: FloatArray, y: FloatArray) -> FloatArray:
    """Elementwise ``x * log(x / y)`` with ``0 log 0 = 0`` (``scipy.special.rel_entr``).

    Written with numpy so the default tests do not pay scipy.special's import (0.2 s) on
    every ``inferwatch report``; ``y`` is never 0 where ``x`` > 0 here (smoothed or a
    mixture).
    """
    out = np.zeros_like(x, dtype=np.float64)
    pos = x > 0
    out[pos] = x[pos] * np.log(x[pos] / y[pos])
    return out


__all = [
    "HELLINGER",
    "JENSEN_SHANNON",
    "KL_DIVERGENCE",
    "hellinger",
    "hellinger_binned",
    "hellinger_counts",
    "hellinger_value",
    "jensen_shannon",
    "jensen_shannon_binned",
    "jensen_shannon_counts",
    "jensen_shannon_value",
    "kl_divergence",
    "kl_divergence_binned",
    "kl_divergence_counts",
    "kl_divergence_value",
]

KL_EPSILON = 1e-4
_BINS = 10


def jensen_shannon_value(
    reference: IntArray, current: IntArray, base: float | None = None
) -> float:
    """Jensen-Shannon distance of two aligned count vectors, natural log unless ``base``."""
    p = reference / reference.sum()
    q = current / current.sum()
    m = (p + q) / 2.0
    js = float(np.sum(rel_entr(p, m))) + float(np.sum(rel_entr(q, m)))
    if base is not None:
        js /= np.log(base)
    return float(np.sqrt(max(js, 0.0) / 2.0))  # rounding can leave -1e-17


def kl_divergence_value(
    reference: IntArray, current: IntArray, epsilon: float = KL_EPSILON
) -> float:
    """``KL(ref || cur)`` in nats, both share vectors smoothed additively by ``epsilon``."""
    k = reference.size
    p = (reference / reference.sum() + epsilon) / (1.0 + k * epsilon)
    q = (current / current.sum() + epsilon) / (1.0 + k * epsilon)
    return float(max(np.sum(rel_entr(p, q)), 0.0))


def hellinger_value(reference: IntArray, current: IntArray) -> float:
    """Hellinger distance of two aligned count vectors."""
    p = reference / reference.sum()
    q = current / current.sum()
    return float(min(np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2) / 2.0), 1.0))


def _js(base: float | None) -> tuple[Callable[[IntArray, IntArray], float], dict[str, object]]:
    """The value function and the details of a Jensen-Shannon distance in ``base``."""
    about: dict[str, object] = {
        "formula": "sqrt((KL(p||m) + KL(q||m)) / 2), m = (p + q) / 2",
        "log_base": "e" if base is None else base,
        "epsilon": 0.0,
    }
    return partial(jensen_shannon_value, base=base), about


_HELLINGER_ABOUT = {"formula": "sqrt(sum((sqrt(p) - sqrt(q))^2) / 2)", "epsilon": 0.0}


def _kl_about(epsilon: float) -> dict[str, object]:
    return {
        "formula": "sum(p * ln(p / q)), p = reference, shares (s + eps) / (1 + k eps)",
        "direction": "KL(reference || current)",
        "log_base": "e",
        "epsilon": epsilon,
    }


def jensen_shannon(
    reference: FloatArray,
    current: FloatArray,
    threshold: float = 0.1,
    *,
    bins: int = _BINS,
    base: float | None = None,
) -> DriftResult:
    """Jensen-Shannon distance of raw numeric samples on reference-quantile bins."""
    vectors = vectors_from_values(reference, current, bins)
    value, about = _js(base)
    return distance_result("jensen_shannon", value, vectors, threshold, "exact", about)


def jensen_shannon_binned(
    reference: Binned, current: Binned, threshold: float = 0.1, *, base: float | None = None
) -> DriftResult:
    """Jensen-Shannon distance of two :class:`Binned` on the same edges."""
    vectors = vectors_from_binned(reference, current)
    value, about = _js(base)
    return distance_result("jensen_shannon", value, vectors, threshold, "binned", about)


def jensen_shannon_counts(
    reference: Counts, current: Counts, threshold: float = 0.1, *, base: float | None = None
) -> DriftResult:
    """Jensen-Shannon distance of two category counts (Evidently's default for categories
    with more than 1,000 reference rows)."""
    vectors = vectors_from_counts(reference, current)
    value, about = _js(base)
    return distance_result("jensen_shannon", value, vectors, threshold, "exact", about)


def kl_divergence(
    reference: FloatArray,
    current: FloatArray,
    threshold: float = 0.1,
    *,
    bins: int = _BINS,
    epsilon: float = KL_EPSILON,
) -> DriftResult:
    """KL divergence of raw numeric samples on reference-quantile bins."""
    value = partial(kl_divergence_value, epsilon=epsilon)
    vectors = vectors_from_values(reference, current, bins)
    return distance_result("kl_divergence", value, vectors, threshold, "exact", _kl_about(epsilon))


def kl_divergence_binned(
    reference: Binned, current: Binned, threshold: float = 0.1, *, epsilon: float = KL_EPSILON
) -> DriftResult:
    """KL divergence of two :class:`Binned` on the same edges."""
    value = partial(kl_divergence_value, epsilon=epsilon)
    vectors = vectors_from_binned(reference, current)
    return distance_result("kl_divergence", value, vectors, threshold, "binned", _kl_about(epsilon))


def kl_divergence_counts(
    reference: Counts, current: Counts, threshold: float = 0.1, *, epsilon: float = KL_EPSILON
) -> DriftResult:
    """KL divergence of two category counts."""
    value = partial(kl_divergence_value, epsilon=epsilon)
    vectors = vectors_from_counts(reference, current)
    return distance_result("kl_divergence", value, vectors, threshold, "exact", _kl_about(epsilon))


def hellinger(
    reference: FloatArray, current: FloatArray, threshold: float = 0.1, *, bins: int = _BINS
) -> DriftResult:
    """Hellinger distance of raw numeric samples on reference-quantile bins."""
    vectors = vectors_from_values(reference, current, bins)
    return distance_result(
        "hellinger", hellinger_value, vectors, threshold, "exact", _HELLINGER_ABOUT
    )


def hellinger_binned(reference: Binned, current: Binned, threshold: float = 0.1) -> DriftResult:
    """Hellinger distance of two :class:`Binned` on the same edges."""
    vectors = vectors_from_binned(reference, current)
    return distance_result(
        "hellinger", hellinger_value, vectors, threshold, "binned", _HELLINGER_ABOUT
    )


def hellinger_counts(reference: Counts, current: Counts, threshold: float = 0.1) -> DriftResult:
    """Hellinger distance of two category counts."""
    vectors = vectors_from_counts(reference, current)
    return distance_result(
        "hellinger", hellinger_value, vectors, threshold, "exact", _HELLINGER_ABOUT
    )


_ALL_KINDS = frozenset({"numeric", "categorical", "boolean"})

JENSEN_SHANNON = DriftTest(
    name="jensen_shannon",
    display_name="Jensen-Shannon distance",
    kinds=_ALL_KINDS,
    statistic_kind="distance",
    default_threshold=0.1,
    exact=jensen_shannon,
    binned=jensen_shannon_binned,
    counts=jensen_shannon_counts,
)

KL_DIVERGENCE = DriftTest(
    name="kl_divergence",
    display_name="Kullback-Leibler divergence",
    kinds=_ALL_KINDS,
    statistic_kind="distance",
    default_threshold=0.1,
    exact=kl_divergence,
    binned=kl_divergence_binned,
    counts=kl_divergence_counts,
)

HELLINGER = DriftTest(
    name="hellinger",
    display_name="Hellinger distance",
    kinds=_ALL_KINDS,
    statistic_kind="distance",
    default_threshold=0.1,
    exact=hellinger,
    binned=hellinger_binned,
    counts=hellinger_counts,
)
