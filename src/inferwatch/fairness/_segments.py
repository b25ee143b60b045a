"""A bounded map from a column's values to slot numbers, overflowing to ``other``.

Segments (performance per value of a column) and fairness groups both need one slot per
value of a column whose cardinality nobody promised to bound: a ``country`` column may
hold 200 values, a mistyped ``user_id`` a million.  :class:`SegmentIndex` gives the first
``max_values`` distinct values their own slot, in the order they arrive, and sends every
later value to one ``other`` slot, so a summary kept per slot stays constant in size.

Decisions:

* Values are named by ``str()`` (after numpy's ``tolist()``), so ``3`` and ``"3"`` share a
  slot: a group name travels through JSON, Prometheus labels and the store as a string.
* Missing values (``None``, NaN, NaT, ``pandas.NA``) share one slot named ``missing``
  that takes its place in arrival order like any value.  It is not dropped: a model's
  behaviour on rows whose protected attribute is unknown is itself worth watching, and
  fairlearn, which rejects missing values, is no guide for a monitor that must lose no row.
* A real value whose name equals the ``missing`` or ``other`` name shares that slot (the
  names are what the outside world sees; two slots with one name could not be told apart).
* Slots are only ever appended, so a slot number, once given, keeps its meaning: a caller
  may index an array by it and pad the array as the index grows.
* Two indexes combine by name (:meth:`SegmentIndex.remap`); past the cap, which values
  have their own slot depends on arrival order, as for any bounded summary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Self

import numpy as np
from numpy.typing import NDArray

from inferwatch.profile._serial import FORMAT, check_header, read_int, read_list

__all__ = ["DEFAULT_MAX_VALUES", "SegmentIndex"]

DEFAULT_MAX_VALUES: Final = 20

#: dtype kinds that ``np.unique`` sorts fast and whose ``tolist()`` gives plain numbers
_SORTABLE: Final = frozenset("biuf")


def _is_missing(value: object) -> bool:
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    try:
        return bool(value != value)  # NaN and NaT are the values unequal to themselves
    except (TypeError, ValueError):
        return False


class SegmentIndex:
    """Slot numbers for the values of one column: at most ``max_values`` named slots plus
    ``other``.

    >>> index = SegmentIndex(max_values=2)
    >>> index.indices(["b", "a", None, "b"]).tolist(), index.names
    ([0, 1, 2, 0], ('b', 'a', 'other'))
    """

    __slots__ = ("_max_values", "_missing", "_names", "_other", "_slots")

    def __init__(
        self,
        max_values: int = DEFAULT_MAX_VALUES,
        other: str = "other",
        *,
        missing: str = "missing",
        values: Sequence[str] = (),
    ) -> None:
        if not isinstance(max_values, int) or isinstance(max_values, bool) or max_values < 1:
            raise ValueError(f"max_values must be an integer >= 1, got {max_values!r}")
        if not isinstance(other, str) or not isinstance(missing, str) or other == missing:
            raise ValueError("other and missing must be two different strings")
        self._max_values = max_values
        self._other = other
        self._missing = missing
        self._names: list[str] = []
        self._slots: dict[str, int] = {}
        for value in values:
            self._slot_of_name(str(value))

    # -- looking up -----------------------------------------------------------------------

    def _slot_of_name(self, name: str, *, grow: bool = True) -> int:
        """The slot of ``name``, given one if ``grow`` and there is room (else ``other``);
        -1 when not ``grow`` and the name was never seen while there was room."""
        slot = self._slots.get(name)
        if slot is not None:
            return slot
        if len(self._names) < self._max_values:
            if not grow:
                return -1
        else:
            name = self._other
            slot = self._slots.get(name)
            if slot is not None:
                return slot
        self._slots[name] = len(self._names)
        self._names.append(name)
        return self._slots[name]

    def _slot_of(self, value: object, grow: bool) -> int:
        return self._slot_of_name(self._missing if _is_missing(value) else str(value), grow=grow)

    def indices(
        self, values: Sequence[object] | NDArray[Any], *, grow: bool = True
    ) -> NDArray[np.intp]:
        """The slot of each value; new values get slots in the order they first appear.

        With ``grow=False`` the index does not change: a value never seen maps to ``-1``
        while the index has room, and to ``other`` once it is full (where such a value
        would have gone).  Removing rows (``GroupCounts.add(..., sign=-1)``) uses it.

        Numeric and boolean arrays are mapped with one ``np.unique``; anything else with
        one pass that finds the distinct values in arrival order (``dict.fromkeys``, a C
        loop) and one that maps each row; each distinct value is looked at once.
        """
        arr = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
        if arr.ndim != 1:
            raise ValueError(f"segment values must be one-dimensional, got shape {arr.shape}")
        if arr.shape[0] == 0:
            return np.empty(0, dtype=np.intp)
        if arr.dtype.kind in _SORTABLE:
            uniques, first, inverse = np.unique(arr, return_index=True, return_inverse=True)
            order = np.argsort(first, kind="stable")  # arrival order decides who gets a slot
            lut = np.empty(len(uniques), dtype=np.intp)
            for i, value in zip(order.tolist(), uniques[order].tolist(), strict=True):
                lut[i] = self._slot_of(value, grow)
            return lut[inverse.reshape(-1)]
        items = arr.tolist()
        try:
            distinct = dict.fromkeys(items)
        except TypeError as exc:  # a list or dict where a group value was expected
            raise ValueError("segment values must be hashable (strings, numbers, None)") from exc
        slot_of = {value: self._slot_of(value, grow) for value in distinct}
        return np.fromiter(map(slot_of.__getitem__, items), dtype=np.intp, count=len(items))

    def remap(self, other: SegmentIndex) -> NDArray[np.intp]:
        """The slot in this index of each of ``other``'s slots, adding its names as
        :meth:`indices` would: how two summaries kept per slot combine (by name)."""
        self._check_compatible(other)
        return np.array([self._slot_of_name(n) for n in other._names], dtype=np.intp)

    def _check_compatible(self, other: SegmentIndex) -> None:
        if not isinstance(other, SegmentIndex):
            raise TypeError(f"expected a SegmentIndex, got {type(other).__name__}")
        if self.config != other.config:
            raise ValueError(
                f"cannot combine segment indexes with different settings: "
                f"{self.config} and {other.config}"
            )

    # -- reading ----------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """The slots' names, slot ``i`` at position ``i``; at most ``max_values + 1``."""
        return tuple(self._names)

    @property
    def max_values(self) -> int:
        return self._max_values

    @property
    def other(self) -> str:
        return self._other

    @property
    def missing(self) -> str:
        return self._missing

    @property
    def config(self) -> tuple[int, str, str]:
        """``(max_values, other, missing)``: what two indexes must share to combine."""
        return (self._max_values, self._other, self._missing)

    @property
    def full(self) -> bool:
        """Whether new values now go to ``other``."""
        return len(self._names) >= self._max_values

    def __len__(self) -> int:
        return len(self._names)

    def copy(self) -> Self:
        out = type(self).__new__(type(self))
        out._max_values, out._other, out._missing = self.config
        out._names = list(self._names)
        out._slots = dict(self._slots)
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SegmentIndex):
            return NotImplemented
        return (self.config, self._names) == (other.config, other._names)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SegmentIndex(max_values={self._max_values}, names={self._names!r})"

    # -- serialising ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "segment_index",
            "format": FORMAT,
            "max_values": self._max_values,
            "other": self._other,
            "missing": self._missing,
            "names": list(self._names),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SegmentIndex:
        check_header(data, "segment_index")
        other, missing = data.get("other"), data.get("missing")
        if not isinstance(other, str) or not isinstance(missing, str):
            raise ValueError("segment index: 'other' and 'missing' must be strings")
        out = cls(read_int(data, "max_values"), other, missing=missing)
        names = list(read_list(data, "names"))
        if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
            raise ValueError("segment index: 'names' must be distinct strings")
        cap = out._max_values
        if len(names) > cap + 1 or (len(names) == cap + 1 and names[-1] != other):
            raise ValueError(f"segment index: more than {cap} names besides {other!r}")
        out._names = names
        out._slots = {n: i for i, n in enumerate(names)}
        return out
