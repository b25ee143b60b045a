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
#: One bucket: (sum, sum of squared deviations, sum of the reported values).
Bucket = tuple[float, float, float]


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
    _rows: list[list[Bucket]] = field(default_factory=list, repr=False)
    # the window's width, sum and sum of squared deviations, kept as values come and go
    _width: int = field(default=0, repr=False)
    _total: float = field(default=0.0, repr=False)
    _m2: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.delta < 1.0:
            raise ValueError(f"ADWIN delta must be in (0, 1), got {self.delta!r}")
        if self.clock < 1 or self.max_buckets < 1 or self.min_window_length < 1:
            raise ValueError("ADWIN clock, max_buckets and min_window_length must be >= 1")

    # -- reading -------------------------------------------------------------------
    @property
    def width(self) -> int:
        """How many values the window holds now."""
        return self._width

    @property
    def total(self) -> float:
        """The sum of the values in the window."""
        return self._total

    @property
    def estimation(self) -> float:
        """The mean of the window (0.0 when empty, as River's)."""
        width = self.width
        return self.total / width if width else 0.0

    @property
    def reported_estimation(self) -> float:
        """The mean of the reported values in the window (:meth:`cuts`' ``report``)."""
        width = self.width
        total = math.fsum(b[_REPORT] for row in self._rows for b in row)
        return total / width if width else 0.0

    @property
    def variance(self) -> float:
        """The population variance of the values in the window."""
        return self._m2 / self._width if self._width else 0.0

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
        block = list(zip(values.tolist(), [0.0] * values.size, shown.tolist(), strict=True))
        hits: list[AdwinCut] = []
        start = 0
        while start < values.size:
            stop = min(values.size, start + self.clock - self.n_seen_ % self.clock)
            self._insert(block[start:stop])
            self._add_to_window(values[start:stop])
            self.n_seen_ += stop - start
            if self.n_seen_ % self.clock == 0 and self.width > self.grace_period:
                cut = self._check(stop - 1)
                if cut is not None:
                    self.n_detections_ += 1
                    hits.append(cut)
            start = stop
        return hits

    def _add_to_window(self, segment: FloatArray) -> None:
        """Merge a segment's width, sum and M2 into the window's (parallel-variance formula)."""
        k = segment.size
        seg_total = float(segment.sum())
        seg_m2 = float(np.sum((segment - seg_total / k) ** 2))
        if self._width:
            gap = seg_total / k - self._total / self._width
            self._m2 += seg_m2 + gap * gap * self._width * k / (self._width + k)
        else:
            self._m2 = seg_m2
        self._total += seg_total
        self._width += k

    def _insert(self, block: list[Bucket]) -> None:
        """Append single-value buckets to row 0 and merge pairs up the rows.

        Plain Python: a row holds at most ``max_buckets`` buckets, and on arrays that
        small numpy's per-call cost made the insertion 3.7x slower.
        """
        carry, row, limit = block, 0, self.max_buckets
        while carry:
            if row == len(self._rows):
                self._rows.append([])
            current = self._rows[row]
            current.extend(carry)
            count = len(current)
            if count <= limit:
                return
            pairs = (count - limit + (count - limit) % 2) // 2
            scale = float(2 << row)
            carry = []
            for j in range(0, 2 * pairs, 2):
                (s_a, m_a, r_a), (s_b, m_b, r_b) = current[j], current[j + 1]
                gap = s_a - s_b
                carry.append((s_a + s_b, m_a + m_b + gap * gap / scale, r_a + r_b))
            del current[: 2 * pairs]
            row += 1

    def _check(self, position: int) -> AdwinCut | None:
        buckets = [b for r in self._rows[::-1] for b in r]
        sizes = np.repeat(
            np.exp2(np.arange(len(self._rows) - 1, -1, -1, dtype=np.float64)),
            [len(r) for r in self._rows[::-1]],
        )
        sums = np.array([b[_SUM] for b in buckets], dtype=np.float64)
        width, total, m2 = float(self._width), self._total, self._m2
        first = 0
        min_len = float(self.min_window_length)
        while sizes.size - first >= 2:
            n0 = np.cumsum(sizes[first:-1])
            u0 = np.cumsum(sums[first:-1])
            n1 = width - n0
            ok = (n0 >= min_len) & (n1 >= min_len)
            if not ok.any():
                break
            d = math.log(2.0 * math.log(width) / self.delta)
            m = 1.0 / np.maximum(n0 - min_len + 1.0, 1.0) + 1.0 / np.maximum(
                n1 - min_len + 1.0, 1.0
            )
            eps = np.sqrt(2.0 * m * (max(m2, 0.0) / width) * d) + 2.0 / 3.0 * d * m
            if not (ok & (np.abs(u0 / n0 - (total - u0) / n1) > eps)).any():
                break
            # drop the oldest bucket: River's _delete_element
            n_b, (s_b, m2_b, _) = float(sizes[first]), buckets[first]
            width -= n_b
            total -= s_b
            gap = s_b / n_b - total / width
            m2 -= m2_b + n_b * width * gap * gap / (n_b + width)
            first += 1
        if first == 0:
            return None
        self._drop_oldest(first)
        self._width, self._total, self._m2 = int(width), total, m2
        dropped = math.fsum(b[_REPORT] for b in buckets[:first])
        kept = math.fsum(b[_REPORT] for b in buckets[first:])
        dropped_n = float(sizes[:first].sum())
        return AdwinCut(position, int(dropped_n), dropped / dropped_n, kept / width)

    def _drop_oldest(self, count: int) -> None:
        while count and self._rows:
            take = min(count, len(self._rows[-1]))
            del self._rows[-1][:take]
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
            "width": self._width,
            "total": self._total,
            "m2": self._m2,
            "rows": [[list(b) for b in row] for row in self._rows],
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
            _width=int(data["width"]),
            _total=float(data["total"]),
            _m2=float(data["m2"]),
        )
        for row in data["rows"]:
            detector._rows.append([(float(s), float(m2), float(r)) for s, m2, r in row])
        return detector
