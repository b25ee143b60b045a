"""Batch drift evaluation: every column of the current data against the reference, once.

Engine layer: it takes columns already read (numeric values as float64 arrays, category
columns as :class:`~inferwatch.stats.Counts`) and returns a :class:`DriftReport`; the
readers in ``inferwatch.report`` do the file work.  Each numeric column is sorted once
(``quality.split_numeric``); the drift tests and quality checks read the sorted arrays,
and columns are spread over a small thread pool (numpy's sort and search release the GIL).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

from inferwatch.evaluate._results import ColumnDrift, DriftOptions, DriftReport, MultivariateResult
from inferwatch.quality import (
    CategoricalReference,
    FeatureQuality,
    NumericReference,
    categorical_quality,
    dataset_quality,
    numeric_quality,
    split_numeric,
)
from inferwatch.schema import Schema
from inferwatch.stats import (
    CORRECTIONS,
    Counts,
    DriftInputError,
    DriftResult,
    counts_from_values,
    default_test,
    get,
)

__all__ = ["CategoricalColumn", "ColumnInput", "NumericColumn", "SortedColumn", "evaluate_batch"]

CATEGORICAL_KINDS = frozenset({"categorical", "boolean"})
Role = Literal["feature", "prediction", "target"]


@dataclass(frozen=True, slots=True)
class NumericColumn:
    """Raw numeric values (NaN = missing); ``type_violations``: values that were not numbers."""

    values: npt.NDArray[np.float64]
    type_violations: int = 0


@dataclass(frozen=True, slots=True)
class SortedColumn:
    """A numeric column already split by :func:`~inferwatch.quality.split_numeric`:
    sorted finite values plus the missing and non-finite counts (what readers produce)."""

    sorted_finite: npt.NDArray[np.float64]
    missing: int = 0
    non_finite: int = 0
    type_violations: int = 0

    @classmethod
    def of(cls, values: npt.ArrayLike, type_violations: int = 0) -> SortedColumn:
        return cls(*split_numeric(values), type_violations)


@dataclass(frozen=True, slots=True)
class CategoricalColumn:
    """Category counts of a column (missing included)."""

    counts: Counts
    type_violations: int = 0


ColumnInput = NumericColumn | SortedColumn | CategoricalColumn


def _sorted(col: ColumnInput) -> SortedColumn:
    if isinstance(col, SortedColumn):
        return col
    assert isinstance(col, NumericColumn)
    return SortedColumn.of(col.values, col.type_violations)


@dataclass(frozen=True, slots=True)
class _Job:
    """One column to evaluate, with its data (fetched by the worker that evaluates it)."""

    name: str
    kind: str
    role: Role
    reference: ColumnInput | None
    current: ColumnInput | None


@dataclass(frozen=True, slots=True)
class _Spec:
    """A column to evaluate, without its data: the pool's queue holds these, so a lazy
    mapping (a file reader) is read only by the worker that evaluates the column, and at
    most ``workers`` columns of each side are held at once."""

    name: str
    kind: str
    role: Role

    def fetch(
        self, reference: Mapping[str, ColumnInput], current: Mapping[str, ColumnInput]
    ) -> _Job:
        if not _evaluated(self.kind):  # nothing to read: the error needs no data
            return _Job(self.name, self.kind, self.role, None, None)
        return _Job(
            self.name, self.kind, self.role, reference.get(self.name), current.get(self.name)
        )


def _evaluated(kind: str) -> bool:
    return kind in CATEGORICAL_KINDS or kind == "numeric"


def _missing_error(name: str, ref: object, cur: object) -> str:
    sides = [s for s, v in (("reference", ref), ("current", cur)) if v is None]
    return f"column {name!r} is missing from the {' and the '.join(sides)} data"


PLOT_BINS = 30
PLOT_CATEGORIES = 20


def _shares(counts: npt.NDArray[np.int64], total: int) -> list[float]:
    return [float(c) / total if total else 0.0 for c in counts.tolist()]


def _histogram(rs: npt.NDArray[np.float64], cs: npt.NDArray[np.float64]) -> dict[str, object]:
    """Shares of both samples on equal-width bins over the central 99% of both (for plots)."""
    both_lo = min(float(rs[int(0.005 * (len(rs) - 1))]) if len(rs) else np.inf,
                  float(cs[int(0.005 * (len(cs) - 1))]) if len(cs) else np.inf)  # fmt: skip
    both_hi = max(float(rs[int(0.995 * (len(rs) - 1))]) if len(rs) else -np.inf,
                  float(cs[int(0.995 * (len(cs) - 1))]) if len(cs) else -np.inf)  # fmt: skip
    if not np.isfinite(both_lo) or not np.isfinite(both_hi):
        return {"type": "histogram", "edges": [], "reference": [], "current": []}
    if both_hi <= both_lo:
        both_hi = both_lo + 1.0
    edges = np.linspace(both_lo, both_hi, PLOT_BINS + 1)

    def counts(s: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        pos = np.searchsorted(s, edges, side="left")
        pos[-1] = np.searchsorted(s, edges[-1], side="right")
        return np.diff(pos).astype(np.int64)

    return {
        "type": "histogram",
        "edges": edges.tolist(),
        "reference": _shares(counts(rs), len(rs)),
        "current": _shares(counts(cs), len(cs)),
    }


def _bars(ref: Counts, cur: Counts) -> dict[str, object]:
    """Shares of the most frequent categories (reference or current) on both sides."""
    totals: dict[str, int] = {}
    for c in (ref, cur):
        for cat, k in zip(c.categories, c.counts.tolist(), strict=True):
            totals[cat] = totals.get(cat, 0) + int(k)
    top = sorted(totals, key=lambda k: (-totals[k], k))[:PLOT_CATEGORIES]

    def shares(c: Counts) -> list[float]:
        index = dict(zip(c.categories, c.counts.tolist(), strict=True))
        n = c.total
        return [index.get(cat, 0) / n if n else 0.0 for cat in top] + [c.missing / n if n else 0.0]

    return {
        "type": "bars",
        "categories": [*top, "(missing)"],
        "reference": shares(ref),
        "current": shares(cur),
    }


def _unjudged(job: _Job, exc: DriftInputError, quality: FeatureQuality) -> ColumnDrift:
    """A column the drift test could not judge (an all-missing or all-infinite side):
    the error is its verdict, and its quality problems still fail ``check``."""
    message = exc.args[0] if exc.args else str(exc)
    return ColumnDrift(job.name, job.kind, error=str(message), quality=quality, role=job.role)


def _numeric(job: _Job, options: DriftOptions) -> ColumnDrift:
    assert job.reference is not None
    assert job.current is not None
    ref, cur = _sorted(job.reference), _sorted(job.current)
    rs, cs = ref.sorted_finite, cur.sorted_finite
    ref_fit = NumericReference.from_sorted(
        rs, ref.missing, ref.non_finite, iqr_factor=options.quality.iqr_factor
    )
    quality = numeric_quality(
        job.name, cs, cur.missing, cur.non_finite, ref_fit, options.quality,
        kind=job.kind, type_violations=cur.type_violations,
    )  # fmt: skip
    try:
        n_unique = int(np.count_nonzero(np.diff(rs))) + 1 if len(rs) else 0
        name = options.tests.get(job.name) or default_test("numeric", len(rs), n_unique)
        test = get(name)
        threshold = options.thresholds.get(job.name)
        if "numeric" in test.kinds and test.exact is not None:
            # exact tests on finite values take the sorted arrays as they are (no re-sort,
            # no copy); the counts they drop are put back into the details
            result = test.compare(rs, cs, kind="numeric", threshold=threshold)
            details = {
                **result.details,
                "missing_reference": ref.missing,
                "missing_current": cur.missing,
                "non_finite_reference": ref.non_finite,
                "non_finite_current": cur.non_finite,
            }
            result = replace(result, details=details)
        else:  # a numeric column with few values judged as categories
            ref_c = counts_from_values(np.concatenate((rs, np.full(ref.missing, np.nan))))
            cur_c = counts_from_values(np.concatenate((cs, np.full(cur.missing, np.nan))))
            result = test.compare(ref_c, cur_c, kind="categorical", threshold=threshold)
    except DriftInputError as exc:  # no verdict (nothing finite to compare): quality stands
        return _unjudged(job, exc, quality)
    return ColumnDrift(job.name, job.kind, result, None, quality, job.role, _histogram(rs, cs))


def _categorical(job: _Job, options: DriftOptions) -> ColumnDrift:
    ref, cur = job.reference, job.current
    assert ref is not None
    assert cur is not None
    if not isinstance(ref, CategoricalColumn):  # e.g. an int-coded category read as numbers
        ref = CategoricalColumn(_counts_of(_sorted(ref)))
    if not isinstance(cur, CategoricalColumn):
        cur = CategoricalColumn(_counts_of(_sorted(cur)))
    assert isinstance(ref, CategoricalColumn)
    assert isinstance(cur, CategoricalColumn)
    quality = categorical_quality(
        job.name, cur.counts, CategoricalReference.fit(ref.counts), options.quality,
        kind=job.kind, type_violations=cur.type_violations,
    )  # fmt: skip
    try:
        n_ref = int(ref.counts.counts.sum())
        n_unique = int(np.count_nonzero(ref.counts.counts))
        name = options.tests.get(job.name) or default_test("categorical", n_ref, n_unique)
        result = get(name).compare(
            ref.counts, cur.counts, kind="categorical", threshold=options.thresholds.get(job.name)
        )
    except DriftInputError as exc:  # no verdict (nothing present to compare): quality stands
        return _unjudged(job, exc, quality)
    plot = _bars(ref.counts, cur.counts)
    return ColumnDrift(job.name, job.kind, result, None, quality, job.role, plot)


def _counts_of(col: SortedColumn) -> Counts:
    values = np.concatenate((col.sorted_finite, np.full(col.missing, np.nan)))
    return counts_from_values(values)


def _run(job: _Job, options: DriftOptions) -> ColumnDrift:
    if not _evaluated(job.kind):
        return ColumnDrift(
            job.name, job.kind, role=job.role,
            error=f"drift of {job.kind} columns is not computed yet",
        )  # fmt: skip
    if job.reference is None or job.current is None:
        return ColumnDrift(
            job.name, job.kind, error=_missing_error(job.name, job.reference, job.current),
            role=job.role,
        )  # fmt: skip
    try:
        if (
            job.kind in CATEGORICAL_KINDS
            or isinstance(job.reference, CategoricalColumn)
            or isinstance(job.current, CategoricalColumn)
        ):
            return _categorical(job, options)
        return _numeric(job, options)
    except (DriftInputError, KeyError, LookupError) as exc:
        message = exc.args[0] if exc.args else str(exc)
        return ColumnDrift(job.name, job.kind, error=str(message), role=job.role)


def _correct(columns: Sequence[ColumnDrift], method: str) -> list[ColumnDrift]:
    """Adjust p-values across the p-value tests and re-take their verdicts."""
    idx = [
        i for i, c in enumerate(columns) if c.result is not None and c.result.p_value is not None
    ]
    if not idx:
        return list(columns)
    raw = np.array([columns[i].result.p_value for i in idx], dtype=np.float64)  # type: ignore[union-attr]
    adjusted = CORRECTIONS[method](raw)
    out = list(columns)
    for i, p in zip(idx, adjusted.tolist(), strict=True):
        r: DriftResult = columns[i].result  # type: ignore[assignment]
        details = {**r.details, "p_value_raw": r.p_value, "correction": method}
        out[i] = replace(
            columns[i],
            result=replace(
                r, p_value=float(p), drift_detected=bool(p < r.threshold), details=details
            ),
        )
    return out


def evaluate_batch(
    schema: Schema,
    reference: Mapping[str, ColumnInput],
    current: Mapping[str, ColumnInput],
    *,
    n_reference: int,
    n_current: int,
    options: DriftOptions = DriftOptions(),
    duplicates: int = 0,
    extra_columns: Sequence[str] = (),
    newest_timestamp: float | None = None,
    now: float | None = None,
    multivariate: Sequence[MultivariateResult] = (),
    progress: Callable[[str], None] | None = None,
) -> DriftReport:
    """Compare ``current`` with ``reference`` for every schema feature, prediction and target."""
    specs = [_Spec(f.name, f.kind, "feature") for f in schema.features]
    for role, col in (("prediction", schema.prediction), ("target", schema.target)):
        if col is not None and col.name in reference and col.name in current:
            kind = "categorical" if col.task == "classification" else "numeric"
            specs.append(_Spec(col.name, kind, role))  # type: ignore[arg-type]

    def work(spec: _Spec) -> ColumnDrift:
        # read, evaluate, drop: the column's data lives only in this call
        result = _run(spec.fetch(reference, current), options)
        if progress is not None:
            progress(spec.name)
        return result

    workers = options.workers
    if workers is None:
        # Two threads overlap Arrow's reads and numpy's sorts (both release the GIL); each
        # holds only the column it evaluates, so the second costs one column's memory.
        workers = 2
    workers = max(1, min(workers, len(specs)))
    if workers == 1:
        results = [work(j) for j in specs]
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="inferwatch-drift") as pool:
            results = list(pool.map(work, specs))
    features = [r for r in results if r.role == "feature"]
    if options.correction is not None:
        features = _correct(features, options.correction)
    by_role = {r.role: r for r in results if r.role != "feature"}
    missing = [f.name for f in schema.features if f.name not in current]
    quality = dataset_quality(
        n_current,
        [f.quality for f in features if f.quality is not None],
        duplicates=duplicates,
        missing_columns=missing,
        extra_columns=extra_columns,
        newest_timestamp=newest_timestamp,
        now=now,
        thresholds=options.quality,
    )
    if not math.isfinite(options.drift_share) or not 0 < options.drift_share <= 1:
        raise ValueError(f"drift_share must be in (0, 1], got {options.drift_share}")
    return DriftReport(
        features=tuple(features),
        n_reference=n_reference,
        n_current=n_current,
        drift_share_threshold=options.drift_share,
        quality=quality,
        prediction_drift=by_role.get("prediction"),
        target_drift=by_role.get("target"),
        multivariate=tuple(multivariate),
        correction=options.correction,
    )
