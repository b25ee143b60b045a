"""Population Stability Index on reference bins or categories.

``PSI = sum_i (q_i - p_i) * ln(q_i / p_i)`` (natural log), with ``p`` the reference
shares and ``q`` the current shares over ``[missing, under, bins..., over]`` (numbers) or
``[reference categories..., unseen..., missing]`` (categories), each share floored at
``epsilon = 1e-4`` before the sum so that an empty entry on one side gives a large but
finite term. A floor (``max(share, eps)``) rather than replacing exact zeros only keeps
the score continuous in the counts; entries empty on both sides contribute 0.

Binning on raw numeric arrays: the reference's quantiles, ``bins=10`` by default, and the
count is honoured (Evidently's PSI takes a bin count and ignores it); tied quantiles are
merged, so a column with many ties gets fewer bins (``bins_used`` in the details).
Missing and out-of-range values are entries of their own, so a missingness shift moves
the score. Drift when ``PSI >= threshold``, default 0.1 (the usual reading: < 0.1
stable, 0.1-0.25 moderate shift, > 0.25 major shift). The PSI is its own effect size.
"""

from __future__ import annotations

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

__all__ = ["PSI", "psi", "psi_binned", "psi_counts", "psi_value"]

_NAME = "psi"
EPSILON = 1e-4


def psi_value(reference: IntArray, current: IntArray, epsilon: float = EPSILON) -> float:
    """PSI of two aligned count vectors (shares floored at ``epsilon``)."""
    p = np.maximum(reference / reference.sum(), epsilon)
    q = np.maximum(current / current.sum(), epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def _about(epsilon: float) -> dict[str, object]:
    return {
        "formula": "sum((q - p) * ln(q / p)), shares floored at epsilon",
        "epsilon": epsilon,
        "log_base": "e",
    }


def psi(
    reference: FloatArray,
    current: FloatArray,
    threshold: float = 0.1,
    *,
    bins: int = 10,
    epsilon: float = EPSILON,
) -> DriftResult:
    """PSI of raw numeric samples on ``bins`` reference-quantile bins."""
    vectors = vectors_from_values(reference, current, bins)
    return distance_result(
        _NAME, partial(psi_value, epsilon=epsilon), vectors, threshold, "exact", _about(epsilon)
    )


def psi_binned(
    reference: Binned, current: Binned, threshold: float = 0.1, *, epsilon: float = EPSILON
) -> DriftResult:
    """PSI of two :class:`Binned` on the same edges."""
    vectors = vectors_from_binned(reference, current)
    return distance_result(
        _NAME, partial(psi_value, epsilon=epsilon), vectors, threshold, "binned", _about(epsilon)
    )


def psi_counts(
    reference: Counts, current: Counts, threshold: float = 0.1, *, epsilon: float = EPSILON
) -> DriftResult:
    """PSI of two category counts (unseen categories and missing as entries)."""
    vectors = vectors_from_counts(reference, current)
    return distance_result(
        _NAME, partial(psi_value, epsilon=epsilon), vectors, threshold, "exact", _about(epsilon)
    )


PSI = DriftTest(
    name=_NAME,
    display_name="Population Stability Index",
    kinds=frozenset({"numeric", "categorical", "boolean"}),
    statistic_kind="distance",
    default_threshold=0.1,
    exact=psi,
    binned=psi_binned,
    counts=psi_counts,
)
