"""Drift-test contract: the result, the plug-in, category counts and the stats errors.

Every drift test is a pure function ``(reference, current, threshold) -> DriftResult``
in one of three input forms, held together by a :class:`DriftTest`:

* ``exact``: raw numeric arrays (batch reports);
* ``binned``: two :class:`~inferwatch._binned.Binned` on the same reference edges (live
  windows; the profile fills them);
* ``counts``: two :class:`Counts` of categories (categorical and boolean columns; the
  counts are a lossless summary, so these results are ``mode="exact"``).

Errors, rooted in built-in types so that ``except ValueError`` / ``except KeyError``
catch them::

    InferwatchError
    ├── DriftInputError(ValueError)        bad input to a drift test
    │   └── EmptySampleError               a sample has no usable value
    ├── UnknownTestError(KeyError)         no test registered under that name
    └── NoDefaultTestError(LookupError)    no default-rule row matches a column
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from inferwatch._binned import Binned
from inferwatch._json import plain
from inferwatch.errors import InferwatchError

__all__ = [
    "BinnedFn",
    "CountsFn",
    "Counts",
    "DriftInputError",
    "DriftResult",
    "DriftTest",
    "EmptySampleError",
    "ExactFn",
    "Mode",
    "NoDefaultTestError",
    "StatisticKind",
    "UnknownTestError",
    "align",
    "counts_from_values",
    "make_result",
]

Mode = Literal["exact", "binned"]
_F = TypeVar("_F")
StatisticKind = Literal["p_value", "distance"]


class DriftInputError(InferwatchError, ValueError):
    """The input to a drift test cannot be compared (wrong form, mismatched bins ...)."""


class EmptySampleError(DriftInputError):
    """A sample is empty, or has no value the test can use (all missing / non-finite)."""


class UnknownTestError(InferwatchError, KeyError):
    """No drift test is registered under the requested name; the message lists them."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NoDefaultTestError(InferwatchError, LookupError):
    """No row of the default-rule table matches the column (e.g. a text column)."""


@dataclass(frozen=True)
class DriftResult:
    """The outcome of one drift test on one column.

    ``statistic`` is the test statistic (a distance for distance tests); ``p_value`` is
    ``None`` for distances. ``drift_detected`` is ``p_value < threshold`` for p-value
    tests and ``statistic >= threshold`` for distances. ``effect_size`` is a scale-free
    size of the difference that does not grow with the sample size (for distances, the
    distance itself). ``details`` holds plain values: the formula, binning, epsilon,
    log base, sample sizes, missing counts.
    """

    test: str
    statistic: float
    p_value: float | None
    threshold: float
    drift_detected: bool
    effect_size: float | None
    mode: Mode
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; NaN and infinities become ``None``."""
        return {
            "test": self.test,
            "statistic": plain(self.statistic),
            "p_value": plain(self.p_value),
            "threshold": plain(self.threshold),
            "drift_detected": bool(self.drift_detected),
            "effect_size": plain(self.effect_size),
            "mode": self.mode,
            "details": plain(self.details),
        }


def make_result(
    test: str,
    statistic_kind: StatisticKind,
    statistic: float,
    p_value: float | None,
    threshold: float,
    effect_size: float | None,
    mode: Mode,
    details: Mapping[str, Any],
) -> DriftResult:
    """Build a :class:`DriftResult`, deciding drift by the test's statistic kind."""
    stat = float(statistic)
    p = None if p_value is None else float(p_value)
    if statistic_kind == "p_value":
        if p is None:
            raise ValueError(f"{test}: a p-value test needs a p-value")
        drifted = p < threshold
    else:
        drifted = stat >= threshold
    effect = None if effect_size is None else float(effect_size)
    return DriftResult(test, stat, p, float(threshold), bool(drifted), effect, mode, details)


