"""Fast, exact slot look-up of values on fixed bin edges (the numeric profile's hot loop).

Hand-written because no library does this one thing fast enough: ``np.searchsorted``
and ``np.digitize`` are branchy binary searches (about 60 ns a value on fresh data) and
would alone spend the live-profiling budget of 1.5M rows a second a core; see
:class:`BinLocator` for the grid look-up and why it is exact.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from inferwatch._typing import FloatArray

__all__ = ["BinLocator"]

# bound once: attribute look-ups on ``np`` cost ~50 ns each
_searchsorted = np.searchsorted
_bincount = np.bincount
_isfinite = math.isfinite


class BinLocator:
    """Counts finite values per slot of ``search`` edges, as ``bin_values`` would, but faster.

    ``np.searchsorted`` costs about 60 ns a value on fresh data (a branchy binary search
    that mispredicts), which alone would spend the ingestion budget.  So each value is
    first mapped to a cell of a uniform grid, ``f(x) = clip(floor(x * inv) - g0)`` with
    ``inv`` a power of two (so ``x * inv`` is exact), cells at most 1/64 of the narrowest
    bin among the central 98 % of the edges, over the whole reference range when that fits
    in 65,536 cells and over the central edges otherwise; a table (int16, at most 128 KiB)
    gives the slot of every cell that no edge cuts.  That is exact, not approximate: ``f`` is
    monotone, so a value in a cell that holds no edge, or only edges that are the smallest
    float of the cell (integer edges are), lies above every edge of an earlier cell and
    below every edge of a later one.  The values in the few cells an edge does cut, and a
    batch reaching far outside the grid, go through ``np.searchsorted``.  Built once per
    edges, on the first batch.
    """

    __slots__ = ("g0", "inside", "inv", "limit", "lut", "n_slots", "search", "sentinel")

    MAX_CELLS: Final = 1 << 16
    LUT_DTYPE: Final = np.int16

    def __init__(self, search: FloatArray) -> None:
        self.search = search
        k = len(search) - 1
        self.n_slots = k + 2  # under, K bins, over
        self.sentinel = k + 2
        trim = k // 100
        first, last = float(search[trim]), float(search[k - trim])
        width = float(np.diff(search[trim : k - trim + 1]).min()) / 64.0
        wanted = min(self.MAX_CELLS - 2, (last - first) / width) / (last - first)  # cells/unit
        inv = 0.0  # 0: a degenerate grid, every batch is searched
        if _isfinite(wanted) and wanted > 0:
            inv = math.ldexp(1.0, max(-1000, min(1000, math.floor(math.log2(wanted)))))
        self.inv = inv
        self.limit = math.ldexp(1.0, 61) / inv if inv > 0 else 0.0  # beyond: leaves int64
        lo_edge, hi_edge = float(search[0]), float(search[-1])
        if inv > 0 and (hi_edge - lo_edge) * inv < self.MAX_CELLS - 4:
            first, last = lo_edge, hi_edge  # the whole reference range fits the grid
        self.g0 = g0 = math.floor(first * inv) - 1 if inv > 0 else 0  # cell 0: below the grid
        if 0 <= g0 <= (last - first) * inv and last * inv < self.MAX_CELLS - 2:
            # values >= 0: start the grid at 0 (at most doubling the table) to save two
            # numpy calls a batch (the floor and the offset)
            self.g0 = g0 = 0
        n_cells = math.ceil(last * inv) - g0 + 1 if inv > 0 else 1
        if not (abs(first) < self.limit and abs(last) < self.limit and n_cells > 0):
            n_cells, self.limit = 1, 0.0  # a degenerate grid: every batch is searched
        n_cells = min(n_cells, self.MAX_CELLS)
        # a batch with g0 <= min * inv and max * inv < g0 + n_cells needs no clipping (the
        # comparisons of an exact float product with an int are exact in Python)
        self.inside = (g0, g0 + n_cells) if inv > 0 else (1, 0)
        cells = self._cells(search, n_cells)
        below = self._cells(np.nextafter(search, -np.inf), n_cells)
        aligned = below < cells  # the edge is the smallest float of its cell
        lut = np.searchsorted(cells, np.arange(n_cells), side="left")
        lut += np.bincount(cells[aligned], minlength=n_cells)
        lut[cells[~aligned]] = self.sentinel
        self.lut = lut.astype(self.LUT_DTYPE)

    def _cells(self, values: FloatArray, n_cells: int) -> npt.NDArray[np.intp]:
        """``f`` on edges, computed as :meth:`counts` does on values within ``limit``.

        Clipped to ±2**62 before the cast (an edge may lie far outside the grid), which
        leaves every product within ``limit`` (±2**61) unchanged; the offset is taken in
        integers, exactly, as in :meth:`counts`.
        """
        t = np.floor(values * self.inv)
        np.clip(t, -(2.0**62), 2.0**62, out=t)
        cells = t.astype(np.intp) - self.g0
        return np.clip(cells, 0, n_cells - 1)

    def counts(self, x: FloatArray, lo: float, hi: float) -> npt.NDArray[np.int64]:
        """Slot counts of finite ``x`` whose minimum and maximum are ``lo`` and ``hi``."""
        if lo <= -self.limit or hi >= self.limit:
            return _bincount(_searchsorted(self.search, x, "right"), minlength=self.n_slots)
        t = x * self.inv
        cell: npt.NDArray[np.intp]
        if self.g0:
            if lo < 0.0:  # floor and the truncation of astype agree on values >= 0
                np.floor(t, out=t)
            cell = t.astype(np.intp)
            cell -= self.g0
        else:  # the grid starts at 0: below it, floor and truncation both clip to cell 0
            cell = t.astype(np.intp)
        inside = self.inside
        if inside[0] <= lo * self.inv and hi * self.inv < inside[1]:
            slot = self.lut.take(cell)
        else:
            slot = self.lut.take(cell, mode="clip")
        counts = _bincount(slot, minlength=self.n_slots + 1)
        if counts[-1]:
            cut = x[slot == self.sentinel]
            counts[: self.n_slots] += _bincount(
                _searchsorted(self.search, cut, "right"), minlength=self.n_slots
            )
        return counts[: self.n_slots]
