"""An estimate with the band it comes with, and its reconciliation with the realised value."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Estimate", "Reconciliation", "Verdict", "reconcile"]

Verdict = Literal["consistent", "concept_drift_suspected", "undetermined"]


@dataclass(frozen=True, slots=True)
class Estimate:
    """A metric estimated without labels and the band that goes with it.

    ``[lower, upper]`` is meant to hold the realised metric with probability ``coverage``
    *while P(y|x) is unchanged*: the band covers the label draws the (calibrated) scores
    allow in a window of this size, widened by the estimator's own error measured on
    held-out reference folds.  It is not the spread of the reference's metric (NannyML's
    ±3 SE), which says nothing about how wrong the estimate itself can be.
    """

    value: float
    lower: float
    upper: float
    coverage: float
    method: str

    def contains(self, realised: float) -> bool:
        """Whether ``realised`` lies in the band (NaN on either side is never inside)."""
        if math.isnan(realised) or math.isnan(self.lower) or math.isnan(self.upper):
            return False
        return self.lower <= realised <= self.upper

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": _json_float(self.value),
            "lower": _json_float(self.lower),
            "upper": _json_float(self.upper),
            "coverage": self.coverage,
            "method": self.method,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Estimate:
        def f(key: str) -> float:
            v = data[key]
            return math.nan if v is None else float(v)

        return cls(f("value"), f("lower"), f("upper"), float(data["coverage"]), str(data["method"]))


def _json_float(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """The realised value beside its estimate, once labels have arrived.

    ``gap`` is realised minus estimated.  A realised value outside the band contradicts the
    estimate's one assumption (P(y|x) as on the reference), so the verdict is
    ``concept_drift_suspected``; ``undetermined`` when either side is missing (NaN).
    """

    estimate: Estimate
    realised: float
    gap: float
    inside: bool
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimate": self.estimate.to_dict(),
            "realised": _json_float(self.realised),
            "gap": _json_float(self.gap),
            "inside": self.inside,
            "verdict": self.verdict,
        }


def reconcile(estimate: Estimate, realised: float, *, tolerance: float = 0.0) -> Reconciliation:
    """Compare an estimate made before labels with the value the labels show.

    ``tolerance``: a gap no larger than this is consistent even outside the band.  Bands
    narrow as chunks grow (label noise averages out) while the estimator's bias under
    covariate shift does not, so without a floor a large enough chunk flags every shift.
    """
    realised = float(realised)
    gap = realised - estimate.value
    if math.isnan(realised) or math.isnan(estimate.value):
        return Reconciliation(estimate, realised, gap, False, "undetermined")
    inside = estimate.contains(realised) or abs(gap) <= tolerance
    verdict: Verdict = "consistent" if inside else "concept_drift_suspected"
    return Reconciliation(estimate, realised, gap, inside, verdict)
