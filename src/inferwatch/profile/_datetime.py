"""Datetime column profile: count, missing, range and freshness, mergeable.

Timestamps are kept as integer nanoseconds since the Unix epoch (UTC), so ``min``/``max``
merge exactly.  ``datetime64`` arrays of any unit convert in one numpy call (NaT is
missing); object arrays are read value by value: ``datetime`` (aware ones converted to
UTC, naive ones taken as UTC), ``date``, ``numpy.datetime64``; None/NaN/NaT are missing
and anything else (a string, a number) is counted as invalid, never raised.

*Freshness* is the newest timestamp seen; the core has no clock, so the age of the data
is asked with an explicit ``now`` (:meth:`DatetimeProfile.age_seconds`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Self

import numpy as np
import numpy.typing as npt

from inferwatch.profile._mergeable import CountedProfile
from inferwatch.profile._serial import FORMAT, check_header, read_int

__all__ = ["DatetimeProfile", "DatetimeSummary"]

_NAT: Final = np.iinfo(np.int64).min
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)


def _to_ns(value: object) -> int | None:
    """Nanoseconds since the epoch; None for a missing value; raises TypeError otherwise."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.datetime64):
        ns = int(value.astype("datetime64[ns]").astype(np.int64))
        return None if ns == _NAT else ns
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return ((aware - _EPOCH) // _US) * 1000
    if isinstance(value, date):
        return (datetime(value.year, value.month, value.day, tzinfo=UTC) - _EPOCH) // _US * 1000
    raise TypeError(type(value).__name__)


def _to_datetime64(ns: int) -> np.datetime64:
    return np.datetime64(ns, "ns")


@dataclass(frozen=True, slots=True)
class DatetimeSummary:
    """A snapshot of a :class:`DatetimeProfile` (what ``get()`` returns)."""

    count: int
    missing: int
    invalid: int
    min: np.datetime64 | None
    max: np.datetime64 | None


class DatetimeProfile(CountedProfile):
    """Constant-size, mergeable range and freshness of one datetime column."""

    __slots__ = ("_max", "_min", "_n_valid")

    def __init__(self) -> None:
        self._init_counts()
        self._n_valid = 0
        self._min = 0
        self._max = 0

    def update(self, value: object) -> Self:
        return self.update_many(np.array([value], dtype=object))

    def update_many(self, values: npt.ArrayLike) -> Self:
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise ValueError(f"a column is one-dimensional; got shape {arr.shape}")
        n = len(arr)
        if n == 0:
            return self
        self._n += n
        if arr.dtype.kind == "M":
            ns = arr.astype("datetime64[ns]").view(np.int64)
            valid = ns[ns != _NAT]
            self._missing += n - len(valid)
        else:
            kept: list[int] = []
            for value in arr.tolist():
                try:
                    v = _to_ns(value)
                except TypeError:
                    self._invalid += 1
                    continue
                if v is None:
                    self._missing += 1
                else:
                    kept.append(v)
            valid = np.array(kept, dtype=np.int64)
        if len(valid):
            lo, hi = int(valid.min()), int(valid.max())
            if self._n_valid == 0:
                self._min, self._max = lo, hi
            else:
                self._min, self._max = min(self._min, lo), max(self._max, hi)
            self._n_valid += len(valid)
        return self

    def __iadd__(self, other: DatetimeProfile) -> Self:
        if not isinstance(other, DatetimeProfile):
            raise TypeError(f"cannot merge a DatetimeProfile with {type(other).__name__}")
        if other._n_valid:
            if self._n_valid == 0:
                self._min, self._max = other._min, other._max
            else:
                self._min, self._max = min(self._min, other._min), max(self._max, other._max)
        self._add_counts(other)
        self._n_valid += other._n_valid
        return self

    def copy(self) -> Self:
        out = self._copy_slots()
        return out

    @property
    def min(self) -> np.datetime64 | None:
        """The oldest timestamp (``datetime64[ns]``, UTC), None before any."""
        return _to_datetime64(self._min) if self._n_valid else None

    @property
    def max(self) -> np.datetime64 | None:
        """The newest timestamp: the freshness of the data."""
        return _to_datetime64(self._max) if self._n_valid else None

    newest = max

    def age_seconds(self, now: np.datetime64 | datetime) -> float:
        """Seconds from the newest timestamp to ``now`` (NaN before any timestamp)."""
        now_ns = _to_ns(now)
        if now_ns is None:
            raise ValueError("now must be a timestamp")
        return (now_ns - self._max) / 1e9 if self._n_valid else math.nan

    def get(self) -> DatetimeSummary:
        return DatetimeSummary(self._n, self._missing, self._invalid, self.min, self.max)

    def _state(self) -> tuple[int, ...]:
        span = (self._min, self._max) if self._n_valid else (0, 0)
        return (self._n, self._missing, self._invalid, self._n_valid, *span)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DatetimeProfile):
            return NotImplemented
        return self._state() == other._state()

    __hash__ = None  # type: ignore[assignment]

    def isclose(self, other: object, rtol: float = 1e-9) -> bool:
        """Same as ``==``: a datetime profile holds exact integers only."""
        if not isinstance(other, DatetimeProfile):
            return False
        return self == other

    def __repr__(self) -> str:
        return f"DatetimeProfile(count={self._n}, missing={self._missing}, max={self.max})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "datetime",
            "format": FORMAT,
            "count": self._n,
            "missing": self._missing,
            "invalid": self._invalid,
            "n_valid": self._n_valid,
            "min_ns": self._min if self._n_valid else None,
            "max_ns": self._max if self._n_valid else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        check_header(data, "datetime")
        out = cls()
        out._read_counts(data)
        out._n_valid = read_int(data, "n_valid")
        if out._missing + out._invalid + out._n_valid != out._n:
            raise ValueError("datetime profile: counts do not add up to 'count'")
        if out._n_valid:
            lo, hi = data.get("min_ns"), data.get("max_ns")
            if not isinstance(lo, int) or not isinstance(hi, int) or lo > hi:
                raise ValueError("datetime profile: 'min_ns'/'max_ns' must be integers")
            out._min, out._max = lo, hi
        return out
