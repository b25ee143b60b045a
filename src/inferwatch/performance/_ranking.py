"""ROC AUC and average precision from score histograms, with the most they can be off.

Both metrics rank positives against negatives.  On fixed bins the order of two scores in
different bins is known; only pairs that share a bin are unordered.  The binned values
treat every bin as one tied score, exactly as scikit-learn treats equal scores, so they
equal scikit-learn's on the bin-rounded scores, and the bounds below say how far that can
be from the metric on the raw scores.

``pos`` and ``neg`` are counts per bin in ascending score order.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["binned_auc", "binned_auc_bound", "binned_ap", "binned_ap_bound"]

_Counts = npt.NDArray[np.int64]


def binned_auc(pos: _Counts, neg: _Counts) -> float:
    """P(score of a positive > score of a negative) + half the ties, ties = same bin."""
    p, n = int(pos.sum()), int(neg.sum())
    if p == 0 or n == 0:
        return float("nan")
    below = np.cumsum(neg) - neg  # negatives in lower bins
    wins = float(np.dot(pos.astype(np.float64), below + 0.5 * neg))
    return wins / (p * n)


def binned_auc_bound(pos: _Counts, neg: _Counts) -> float:
    """``sum_b pos_b * neg_b / (2 P N)``.

    Why it holds: the exact AUC counts each positive-negative pair as 1, 1/2 or 0; a pair in
    different bins gets the same count in both; a pair in one bin gets 1/2 binned and 0, 1/2
    or 1 exactly, so each such pair moves the AUC by at most ``1 / (2 P N)``.  The bound is
    attained when every shared bin is perfectly ordered one way.
    """
    p, n = int(pos.sum()), int(neg.sum())
    if p == 0 or n == 0:
        return float("nan")
    return float(np.dot(pos.astype(np.float64), neg.astype(np.float64))) / (2.0 * p * n)


def _descending(pos: _Counts, neg: _Counts) -> tuple[npt.NDArray[np.float64], ...]:
    """True/false positives above each bin (from the top) and inside it, highest first."""
    pd = pos[::-1].astype(np.float64)
    nd = neg[::-1].astype(np.float64)
    tp0 = np.cumsum(pd) - pd
    fp0 = np.cumsum(nd) - nd
    return pd, nd, tp0, fp0


def binned_ap(pos: _Counts, neg: _Counts) -> float:
    """Average precision (scikit-learn's step rule, ``sum (R_n - R_{n-1}) P_n``) with each
    bin one threshold: every positive of bin b counts the precision at the bin's lower end."""
    p = int(pos.sum())
    if p == 0:
        return float("nan")
    pd, nd, tp0, fp0 = _descending(pos, neg)
    tp, fp = tp0 + pd, fp0 + nd
    hit = pd > 0
    return float(np.sum(pd[hit] * tp[hit] / (tp[hit] + fp[hit]))) / p


def binned_ap_bound(pos: _Counts, neg: _Counts) -> float:
    """The most :func:`binned_ap` can differ from the AP of the raw scores.

    A positive of bin b has, on raw scores, ``tp`` in ``[TP0 + 1, TP0 + pos_b]`` and ``fp`` in
    ``[FP0, FP0 + neg_b]`` above it (TP0, FP0: counts in higher bins); precision rises with
    tp and falls with fp, so it lies between the corners ``(TP0 + 1) / (TP0 + 1 + FP0 +
    neg_b)`` and ``(TP0 + pos_b) / (TP0 + pos_b + FP0)``.  The bound is the sum over positives
    of the larger distance from the binned precision, divided by P.
    """
    p = int(pos.sum())
    if p == 0:
        return float("nan")
    pd, nd, tp0, fp0 = _descending(pos, neg)
    hit = pd > 0
    pd, nd, tp0, fp0 = pd[hit], nd[hit], tp0[hit], fp0[hit]
    binned = (tp0 + pd) / (tp0 + pd + fp0 + nd)
    high = (tp0 + pd) / (tp0 + pd + fp0)
    low = (tp0 + 1.0) / (tp0 + 1.0 + fp0 + nd)
    return float(np.sum(pd * np.maximum(high - binned, binned - low))) / p
