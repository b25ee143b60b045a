"""Categorical (and boolean) column profile: reference-category counts plus bounded unseen values.

State, constant in size whatever the rows seen:

* ``counts``: one count per reference category (fixed by :class:`ReferenceBins`);
* ``unseen``: values absent from the reference, each with its exact count, tracked in
  order of first appearance up to ``max_unseen`` distinct values (1,000 by default);
* ``other``: occurrences of unseen values that arrived once ``unseen`` was full (the
  "other" bucket);
* ``missing`` (None/NaN) and ``invalid``: values of the wrong type.  A categorical column
  takes strings; a boolean column takes ``bool``/``numpy.bool_`` (counted as the categories
  ``"False"``/``"True"``).  Anything else (a number or a list in a categorical column, a
  string or ``1`` in a boolean one) is counted as invalid, never raised.

A batch is counted with ``collections.Counter`` over its values (a C loop: about 30 ns a
value when equal strings share one object, 45 ns when every row has its own, as pyarrow
and JSON decoding give them, against about 250 ns for ``np.unique`` on an object array),
then the few distinct values are folded into the state; a boolean array is counted with
``np.count_nonzero``.

The merge law holds exactly for the reference counts, ``missing``, ``invalid`` and the
total of unseen values.  The split of that total between ``unseen`` and ``other`` is exact
too while fewer than ``max_unseen`` distinct unseen values have been seen; past the cap,
which values are tracked by name depends on arrival order (as for any bounded summary),
and merging folds the right-hand profile's values in after the left-hand one's.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Self

import numpy as np
import numpy.typing as npt

from inferwatch.profile._bins import BOOLEAN_CATEGORIES
from inferwatch.profile._mergeable import CountedProfile
from inferwatch.profile._serial import FORMAT, check_header, read_int, read_list

__all__ = ["DEFAULT_MAX_UNSEEN", "CategoricalProfile", "CategoricalSummary"]

DEFAULT_MAX_UNSEEN: Final = 1000


_INVALID: Final = object()  # stands for unhashable values (lists, dicts) in a batch


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _count(items: list[Any]) -> Counter[Any]:
    """``Counter(items)``; unhashable values (a list in an object column) count as invalid."""
    try:
        return Counter(items)
    except TypeError:
        return Counter(v if _hashable(v) else _INVALID for v in items)


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class CategoricalSummary:
    """A snapshot of a :class:`CategoricalProfile` (what ``get()`` returns)."""

    count: int
    missing: int
    invalid: int
    frequencies: Mapping[str, int]
    n_unseen: int
    top_unseen: tuple[tuple[str, int], ...]


class CategoricalProfile(CountedProfile):
    """Constant-size, mergeable counts of one categorical or boolean column.

    >>> p = CategoricalProfile(("a", "b")).update_many(np.array(["a", "c", None], dtype=object))
    >>> p.frequencies, p.n_unseen, p.missing
    ({'a': 1, 'b': 0}, 1, 1)
    """

    __slots__ = (
        "_boolean",
        "_categories",
        "_counts",
        "_index",
        "_max_unseen",
        "_other",
        "_unseen",
    )

    def __init__(
        self,
        categories: Sequence[str],
        *,
        max_unseen: int = DEFAULT_MAX_UNSEEN,
        boolean: bool = False,
    ) -> None:
        cats = tuple(categories)
        if boolean and cats != BOOLEAN_CATEGORIES:
            raise ValueError(f"a boolean profile has the categories {BOOLEAN_CATEGORIES}")
        if not all(isinstance(c, str) for c in cats) or len(set(cats)) != len(cats):
            raise ValueError("categories must be distinct strings")
        if not isinstance(max_unseen, int) or max_unseen < 0:
            raise ValueError(f"max_unseen must be an integer >= 0, got {max_unseen!r}")
        self._categories = cats
        self._index = {c: i for i, c in enumerate(cats)}
        self._boolean = boolean
        self._max_unseen = max_unseen
        self._counts = [0] * len(cats)
        self._unseen: dict[str, int] = {}
        self._other = 0
        self._init_counts()

    @classmethod
    def for_boolean(cls, *, max_unseen: int = DEFAULT_MAX_UNSEEN) -> Self:
        return cls(BOOLEAN_CATEGORIES, max_unseen=max_unseen, boolean=True)

    # -- updating -----------------------------------------------------------------------

    def update(self, value: object) -> Self:
        return self.update_many(np.array([value], dtype=object))

    def update_many(self, values: npt.ArrayLike) -> Self:
        """Add a batch: one ``Counter`` pass, then one step per *distinct* value."""
        arr = values if type(values) is np.ndarray else np.asarray(values, dtype=object)
        if arr.ndim != 1:
            raise ValueError(f"a column is one-dimensional; got shape {arr.shape}")
        n = arr.shape[0]
        if n == 0:
            return self
        self._n += n
        if self._boolean:
            self._update_boolean(arr)
            return self
        index = self._index
        counts = self._counts
        for value, c in _count(arr.tolist()).items():
            i = index.get(value)
            if i is not None:
                counts[i] += c
            elif isinstance(value, str):
                self._add_unseen(value, c)
            elif _is_missing(value):
                self._missing += c
            else:
                self._invalid += c
        return self

    def _update_boolean(self, arr: npt.NDArray[Any]) -> None:
        if arr.dtype.kind == "b":
            true = int(np.count_nonzero(arr))
            self._counts[0] += len(arr) - true
            self._counts[1] += true
            return
        # keyed by type too: True == 1 == 1.0 would otherwise share a Counter key
        items = arr.tolist()
        try:
            counted = Counter(zip(map(type, items), items, strict=True))
        except TypeError:  # an unhashable value: count it as invalid
            counted = Counter((type(v), v) if _hashable(v) else (object, _INVALID) for v in items)
        for (kind, value), c in counted.items():
            if kind is bool or kind is np.bool_:
                self._counts[int(value)] += c
            elif _is_missing(value):
                self._missing += c
            else:
                self._invalid += c

    def _add_unseen(self, value: str, c: int) -> None:
        unseen = self._unseen
        if value in unseen:
            unseen[value] += c
        elif len(unseen) < self._max_unseen:
            unseen[value] = c
        else:
            self._other += c

    # -- merging ------------------------------------------------------------------------

    def __iadd__(self, other: CategoricalProfile) -> Self:
        if not isinstance(other, CategoricalProfile):
            raise TypeError(f"cannot merge a CategoricalProfile with {type(other).__name__}")
        if (self._categories, self._boolean, self._max_unseen) != (
            other._categories,
            other._boolean,
            other._max_unseen,
        ):
            raise ValueError("cannot merge categorical profiles with different categories or caps")
        self._counts = [a + b for a, b in zip(self._counts, other._counts, strict=True)]
        for value, c in other._unseen.items():
            self._add_unseen(value, c)
        self._other += other._other
        self._add_counts(other)
        return self

    def copy(self) -> Self:
        out = self._copy_slots()
        out._counts = list(self._counts)
        out._unseen = dict(self._unseen)
        return out

    # -- reading ------------------------------------------------------------------------

    @property
    def categories(self) -> tuple[str, ...]:
        return self._categories

    @property
    def is_boolean(self) -> bool:
        return self._boolean

    @property
    def max_unseen(self) -> int:
        return self._max_unseen

    @property
    def counts(self) -> npt.NDArray[np.int64]:
        """Counts of the reference categories, in their order."""
        return np.array(self._counts, dtype=np.int64)

    @property
    def frequencies(self) -> dict[str, int]:
        return dict(zip(self._categories, self._counts, strict=True))

    @property
    def unseen(self) -> dict[str, int]:
        """Tracked values absent from the reference, with exact counts (at most ``max_unseen``)."""
        return dict(self._unseen)

    @property
    def other(self) -> int:
        """Occurrences of unseen values beyond the tracking cap."""
        return self._other

    @property
    def n_unseen(self) -> int:
        """All occurrences of values absent from the reference (tracked and other)."""
        return sum(self._unseen.values()) + self._other

    def top_unseen(self, k: int = 10) -> list[tuple[str, int]]:
        """The ``k`` most frequent tracked unseen values (ties by value)."""
        return sorted(self._unseen.items(), key=lambda kv: (-kv[1], kv[0]))[:k]

    def full(self) -> npt.NDArray[np.int64]:
        """``[missing, categories..., unseen]``: the vector binned statistics compare."""
        return np.array([self._missing, *self._counts, self.n_unseen], dtype=np.int64)

    def get(self) -> CategoricalSummary:
        return CategoricalSummary(
            count=self._n,
            missing=self._missing,
            invalid=self._invalid,
            frequencies=self.frequencies,
            n_unseen=self.n_unseen,
            top_unseen=tuple(self.top_unseen()),
        )

    # -- comparing ----------------------------------------------------------------------

    def _state(self) -> tuple[object, ...]:
        return (
            self._categories,
            self._boolean,
            self._max_unseen,
            self._counts,
            self._unseen,
            self._other,
            self._missing,
            self._invalid,
            self._n,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CategoricalProfile):
            return NotImplemented
        return self._state() == other._state()

    __hash__ = None  # type: ignore[assignment]

    def isclose(self, other: object, rtol: float = 1e-9) -> bool:
        """Same as ``==``: every part of a categorical profile is an exact count."""
        if not isinstance(other, CategoricalProfile):
            return False
        return self == other

    def __repr__(self) -> str:
        return (
            f"CategoricalProfile(count={self._n}, categories={len(self._categories)}, "
            f"missing={self._missing}, unseen={self.n_unseen})"
        )

    # -- serialising --------------------------------------------------------------------

    def to_dict(self, *, categories: bool = True) -> dict[str, Any]:
        """A JSON-serialisable dict; ``categories=False`` leaves them to the caller."""
        out: dict[str, Any] = {"kind": "categorical", "format": FORMAT}
        if categories:
            out["categories"] = list(self._categories)
        out.update(
            boolean=self._boolean,
            max_unseen=self._max_unseen,
            counts=list(self._counts),
            unseen=[[k, v] for k, v in self._unseen.items()],  # a list keeps arrival order
            other=self._other,
            missing=self._missing,
            invalid=self._invalid,
            count=self._n,
        )
        return out

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], categories: Sequence[str] | None = None
    ) -> CategoricalProfile:
        check_header(data, "categorical")
        cats = categories if categories is not None else data.get("categories")
        if cats is None:
            raise ValueError("categorical profile: no 'categories' in the data and none given")
        out = cls(
            cats, max_unseen=read_int(data, "max_unseen"), boolean=data.get("boolean") is True
        )
        counts = [int(c) for c in read_list(data, "counts")]
        if len(counts) != len(out._categories) or min(counts, default=0) < 0:
            raise ValueError(f"categorical profile: 'counts' needs {len(out._categories)} counts")
        out._counts = counts
        unseen = read_list(data, "unseen")
        if len(unseen) > out._max_unseen or not all(
            isinstance(kv, list | tuple) and len(kv) == 2 for kv in unseen
        ):
            raise ValueError("categorical profile: 'unseen' must be [value, count] pairs")
        out._unseen = {str(k): int(v) for k, v in unseen}
        out._other = read_int(data, "other")
        out._read_counts(data)
        if sum(counts) + out.n_unseen + out._missing + out._invalid != out._n:
            raise ValueError("categorical profile: counts do not add up to 'count'")
        return out
