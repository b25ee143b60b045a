"""Two-proportion Z-test for binary columns.

The event is "the value is the reference's first category" (``reference.categories[0]``;
sorted order when the counts come from :func:`counts_from_values`). With ``x`` events in
``n`` non-missing values per side, ``p_ref = x1 / n1``, ``p_cur = x2 / n2`` and the pooled
share ``p = (x1 + x2) / (n1 + n2)``::

    z = (p_cur - p_ref) / sqrt(p (1 - p) (1 / n1 + 1 / n2)),   p-value = 2 * (1 - Phi(|z|))

(two-sided; ``z^2`` equals the 2 x 2 chi-square without continuity correction). When
the pooled share is 0 or 1 both samples hold one and the same category: ``z = 0``,
p-value 1. Drift when ``p < threshold`` (default 0.05).

Missing values are dropped and counted in the details (a missingness shift is caught
by the binned statistics); a category unseen in the reference counts as a non-event and
is counted in ``details["unseen_categories"]``. A reference with more than two
categories is refused: use chi-square.

Effect size: Cohen's ``|h|``, ``h = 2 asin(sqrt(p_cur)) - 2 asin(sqrt(p_ref))``
(signed in the details); 0.2 small, 0.5 medium, 0.8 large.
"""

from __future__ import annotations

import math
from typing import Any

from inferwatch.stats._base import (
    Counts,
    DriftInputError,
    DriftResult,
    DriftTest,
    EmptySampleError,
    make_result,
)

__all__ = ["Z_TEST", "z_test"]


def _scipy_stats() -> Any:
    """scipy.stats, imported on first use: its 0.6 s import is paid only by tests that need it."""
    import scipy.stats

    return scipy.stats


_NAME = "z_test"


def z_test(reference: Counts, current: Counts, threshold: float = 0.05) -> DriftResult:
    """Two-sided Z-test for the share of the reference's first category."""
    if len(reference.categories) > 2:
        raise DriftInputError(
            f"z_test compares two categories; the reference has {len(reference.categories)}: "
            "use chi_square"
        )
    if reference.total == 0 or current.total == 0:
        raise EmptySampleError(f"{'reference' if reference.total == 0 else 'current'} is empty")
    n1, n2 = int(reference.counts.sum()), int(current.counts.sum())
    if n1 == 0 or n2 == 0:
        side = "reference" if n1 == 0 else "current"
        raise EmptySampleError(f"{side} has no non-missing values")
    event = reference.categories[0]
    x1 = int(reference.counts[0])
    x2 = int(current.counts[current.categories.index(event)]) if event in current.categories else 0
    p_ref, p_cur = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (p_cur - p_ref) / se if se > 0 else 0.0
    p = float(2 * _scipy_stats().norm.sf(abs(z)))
    h = 2 * math.asin(math.sqrt(p_cur)) - 2 * math.asin(math.sqrt(p_ref))
    seen = set(reference.categories)
    details: dict[str, Any] = {
        "formula": "z = (p_cur - p_ref) / sqrt(p (1 - p) (1/n1 + 1/n2)), two-sided",
        "event": event,
        "p_reference": p_ref,
        "p_current": p_cur,
        "cohens_h": h,
        "n_reference": n1,
        "n_current": n2,
        "missing_reference": reference.missing,
        "missing_current": current.missing,
        "unseen_categories": sum(c not in seen for c in current.categories),
    }
    return make_result(_NAME, "p_value", z, p, threshold, abs(h), "exact", details)


Z_TEST = DriftTest(
    name=_NAME,
    display_name="Z-test for two proportions",
    kinds=frozenset({"categorical", "boolean"}),
    statistic_kind="p_value",
    default_threshold=0.05,
    counts=z_test,
)
