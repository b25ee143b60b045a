"""The built-in engine's memory for threshold-free rules: each series' own history.

A band rule (``Rule.band``, YAML ``unusual:``) is judged by the robust z-score of its
signal against the signal's own history (:mod:`inferwatch.rules._band` defines it, and
the generated PromQL computes the same).  :class:`BandHistory` keeps that history for the
built-in engine and scores each new value; the rule evaluator calls
:meth:`BandHistory.band_score` once per series per cycle (it matches the evaluator's
``band_score`` hook) and judges the score with ``rule.severity(score)``.

Bounded: one value per ``step`` per series (the last value at or before each
step-aligned time, what a Prometheus subquery reads), in a ring of
:meth:`~inferwatch.rules.Band.capacity` slots (``history / step`` + 3; 2,019 floats and
slot numbers, 32 KiB, for 7 days at 5 minutes); a series not seen for a ``history`` is
dropped.  Scoring is cached per step: the history only changes when a step passes (or
when the value of the current, aligned step is written), so most cycles cost a lookup
and a division, and a cycle that crosses a step pays one sort of the window per series.

Not thread-safe: one evaluator thread owns it (the runner's).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

import numpy as np
import numpy.typing as npt

from inferwatch.rules import Band, Rule
from inferwatch.rules._band import NORMAL_MAD, divide, window_slots

__all__ = ["BandHistory"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
_EMPTY: Final = np.iinfo(np.int64).min  # the slot number of a ring cell never written
#: how often (ms) the series not seen for a history are looked for
_SWEEP_MS: Final = 60_000


def _ms(now: datetime | float) -> int:
    """Milliseconds since the epoch (Prometheus' timestamps), floored."""
    if isinstance(now, datetime):
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        return (now - _EPOCH) // _MS
    return math.floor(now * 1000)


def _median_sorted(values: npt.NDArray[np.float64]) -> float:
    """Prometheus' ``quantile(0.5, ...)`` of sorted values (the two middle ones averaged
    as ``a * 0.5 + b * 0.5``, promql/quantile.go; ``rules._band.median`` is the same)."""
    n = len(values)
    rank = 0.5 * (n - 1)
    lower = math.floor(rank)
    upper = min(n - 1, lower + 1)
    weight = rank - lower
    return float(values[lower] * (1 - weight) + values[upper] * weight)


class _Series:
    __slots__ = ("band", "cache", "cap", "ids", "last", "step", "vals")

    def __init__(self, band: Band) -> None:
        self.band = band
        self.step = band.step_ms
        self.cap = band.capacity()
        self.ids = np.full(self.cap, _EMPTY, dtype=np.int64)
        self.vals = np.zeros(self.cap, dtype=np.float64)
        self.last = _EMPTY
        # (lo, hi) of the window scored, its median and MAD (None: too few points)
        self.cache: tuple[int, int, float, float] | tuple[int, int, None, None] | None = None

    def record(self, now_ms: int, value: float) -> None:
        slot = -(-now_ms // self.step)  # the first step-aligned time at or after now
        if self.last != _EMPTY and slot <= self.last - self.cap:
            return  # older than the ring holds (a clock gone backwards)
        i = slot % self.cap
        self.ids[i] = slot
        self.vals[i] = value
        self.last = max(self.last, slot)
        if self.cache is not None and slot <= self.cache[1]:
            self.cache = None

    def stats(self, now_ms: int) -> tuple[float, float] | None:
        """The window's median and MAD at ``now_ms``, None with too few points."""
        hi = now_ms // self.step
        if self.band.seasonality == "daily":
            lo = hi
        else:
            lo = -((round(self.band.history * 1000) - now_ms) // self.step)
        c = self.cache
        if c is not None and c[0] == lo and c[1] == hi:
            return None if c[2] is None or c[3] is None else (c[2], c[3])
        if self.band.seasonality == "daily":
            slots = window_slots(self.band, now_ms)
            idx = slots % self.cap
            points = self.vals[idx[self.ids[idx] == slots]]
        else:  # every step from lo to hi: the ring cells holding one of them
            points = self.vals[(self.ids >= lo) & (self.ids <= hi)]
        if len(points) < self.band.min_points():
            self.cache = (lo, hi, None, None)
            return None
        points.sort()
        with np.errstate(invalid="ignore"):  # +Inf in a history: NaN, as in PromQL
            m = _median_sorted(points)
            dev = np.abs(points - m)
            dev.sort()
            mad = _median_sorted(dev)
        self.cache = (lo, hi, m, mad)
        return m, mad


class BandHistory:
    """Per (rule, series): the history a band rule judges the series' values against.

    ``record`` keeps a value, ``score`` gives its robust z-score against the history at
    ``now`` (None until the history holds :meth:`~inferwatch.rules.Band.min_points`
    points, or for a NaN value, which is never recorded: PromQL's value recording drops
    NaN too), ``band_score`` does both, in that order, as a Prometheus rule group records
    the value before the rules that read it.  ``now`` is a datetime or epoch seconds.
    """

    def __init__(self) -> None:
        self._series: dict[tuple[str, tuple[tuple[str, str], ...]], _Series] = {}
        self._swept = _EMPTY

    def __len__(self) -> int:
        """How many series are remembered."""
        return len(self._series)

    def _get(self, rule: Rule, labels: Mapping[str, str]) -> _Series | None:
        band = rule.band
        if band is None:
            return None
        key = (rule.name, tuple(sorted(labels.items())))
        s = self._series.get(key)
        if s is None or s.band != band:  # new, or the rule's band changed (a reload)
            s = self._series[key] = _Series(band)
        return s

    def record(
        self, rule: Rule, labels: Mapping[str, str], now: datetime | float, value: float
    ) -> None:
        """Keep ``value`` as the series' value for the step ``now`` falls in."""
        s = self._get(rule, labels)
        if s is None or math.isnan(value):
            return
        now_ms = _ms(now)
        s.record(now_ms, value)
        if now_ms - self._swept >= _SWEEP_MS:
            self._sweep(now_ms)

    def score(
        self, rule: Rule, labels: Mapping[str, str], now: datetime | float, value: float
    ) -> float | None:
        """The robust z-score of ``value`` against the series' history at ``now``."""
        s = self._get(rule, labels)
        if s is None or math.isnan(value):
            return None
        stats = s.stats(_ms(now))
        if stats is None:
            return None
        m, mad = stats
        return divide(value - m, NORMAL_MAD * max(mad, s.band.min_mad))

    def band_score(
        self, rule: Rule, labels: Mapping[str, str], now: datetime | float, value: float
    ) -> float | None:
        """Record ``value``, then score it: the rule evaluator's ``band_score`` hook."""
        self.record(rule, labels, now, value)
        return self.score(rule, labels, now, value)

    __call__ = band_score

    def points(self, rule: Rule, labels: Mapping[str, str]) -> int:
        """How many step values the series holds (0 when unknown)."""
        s = self._series.get((rule.name, tuple(sorted(labels.items()))))
        return 0 if s is None else int(np.count_nonzero(s.ids != _EMPTY))

    def _sweep(self, now_ms: int) -> None:
        """Forget the series not seen for a history (a model removed, a feature gone)."""
        self._swept = now_ms
        stale = [
            key
            for key, s in self._series.items()
            if (now_ms - s.last * s.step) > s.band.history * 1000 + s.step
        ]
        for key in stale:
            del self._series[key]
