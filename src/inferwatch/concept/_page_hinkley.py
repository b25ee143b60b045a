"""Page-Hinkley with its allowance and threshold in units of the reference's error spread.

River's ``PageHinkley(delta=0.005, threshold=50)`` states both in data units and
compares each value with the running mean of the stream itself, so the same settings
raise 317 false alarms on 500k stable N(0, 1) values and none on the same values times
0.1. Here the in-control mean and spread come from the labelled reference (``mu``,
``sigma``: mean and standard deviation of its per-prediction errors) and the test is
Page's one-sided CUSUM against that known mean:

    g_t = max(0, g_{t-1} + x_t - baseline - delta_sigmas * sigma),
    alarm when g_t > threshold_sigmas * sigma

(``"up"``: errors rising; ``"down"`` mirrors it; ``"both"`` runs the two). This is the
Page-Hinkley statistic ``m_t - min m`` with the reference mean in place of the running
mean. ``update_many`` needs no Python loop per value: with ``S_t = g_0 + cumsum(y)``,
``g_t = S_t - min(0, min_{j<=t} S_j)`` (Lindley's recursion unrolled), so a batch costs
a cumsum and a running minimum, plus one pass per alarm.

After an alarm the statistic restarts at 0. Against a fixed baseline it alarms again
every ``threshold / shift`` values while a new level lasts; :meth:`PageHinkley.rebase_to`
moves the baseline (the error-stream monitor moves it to ADWIN's estimate of the
current level, which stays at the old mean after a false alarm). ``rebase=True`` moves
it by itself to the mean since the estimated change point (the last time ``g`` was 0),
which is biased upward (the stretch that crossed the threshold), so a false alarm would
leave the detector deaf to the next real rise: off by default. The allowance and
threshold stay in the reference's sigma either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from inferwatch._typing import FloatArray

__all__ = ["PageHinkley", "PageHinkleyAlarm"]

Direction = Literal["up", "down", "both"]
_DIRECTIONS: tuple[Direction, ...] = ("up", "down", "both")


@dataclass(frozen=True)
class PageHinkleyAlarm:
    """One alarm: its position in the batch, the baseline it left and the level it found."""

    position: int
    direction: Literal["up", "down"]
    mean_before: float
    mean_after: float
    run_length: int


@dataclass
class PageHinkley:
    """CUSUM / Page-Hinkley against the reference mean (see the module docstring)."""

    reference_mean: float
    reference_std: float
    delta_sigmas: float = 0.5
    threshold_sigmas: float = 25.0
    direction: Direction = "up"
    rebase: bool = False
    n_seen_: int = 0
    n_detections_: int = 0
    baseline_: float | None = None
    g_up_: float = 0.0
    g_down_: float = 0.0
    run_up_: int = 0
    run_down_: int = 0
    sum_up_: float = 0.0
    sum_down_: float = 0.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.reference_mean) and np.isfinite(self.reference_std)):
            raise ValueError("PageHinkley reference_mean and reference_std must be finite")
        if self.reference_std <= 0:
            raise ValueError(f"PageHinkley reference_std must be > 0, got {self.reference_std!r}")
        if self.delta_sigmas < 0 or self.threshold_sigmas <= 0:
            raise ValueError("PageHinkley delta_sigmas must be >= 0 and threshold_sigmas > 0")
        if self.direction not in _DIRECTIONS:
            raise ValueError(
                f"PageHinkley direction must be one of {list(_DIRECTIONS)}, got {self.direction!r}"
            )
        if self.baseline_ is None:
            self.baseline_ = float(self.reference_mean)

    @property
    def allowance(self) -> float:
        """``delta_sigmas * reference_std``, in the units of the values."""
        return self.delta_sigmas * self.reference_std

    @property
    def threshold(self) -> float:
        """``threshold_sigmas * reference_std``, in the units of the values."""
        return self.threshold_sigmas * self.reference_std

    @property
    def n_detections(self) -> int:
        """Alarms raised since the detector was built."""
        return self.n_detections_

    def update(self, x: float) -> bool:
        """Add one value; ``True`` when it raised an alarm."""
        return len(self.update_many(np.array([x], dtype=np.float64))) > 0

    def update_many(self, xs: npt.ArrayLike) -> npt.NDArray[np.intp]:
        """Add values in order; the positions in ``xs`` that raised an alarm."""
        return np.asarray([a.position for a in self.alarms(xs)], dtype=np.intp)

    def rebase_to(self, level: float) -> None:
        """Watch for changes from ``level`` on (allowance and threshold unchanged)."""
        if not np.isfinite(level):
            raise ValueError(f"PageHinkley baseline must be finite, got {level!r}")
        self.baseline_ = float(level)

    def alarms(self, xs: npt.ArrayLike) -> list[PageHinkleyAlarm]:
        """Add values in order; every alarm with the levels either side of it."""
        values = _finite(xs)
        found: list[PageHinkleyAlarm] = []
        start = 0
        while start < values.size:
            alarm = self.next_alarm(values[start:])
            if alarm is None:
                break
            found.append(PageHinkleyAlarm(start + alarm.position, *_rest(alarm)))
            start += alarm.position + 1
        return found

    def next_alarm(self, xs: npt.ArrayLike) -> PageHinkleyAlarm | None:
        """Add values up to the first alarm (included), or all of them if none alarms."""
        chunk = _finite(xs)
        hit_up = self._first_hit("up", chunk) if self.direction != "down" else None
        hit_down = self._first_hit("down", chunk) if self.direction != "up" else None
        hits = [h for h in (hit_up, hit_down) if h is not None]
        if not hits:
            self._advance("up", chunk)
            self._advance("down", chunk)
            self.n_seen_ += chunk.size
            return None
        pos, side = min(hits)
        head = chunk[: pos + 1]
        self._advance("down" if side == "up" else "up", head)
        self._advance(side, head)
        self.n_seen_ += head.size
        return self._alarm(pos, side)

    def _steps(self, side: Literal["up", "down"], chunk: FloatArray) -> FloatArray:
        assert self.baseline_ is not None
        if side == "up":
            return chunk - (self.baseline_ + self.allowance)
        return (self.baseline_ - self.allowance) - chunk

    def _path(self, side: Literal["up", "down"], chunk: FloatArray) -> FloatArray:
        g0 = self.g_up_ if side == "up" else self.g_down_
        s = g0 + np.cumsum(self._steps(side, chunk))
        return s - np.minimum.accumulate(np.minimum(s, 0.0))

    def _first_hit(
        self, side: Literal["up", "down"], chunk: FloatArray
    ) -> tuple[int, Literal["up", "down"]] | None:
        over = np.flatnonzero(self._path(side, chunk) > self.threshold)
        return (int(over[0]), side) if over.size else None

    def _advance(self, side: Literal["up", "down"], chunk: FloatArray) -> None:
        """Carry ``g`` and the current excursion (length, sum) to the end of ``chunk``."""
        if self.direction != "both" and side != self.direction:
            return
        g = self._path(side, chunk)
        zeros = np.flatnonzero(g <= 0.0)
        if zeros.size:
            tail = chunk[zeros[-1] + 1 :]
            run, total = tail.size, float(tail.sum())
        else:
            run = (self.run_up_ if side == "up" else self.run_down_) + chunk.size
            total = (self.sum_up_ if side == "up" else self.sum_down_) + float(chunk.sum())
        if side == "up":
            self.g_up_, self.run_up_, self.sum_up_ = float(g[-1]), run, total
        else:
            self.g_down_, self.run_down_, self.sum_down_ = float(g[-1]), run, total

    def _alarm(self, position: int, side: Literal["up", "down"]) -> PageHinkleyAlarm:
        assert self.baseline_ is not None
        run = self.run_up_ if side == "up" else self.run_down_
        total = self.sum_up_ if side == "up" else self.sum_down_
        after = total / run if run else self.baseline_
        alarm = PageHinkleyAlarm(position, side, self.baseline_, after, run)
        self.n_detections_ += 1
        if self.rebase:
            self.baseline_ = after
        self.g_up_ = self.g_down_ = 0.0
        self.run_up_ = self.run_down_ = 0
        self.sum_up_ = self.sum_down_ = 0.0
        return alarm

    def to_dict(self) -> dict[str, Any]:
        """Parameters and state as plain JSON values."""
        return {
            "reference_mean": self.reference_mean,
            "reference_std": self.reference_std,
            "delta_sigmas": self.delta_sigmas,
            "threshold_sigmas": self.threshold_sigmas,
            "direction": self.direction,
            "rebase": self.rebase,
            "n_seen": self.n_seen_,
            "n_detections": self.n_detections_,
            "baseline": self.baseline_,
            "g_up": self.g_up_,
            "g_down": self.g_down_,
            "run_up": self.run_up_,
            "run_down": self.run_down_,
            "sum_up": self.sum_up_,
            "sum_down": self.sum_down_,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PageHinkley:
        """The detector that :meth:`to_dict` wrote."""
        direction = str(data["direction"])
        if direction not in _DIRECTIONS:
            raise ValueError(
                f"PageHinkley direction must be one of {list(_DIRECTIONS)}, got {direction!r}"
            )
        return cls(
            reference_mean=float(data["reference_mean"]),
            reference_std=float(data["reference_std"]),
            delta_sigmas=float(data["delta_sigmas"]),
            threshold_sigmas=float(data["threshold_sigmas"]),
            direction=direction,
            rebase=bool(data["rebase"]),
            n_seen_=int(data["n_seen"]),
            n_detections_=int(data["n_detections"]),
            baseline_=float(data["baseline"]),
            g_up_=float(data["g_up"]),
            g_down_=float(data["g_down"]),
            run_up_=int(data["run_up"]),
            run_down_=int(data["run_down"]),
            sum_up_=float(data["sum_up"]),
            sum_down_=float(data["sum_down"]),
        )


def _finite(xs: npt.ArrayLike) -> FloatArray:
    values = np.asarray(xs, dtype=np.float64).ravel()
    if values.size and not np.isfinite(values).all():
        raise ValueError("PageHinkley values must be finite (no NaN or infinity)")
    return values


def _rest(alarm: PageHinkleyAlarm) -> tuple[Literal["up", "down"], float, float, int]:
    return alarm.direction, alarm.mean_before, alarm.mean_after, alarm.run_length
