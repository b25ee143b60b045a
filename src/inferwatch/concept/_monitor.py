"""The per-version error-stream monitor: ADWIN and Page-Hinkley tuned to a false-alarm budget.

The budget ``N`` means at most one false alarm per ``N`` stable labelled predictions
(errors drawn from the reference's own error distribution). It is split evenly: each
detector gets one per ``2N``.

How the thresholds are chosen (theory, on the reference's empirical error distribution,
i.e. the world of bootstrap resamples of the reference errors):

* Page-Hinkley/CUSUM with allowance ``k = delta_sigmas * sigma`` raises an alarm at time
  ``t`` only if the walk ``sum(x - mu - k)`` climbs more than ``h`` above its value at
  some earlier start ``i`` of the current excursion, and distinct alarms have distinct
  starts. Lundberg's inequality bounds the chance that a walk with i.i.d. steps
  ``y = x - mu - k`` ever climbs ``h`` by ``exp(-theta h)``, where ``theta > 0`` solves
  ``E[exp(theta y)] = 1`` (the expectation taken over the reference errors). So the
  expected alarms per ``n`` stable values are at most ``n exp(-theta h)``, and
  ``h = ln(2N) / theta`` keeps them within one per ``2N``. The union bound makes this
  conservative; ``bench/concept_drift.py`` measures the real rate. The reference's mean
  is itself uncertain, so ``k`` also holds a margin (the distance to the mean's upper
  bound at ``reference_z``) and ``theta`` is solved in the worst world that bound allows
  (errors shifted up by the margin; 0/1 errors: a Bernoulli at the upper rate).
* ADWIN's theorem bounds the chance that one check shrinks a window of unchanged mean by
  ``delta``; with a check every ``clock`` values, ``delta = clock / (2N)`` keeps the
  expected false alarms within one per ``2N`` (also conservative). Its variance-based cut
  is a normal approximation that skewed values break: on a regressor's absolute errors
  (diamonds, skew 2.9) it raised 3-9 false alarms per 500k rows at that delta. So for
  errors that are not 0/1, ADWIN watches each error's rank in the reference (its
  mid-rank on 1,001 reference quantiles, uniform on [0, 1] while nothing changes, the
  range ADWIN's bound was made for) and reports the errors' own means.

Both assume the errors are independent draws of the reference's error distribution;
errors correlated in time (bursts of hard inputs) raise the real false-alarm rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq
from scipy.stats import beta, norm

from inferwatch._typing import FloatArray
from inferwatch.concept._adwin import ADWIN
from inferwatch.concept._page_hinkley import Direction, PageHinkley

__all__ = [
    "Detection",
    "ErrorStreamMonitor",
    "lundberg_exponent",
    "per_prediction_errors",
]

DetectorName = Literal["adwin", "page_hinkley"]
#: Fewest reference errors the monitor accepts: the tuning reads the error distribution.
MIN_REFERENCE = 30


@dataclass(frozen=True)
class Detection:
    """A change in the error stream.

    ``index`` counts the labelled predictions the monitor had seen when it fired (the
    ``index``-th error raised it). ``mean_before`` is the level the detector held before
    (Page-Hinkley: its baseline; ADWIN: the mean of the window part it dropped), and
    ``mean_after`` the level it found (Page-Hinkley: the mean since the estimated change
    point; ADWIN: the mean of the window it kept).
    """

    detector: DetectorName
    index: int
    mean_before: float
    mean_after: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "detector": self.detector,
            "index": self.index,
            "mean_before": self.mean_before,
            "mean_after": self.mean_after,
        }


def per_prediction_errors(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    task: Literal["classification", "regression"],
) -> FloatArray:
    """The error stream: 0/1 misclassification, or the absolute error of a regressor."""
    truth, pred = np.asarray(y_true), np.asarray(y_pred)
    if truth.shape != pred.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {truth.shape} vs {pred.shape}")
    errors: FloatArray
    if task == "classification":
        errors = np.not_equal(truth, pred).astype(np.float64)
        return errors
    if task == "regression":
        errors = np.abs(truth.astype(np.float64) - pred.astype(np.float64))
        return errors
    raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")


def lundberg_exponent(steps: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> float:
    """The ``theta > 0`` with ``E[exp(theta * step)] == 1``; ``inf`` if no step is positive.

    The expectation is the mean over ``steps``, or their ``weights``-weighted mean (a
    discrete distribution). Needs a negative expected step (a walk that drifts down),
    else no positive root exists.
    """
    y = np.asarray(steps, dtype=np.float64).ravel()
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if y.size == 0 or not np.isfinite(y).all() or w.shape != y.shape or not (w >= 0).all():
        raise ValueError("steps must be finite numbers, with one non-negative weight each")
    w = w / w.sum()
    if float(np.dot(w, y)) >= 0:
        raise ValueError("the steps must drift down (mean < 0) for a finite threshold")
    top = float(y[w > 0].max())
    if top <= 0:
        return math.inf

    def log_mgf(theta: float) -> float:
        return theta * top + math.log(float(np.dot(w, np.exp(theta * (y - top)))))

    hi = 1.0 / top
    for _ in range(200):
        if log_mgf(hi) > 0:
            break
        hi *= 2.0
    lo = hi
    for _ in range(200):
        lo /= 2.0
        if log_mgf(lo) < 0:
            break
    return float(brentq(log_mgf, lo, hi, xtol=1e-12, rtol=1e-10))


@dataclass
class ErrorStreamMonitor:
    """ADWIN and Page-Hinkley over one model version's per-prediction errors.

    Build it with :meth:`from_reference`; feed labelled errors in arrival order with
    :meth:`update_many`; keep it between batches with :meth:`to_dict`/:meth:`from_dict`.
    """

    adwin: ADWIN
    page_hinkley: PageHinkley
    false_alarm_budget: int
    n_reference: int
    rank_knots: tuple[float, ...] = ()
    rank_levels: tuple[float, ...] = ()
    n_seen_: int = 0

    @classmethod
    def from_reference(
        cls,
        errors: npt.ArrayLike,
        *,
        false_alarm_budget: int = 100_000,
        delta_sigmas: float = 0.2,
        direction: Direction = "up",
        clock: int = 128,
        reference_z: float = 2.0,
    ) -> ErrorStreamMonitor:
        """Tune both detectors on the reference's errors (method in the module docstring).

        ``delta_sigmas`` is Page-Hinkley's allowance: shifts of the mean error below it
        (in reference sigmas) are never detected by it, and it detects a shift ``d`` in
        about ``h / (d - k)`` rows; half the smallest shift worth catching is the classic
        choice. ADWIN has no such floor and catches what Page-Hinkley's allowance hides.

        ``reference_z``: the reference's mean error is itself an estimate, and a live
        error rate inside its uncertainty is no evidence of change. Page-Hinkley's
        allowance grows by the distance from the mean to its one-sided upper bound at
        ``reference_z`` (``z sigma / sqrt(n)``; for 0/1 errors the Jeffreys bound, which
        stays honest for a handful of errors). On breast-cancer holdouts of 190 rows,
        stable streams resampled from another holdout alarmed in 6 of 20 runs without it.

        ``clock`` is how often ADWIN tests its window. River's and MOA's 32 cost three
        times as much per update as 128 (a check rebuilds the bucket sums), and at the
        same budget 128 gave the same median delays (``bench/concept_drift.py``):
        ``delta`` grows with ``clock``, and Page-Hinkley fires first on a rising error.
        """
        ref = np.asarray(errors, dtype=np.float64).ravel()
        if ref.size < MIN_REFERENCE:
            raise ValueError(
                f"the reference needs at least {MIN_REFERENCE} labelled errors, got {ref.size}"
            )
        if not np.isfinite(ref).all():
            raise ValueError("reference errors must be finite (no NaN or infinity)")
        if false_alarm_budget < 1:
            raise ValueError(f"false_alarm_budget must be >= 1, got {false_alarm_budget}")
        if delta_sigmas <= 0:
            raise ValueError(f"delta_sigmas must be > 0, got {delta_sigmas}")
        if not reference_z >= 0:
            raise ValueError(f"reference_z must be >= 0, got {reference_z}")
        binary = bool(np.isin(ref, (0.0, 1.0)).all())
        if binary and np.ptp(ref) == 0:
            # a classifier that never (or always) erred on the reference: one pseudo-row of
            # the other outcome (rate 1 / (n + 1)), so the tuning has a spread to work with
            ref = np.append(ref, 1.0 - ref[0])
        mu, sigma = float(ref.mean()), float(ref.std())
        if sigma <= 0:
            raise ValueError(
                "the reference errors have no spread (all equal): thresholds in units of "
                "its spread are undefined; use a reference where the model makes some errors"
            )
        share = 2.0 * false_alarm_budget
        margin = _mean_margin(ref, binary, reference_z)
        allowance = delta_sigmas + margin / sigma
        k = allowance * sigma
        # the budget must hold in the worst world the reference allows: mean error up
        # (down) by the margin, which Page-Hinkley's allowance absorbs
        if binary:
            rate_up, rate_down = min(mu + margin, 1.0), max(mu - margin, 0.0)
            theta_up = lundberg_exponent([-mu - k, 1 - mu - k], [1 - rate_up, rate_up])
            theta_down = lundberg_exponent([mu - k, mu - k - 1], [1 - rate_down, rate_down])
        else:
            theta_up = lundberg_exponent(ref + margin - mu - k)
            theta_down = lundberg_exponent(mu - k - (ref - margin))
        theta = theta_up
        if direction != "up":
            theta = min(theta_up, theta_down) if direction == "both" else theta_down
            share *= 2.0 if direction == "both" else 1.0
        h = math.log(share) / theta if math.isfinite(theta) else float(np.ptp(ref))
        ph = PageHinkley(mu, sigma, allowance, max(h, sigma) / sigma, direction)
        adwin = ADWIN(delta=min(clock / (2.0 * false_alarm_budget), 0.5), clock=clock)
        knots: tuple[float, ...] = ()
        levels: tuple[float, ...] = ()
        if not binary:
            knots, levels = _rank_table(ref)
        return cls(adwin, ph, int(false_alarm_budget), int(ref.size), knots, levels)

    def ranks(self, errors: FloatArray) -> FloatArray:
        """What ADWIN watches: the errors themselves if 0/1, else their reference mid-ranks."""
        if not self.rank_knots:
            return errors
        ranked: FloatArray = np.interp(errors, self.rank_knots, self.rank_levels)
        return ranked

    @property
    def n_seen(self) -> int:
        """Labelled errors seen since the monitor was built."""
        return self.n_seen_

    def update(self, error: float) -> list[Detection]:
        """Add one error; the detections it raised."""
        return self.update_many(np.array([error], dtype=np.float64))

    def update_many(self, errors: npt.ArrayLike) -> list[Detection]:
        """Add errors in arrival order; the detections they raised, in order.

        Bad input (NaN, infinity) raises ``ValueError`` before either detector moves.
        """
        values = np.asarray(errors, dtype=np.float64).ravel()
        if values.size and not np.isfinite(values).all():
            raise ValueError("errors must be finite (no NaN or infinity)")
        found: list[Detection] = []
        start = 0
        while start < values.size:
            alarm = self.page_hinkley.next_alarm(values[start:])
            stop = values.size if alarm is None else start + alarm.position + 1
            segment = values[start:stop]
            found += [
                Detection("adwin", self.n_seen_ + c.position + 1, c.mean_before, c.mean_after)
                for c in self.adwin.cuts(self.ranks(segment), report=segment)
            ]
            self.n_seen_ += segment.size
            if alarm is not None:
                found.append(
                    Detection("page_hinkley", self.n_seen_, alarm.mean_before, alarm.mean_after)
                )
                self._rebase_page_hinkley()
            start = stop
        return sorted(found, key=lambda d: (d.index, d.detector))

    def _rebase_page_hinkley(self) -> None:
        """After a Page-Hinkley alarm, watch from ADWIN's level of the errors now.

        ADWIN's window is the longest recent stretch with one mean: after a false alarm
        it is long and its mean is the old level (the baseline barely moves, the budget
        still holds); after a real change it shrinks to the new level once ADWIN cuts,
        so Page-Hinkley stops re-alarming on a level it already reported.
        """
        level = self.adwin.reported_estimation
        if self.adwin.width >= MIN_REFERENCE:
            self.page_hinkley.rebase_to(level)

    def to_dict(self) -> dict[str, Any]:
        """Both detectors' parameters and state as plain JSON values."""
        return {
            "false_alarm_budget": self.false_alarm_budget,
            "n_reference": self.n_reference,
            "n_seen": self.n_seen_,
            "rank_knots": list(self.rank_knots),
            "rank_levels": list(self.rank_levels),
            "adwin": self.adwin.to_dict(),
            "page_hinkley": self.page_hinkley.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ErrorStreamMonitor:
        """The monitor that :meth:`to_dict` wrote."""
        return cls(
            adwin=ADWIN.from_dict(data["adwin"]),
            page_hinkley=PageHinkley.from_dict(data["page_hinkley"]),
            false_alarm_budget=int(data["false_alarm_budget"]),
            n_reference=int(data["n_reference"]),
            rank_knots=tuple(float(v) for v in data["rank_knots"]),
            rank_levels=tuple(float(v) for v in data["rank_levels"]),
            n_seen_=int(data["n_seen"]),
        )


def _rank_table(
    reference: FloatArray, points: int = 1001
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Knots and mid-rank levels of the reference's distribution function on ``points`` quantiles.

    A value tied over several quantiles gets the middle of their levels, so a discrete
    error (many exact zeros) maps to the mid-rank its ties share.
    """
    grid = np.linspace(0.0, 1.0, points)
    knots, first, counts = np.unique(
        np.quantile(reference, grid), return_index=True, return_counts=True
    )
    levels = (grid[first] + grid[first + counts - 1]) / 2.0
    return tuple(float(v) for v in knots), tuple(float(v) for v in levels)


def _mean_margin(reference: FloatArray, binary: bool, z: float) -> float:
    """How far the reference's mean error may sit below the truth: its one-sided upper bound.

    0/1 errors: the Jeffreys interval (Beta(k + 1/2, n - k + 1/2)) at ``Phi(z)``, which
    stays right for a few errors where ``z sigma / sqrt(n)`` is far too narrow (3 errors
    in 190 rows: 0.043 against 0.034). Other errors: ``z sigma / sqrt(n)``.
    """
    n, mean = reference.size, float(reference.mean())
    if z == 0:
        return 0.0
    if binary:
        errors = float(reference.sum())
        upper = float(beta.ppf(norm.cdf(z), errors + 0.5, n - errors + 0.5))
        return max(upper - mean, 0.0)
    return z * float(reference.std()) / math.sqrt(n)
