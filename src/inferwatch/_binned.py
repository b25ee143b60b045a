"""The binned layout shared by profiles (which fill it) and drift statistics (which read it).

A numeric column summarised on reference bins is a :class:`Binned`:

* ``edges``: strictly increasing float64, length ``K + 1`` (K >= 1 interior bins), fixed
  by the reference (its quantiles);
* ``counts``: int64, length ``K + 2``: ``counts[0]`` = values below ``edges[0]`` (``-inf``
  included), ``counts[1 + i]`` = values in ``[edges[i], edges[i + 1])`` for ``i < K - 1``
  and the last interior bin closed ``[edges[K-1], edges[K]]``, ``counts[K + 1]`` = values
  above ``edges[K]`` (``+inf`` included);
* ``missing``: NaN / None count.

Binned statistics (PSI, Jensen-Shannon, KL, Hellinger, chi-square) use the full vector
``[missing, under, bins..., over]`` so that a shift in missingness or in out-of-range
values moves the score.  Core layer: numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Binned", "bin_values"]


@dataclass(frozen=True, slots=True, eq=False)
class Binned:
    """Counts of one numeric column on fixed reference bins."""

    edges: npt.NDArray[np.float64]
    counts: npt.NDArray[np.int64]
    missing: int = 0

    def __post_init__(self) -> None:
        if self.edges.ndim != 1 or len(self.edges) < 2:
            raise ValueError("edges needs at least two values")
        if len(self.counts) != len(self.edges) + 1:
            raise ValueError(
                f"counts has {len(self.counts)} entries; expected len(edges) + 1 = "
                f"{len(self.edges) + 1}"
            )

    @property
    def total(self) -> int:
        """All rows, missing included."""
        return int(self.counts.sum()) + self.missing

    def full(self) -> npt.NDArray[np.int64]:
        """``[missing, under, bins..., over]``: the vector binned statistics compare."""
        return np.concatenate(([self.missing], self.counts)).astype(np.int64)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Binned):
            return NotImplemented
        return (
            self.missing == other.missing
            and np.array_equal(self.edges, other.edges)
            and np.array_equal(self.counts, other.counts)
        )


def bin_values(values: npt.ArrayLike, edges: npt.NDArray[np.float64]) -> Binned:
    """Count ``values`` (float, NaN = missing) on ``edges`` in the layout above."""
    arr = np.asarray(values, dtype=np.float64)
    nan = np.isnan(arr)
    present = arr[~nan]
    k = len(edges) - 1
    # side="right" puts a value equal to edges[i] in bin i; the top edge belongs to bin K-1
    idx = np.searchsorted(edges, present, side="right")  # 0 = under, 1..K = bins, K+1 = over
    idx[present == edges[-1]] = k
    counts = np.bincount(idx, minlength=k + 2).astype(np.int64)
    return Binned(np.asarray(edges, dtype=np.float64), counts, int(nan.sum()))