# -- categories -------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Counts:
    """Counts of one categorical column: ``counts[i]`` rows had ``categories[i]``."""

    categories: tuple[str, ...]
    counts: npt.NDArray[np.int64]
    missing: int = 0

    def __post_init__(self) -> None:
        if len(self.categories) != len(self.counts):
            raise DriftInputError(
                f"{len(self.categories)} categories but {len(self.counts)} counts"
            )
        if len(set(self.categories)) != len(self.categories):
            raise DriftInputError("categories must be unique")
        if self.missing < 0 or (len(self.counts) and int(np.min(self.counts)) < 0):
            raise DriftInputError("counts must be non-negative")

    @classmethod
    def from_mapping(cls, counts: Mapping[str, int], missing: int = 0) -> Counts:
        """``Counts`` from ``{category: count}`` (insertion order kept)."""
        return cls(tuple(counts), np.fromiter(counts.values(), np.int64, len(counts)), missing)

    @property
    def total(self) -> int:
        """All rows, missing included."""
        return int(self.counts.sum()) + self.missing

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Counts):
            return NotImplemented
        return (
            self.categories == other.categories
            and self.missing == other.missing
            and np.array_equal(self.counts, other.counts)
        )


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _number_label(value: float) -> str:
    # one label per number whatever the dtype: 1 (int column) and 1.0 (float) must agree
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def counts_from_values(values: npt.ArrayLike | Sequence[object]) -> Counts:
    """Count categories in ``values``; ``None`` and NaN are missing.

    Labels are ``str(value)``, except in integer and float arrays, whose numbers are
    labelled canonically (``1`` and ``1.0`` both become ``"1"``) so that an int column
    and a float column compare equal. Booleans are ``"True"`` / ``"False"``. Categories
    come out sorted (as strings). Numeric arrays are counted on their distinct values
    first, so only those are turned into strings.
    """
    arr = np.asarray(values)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.dtype.kind == "b":
        uniq, cnt = np.unique(arr, return_counts=True)
        return Counts(tuple(str(bool(u)) for u in uniq), cnt.astype(np.int64), 0)
    if arr.dtype.kind in "iuf":
        floats = arr.astype(np.float64)
        nan = np.isnan(floats)
        uniq, cnt = np.unique(floats[~nan], return_counts=True)
        labels = [_number_label(float(u)) for u in uniq]
        return _merge_labels(labels, cnt, int(nan.sum()))
    if arr.dtype.kind == "O":
        nan = np.frompyfunc(_is_missing, 1, 1)(arr).astype(bool)
        present = arr[~nan].astype(str)
        missing = int(nan.sum())
    else:
        present, missing = arr.astype(str), 0
    uniq, cnt = np.unique(present, return_counts=True)
    return Counts(tuple(str(u) for u in uniq), cnt.astype(np.int64), missing)


def _merge_labels(labels: list[str], counts: npt.NDArray[np.intp], missing: int) -> Counts:
    merged: dict[str, int] = {}
    for label, n in zip(labels, counts.tolist(), strict=True):
        merged[label] = merged.get(label, 0) + int(n)
    return Counts.from_mapping(dict(sorted(merged.items())), missing)


def align(
    reference: Counts, current: Counts
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], tuple[str | None, ...]]:
    """Two count vectors on one axis: ``[reference categories..., unseen..., missing]``.

    Categories present only in ``current`` get their own entries (count 0 in the
    reference) after the reference's, in ``current``'s order; the last entry is the
    missing count, labelled ``None``. Every statistic on counts compares these vectors,
    so unseen categories and a change in missingness both move the score.
    """
    index = {c: i for i, c in enumerate(reference.categories)}
    unseen = [c for c in current.categories if c not in index]
    labels: tuple[str | None, ...] = (*reference.categories, *unseen, None)
    n_ref = len(reference.categories)
    index.update({c: n_ref + j for j, c in enumerate(unseen)})
    ref_vec = np.zeros(len(labels), dtype=np.int64)
    cur_vec = np.zeros(len(labels), dtype=np.int64)
    ref_vec[:n_ref] = reference.counts
    ref_vec[-1] = reference.missing
    positions = np.fromiter((index[c] for c in current.categories), np.intp)
    cur_vec[positions] = current.counts
    cur_vec[-1] = current.missing
    return ref_vec, cur_vec, labels


