"""Samples in, a bounded history out: what the built-in rule evaluator reads its windows from.

Each cycle the caller hands :meth:`SampleHistory.observe` the time and the current value of
every series it has, as plain data ``(sample_name, labels, value)`` (a counter as its
``*_total`` sample, a histogram as its ``*_bucket``/``*_sum``/``*_count`` samples, a gauge by
its name; :func:`inferwatch.metrics.registry_samples` flattens a ``CollectorRegistry`` so).
Only the sample names the rules read are kept (``horizons``: name -> seconds of history the
longest window reading it needs).

Storage is one table per sample name: a ``rows x columns`` float matrix (one row per label
set, one column per observation time; NaN where a series had no sample, which is how a gap
or a vanished series looks, as in Prometheus where a scrape that misses a series writes
nothing for it).  Instant reads look back :data:`LOOKBACK` (5 minutes, Prometheus' default
lookback delta), so a series that stops being reported goes stale 5 minutes later.

**Bound.** A table keeps the columns within its horizon, thinned with age: a column of age
``a`` is kept only if it is the first in its slot of ``2**floor(log2(a / K))`` ms, ``K`` =
``points_per_window`` (240).  Any window of length ``w`` thus sees at least about ``K / 2``
samples spread over it, and every sample where the slot is shorter than the scrape interval
(ages below ``K`` x interval: 64 minutes at a 15 s interval, 4 hours at 1 minute), so those
windows read exactly the samples Prometheus would.  Older columns are at most ``2 a / K``
apart: ``rate`` over a longer window starts at most that much after the window's edge and
extrapolates the rest, as Prometheus does when a scrape is missing; ``avg_over_time``
averages the kept samples, so its older part weighs less than in Prometheus (a 6-hour
window at 15 s: rate within 0.04%, average within 0.1% of the unthinned values in
tests/alerting/test_evaluate.py).  Columns per series after a
compaction: about ``K x (1 + log2(horizon / (K x interval)))`` (every scrape of the first
``K x interval``, then at most ``K`` per doubling of age): for a 3-day window at 15 s about
1,950, not 17,280; new columns accumulate until the buffer is full, so at most twice that
is allocated.  Rows whose series has no sample left in the kept columns are dropped,
so label churn (old model versions) does not grow a table forever.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

import numpy as np
from numpy.typing import NDArray

__all__ = ["LOOKBACK", "Sample", "SampleHistory", "Table", "to_ms"]

#: Prometheus' default lookback delta for instant vector reads (seconds)
LOOKBACK: Final = 300.0

#: one sample: ``(sample_name, labels, value)``
Sample = tuple[str, Mapping[str, str], float]
LabelKey = tuple[tuple[str, str], ...]


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)


def to_ms(now: datetime | float) -> int:
    """Milliseconds since the epoch (Prometheus' timestamp unit) of a datetime (exact,
    floored as Prometheus' ``timestamp.FromTime``; naive means UTC) or of epoch seconds
    (rounded: ``x.015 * 1000`` is ``...14.9999`` in binary)."""
    if isinstance(now, datetime):
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        return (now - _EPOCH) // _MS
    return round(float(now) * 1000)


class Table:
    """The history of one sample name: label sets as rows, observation times as columns."""

    __slots__ = (
        "cd", "cols", "cv", "horizon_ms", "keys", "labels", "lastv", "n", "rows", "times",
        "values", "version",
    )  # fmt: skip

    def __init__(self, horizon_ms: int) -> None:
        self.horizon_ms = horizon_ms
        #: label set (sorted items) -> row
        self.rows: dict[LabelKey, int] = {}
        self.keys: list[LabelKey] = []
        self.labels: list[dict[str, str]] = []
        self.cols = 16
        self.n = 0  # columns in use
        self.times: NDArray[np.int64] = np.zeros(self.cols, dtype=np.int64)
        self.values: NDArray[np.float64] = np.full((8, self.cols), np.nan)
        #: prefix counts per row: ``cv[r, c]`` samples and ``cd[r, c]`` drops (a sample below
        #: the row's previous sample: a counter reset) in columns ``[0, c)``; kept up to date
        #: as columns are written, so a window's sample count and resets cost O(rows)
        self.cv: NDArray[np.int64] = np.zeros((8, self.cols + 1), dtype=np.int64)
        self.cd: NDArray[np.int64] = np.zeros((8, self.cols + 1), dtype=np.int64)
        #: each row's newest sample (NaN: none yet)
        self.lastv: NDArray[np.float64] = np.full(8, np.nan)
        #: bumped whenever rows change (cached row selections are keyed on it)
        self.version = 0

    def row(self, key: LabelKey) -> int:
        r = self.rows.get(key)
        if r is None:
            r = len(self.keys)
            if r == self.values.shape[0]:
                grown = np.full((2 * r, self.cols), np.nan)
                grown[:r] = self.values
                self.values = grown
                self.cv = np.concatenate([self.cv, np.zeros_like(self.cv)])
                self.cd = np.concatenate([self.cd, np.zeros_like(self.cd)])
                self.lastv = np.concatenate([self.lastv, np.full(r, np.nan)])
            self.cv[r] = 0  # a reused slot (rows dropped by a compaction) starts empty
            self.cd[r] = 0
            self.lastv[r] = np.nan
            self.rows[key] = r
            self.keys.append(key)
            self.labels.append(dict(key))
            self.version += 1
        return r

    def column(self, t: int, points: int) -> int:
        """The column for time ``t`` (a new one, after the newest), compacting when full."""
        if self.n == self.cols:
            self.compact(t, points)
            if self.n > self.cols // 2:
                grown = np.full((self.values.shape[0], 2 * self.cols), np.nan)
                grown[:, : self.n] = self.values[:, : self.n]
                times = np.zeros(2 * self.cols, dtype=np.int64)
                times[: self.n] = self.times[: self.n]
                rows = self.values.shape[0]
                cv = np.zeros((rows, 2 * self.cols + 1), dtype=np.int64)
                cd = np.zeros((rows, 2 * self.cols + 1), dtype=np.int64)
                cv[:, : self.n + 1] = self.cv[:, : self.n + 1]
                cd[:, : self.n + 1] = self.cd[:, : self.n + 1]
                self.values, self.times, self.cols = grown, times, 2 * self.cols
                self.cv, self.cd = cv, cd
        c = self.n
        self.times[c] = t
        self.n += 1
        return c

    def compact(self, now: int, points: int) -> None:
        """Drop columns past the horizon, thin old ones (see the module docstring), drop
        rows left with no sample."""
        n = self.n
        times = self.times[:n]
        age = (now - times).astype(np.float64)
        keep = age <= self.horizon_ms
        slot = np.ones(n, dtype=np.int64)
        old = age >= 2 * points
        if old.any():
            slot[old] = np.exp2(np.floor(np.log2(age[old] / points))).astype(np.int64)
        prev = np.empty(n, dtype=np.int64)
        prev[0] = -(2**62)
        prev[1:] = times[:-1]
        keep &= (times // slot) != (prev // slot)
        kept = np.flatnonzero(keep)
        m = len(kept)
        self.values[:, :m] = self.values[:, kept]
        self.values[:, m:] = np.nan
        self.times[:m] = times[kept]
        self.n = m
        live = ~np.isnan(self.values[: len(self.keys), :m]).all(axis=1)
        if not live.all():
            idx = np.flatnonzero(live)
            self.values[: len(idx)] = self.values[idx]
            self.values[len(idx) :] = np.nan
            self.keys = [self.keys[i] for i in idx]
            self.labels = [self.labels[i] for i in idx]
            self.rows = {k: i for i, k in enumerate(self.keys)}
            self.version += 1
        self._rebuild()

    def commit(self, c: int) -> None:
        """Extend the prefix counts over column ``c`` once its values are written."""
        n = len(self.keys)
        col = self.values[:n, c]
        valid = ~np.isnan(col)
        last = self.lastv[:n]
        with np.errstate(invalid="ignore"):
            drop = valid & (col < last)
        self.cv[:n, c + 1] = self.cv[:n, c] + valid
        self.cd[:n, c + 1] = self.cd[:n, c] + drop
        self.lastv[:n] = np.where(valid, col, last)

    def _rebuild(self) -> None:
        """The prefix counts from scratch (after a compaction moved columns and rows)."""
        rows, n = len(self.keys), self.n
        self.cv[:, 0] = 0
        self.cd[:, 0] = 0
        self.lastv[:] = np.nan
        if rows == 0 or n == 0:
            return
        v = self.values[:rows, :n]
        valid = ~np.isnan(v)
        self.cv[:rows, 1 : n + 1] = np.cumsum(valid, axis=1)
        upto = np.maximum.accumulate(np.where(valid, np.arange(n), -1), axis=1)
        before = np.full((rows, n), -1)
        before[:, 1:] = upto[:, :-1]
        r = np.arange(rows)[:, None]
        prev = np.where(before >= 0, v[r, np.maximum(before, 0)], np.nan)
        with np.errstate(invalid="ignore"):
            drop = valid & (v < prev)
        self.cd[:rows, 1 : n + 1] = np.cumsum(drop, axis=1)
        newest = upto[:, -1]
        self.lastv[:rows] = np.where(newest >= 0, v[np.arange(rows), np.maximum(newest, 0)], np.nan)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Column indices ``[a, b)`` of the samples in ``[start, end]`` (ms, both ends
        included, as Prometheus 2 selects a range)."""
        times = self.times[: self.n]
        a = int(np.searchsorted(times, start, side="left"))
        b = int(np.searchsorted(times, end, side="right"))
        return a, b

    def window(self, start: int, end: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Times and values (rows x columns) of the samples in ``[start, end]`` (ms, both
        ends included, as Prometheus 2 selects a range)."""
        times = self.times[: self.n]
        a = int(np.searchsorted(times, start, side="left"))
        b = int(np.searchsorted(times, end, side="right"))
        return times[a:b], self.values[: len(self.keys), a:b]


class _Part:
    """One table's share of a cycle's samples: their positions in the cycle, their label
    keys (sorted items) and rows (found again when the table's rows change)."""

    __slots__ = ("keys", "pos", "rows", "table", "version")

    def __init__(self, table: Table, pos: NDArray[np.intp], keys: list[LabelKey]) -> None:
        self.table = table
        self.pos = pos
        self.keys = keys
        self.rows: NDArray[np.intp] = np.zeros(0, dtype=np.intp)
        self.version = -1  # rows not looked up yet


class _Plan:
    """Where a cycle's samples go, for a cycle with these names and label sets."""

    __slots__ = ("labels", "names", "parts")

    def __init__(
        self, names: tuple[str, ...], labels: tuple[dict[str, str], ...], parts: list[_Part]
    ) -> None:
        self.names = names
        self.labels = labels
        self.parts = parts


class SampleHistory:
    """Per sample name, the samples of the last ``horizons[name]`` seconds (bounded, see the
    module docstring).  ``observe(now, samples)`` once a cycle, times increasing."""

    def __init__(self, horizons: Mapping[str, float], *, points_per_window: int = 240) -> None:
        if points_per_window < 8:
            raise ValueError("points_per_window must be >= 8")
        self.points = points_per_window
        self.tables: dict[str, Table] = {
            name: Table(math.ceil(h * 1000)) for name, h in horizons.items()
        }
        self.last_ms: int | None = None
        #: observations refused because they were not newer than the last one
        self.out_of_order = 0
        self._plan: _Plan | None = None

    def observe(self, now: datetime | float, samples: Iterable[Sample]) -> bool:
        """Record one observation of every series; False (and nothing kept) when ``now`` is
        not after the previous observation (Prometheus refuses out-of-order samples too).
        A NaN or infinite value is skipped (we use NaN for "no sample")."""
        t = to_ms(now)
        if self.last_ms is not None and t <= self.last_ms:
            self.out_of_order += 1
            return False
        self.last_ms = t
        rows = samples if isinstance(samples, list | tuple) else list(samples)
        if not rows:
            return True
        names, labels, values = zip(*rows, strict=True)
        plan = self._plan
        if plan is None or plan.names != names or plan.labels != labels:
            plan = self._plan = self._planned(names, labels)
        vals = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(vals)
        clean = bool(finite.all())
        for part in plan.parts:
            table = part.table
            c = table.column(t, self.points)  # compacts first: row numbers are stable after
            if table.version != part.version:  # a compaction dropped rows (or rows came)
                part.rows = np.asarray(list(map(table.row, part.keys)), dtype=np.intp)
                part.version = table.version
            if clean:
                table.values[part.rows, c] = vals[part.pos]
            else:
                ok = finite[part.pos]
                table.values[part.rows[ok], c] = vals[part.pos[ok]]
            table.commit(c)
        return True

    def _planned(self, names: tuple[str, ...], labels: tuple[Mapping[str, str], ...]) -> _Plan:
        """Which table and row each sample of a cycle goes to.

        A server hands the same series in the same order every cycle (the registry's), so
        this is worked out once per change of series and reused: a steady cycle costs one
        comparison of the names and label sets with the last plan's (done in C) and a
        vectorised write per table, not a label key and a dict lookup per sample.  The
        plan keeps its own copies of the label sets, so a caller reusing (and changing) a
        mapping between cycles cannot make a stale plan look current."""
        tables = self.tables
        pos: dict[str, list[int]] = {}
        for k, name in enumerate(names):
            got = pos.get(name)
            if got is None:
                if name not in tables:
                    continue
                got = pos[name] = []
            got.append(k)
        parts = []
        for name, where in pos.items():
            table = tables[name]
            keys = [tuple(sorted(labels[k].items())) for k in where]
            parts.append(_Part(table, np.asarray(where, dtype=np.intp), keys))
        return _Plan(names, tuple(map(dict, labels)), parts)

    def table(self, name: str) -> Table | None:
        return self.tables.get(name)
