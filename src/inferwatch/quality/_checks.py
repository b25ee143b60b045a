"""Data-quality checks on raw columns against a fitted reference (exact mode).

``NumericReference.fit`` / ``CategoricalReference.fit`` learn what the reference looked
like once (missing and outlier counts, range, quartiles, categories and how many were
seen once); ``numeric_quality`` and ``categorical_quality`` then compare a current
column with it.  Numeric checks work on the *sorted* finite values, which the batch
report already holds for the drift tests, so quantiles and run lengths cost an index
lookup, not another pass.

Shares are judged against the reference's own (``quality/_limits.py``): a problem is a
rise beyond what sampling explains.  Problems that sampling cannot explain fail on any
count: non-finite values, type violations, a column that became constant.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from inferwatch.quality._limits import out_of_range_limit, share_limit, unseen_limit
from inferwatch.quality._results import FeatureQuality, QualityThresholds
from inferwatch.stats import Counts

__all__ = [
    "MAX_UNSEEN_REPORTED",
    "CategoricalReference",
    "NumericReference",
    "categorical_limits",
    "categorical_quality",
    "numeric_limits",
    "numeric_quality",
    "split_numeric",
    "with_problems",
]

MAX_UNSEEN_REPORTED = 20  # the most frequent unseen categories listed by name


def split_numeric(
    values: npt.ArrayLike,
) -> tuple[npt.NDArray[np.float64], int, int]:
    """``(sorted finite values, missing count, non-finite count)`` of a numeric column."""
    arr = np.asarray(values, dtype=np.float64)
    nan = np.isnan(arr)
    inf = np.isinf(arr)
    finite = np.sort(arr[~(nan | inf)])
    return finite, int(nan.sum()), int(inf.sum())


def _quantile_sorted(s: npt.NDArray[np.float64], q: float) -> float:
    """``np.quantile(s, q)`` (linear interpolation) on an already sorted array."""
    if len(s) == 0:
        return float("nan")
    pos = q * (len(s) - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, len(s) - 1)
    return float(s[lo] + (s[hi] - s[lo]) * (pos - lo))


def _top_run_share(s: npt.NDArray[np.float64]) -> tuple[int, float]:
    """Number of distinct values and the share of the most frequent one, from sorted values."""
    if len(s) == 0:
        return 0, 0.0
    change = s[1:] != s[:-1]  # a byte per value, not the float diffs
    distinct = int(np.count_nonzero(change)) + 1
    if distinct == len(s):  # every value differs (most continuous columns): runs of one
        return distinct, 1.0 / len(s)
    bounds = np.flatnonzero(change) + 1
    runs = np.diff(np.concatenate(([0], bounds, [len(s)])))
    return distinct, float(runs.max() / len(s))


@dataclass(frozen=True, slots=True)
class NumericReference:
    """What a numeric column looked like in the reference.

    ``outliers`` counts the reference's own values beyond its fences ``q1 - iqr_factor *
    IQR`` and ``q3 + iqr_factor * IQR``, the fences the current data is judged on.
    """

    n: int
    missing: int
    n_finite: int
    min: float
    max: float
    q1: float
    median: float
    q3: float
    constant: bool
    outliers: int = 0
    iqr_factor: float = 1.5

    @property
    def missing_share(self) -> float:
        return self.missing / self.n if self.n else 0.0

    @property
    def outlier_share(self) -> float:
        return self.outliers / self.n if self.n else 0.0

    @property
    def fences(self) -> tuple[float, float]:
        """Tukey's fences on the reference's quartiles (NaN when it has no finite value)."""
        k = self.iqr_factor * (self.q3 - self.q1)
        return self.q1 - k, self.q3 + k

    @classmethod
    def fit(cls, values: npt.ArrayLike, *, iqr_factor: float = 1.5) -> NumericReference:
        return cls.from_sorted(*split_numeric(values), iqr_factor=iqr_factor)

    @classmethod
    def from_sorted(
        cls,
        s: npt.NDArray[np.float64],
        missing: int,
        non_finite: int,
        *,
        iqr_factor: float = 1.5,
    ) -> NumericReference:
        """From :func:`split_numeric`'s output, when the caller already has it."""
        ref = cls(
            n=len(s) + missing + non_finite,
            missing=missing,
            n_finite=len(s),
            min=float(s[0]) if len(s) else float("nan"),
            max=float(s[-1]) if len(s) else float("nan"),
            q1=_quantile_sorted(s, 0.25),
            median=_quantile_sorted(s, 0.5),
            q3=_quantile_sorted(s, 0.75),
            constant=len(s) == 0 or bool(s[0] == s[-1]),  # sorted: one value iff ends equal
            iqr_factor=iqr_factor,
        )
        return replace(ref, outliers=_beyond(s, *ref.fences))


