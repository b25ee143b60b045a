"""Dataset-level quality: duplicated rows, missing and extra columns, freshness.

Duplicates are found by hashing each row's values into one 64-bit key (numeric columns by
their bit pattern, categorical columns by integer codes that the caller supplies, e.g.
pyarrow's dictionary indices) and counting repeated keys: one ``np.unique`` over n
integers instead of sorting n rows of mixed types.  Two distinct rows collide with
probability about n² / 2⁶⁵ (below 3e-8 at a million rows), so the count is exact in
practice.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from inferwatch.quality._results import DatasetQuality, FeatureQuality, QualityThresholds

__all__ = ["RowHasher", "dataset_quality", "duplicate_rows"]


def _as_bits(column: npt.NDArray[np.generic]) -> npt.NDArray[np.uint64]:
    arr = np.asarray(column)
    if arr.dtype.kind == "f":
        canon = np.where(np.isnan(arr), np.nan, arr.astype(np.float64) + 0.0)  # one NaN, -0 → 0
        return canon.view(np.uint64)  # a fresh array: safe to mix in place
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64).view(np.uint64)  # astype copies: safe to mix in place
    raise TypeError(f"duplicate_rows needs numeric arrays or integer codes, got {arr.dtype}")


def _splitmix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64's finaliser: a strong 64-bit mix, elementwise (in place on ``x``)."""
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


class RowHasher:
    """Builds 64-bit row keys one column at a time, in any order, from any thread.

    A row's key is the sum (mod 2^64) of one strong hash per column, salted with the
    column's position, so columns can be fed as they are read (and freed) by parallel
    workers; distinct rows collide only by chance (probability ~ n^2 / 2^65).
    """

    def __init__(self) -> None:
        self._key: npt.NDArray[np.uint64] | None = None
        self._lock = threading.Lock()

    def update(self, column: npt.NDArray[np.generic], position: int = 0) -> RowHasher:
        """Add one column; ``position`` tells columns apart (its index in the schema)."""
        with np.errstate(over="ignore"):
            salt = np.uint64((position + 1) * 0x9E3779B97F4A7C15 % 2**64)
            h = _splitmix(_as_bits(column) ^ salt)
        with self._lock:
            if self._key is None:
                self._key = np.zeros(len(h), dtype=np.uint64)
            if len(h) != len(self._key):
                raise ValueError("all columns need the same length")
            with np.errstate(over="ignore"):
                self._key += h
        return self

    def duplicates(self) -> int:
        """Rows that repeat an earlier row (n rows - n distinct rows)."""
        if self._key is None or len(self._key) == 0:
            return 0
        s = np.sort(self._key)  # a sort and a neighbour compare beat np.unique's hash table
        return int(len(s) - 1 - np.count_nonzero(s[1:] != s[:-1]))


def duplicate_rows(columns: Sequence[npt.NDArray[np.generic]]) -> int:
    """Rows that repeat an earlier row (n rows - n distinct rows)."""
    hasher = RowHasher()
    for i, col in enumerate(columns):
        hasher.update(col, i)
    return hasher.duplicates()


def dataset_quality(
    n_rows: int,
    features: Sequence[FeatureQuality],
    *,
    duplicates: int = 0,
    missing_columns: Sequence[str] = (),
    extra_columns: Sequence[str] = (),
    newest_timestamp: float | None = None,
    now: float | None = None,
    thresholds: QualityThresholds = QualityThresholds(),
) -> DatasetQuality:
    """Combine feature results with dataset checks; ``now`` and timestamps are epoch seconds."""
    problems = []
    if missing_columns:
        problems.append("missing_columns")
    if n_rows and duplicates / n_rows > thresholds.max_duplicate_share:
        problems.append("duplicate_rows")
    staleness = None
    if newest_timestamp is not None and now is not None:
        staleness = now - newest_timestamp
        limit = thresholds.max_staleness_seconds
        if limit is not None and staleness > limit:
            problems.append("stale")
    return DatasetQuality(
        n_rows=n_rows,
        features=tuple(features),
        duplicate_rows=duplicates,
        missing_columns=tuple(missing_columns),
        extra_columns=tuple(extra_columns),
        newest_timestamp=newest_timestamp,
        staleness_seconds=staleness,
        problems=tuple(problems),
    )
