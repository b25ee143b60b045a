"""ADWIN: adaptive windowing over an exponential histogram (Bifet & Gavaldà 2007).

The window is kept as ADWIN2's exponential histogram: row ``i`` holds buckets of
``2**i`` values (their sum and their sum of squared deviations), oldest first, at most
``max_buckets`` per row; when a row reaches ``max_buckets + 1`` its two oldest buckets
merge into one bucket of the next row. Every ``clock`` values the window is tested at
each bucket boundary: a cut into an older part ``W0`` (``n0`` values) and a newer part
``W1`` (``n1``) is significant when

    |mean(W0) - mean(W1)| > sqrt(2 m v d) + 2/3 d m,
    m = 1/(n0 - L + 1) + 1/(n1 - L + 1),  d = ln(2 ln(W) / delta),

with ``v`` the variance of the whole window, ``W`` its width and ``L`` the
``min_window_length`` (MOA's ``ADWIN.java`` and River's ``adwin_c``). A significant
cut drops the oldest bucket and the window is tested again, until no cut is
significant: the window ends as the longest recent stretch with one mean.

Why our own: River's ADWIN is a Rust extension (a dependency the core must not take)
and resets itself whole after each detection; this one keeps ``W1`` as the paper does,
so :attr:`ADWIN.estimation` is the mean since the change, and its state is plain
numbers (``to_dict``/``from_dict``). ``update_many`` inserts the values between two
checks at once: without a check in between, the histogram after ``k`` single
insertions equals the one built by appending the ``k`` values to row 0 and merging
consecutive pairs row by row (each row is a FIFO whose pairs leave oldest first), which
numpy does in a few calls per row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from inferwatch._typing import FloatArray

__all__ = ["ADWIN", "AdwinCut"]


@dataclass(frozen=True)
class AdwinCut:
    """One change: where in the batch, how many old values it dropped, the means either side."""

    position: int
    dropped: int
    mean_before: float
    mean_after: float


_SUM, _M2, _REPORT = 0, 1, 2


def _empty() -> FloatArray:
    return np.zeros(0, dtype=np.float64)


@dataclass
class ADWIN:
    """Adaptive-window change detector on a stream of numbers (see the module docstring).

    ``delta`` is the confidence of each cut test: the paper bounds the probability that
    a check shrinks a window whose mean did not change by ``delta``, so with a check
    every ``clock`` values the expected false alarms per ``N`` stable values are at most
    ``delta * N / clock`` (the bound is loose; measured rates are far lower).
    """

    delta: float = 0.002
    clock: int = 32
    max_buckets: int = 5
    min_window_length: int = 5
    grace_period: int = 10
    n_seen_: int = 0
    n_detections_: int = 0
    _rows: list[FloatArray] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.delta < 1.0:
            raise ValueError(f"ADWIN delta must be in (0, 1), got {self.delta!r}")
        if self.clock < 1 or self.max_buckets < 1 or self.min_window_length < 1:
            raise ValueError("ADWIN clock, max_buckets and min_window_length must be >= 1")

    # -- reading -------------------------------------------------------------------
    @property
    def width(self) -> int:
        """How many values the window holds now."""
        return sum(len(row) << i for i, row in enumerate(self._rows))

    @property
    def total(self) -> float:
        """The sum of the values in the window."""
        return float(sum(float(row[:, _SUM].sum()) for row in self._rows))

    @property
    def estimation(self) -> float:
        """The mean of the window (0.0 when empty, as River's)."""
        width = self.width
        return self.total / width if width else 0.0

    @property
    def reported_estimation(self) -> float:
        """The mean of the reported values in the window (:meth:`cuts`' ``report``)."""
        width = self.width
        return (
            float(sum(float(row[:, _REPORT].sum()) for row in self._rows)) / width if width else 0.0
        )

    @property
    def variance(self) -> float:
        """The population variance of the values in the window."""
        sizes, flat = self._flat()
        return _variance(sizes, flat[:, _SUM], flat[:, _M2])

    @property
    def n_detections(self) -> int:
        """How many checks found a change since the detector was built."""
        return self.n_detections_

    # -- updating ------------------------------------------------------------------
    def update(self, x: float) -> bool:
        """Add one value; ``True`` when the check at this value found a change."""
        return len(self.update_many(np.array([x], dtype=np.float64))) > 0

    def update_many(self, xs: npt.ArrayLike) -> npt.NDArray[np.intp]:
        """Add values in order; the positions in ``xs`` where a change was detected."""
        return np.asarray([cut.position for cut in self.cuts(xs)], dtype=np.intp)

    def cuts(self, xs: npt.ArrayLike, report: npt.ArrayLike | None = None) -> list[AdwinCut]:
        """Add values in order; every change found, with the means either side of it.

        ``report`` (same length as ``xs``) is carried through the buckets beside ``xs``
        and the cut's means are of it: the monitor tests a transform of the errors (their
        rank in the reference) but reports the errors' own means.
        """
        values = np.asarray(xs, dtype=np.float64).ravel()
        shown = values if report is None else np.asarray(report, dtype=np.float64).ravel()
        if shown.shape != values.shape:
            raise ValueError("ADWIN report must have one value per value")
        if values.size and not (np.isfinite(values).all() and np.isfinite(shown).all()):
            raise ValueError("ADWIN values must be finite (no NaN or infinity)")
        block = np.zeros((values.size, 3), dtype=np.float64)
        block[:, _SUM], block[:, _REPORT] = values, shown
        hits: list[AdwinCut] = []
        start = 0
        while start < values.size:
            stop = min(values.size, start + self.clock - self.n_seen_ % self.clock)
            self._insert(block[start:stop])
            self.n_seen_ += stop - start
            if self.n_seen_ % self.clock == 0 and self.width > self.grace_period:
                cut = self._check(stop - 1)
                if cut is not None:
                    self.n_detections_ += 1
                    hits.append(cut)
            start = stop
        return hits

    def _insert(self, block: FloatArray) -> None:
        """Append single-value buckets to row 0 and merge pairs up the rows."""
        carry, row, limit = block, 0, self.max_buckets
        while len(carry):
            if row == len(self._rows):
                self._rows.append(np.zeros((0, 3), dtype=np.float64))
            merged = np.concatenate((self._rows[row], carry))
            count = len(merged)
            if count <= limit:
                self._rows[row] = merged
                return
            pairs = (count - limit + (count - limit) % 2) // 2
            a, b = merged[0 : 2 * pairs : 2], merged[1 : 2 * pairs : 2]
            carry = a + b
            carry[:, _M2] += (a[:, _SUM] - b[:, _SUM]) ** 2 / float(2 << row)
            self._rows[row] = merged[2 * pairs :]
            row += 1

    def _flat(self) -> tuple[FloatArray, FloatArray]:
        """Bucket sizes and (sum, M2, report) rows, oldest first."""
        if not self._rows:
            return _empty(), np.zeros((0, 3), dtype=np.float64)
        top = len(self._rows) - 1
        sizes = np.repeat(
            np.exp2(np.arange(top, -1, -1, dtype=np.float64)), [len(r) for r in self._rows[::-1]]
        )
        return sizes, np.concatenate(self._rows[::-1])

    def _check(self, position: int) -> AdwinCut | None:
        sizes, flat = self._flat()
        sums = flat[:, _SUM]
        first = 0
        min_len = float(self.min_window_length)
        while sizes.size - first >= 2:
            n_b, s_b = sizes[first:], sums[first:]
            n0 = np.cumsum(n_b)
            u0 = np.cumsum(s_b)
            width, total = float(n0[-1]), float(u0[-1])
            n0, u0 = n0[:-1], u0[:-1]
            n1 = width - n0
            ok = (n0 >= min_len) & (n1 >= min_len)
            if not ok.any():
                break
            var = _variance(n_b, s_b, flat[first:, _M2])
            d = math.log(2.0 * math.log(width) / self.delta)
            m = 1.0 / np.maximum(n0 - min_len + 1.0, 1.0) + 1.0 / np.maximum(
                n1 - min_len + 1.0, 1.0
            )
            eps = np.sqrt(2.0 * m * var * d) + 2.0 / 3.0 * d * m
            if not (ok & (np.abs(u0 / n0 - (total - u0) / n1) > eps)).any():
                break
            first += 1
        if first == 0:
            return None
        self._drop_oldest(first)
        dropped_n, kept_n = float(sizes[:first].sum()), float(sizes[first:].sum())
        reports = flat[:, _REPORT]
        after = float(reports[first:].sum()) / kept_n if kept_n else 0.0
        return AdwinCut(position, int(dropped_n), float(reports[:first].sum()) / dropped_n, after)

    def _drop_oldest(self, count: int) -> None:
        while count and self._rows:
            take = min(count, len(self._rows[-1]))
            self._rows[-1] = self._rows[-1][take:]
            count -= take
            while self._rows and len(self._rows[-1]) == 0:
                self._rows.pop()

    # -- state ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Parameters and state as plain JSON values (floats round-trip exactly).

        ``rows[i]`` lists the buckets of ``2**i`` values, oldest first, each as
        ``[sum, sum of squared deviations, sum of the reported values]``.
        """
        return {
            "delta": self.delta,
            "clock": self.clock,
            "max_buckets": self.max_buckets,
            "min_window_length": self.min_window_length,
            "grace_period": self.grace_period,
            "n_seen": self.n_seen_,
            "n_detections": self.n_detections_,
            "rows": [row.tolist() for row in self._rows],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ADWIN:
        """The detector that :meth:`to_dict` wrote."""
        detector = cls(
            delta=float(data["delta"]),
            clock=int(data["clock"]),
            max_buckets=int(data["max_buckets"]),
            min_window_length=int(data["min_window_length"]),
            grace_period=int(data["grace_period"]),
            n_seen_=int(data["n_seen"]),
            n_detections_=int(data["n_detections"]),
        )
        for row in data["rows"]:
            detector._rows.append(np.asarray(row, dtype=np.float64).reshape(-1, 3))
        return detector


def _variance(sizes: FloatArray, sums: FloatArray, m2s: FloatArray) -> float:
    """Population variance of the union of buckets (the parallel-variance formula)."""
    width = float(sizes.sum())
    if width == 0:
        return 0.0
    mean = float(sums.sum()) / width
    m2 = float(m2s.sum()) + float(np.sum(sizes * (sums / sizes - mean) ** 2))
    return max(m2, 0.0) / width
