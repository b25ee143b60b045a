"""Data-quality checks on raw columns against a fitted reference (exact mode).

``NumericReference.fit`` / ``CategoricalReference.fit`` learn what the reference looked
like once (missing share, range, quartiles, categories); ``numeric_quality`` and
``categorical_quality`` then compare a current column with it.  Numeric checks work on
the *sorted* finite values, which the batch report already holds for the drift tests,
so quantiles and run lengths cost an index lookup, not another pass.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from inferwatch.quality._results import FeatureQuality, QualityThresholds
from inferwatch.stats import Counts

__all__ = [
    "MAX_UNSEEN_REPORTED",
    "CategoricalReference",
    "NumericReference",
    "categorical_quality",
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
    bounds = np.flatnonzero(np.diff(s)) + 1
    runs = np.diff(np.concatenate(([0], bounds, [len(s)])))
    return len(runs), float(runs.max() / len(s))


@dataclass(frozen=True, slots=True)
class NumericReference:
    """What a numeric column looked like in the reference."""

    n: int
    missing_share: float
    min: float
    max: float
    q1: float
    median: float
    q3: float
    constant: bool

    @classmethod
    def fit(cls, values: npt.ArrayLike) -> NumericReference:
        return cls.from_sorted(*split_numeric(values))

    @classmethod
    def from_sorted(
        cls, s: npt.NDArray[np.float64], missing: int, non_finite: int
    ) -> NumericReference:
        """From :func:`split_numeric`'s output, when the caller already has it."""
        n = len(s) + missing + non_finite
        return cls(
            n=n,
            missing_share=missing / n if n else 0.0,
            min=float(s[0]) if len(s) else float("nan"),
            max=float(s[-1]) if len(s) else float("nan"),
            q1=_quantile_sorted(s, 0.25),
            median=_quantile_sorted(s, 0.5),
            q3=_quantile_sorted(s, 0.75),
            constant=_top_run_share(s)[0] <= 1,
        )


@dataclass(frozen=True, slots=True)
class CategoricalReference:
    """The reference's categories and missing share."""

    n: int
    missing_share: float
    categories: frozenset[str]
    constant: bool

    @classmethod
    def fit(cls, counts: Counts) -> CategoricalReference:
        n = counts.total
        present = {c for c, k in zip(counts.categories, counts.counts.tolist(), strict=True) if k}
        return cls(n, counts.missing / n if n else 0.0, frozenset(present), len(present) <= 1)


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
    if len(s) and np.isfinite(ref.min):
        out_of_range = int(np.searchsorted(s, ref.min, "left")) + int(
            len(s) - np.searchsorted(s, ref.max, "right")
        )
    else:
        out_of_range = 0
    iqr = ref.q3 - ref.q1
    if len(s) and np.isfinite(iqr):
        lo, hi = ref.q1 - thresholds.iqr_factor * iqr, ref.q3 + thresholds.iqr_factor * iqr
        outliers = int(np.searchsorted(s, lo, "left")) + int(
            len(s) - np.searchsorted(s, hi, "right")
        )
    else:
        outliers = 0
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
    return _with_problems(fq, thresholds, ref_constant=ref.constant, numeric=True)


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
    return _with_problems(fq, thresholds, ref_constant=ref.constant, numeric=False)


def _with_problems(
    fq: FeatureQuality, t: QualityThresholds, *, ref_constant: bool, numeric: bool
) -> FeatureQuality:
    limits = {"missing_share": fq.reference_missing_share + t.max_missing_increase}
    if numeric:
        limits["out_of_range_share"] = t.max_out_of_range_share
        limits["outlier_share"] = t.max_outlier_share
    else:
        limits["unseen_share"] = t.max_unseen_share
    problems = []
    if fq.missing_share_change > t.max_missing_increase:
        problems.append("missing_increase")
    if fq.non_finite:
        problems.append("non_finite")
    if fq.type_violations:
        problems.append("type_violations")
    if fq.out_of_range_share > t.max_out_of_range_share:
        problems.append("out_of_range")
    if fq.outlier_share > t.max_outlier_share:
        problems.append("outliers")
    if fq.unseen_share > t.max_unseen_share:
        problems.append("unseen_categories")
    if fq.constant and not ref_constant:
        problems.append("constant")
    return replace(fq, problems=tuple(problems), limits=limits)


def with_problems(
    quality: FeatureQuality,
    thresholds: QualityThresholds = QualityThresholds(),
    *,
    reference_constant: bool = False,
    numeric: bool = True,
) -> FeatureQuality:
    """``quality`` with its ``problems`` taken from ``thresholds``, as the checks above do.

    For results measured elsewhere (the live evaluator reads them from window profiles).
    """
    cleared = replace(quality, problems=())
    return _with_problems(cleared, thresholds, ref_constant=reference_constant, numeric=numeric)