# -- the plug-in ------------------------------------------------------------------

ExactFn = Callable[[npt.NDArray[np.float64], npt.NDArray[np.float64], float], DriftResult]
BinnedFn = Callable[[Binned, Binned, float], DriftResult]
CountsFn = Callable[[Counts, Counts, float], DriftResult]
#: many pairs of full vectors on one set of edges (rows ``[missing, under, bins..., over]``)
#: -> one statistic per pair
BinnedStatisticsFn = Callable[
    [npt.NDArray[np.int64], npt.NDArray[np.int64]], npt.NDArray[np.float64]
]


@dataclass(frozen=True)
class DriftTest:
    """One drift test: its name, the column kinds it takes, how it decides, its functions.

    ``statistic_kind`` is ``"p_value"`` (drift when ``p < threshold``) or ``"distance"``
    (drift when ``statistic >= threshold``). ``exact`` takes raw numeric arrays,
    ``binned`` two :class:`Binned` on the same edges, ``counts`` two :class:`Counts`;
    a form the test does not offer is ``None``.  ``binned_statistics``, when offered,
    gives ``binned``'s statistic for many pairs at once, with no p-value and no details:
    what calibrating a live threshold resamples hundreds of times (a test whose p-value
    is costly, as KS's Smirnov series, offers it).
    """

    name: str
    display_name: str
    kinds: frozenset[str]
    statistic_kind: StatisticKind
    default_threshold: float
    exact: ExactFn | None = field(default=None, repr=False, compare=False)
    binned: BinnedFn | None = field(default=None, repr=False, compare=False)
    counts: CountsFn | None = field(default=None, repr=False, compare=False)
    binned_statistics: BinnedStatisticsFn | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        forms = [f for f in ("exact", "binned", "counts") if getattr(self, f) is not None]
        return (
            f"DriftTest(name={self.name!r}, kinds={sorted(self.kinds)!r}, "
            f"statistic_kind={self.statistic_kind!r}, "
            f"default_threshold={self.default_threshold!r}, forms={forms!r})"
        )

    def compare(
        self,
        reference: npt.ArrayLike | Binned | Counts,
        current: npt.ArrayLike | Binned | Counts,
        *,
        kind: str = "numeric",
        threshold: float | None = None,
    ) -> DriftResult:
        """Run the test on whatever form the inputs have.

        Two :class:`Binned` go to ``binned``, two :class:`Counts` to ``counts``; raw
        arrays go to ``exact`` when ``kind`` is ``"numeric"`` and are counted
        (:func:`counts_from_values`) for ``counts`` otherwise.
        """
        t = self.default_threshold if threshold is None else threshold
        if isinstance(reference, Binned) and isinstance(current, Binned):
            return self._need(self.binned, "binned")(reference, current, t)
        if isinstance(reference, Counts) and isinstance(current, Counts):
            return self._need(self.counts, "counts")(reference, current, t)
        if isinstance(reference, Binned | Counts) or isinstance(current, Binned | Counts):
            raise DriftInputError(f"{self.name}: reference and current must have the same form")
        if kind not in self.kinds:
            raise DriftInputError(
                f"{self.name} does not take {kind!r} columns; it takes {sorted(self.kinds)}"
            )
        if kind == "numeric":
            ref = np.asarray(reference, dtype=np.float64)
            cur = np.asarray(current, dtype=np.float64)
            return self._need(self.exact, "exact")(ref, cur, t)
        counts_fn = self._need(self.counts, "counts")
        return counts_fn(counts_from_values(reference), counts_from_values(current), t)

    def _need(self, fn: _F | None, form: str) -> _F:
        if fn is None:
            raise DriftInputError(f"{self.name} has no {form} form")
        return fn