def _beyond(s: npt.NDArray[np.float64], lo: float, hi: float) -> int:
    """Sorted values strictly below ``lo`` or strictly above ``hi`` (0 for NaN bounds)."""
    if not len(s) or not (np.isfinite(lo) and np.isfinite(hi)):
        return 0
    return int(np.searchsorted(s, lo, "left")) + int(len(s) - np.searchsorted(s, hi, "right"))


@dataclass(frozen=True, slots=True)
class CategoricalReference:
    """The reference's categories, missing count, and its categories seen exactly once
    (``singletons``) and twice (``doubletons``): how often a new row brings a new
    category, by Good-Turing (``quality/_limits.py``)."""

    n: int
    missing: int
    categories: frozenset[str]
    constant: bool
    singletons: int = 0
    doubletons: int = 0

    @property
    def missing_share(self) -> float:
        return self.missing / self.n if self.n else 0.0

    @property
    def n_present(self) -> int:
        return self.n - self.missing

    @classmethod
    def fit(cls, counts: Counts) -> CategoricalReference:
        values = counts.counts.tolist()
        present = {c for c, k in zip(counts.categories, values, strict=True) if k}
        singletons = sum(1 for k in values if k == 1)
        doubletons = sum(1 for k in values if k == 2)
        return cls(
            counts.total,
            counts.missing,
            frozenset(present),
            len(present) <= 1,
            singletons,
            doubletons,
        )


def numeric_quality(
    name: str,
    finite_sorted: npt.NDArray[np.float64],
    missing: int,
    non_finite: int,
    ref: NumericReference,
    thresholds: QualityThresholds = QualityThresholds(),
    *,
    kind: str = "numeric",
    type_violations: int = 0,
) -> FeatureQuality:
    """Quality of a numeric column given its sorted finite values (see :func:`split_numeric`)."""
    s = finite_sorted
    n = len(s) + missing + non_finite + type_violations
    share = (lambda k: k / n) if n else (lambda k: 0.0)
    out_of_range = _beyond(s, ref.min, ref.max)
    outliers = _beyond(s, *ref.fences)  # the fences of fit time (``ref.iqr_factor``)
    n_unique, top = _top_run_share(s)
    summary: dict[str, float | str | None] = {
        "mean": float(s.mean()) if len(s) else None,
        "std": float(s.std()) if len(s) else None,
        "min": float(s[0]) if len(s) else None,
        "q25": _quantile_sorted(s, 0.25) if len(s) else None,
        "median": _quantile_sorted(s, 0.5) if len(s) else None,
        "q75": _quantile_sorted(s, 0.75) if len(s) else None,
        "max": float(s[-1]) if len(s) else None,
    }
    fq = FeatureQuality(
        name=name,
        kind=kind,
        n=n,
        missing=missing,
        missing_share=share(missing),
        reference_missing_share=ref.missing_share,
        reference_outlier_share=ref.outlier_share,
        non_finite=non_finite,
        type_violations=type_violations,
        out_of_range=out_of_range,
        out_of_range_share=share(out_of_range),
        outliers=outliers,
        outlier_share=share(outliers),
        n_unique=n_unique,
        top_share=top if len(s) else None,
        constant=len(s) > 0 and n_unique == 1,
        near_constant=len(s) > 0 and top >= thresholds.near_constant_share,
        summary=summary,
    )
    return with_problems(fq, ref, thresholds)


