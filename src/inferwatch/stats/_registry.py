"""The drift-test registry and the default choice of test per column, as data.

:class:`Registry` maps a test's name to its :class:`DriftTest`. :data:`REGISTRY` holds
the built-in tests; the module functions :func:`register`, :func:`get` and
:func:`available` act on it. A new test is a new module plus one line in ``BUILTIN``.

Default test per column (Evidently's published rule, the one users expect), read from
two tables in which the first matching row wins. ``KIND_RULES`` says which rows a column
uses::

    kind      distinct reference values   uses the rows of
    numeric   <= 5                        categorical
    boolean   any                         categorical

``DEFAULT_RULES``::

    kind         n_reference   distinct values   test             drift when
    numeric      <= 1000       any               ks               p < 0.05
    numeric      > 1000        any               wasserstein      distance / std >= 0.1
    categorical  <= 1000       exactly 2         z_test           p < 0.05
    categorical  <= 1000       any               chi_square       p < 0.05
    categorical  > 1000        any               jensen_shannon   distance (natural log) >= 0.1

Mind the step at 1,000 reference rows: below it the verdict is a p-value (which, as
the sample grows, flags ever smaller differences), above it a distance against a fixed
threshold (which does not move with n). The same column can change verdict when the
reference grows from 1,000 to 1,001 rows.

Checked against Evidently 0.7.23's ``_get_default_stattest`` and its tests:

* same: ``n_reference`` counts the reference's finite, non-missing values (Evidently
  drops NaN and +/-inf first); Wasserstein is divided by ``np.std`` (ddof 0) of the
  reference; Jensen-Shannon is scipy's ``jensenshannon`` with its default (natural) log
  on the union of both sides' categories, no epsilon; 0.1 for both.
* different, by choice: ``n_unique`` counts the distinct non-missing values of the
  *reference* (Evidently counts reference and current together), so the test is known
  before the current data is seen (live windows fix it when the window opens) and a few
  new values in the current data cannot switch a numeric column to a categorical test;
  a single category gets ``chi_square`` (Evidently's ``z_test`` for at most 2 values; both
  say no drift on one shared category). The distance tests keep missing values as an
  entry of their own (Evidently drops them), so that a rise in missing values moves
  them; on data without missing values the statistic is Evidently's. Wasserstein's
  scale is the reference's std itself (the pooled one when the reference is constant,
  see ``_wasserstein``), where Evidently floors it at 0.001, so on a column whose std is
  below 0.001 Evidently's score is smaller than ours (a change of units should not
  change a verdict).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from inferwatch.stats._anderson import ANDERSON_DARLING
from inferwatch.stats._base import DriftInputError, DriftTest, NoDefaultTestError, UnknownTestError
from inferwatch.stats._chi2 import CHI_SQUARE
from inferwatch.stats._cramer import CRAMER_VON_MISES
from inferwatch.stats._divergence import HELLINGER, JENSEN_SHANNON, KL_DIVERGENCE
from inferwatch.stats._energy import ENERGY_DISTANCE
from inferwatch.stats._ks import KS
from inferwatch.stats._psi import PSI
from inferwatch.stats._wasserstein import WASSERSTEIN
from inferwatch.stats._ztest import Z_TEST

__all__ = [
    "BUILTIN",
    "DEFAULT_RULES",
    "KIND_RULES",
    "REGISTRY",
    "DefaultRule",
    "KindRule",
    "Registry",
    "available",
    "default_test",
    "get",
    "register",
]

BUILTIN: tuple[DriftTest, ...] = (
    ANDERSON_DARLING,
    CHI_SQUARE,
    CRAMER_VON_MISES,
    ENERGY_DISTANCE,
    HELLINGER,
    JENSEN_SHANNON,
    KL_DIVERGENCE,
    KS,
    PSI,
    WASSERSTEIN,
    Z_TEST,
)


class Registry:
    """Drift tests by name."""

    def __init__(self, tests: Iterable[DriftTest] = ()) -> None:
        self._tests: dict[str, DriftTest] = {}
        for test in tests:
            self.register(test)

    def register(self, test: DriftTest, *, replace: bool = False) -> DriftTest:
        """Add ``test``; a name already taken is refused unless ``replace``."""
        if test.name in self._tests and not replace:
            raise DriftInputError(f"a drift test named {test.name!r} is already registered")
        self._tests[test.name] = test
        return test

    def get(self, name: str) -> DriftTest:
        """The test named ``name``; the error lists every registered name."""
        try:
            return self._tests[name]
        except KeyError:
            raise UnknownTestError(
                f"no drift test named {name!r}; available: {', '.join(sorted(self._tests))}"
            ) from None

    def available(self, kind: str | None = None) -> tuple[str, ...]:
        """Sorted names of the tests that take columns of ``kind`` (all when ``None``)."""
        return tuple(sorted(n for n, t in self._tests.items() if kind is None or kind in t.kinds))

    def __contains__(self, name: object) -> bool:
        return name in self._tests

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._tests))

    def __len__(self) -> int:
        return len(self._tests)

    def __repr__(self) -> str:
        return f"Registry({sorted(self._tests)!r})"


REGISTRY = Registry(BUILTIN)


def register(test: DriftTest, *, replace: bool = False) -> DriftTest:
    """Add ``test`` to the default registry."""
    return REGISTRY.register(test, replace=replace)


def get(name: str) -> DriftTest:
    """The test named ``name`` in the default registry."""
    return REGISTRY.get(name)


def available(kind: str | None = None) -> tuple[str, ...]:
    """Names of the default registry's tests for ``kind``."""
    return REGISTRY.available(kind)


