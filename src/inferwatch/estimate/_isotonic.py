"""Isotonic calibration of one score (scipy's PAVA, no scikit-learn) and the ECE that gates it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import isotonic_regression

__all__ = ["Isotonic", "equal_count_ece", "stratified_folds"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class Isotonic:
    """A non-decreasing map from a raw score to P(class | score), linear between knots and
    constant beyond the end knots (scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``).
    """

    x: FloatArray
    y: FloatArray

    @classmethod
    def fit(cls, scores: FloatArray, target: FloatArray) -> Isotonic:
        """Pool-adjacent-violators on the mean target of each distinct score, weighted by
        how often it occurs; only the ends of each constant block are kept as knots."""
        order = np.argsort(scores, kind="stable")
        s, t = scores[order], target[order]
        ux, start = np.unique(s, return_index=True)
        counts = np.diff(np.append(start, len(s))).astype(np.float64)
        means = np.add.reduceat(t, start) / counts
        fitted = isotonic_regression(means, weights=counts, increasing=True).x
        # keep the first and last knot of every constant block (the map is the same)
        change = np.flatnonzero(np.diff(fitted) != 0)
        keep = np.unique(np.concatenate(([0, len(ux) - 1], change, change + 1)))
        return cls(ux[keep].astype(np.float64), fitted[keep].astype(np.float64))

    def __call__(self, scores: FloatArray) -> FloatArray:
        out: FloatArray = np.interp(scores, self.x, self.y)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"x": self.x.tolist(), "y": self.y.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Isotonic:
        return cls(np.asarray(data["x"], dtype=np.float64), np.asarray(data["y"], dtype=np.float64))


def equal_count_ece(prob: FloatArray, target: FloatArray, bins: int = 10) -> float:
    """Expected calibration error on ``bins`` equal-count bins of ``prob`` (NannyML's gate)."""
    if len(prob) == 0:
        return 0.0
    order = np.argsort(prob, kind="stable")
    groups = np.array_split(order, min(bins, len(prob)))
    n = len(prob)
    return float(sum(abs(prob[g].mean() - target[g].mean()) * len(g) / n for g in groups))


def stratified_folds(
    y: npt.NDArray[np.intp], k: int, rng: np.random.Generator
) -> npt.NDArray[np.intp]:
    """A fold id per row, each class dealt round-robin over ``k`` folds after a shuffle."""
    folds = np.empty(len(y), dtype=np.intp)
    offset = 0
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        folds[idx] = (np.arange(len(idx)) + offset) % k
        offset += len(idx)
    return folds
