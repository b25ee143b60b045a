"""Threshold-free rules: how unusual a value is against its own history (pure statistics).

A band rule judges a signal by a robust z-score against the signal's own recent history,
``z = (value - median) / (NORMAL_MAD * MAD)``, instead of a fixed threshold.  The median
and the median absolute deviation (MAD) resist the outliers the rule exists to find; the
factor :data:`NORMAL_MAD` makes the MAD estimate the standard deviation of normal data
(what ``scipy.stats.median_abs_deviation(scale="normal")`` applies), so ``z`` reads like a
z-score and the default levels 3 and 5 mean what they usually do.

The same arithmetic runs in two places, the built-in engine
(:class:`inferwatch.alerting.BandHistory`) and the generated PromQL recording rules
(:func:`inferwatch.rules.to_prometheus`); this module is the one definition both follow:

- **History points.**  One value per ``step``: the point at a step-aligned time ``t``
  (a multiple of ``step`` since the epoch, as a Prometheus subquery ``[history:step]``
  aligns its steps) is the signal's last value at or before ``t`` (the value its series
  held at ``t``).  Without seasonality the history at time ``T`` is every point with
  ``T - history <= t <= T`` (Prometheus 2's closed range; Prometheus 3 leaves out a point
  exactly on the left edge, one point of ``history / step``).  With daily seasonality it
  is the points at ``A - d days + j step`` for ``d = 1 .. history // 1d`` and
  ``j = -1, 0, 1``, where ``A`` is the last step-aligned time at or before ``T``: the same
  time of day (within one step) on each previous day, so a daily rhythm is not unusual.
- **Median** as Prometheus' ``quantile(0.5, ...)``: sorted, and the two middle values
  averaged (linear interpolation at rank ``0.5 * (n - 1)``, promql/quantile.go), which is
  also numpy's median.
- **MAD** the median of ``|x - median|`` over the same points (the exact MAD, not a rolling
  approximation: the PromQL reads the current median with ``@ end()``).
- **Enough history**: a score only once the history holds :meth:`Band.min_points` points.
- **MAD of zero** (a history that never varied): PromQL's ``x / 0``, which is ``+Inf`` or
  ``-Inf`` (any change is infinitely unusual) and ``NaN`` when the value is the median (no
  alert).  ``min_mad`` floors the MAD for signals that sit still for long (an error rate
  of exactly 0), so one error is not an infinite z.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "DAY",
    "NORMAL_MAD",
    "SEASONALITIES",
    "Band",
    "Seasonality",
    "median",
    "median_abs_deviation",
    "robust_score",
    "window_slots",
]

Seasonality = Literal["none", "daily"]
SEASONALITIES: Final[tuple[Seasonality, ...]] = ("none", "daily")
DAY: Final = 86400.0
#: 1 / Phi^-1(3/4): scales the MAD to the standard deviation of normal data (scipy's
#: ``median_abs_deviation(scale="normal")``; the usual 1.4826, to full precision)
NORMAL_MAD: Final = 1.482602218505602
#: the points per day a daily band reads: the same time of day and one step either side
PER_DAY: Final = 3


@dataclass(frozen=True)
class Band:
    """A rule's "unusual for this signal" band: what history it learns from.

    ``history``, ``step`` and ``min_history`` are seconds.  ``step`` is a whole number of
    minutes (at least the evaluation interval of whoever evaluates the rule: the engine
    keeps one value per step, and a Prometheus subquery reads one sample per step).
    ``min_mad`` (signal units) floors the MAD; 0 keeps PromQL's ``x / 0``.
    """

    history: float = 7 * DAY
    step: float = 300.0
    seasonality: Seasonality = "none"
    min_history: float = DAY
    min_mad: float = 0.0

    @property
    def step_ms(self) -> int:
        return round(self.step * 1000)

    @property
    def days(self) -> int:
        """The previous days a daily band reads (``history // 1d``)."""
        return int(self.history // DAY)

    def min_points(self) -> int:
        """How many history points a score needs: ``min_history / step`` without
        seasonality, three per day of ``min_history`` with daily seasonality."""
        if self.seasonality == "daily":
            return PER_DAY * max(1, math.ceil(self.min_history / DAY - 1e-9))
        return max(1, math.ceil(self.min_history / self.step - 1e-9))

    def offsets(self) -> list[int]:
        """Daily seasonality: how far back (ms) each history point lies from the last
        step-aligned time, day by day, the same time of day first (1d, 23h55m, 1d5m, ...)."""
        day, step = round(DAY * 1000), self.step_ms
        return [d * day - j * step for d in range(1, self.days + 1) for j in (0, 1, -1)]

    def capacity(self) -> int:
        """The most points a history needs to keep per series (one per step, bounded)."""
        span = self.days * DAY if self.seasonality == "daily" else self.history
        return math.ceil(span / self.step) + 3


def window_slots(band: Band, now_ms: int) -> npt.NDArray[np.int64]:
    """The step-aligned times (as step numbers, ``t / step``) whose points form the history
    at ``now_ms``, oldest first (see the module docstring)."""
    step = band.step_ms
    if band.seasonality == "daily":
        anchor = now_ms // step
        back = np.array(sorted(band.offsets(), reverse=True), dtype=np.int64) // step
        return anchor - back
    lo = -((round(band.history * 1000) - now_ms) // step)  # ceil((now - history) / step)
    return np.arange(lo, now_ms // step + 1, dtype=np.int64)


def _quantile_sorted(values: npt.NDArray[np.float64], q: float) -> float:
    """Prometheus' ``quantile`` of already sorted ``values`` (promql/quantile.go)."""
    n = len(values)
    if n == 0:
        return math.nan
    rank = q * (n - 1)
    lower = max(0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    with np.errstate(invalid="ignore"):  # Inf * 0 is NaN, as in Go
        return float(values[lower] * (1 - weight) + values[upper] * weight)


def median(values: Sequence[float] | npt.NDArray[np.float64]) -> float:
    """The median as Prometheus' ``quantile(0.5, ...)`` computes it (NaN when empty)."""
    return _quantile_sorted(np.sort(np.asarray(values, dtype=np.float64)), 0.5)


def median_abs_deviation(
    values: Sequence[float] | npt.NDArray[np.float64], center: float | None = None
) -> float:
    """The (unscaled) MAD: the median of ``|x - center|``, ``center`` the median."""
    arr = np.asarray(values, dtype=np.float64)
    m = median(arr) if center is None else center
    return median(np.abs(arr - m))


def robust_score(
    history: Sequence[float] | npt.NDArray[np.float64], value: float, *, min_mad: float = 0.0
) -> float:
    """``(value - median) / (NORMAL_MAD * max(MAD, min_mad))`` of ``value`` against
    ``history``, with PromQL's division: ``x / 0`` is ``+Inf``/``-Inf``, ``0 / 0`` NaN.

    NaN when ``history`` is empty.  The arithmetic is PromQL's, operation for operation,
    so the engine's score equals the recording rule's to the last bit.
    """
    arr = np.asarray(history, dtype=np.float64)
    if arr.size == 0:
        return math.nan
    m = median(arr)
    with np.errstate(invalid="ignore"):
        mad = median(np.abs(arr - m))
    if min_mad > 0:
        mad = max(mad, min_mad)
    return divide(value - m, NORMAL_MAD * mad)


def divide(num: float, den: float) -> float:
    """IEEE division as Go and PromQL do it (Python raises on ``x / 0``)."""
    if den == 0 or math.isnan(den):
        if math.isnan(den) or math.isnan(num) or num == 0:
            return math.nan
        return math.copysign(math.inf, num) * math.copysign(1.0, den)
    return num / den
