"""``merge`` and ``+`` derived from ``copy`` and ``+=``: the one way profiles combine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from inferwatch.profile._serial import read_int

__all__ = ["CountedProfile", "Mergeable"]


class Mergeable:
    """Base of every profile: a subclass defines ``copy`` and ``__iadd__`` (in-place merge);
    ``merge`` and ``+`` return a new profile of both inputs' rows, neither input changing
    (river's statistics have the same shape: update in place, add to combine)."""

    __slots__ = ()

    def copy(self) -> Self:
        raise NotImplementedError

    def __iadd__(self, other: Self) -> Self:
        raise NotImplementedError

    def _copy_slots(self) -> Self:
        """A new instance sharing every slot's value (callers copy the mutable ones)."""
        out = type(self).__new__(type(self))
        for cls in type(self).__mro__:
            for name in getattr(cls, "__slots__", ()):
                setattr(out, name, getattr(self, name))
        return out

    def merge(self, other: Self) -> Self:
        """A new profile of both inputs' rows (neither input changes)."""
        out = self.copy()
        out += other
        return out

    def __add__(self, other: Self) -> Self:
        return self.merge(other)


class CountedProfile(Mergeable):
    """Base of the column profiles that count rows themselves: rows seen (``count``),
    ``missing`` and ``invalid`` (a value of the wrong type), with the same meaning, merge
    and serialised keys in each.  A subclass calls :meth:`_init_counts` in ``__init__``,
    :meth:`_add_counts` in ``__iadd__`` and :meth:`_read_counts` in ``from_dict``."""

    __slots__ = ("_invalid", "_missing", "_n")

    _n: int
    _missing: int
    _invalid: int

    def _init_counts(self) -> None:
        self._n = 0
        self._missing = 0
        self._invalid = 0

    def _add_counts(self, other: CountedProfile) -> None:
        self._n += other._n
        self._missing += other._missing
        self._invalid += other._invalid

    def _counts_dict(self) -> dict[str, int]:
        return {"count": self._n, "missing": self._missing, "invalid": self._invalid}

    def _read_counts(self, data: Mapping[str, Any]) -> None:
        self._n = read_int(data, "count")
        self._missing = read_int(data, "missing")
        self._invalid = read_int(data, "invalid")

    def add_missing(self, n: int) -> Self:
        """Count ``n`` missing rows (a batch without this column)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        self._n += n
        self._missing += n
        return self

    @property
    def count(self) -> int:
        """Rows seen: missing and invalid included."""
        return self._n

    @property
    def missing(self) -> int:
        return self._missing

    @property
    def invalid(self) -> int:
        """Values that were not of the column's type (counted, never binned)."""
        return self._invalid