def categorical_quality(
    name: str,
    counts: Counts,
    ref: CategoricalReference,
    thresholds: QualityThresholds = QualityThresholds(),
    *,
    kind: str = "categorical",
    type_violations: int = 0,
) -> FeatureQuality:
    """Quality of a categorical (or boolean) column from its category counts."""
    n = counts.total + type_violations
    cats = counts.categories
    values = counts.counts
    present = values > 0
    unseen = {
        c: int(k)
        for c, k in zip(cats, values.tolist(), strict=True)
        if k and c not in ref.categories
    }
    unseen_total = sum(unseen.values())
    top_named = dict(sorted(unseen.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_UNSEEN_REPORTED])
    n_present = int(present.sum())
    top_idx = int(np.argmax(values)) if len(values) else -1
    non_missing = int(values.sum())
    top = float(values[top_idx] / non_missing) if non_missing else 0.0
    fq = FeatureQuality(
        name=name,
        kind=kind,
        n=n,
        missing=counts.missing,
        missing_share=counts.missing / n if n else 0.0,
        reference_missing_share=ref.missing_share,
        type_violations=type_violations,
        unseen_categories=top_named,
        unseen_share=unseen_total / n if n else 0.0,
        n_unique=n_present,
        top_share=top if non_missing else None,
        constant=n_present == 1,
        near_constant=non_missing > 0 and top >= thresholds.near_constant_share,
        summary={"top": cats[top_idx] if non_missing else None, "unseen_total": unseen_total},
    )
    return with_problems(fq, ref, thresholds)


def numeric_limits(
    ref: NumericReference, n: int, n_finite: int, thresholds: QualityThresholds
) -> dict[str, float]:
    """The largest missing, out-of-range and outlier shares of ``n`` current rows
    (``n_finite`` of them finite) that are not a rise over ``ref`` (``quality/_limits``)."""
    if not n:
        return {"missing_share": 1.0, "out_of_range_share": 1.0, "outlier_share": 1.0}
    q, tol = thresholds.quantile, thresholds.relative_tolerance
    return {
        "missing_share": share_limit(ref.missing, ref.n, n, quantile=q, relative_tolerance=tol) / n,
        "out_of_range_share": out_of_range_limit(ref.n_finite, n_finite, quantile=q) / n,
        "outlier_share": share_limit(ref.outliers, ref.n, n, quantile=q, relative_tolerance=tol)
        / n,
    }


def categorical_limits(
    ref: CategoricalReference, n: int, n_present: int, thresholds: QualityThresholds
) -> dict[str, float]:
    """The largest missing and unseen shares of ``n`` current rows (``n_present`` of them
    not missing) that are not a rise over ``ref`` (``quality/_limits``)."""
    if not n:
        return {"missing_share": 1.0, "unseen_share": 1.0}
    q, tol = thresholds.quantile, thresholds.relative_tolerance
    return {
        "missing_share": share_limit(ref.missing, ref.n, n, quantile=q, relative_tolerance=tol) / n,
        "unseen_share": unseen_limit(
            ref.singletons, ref.doubletons, ref.n_present, n_present, quantile=q
        )
        / n,
    }


def with_problems(
    quality: FeatureQuality,
    reference: NumericReference | CategoricalReference,
    thresholds: QualityThresholds = QualityThresholds(),
) -> FeatureQuality:
    """``quality`` with its ``limits`` and ``problems`` judged against ``reference``.

    The checks above end with it; the live evaluator calls it on results it read from
    window profiles.  Shares fail when they pass their limit (a rise beyond sampling);
    non-finite values, type violations and a column that became constant fail on any
    count.
    """
    fq = quality
    if isinstance(reference, NumericReference):
        n_finite = fq.n - fq.missing - fq.non_finite - fq.type_violations
        limits = numeric_limits(reference, fq.n, n_finite, thresholds)
    else:
        n_present = fq.n - fq.missing - fq.type_violations
        limits = categorical_limits(reference, fq.n, n_present, thresholds)
    problems = []
    if fq.missing_share > limits["missing_share"]:
        problems.append("missing_increase")
    if fq.non_finite:
        problems.append("non_finite")
    if fq.type_violations:
        problems.append("type_violations")
    for key, value, code in (
        ("out_of_range_share", fq.out_of_range_share, "out_of_range"),
        ("outlier_share", fq.outlier_share, "outliers"),
        ("unseen_share", fq.unseen_share, "unseen_categories"),
    ):
        if key in limits and value > limits[key]:  # both are counts over fq.n: exact
            problems.append(code)
    if fq.constant and not reference.constant:
        problems.append("constant")
    return replace(fq, problems=tuple(problems), limits=limits)
