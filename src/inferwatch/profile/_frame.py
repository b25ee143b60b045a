"""The per-schema profile: one column profile per feature, on bins fixed by a reference.

``profile(columns, bins)`` summarises a batch of rows; ``FrameProfile.update`` adds more
batches and ``merge``/``+`` adds profiles from other workers, replicas or windows, so that
``profile(A) + profile(B)`` equals the profile of A and B together (see each column
profile for what is exact).  The state is constant in size: it depends on the schema and
the reference bins, never on the rows seen.

Feature kinds map to column profiles as follows: numeric → :class:`NumericProfile`,
categorical and boolean → :class:`CategoricalProfile`, text → :class:`TextProfile`,
datetime → :class:`DatetimeProfile`.  Embeddings are not profiled (``skipped``): a
per-dimension histogram would make the profile as large as the embedding, and embedding
drift belongs to the multivariate tests.

A feature absent from a batch counts as missing for every row of that batch; columns that
are not features are ignored.  The batch length is that of its feature columns (they must
agree); a batch without any feature column takes its length from any column it has.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Self, TypeVar

from inferwatch._typing import Columns
from inferwatch.profile._bins import ReferenceBins
from inferwatch.profile._categorical import (
    DEFAULT_MAX_UNSEEN,
    CategoricalProfile,
    CategoricalSummary,
)
from inferwatch.profile._datetime import DatetimeProfile, DatetimeSummary
from inferwatch.profile._mergeable import Mergeable
from inferwatch.profile._numeric import NumericProfile, NumericSummary
from inferwatch.profile._serial import FORMAT, check_header, read_int
from inferwatch.profile._text import TextProfile, TextSummary
from inferwatch.schema import Feature

__all__ = ["ColumnProfile", "ColumnSummary", "FrameProfile", "profile"]

ColumnProfile = NumericProfile | CategoricalProfile | TextProfile | DatetimeProfile
ColumnSummary = NumericSummary | CategoricalSummary | TextSummary | DatetimeSummary
_P = TypeVar("_P", NumericProfile, CategoricalProfile, TextProfile, DatetimeProfile)


def _empty(feat: Feature, bins: ReferenceBins, max_unseen: int) -> ColumnProfile:
    if feat.kind == "numeric":
        return NumericProfile(bins.edges_[feat.name])
    if feat.kind == "categorical":
        return CategoricalProfile(bins.categories_[feat.name], max_unseen=max_unseen)
    if feat.kind == "boolean":
        return CategoricalProfile.for_boolean(max_unseen=max_unseen)
    if feat.kind == "text":
        return TextProfile(bins.edges_[feat.name])
    return DatetimeProfile()


def _batch_length(columns: Columns, names: Mapping[str, object]) -> int:
    """Rows in the batch; checked before any profile changes, so a bad batch changes nothing."""
    lengths = {name: len(col) for name, col in columns.items() if name in names}
    flat = [name for name in lengths if getattr(columns[name], "ndim", 1) != 1]
    if flat:
        raise ValueError(f"batch columns must be one-dimensional: {', '.join(flat)}")
    if not lengths:
        return len(next(iter(columns.values()))) if columns else 0
    distinct = set(lengths.values())
    if len(distinct) > 1:
        detail = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise ValueError(f"batch columns differ in length: {detail}")
    return distinct.pop()


def _add_into(mine: ColumnProfile, theirs: ColumnProfile) -> None:
    if type(mine) is not type(theirs):
        raise TypeError(f"cannot merge {type(mine).__name__} with {type(theirs).__name__}")
    mine.__iadd__(theirs)  # type: ignore[arg-type]  # same type, checked above


def _kind(prof: ColumnProfile, cls: type[_P], name: str) -> _P:
    if not isinstance(prof, cls):
        raise TypeError(f"feature {name!r} has a {type(prof).__name__}, not a {cls.__name__}")
    return prof


class FrameProfile(Mergeable):
    """Constant-size, mergeable profile of a frame under the schema its bins were fitted on.

    Not thread-safe: a profile is updated by one thread at a time (the monitor keeps one
    per worker and window, and merges them).
    """

    __slots__ = ("_bins", "_columns", "_max_unseen", "_n_rows")

    def __init__(self, bins: ReferenceBins, *, max_unseen: int = DEFAULT_MAX_UNSEEN) -> None:
        bins._check_fitted()
        self._bins = bins
        self._max_unseen = max_unseen
        self._columns: dict[str, ColumnProfile] = {
            feat.name: _empty(feat, bins, max_unseen)
            for feat in bins.schema_
            if feat.kind != "embedding"
        }
        self._n_rows = 0
        self._share_lookups()

    def _share_lookups(self) -> None:
        for name, prof in self._columns.items():
            if isinstance(prof, NumericProfile):
                prof._share_lookup(self._bins._lookup(name))
            elif isinstance(prof, TextProfile):
                prof._lengths._share_lookup(self._bins._lookup(name))

    def update(self, columns: Columns) -> Self:
        """Add a batch of rows (numpy columns by name)."""
        n = _batch_length(columns, self._columns)
        for name, prof in self._columns.items():
            col = columns.get(name)
            if col is None:
                prof.add_missing(n)
            else:
                prof.update_many(col)
        self._n_rows += n
        return self

    def _check_compatible(self, other: FrameProfile) -> None:
        if not isinstance(other, FrameProfile):
            raise TypeError(f"cannot merge a FrameProfile with {type(other).__name__}")
        if self._bins is not other._bins and self._bins != other._bins:
            raise ValueError("cannot merge profiles built on different reference bins")
        if self._max_unseen != other._max_unseen:
            raise ValueError("cannot merge profiles with different max_unseen")

    def __iadd__(self, other: FrameProfile) -> Self:
        self._check_compatible(other)
        for name, prof in self._columns.items():
            _add_into(prof, other._columns[name])
        self._n_rows += other._n_rows
        return self

    def copy(self) -> Self:
        out = type(self).__new__(type(self))
        out._bins = self._bins
        out._max_unseen = self._max_unseen
        out._columns = {name: prof.copy() for name, prof in self._columns.items()}
        out._n_rows = self._n_rows
        return out

    @property
    def bins(self) -> ReferenceBins:
        return self._bins

    @property
    def n_rows(self) -> int:
        return self._n_rows

    @property
    def columns(self) -> Mapping[str, ColumnProfile]:
        """Feature name → column profile (a read-only view; profiles are live, do not mutate)."""
        return MappingProxyType(self._columns)

    @property
    def skipped(self) -> tuple[str, ...]:
        """Features that are not profiled (embeddings)."""
        return self._bins.skipped_

    def __getitem__(self, name: str) -> ColumnProfile:
        try:
            return self._columns[name]
        except KeyError:
            raise KeyError(f"no profiled feature named {name!r}") from None

    def numeric(self, name: str) -> NumericProfile:
        """The profile of numeric feature ``name`` (typed; TypeError for another kind)."""
        return _kind(self[name], NumericProfile, name)

    def categorical(self, name: str) -> CategoricalProfile:
        """The profile of categorical or boolean feature ``name``."""
        return _kind(self[name], CategoricalProfile, name)

    def text(self, name: str) -> TextProfile:
        return _kind(self[name], TextProfile, name)

    def datetime(self, name: str) -> DatetimeProfile:
        return _kind(self[name], DatetimeProfile, name)

    def get(self) -> dict[str, ColumnSummary]:
        return {name: prof.get() for name, prof in self._columns.items()}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FrameProfile):
            return NotImplemented
        return (
            self._n_rows == other._n_rows
            and self._max_unseen == other._max_unseen
            and self._bins == other._bins
            and self._columns == other._columns
        )

    __hash__ = None  # type: ignore[assignment]

    def isclose(self, other: object, rtol: float = 1e-9) -> bool:
        """Counts exact, means and variances within ``rtol``: the merge law's equality."""
        if not isinstance(other, FrameProfile):
            return False
        return (
            self._n_rows == other._n_rows
            and self._max_unseen == other._max_unseen
            and self._bins == other._bins
            and self._columns.keys() == other._columns.keys()
            and all(
                prof.isclose(other._columns[name], rtol) for name, prof in self._columns.items()
            )
        )

    def __repr__(self) -> str:
        return f"FrameProfile(n_rows={self._n_rows}, features={len(self._columns)})"

    def to_dict(self, *, include_bins: bool = True) -> dict[str, Any]:
        """A JSON-serialisable dict.

        Edges and categories are written once, in ``bins``; with ``include_bins=False``
        only the bins' fingerprint is kept (a window profile beside a stored reference),
        and :meth:`from_dict` needs the bins back.
        """
        columns: dict[str, Any] = {}
        for name, prof in self._columns.items():
            if isinstance(prof, NumericProfile | TextProfile):
                columns[name] = prof.to_dict(edges=False)
            elif isinstance(prof, CategoricalProfile):
                columns[name] = prof.to_dict(categories=False)
            else:
                columns[name] = prof.to_dict()
        out: dict[str, Any] = {
            "kind": "frame",
            "format": FORMAT,
            "fingerprint": self._bins.fingerprint_,
            "n_rows": self._n_rows,
            "max_unseen": self._max_unseen,
            "columns": columns,
        }
        if include_bins:
            out["bins"] = self._bins.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], bins: ReferenceBins | None = None) -> Self:
        check_header(data, "frame")
        if bins is None:
            if "bins" not in data:
                raise ValueError("frame profile: no 'bins' in the data and none given")
            bins = ReferenceBins.from_dict(data["bins"])
        if data.get("fingerprint") != bins.fingerprint_:
            raise ValueError("frame profile: it was built on other reference bins")
        out = cls(bins, max_unseen=read_int(data, "max_unseen"))
        out._n_rows = read_int(data, "n_rows")
        columns = data.get("columns")
        if not isinstance(columns, Mapping) or set(columns) != set(out._columns):
            raise ValueError(f"frame profile: 'columns' must hold {sorted(out._columns)}")
        for name, prof in out._columns.items():
            col = columns[name]
            if isinstance(prof, NumericProfile):
                out._columns[name] = NumericProfile.from_dict(col, bins.edges_[name])
            elif isinstance(prof, TextProfile):
                out._columns[name] = TextProfile.from_dict(col, bins.edges_[name])
            elif isinstance(prof, CategoricalProfile):
                out._columns[name] = CategoricalProfile.from_dict(col, prof.categories)
            else:
                out._columns[name] = DatetimeProfile.from_dict(col)
        out._share_lookups()
        return out


def profile(
    columns: Columns, bins: ReferenceBins, *, max_unseen: int = DEFAULT_MAX_UNSEEN
) -> FrameProfile:
    """Profile one batch of ``columns`` on the reference ``bins``."""
    return FrameProfile(bins, max_unseen=max_unseen).update(columns)
