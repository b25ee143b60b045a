"""``merge`` and ``+`` derived from ``copy`` and ``+=``: the one way profiles combine."""

from __future__ import annotations

from typing import Self

__all__ = ["Mergeable"]


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