# -- default choice ------------------------------------------------------------------


@dataclass(frozen=True)
class IntRange:
    """Inclusive integer range; ``high=None`` is unbounded."""

    low: int = 0
    high: int | None = None

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int | np.integer):
            return False
        return bool(self.low <= value and (self.high is None or value <= self.high))


@dataclass(frozen=True)
class KindRule:
    """Columns of ``kind`` with ``n_unique`` in range use the rows of ``as_kind``."""

    kind: str
    n_unique: IntRange
    as_kind: str


@dataclass(frozen=True)
class DefaultRule:
    """One row of the default-choice table."""

    kind: str
    n_reference: IntRange
    n_unique: IntRange
    test: str
    why: str

    def matches(self, kind: str, n_reference: int, n_unique: int) -> bool:
        return kind == self.kind and n_reference in self.n_reference and n_unique in self.n_unique


_SMALL, _LARGE = IntRange(0, 1000), IntRange(1001)
_ANY = IntRange()

KIND_RULES: tuple[KindRule, ...] = (
    KindRule("numeric", IntRange(0, 5), "categorical"),
    KindRule("boolean", _ANY, "categorical"),
)

DEFAULT_RULES: tuple[DefaultRule, ...] = (
    #           kind           n_reference  n_unique     test              why
    DefaultRule("numeric",     _SMALL,      _ANY,        "ks",             "small n: a p-value"),
    DefaultRule("numeric",     _LARGE,      _ANY,        "wasserstein",    "large n: a distance"),
    DefaultRule("categorical", _SMALL,      IntRange(2, 2), "z_test",         "small n, binary"),
    DefaultRule("categorical", _SMALL,      _ANY,        "chi_square",     "small n: a p-value"),
    DefaultRule("categorical", _LARGE,      _ANY,        "jensen_shannon", "large n: a distance"),
)  # fmt: skip


def default_test(
    kind: str,
    n_reference: int,
    n_unique: int,
    *,
    rules: Iterable[DefaultRule] = DEFAULT_RULES,
    kind_rules: Iterable[KindRule] = KIND_RULES,
) -> str:
    """Name of the default test for a column, read from the tables above."""
    effective = next(
        (r.as_kind for r in kind_rules if r.kind == kind and n_unique in r.n_unique), kind
    )
    for rule in rules:
        if rule.matches(effective, n_reference, n_unique):
            return rule.test
    raise NoDefaultTestError(
        f"no default drift test for a {kind!r} column (n_reference={n_reference}, "
        f"n_unique={n_unique}); choose one of: {', '.join(REGISTRY.available(kind)) or 'none'}"
    )
