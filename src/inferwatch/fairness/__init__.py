"""Fairness across a protected attribute, from mergeable per-group counts.

:class:`SegmentIndex` maps a column's values to a bounded set of slots (overflow to
``other``), for fairness groups and for performance segments alike; :class:`GroupCounts`
keeps six counts per group; :func:`assess` turns them into fairlearn's gaps with bootstrap
intervals and a verdict.
"""

from __future__ import annotations

from inferwatch.fairness._assess import METRICS, FairnessResult, Verdict, assess
from inferwatch.fairness._counts import CELLS, GroupCounts
from inferwatch.fairness._segments import DEFAULT_MAX_VALUES, SegmentIndex

__all__ = [
    "CELLS",
    "DEFAULT_MAX_VALUES",
    "FairnessResult",
    "GroupCounts",
    "METRICS",
    "SegmentIndex",
    "Verdict",
    "assess",
]
