"""Per-group prediction and confusion counts: the sufficient statistics of every fairness gap.

Each group keeps six counts: ``tn``, ``fp``, ``fn``, ``tp`` for labelled rows and
``unlabelled_negative``, ``unlabelled_positive`` for rows whose label has not arrived.
Every metric :func:`inferwatch.fairness.assess` reports is a function of these counts,
and so is a row bootstrap of it (a multinomial draw over the cells), so the summary is
constant in size, merges by addition, and a window's fairness never rereads a row.

Unlabelled rows count: demographic parity and the disparate impact ratio need only the
predictions, so they are judged on every row; the label-based gaps on the labelled ones.
When a label arrives (or is replaced), the caller removes the row as it was counted
(``sign=-1``) and adds it again with the label; removal is exact, and removing what was
never added raises instead of leaving a negative count.

Merging is by group name (the :class:`~inferwatch.fairness.SegmentIndex` of each side):
exact for every count while the union of the names fits in ``max_values``; past that,
which groups keep their own name depends on order (the ``other`` total stays exact).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Self

import numpy as np
from numpy.typing import NDArray

from inferwatch.fairness._segments import SegmentIndex
from inferwatch.profile._mergeable import Mergeable
from inferwatch.profile._serial import FORMAT, check_header, read_list

__all__ = ["CELLS", "GroupCounts"]

#: the six counts kept per group, in the order of :attr:`GroupCounts.cells`' columns;
#: a labelled row's cell is ``2 * y_true + y_pred``, an unlabelled one's ``4 + y_pred``
CELLS: Final = ("tn", "fp", "fn", "tp", "unlabelled_negative", "unlabelled_positive")
_K: Final = len(CELLS)


def _as_bool(name: str, values: NDArray[np.bool_] | Sequence[bool], n: int) -> NDArray[np.bool_]:
    arr = np.asarray(values)
    if arr.dtype != np.bool_:
        # a boolean keeps the positive class the caller's decision (fairlearn's pos_label)
        raise ValueError(f"{name} must be a boolean array, got dtype {arr.dtype}")
    if n < 0:
        raise ValueError("groups must be one-dimensional")
    if arr.shape != (n,):
        raise ValueError(f"{name} has shape {arr.shape}; the groups have {n} rows")
    return arr


class GroupCounts(Mergeable):
    """Constant-size, mergeable per-group counts of predictions and their labels.

    >>> c = GroupCounts()
    >>> _ = c.add(["a", "a", "b"], np.array([True, False, True]), np.array([True, True, False]))
    >>> c.groups, c.counts()["a"]["tp"], c.counts()["b"]["fp"]
    (('a', 'b'), 1, 1)
    """

    __slots__ = ("_cells", "_index")

    def __init__(self, segments: SegmentIndex | None = None) -> None:
        # a copy: the counts own their index, so two summaries only ever combine by name
        self._index = segments.copy() if segments is not None else SegmentIndex()
        self._cells = np.zeros((len(self._index), _K), dtype=np.int64)

    def _grown(self) -> NDArray[np.int64]:
        """The cells, padded with zero rows for slots the index gained since."""
        missing = len(self._index) - self._cells.shape[0]
        if missing > 0:
            self._cells = np.vstack([self._cells, np.zeros((missing, _K), dtype=np.int64)])
        return self._cells

    # -- updating ---------------------------------------------------------------------------

    def add(
        self,
        groups: Sequence[object] | NDArray[Any],
        y_pred_positive: NDArray[np.bool_] | Sequence[bool],
        y_true_positive: NDArray[np.bool_] | Sequence[bool] | None = None,
        *,
        sign: int = 1,
    ) -> Self:
        """Count a batch: each row's group, whether it was predicted positive and, when
        labelled, whether it is positive (``None``: the batch is unlabelled).

        ``sign=-1`` removes rows counted before, exactly (a label replaced, an unlabelled
        row now labelled); it raises, changing nothing, if that would leave any count
        below zero or names a group never counted.
        """
        if sign not in (1, -1):
            raise ValueError(f"sign must be 1 or -1, got {sign!r}")
        values = groups if isinstance(groups, np.ndarray) else np.asarray(groups, dtype=object)
        n = values.shape[0] if values.ndim == 1 else -1
        pred = _as_bool("y_pred_positive", y_pred_positive, n)
        if y_true_positive is None:
            code = pred.astype(np.intp) + 4
        else:
            code = _as_bool("y_true_positive", y_true_positive, n).astype(np.intp) * 2 + pred
        if n == 0:
            return self
        # checked before the index grows, so a rejected batch leaves no trace
        idx = self._index.indices(values, grow=sign == 1)
        if sign == -1 and int(idx.min()) < 0:
            unknown = values[idx < 0][0]
            raise ValueError(f"cannot remove rows of group {unknown!r}: none were counted")
        cells = self._grown()
        delta = np.bincount(idx * _K + code, minlength=cells.size).reshape(cells.shape)
        if sign == 1:
            cells += delta
        else:
            if np.any(delta > cells):
                raise ValueError("cannot remove rows that were not counted (a count would be < 0)")
            cells -= delta
        return self

    # -- merging ----------------------------------------------------------------------------

    def __iadd__(self, other: GroupCounts) -> Self:
        if not isinstance(other, GroupCounts):
            raise TypeError(f"cannot merge GroupCounts with {type(other).__name__}")
        slots = self._index.remap(other._index)
        cells = self._grown()
        np.add.at(cells, slots, other._grown().copy())  # two names may meet in ``other``
        return self

    def settle(self, debt: GroupCounts) -> GroupCounts:
        """Take out of these counts the rows ``debt`` holds, as far as they are here, and
        return what is left of it (a new ``GroupCounts``; empty when all was taken).

        Why: a process that learns a row's label may not be the one that counted the row
        (``serve --workers``, replicas).  It cannot remove the row from its own counts, so
        it keeps the removal as a debt; once the processes' counts and debts are merged,
        settling takes every such row out exactly, as one process fed everything would.
        Only groups present here by name are settled (never the ``other`` total)."""
        if not isinstance(debt, GroupCounts):
            raise TypeError(f"cannot settle GroupCounts with {type(debt).__name__}")
        cells = self._grown()
        rest = debt._grown().copy()
        for i, name in enumerate(debt.groups):
            slot = self._index._slots.get(name)
            if slot is None or slot >= cells.shape[0]:
                continue
            take = np.minimum(cells[slot], rest[i])
            cells[slot] -= take
            rest[i] -= take
        out = GroupCounts(debt._index)
        out._cells = rest
        return out

    def copy(self) -> Self:
        out = self._copy_slots()
        out._index = self._index.copy()
        out._cells = self._grown().copy()
        return out

    # -- reading ----------------------------------------------------------------------------

    @property
    def segments(self) -> SegmentIndex:
        """The index naming the groups (a copy: the counts own theirs)."""
        return self._index.copy()

    @property
    def groups(self) -> tuple[str, ...]:
        """Every group with a slot, in slot order (a group may have all counts zero)."""
        return self._index.names

    @property
    def cells(self) -> NDArray[np.int64]:
        """A copy of the counts: one row per group (slot order), one column per :data:`CELLS`."""
        return self._grown().copy()

    @property
    def n(self) -> int:
        """Rows counted, labelled or not."""
        return int(self._grown().sum())

    def counts(self) -> dict[str, dict[str, int]]:
        """Each group's six counts by name."""
        rows = self._grown().tolist()
        return {g: dict(zip(CELLS, r, strict=True)) for g, r in zip(self.groups, rows, strict=True)}

    def _nonzero(self) -> dict[str, tuple[int, ...]]:
        return {
            g: tuple(r) for g, r in zip(self.groups, self._grown().tolist(), strict=True) if any(r)
        }

    def __eq__(self, other: object) -> bool:
        """Same settings and the same counts for every group that has any: what
        :func:`assess` reads (slot order and groups emptied by removals aside)."""
        if not isinstance(other, GroupCounts):
            return NotImplemented
        return (self._index.config, self._nonzero()) == (other._index.config, other._nonzero())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"GroupCounts(n={self.n}, groups={self.groups!r})"

    # -- serialising ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict: the index, and one row of :data:`CELLS` per group."""
        return {
            "kind": "group_counts",
            "format": FORMAT,
            "segments": self._index.to_dict(),
            "cells": list(CELLS),
            "counts": self._grown().tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupCounts:
        check_header(data, "group_counts")
        if list(read_list(data, "cells")) != list(CELLS):
            raise ValueError(f"group counts: 'cells' must be {list(CELLS)}")
        segments = data.get("segments")
        if not isinstance(segments, Mapping):
            raise ValueError("group counts: 'segments' must be a mapping")
        out = cls(SegmentIndex.from_dict(segments))
        rows = read_list(data, "counts")
        ok = len(rows) == len(out._index) and all(
            isinstance(r, list | tuple)
            and len(r) == _K
            and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in r)
            for r in rows
        )
        if not ok:
            raise ValueError(
                f"group counts: 'counts' needs {len(out._index)} rows of {_K} integers >= 0"
            )
        out._cells = np.array(rows, dtype=np.int64).reshape(len(out._index), _K)
        return out
