"""Multivariate drift for batch reports: a domain classifier and PCA reconstruction error.

Per-feature tests miss a change in how features move *together* (a correlation that
flips sign leaves every marginal intact).  Two checks look at the joint distribution,
both on the same random row sample of each side (:func:`sample_matrix`):

**Domain classifier** (:func:`domain_classifier`).  A model learns to tell reference rows
(label 0) from current rows (label 1); its stratified k-fold cross-validated ROC AUC is
the statistic: 0.5 means the sets cannot be told apart, 1.0 that every row gives its
origin away.  The model is scikit-learn's ``HistGradientBoostingClassifier``: it takes
NaN natively (missingness itself can separate the sets, no imputation hides it),
handles categories natively, needs no scaling, and bins features into at most 255
values, so three folds on 40,000 rows x 25 features take about 2 s on one core; it is
NannyML's choice (LightGBM) without the extra dependency.  The larger side is
subsampled to the size of the smaller, so AUC is read against balanced classes.

Drift is ``AUC >= threshold`` with threshold 0.55 by default: exactly 0.5 is never seen
(finite samples), and a classifier that ranks a current row above a reference row 55% of
the time is a real but modest difference.  Evidently's text-drift domain classifier flags
AUC above 0.55 (or, with its bootstrap option, above the 95th percentile of a random
scorer's AUC); NannyML's flags AUC outside [0.45, 0.65].  On small samples chance alone
moves AUC by more than 0.05, so the threshold applied is
``max(threshold, 0.5 + 3 sd)`` where ``sd = sqrt((2n + 1) / (12 n^2))`` is the
standard deviation of the Mann-Whitney AUC of a random scorer on n rows per class
(which cross-validated out-of-fold scores follow when nothing drifted); it only binds
below about 600 rows per side (``details["chance_bound"]``).

``top_features`` ranks features by how well each separates the sets *alone*: its
univariate AUC computed from ranks (the Mann-Whitney U divided by n1*n2), scored as
``|AUC - 0.5|`` (0 = no separation, 0.5 = perfect).  It costs one ``rankdata`` per
feature, needs no refit, and reads like the headline AUC, unlike impurity importances
(biased to high-cardinality features) or permutation importances (many refits).  Missing
values are ranked at whichever end separates more, so a shift in missingness counts.
Categorical codes have no order, so a category is scored by its current share and the
AUC is that of the best ordering (optimistic for many rare categories).  A feature that
only matters jointly (the correlation flip) scores near 0 here by design: the headline
AUC catches it, the ranking explains shifts that are visible one feature at a time.

**PCA reconstruction error** (:func:`pca_reconstruction`, NannyML's "data
reconstruction drift").  Features are imputed with reference medians and standardised
with reference means and deviations; a PCA fitted on the reference keeps the components
explaining ``variance`` (0.65, NannyML's default) of it; a row's error is the Euclidean
distance to its reconstruction, and the statistic is the current sample's mean error.
The threshold comes from the reference itself, as NannyML does: the reference sample is
cut into ``chunks`` chunks in file order (a time-ordered reference so contributes its own
variation over time), and drift is a current error outside ``mean +- 3 std`` of the chunk
errors (a lower error also means the structure changed).  Unlike NannyML, each chunk is
scored by a PCA fitted on the *other* chunks, so the reference errors are out-of-sample
like the current's; in-sample errors are biased low, which on small references makes
every current batch look drifted.

Categorical features enter the matrix as ordinal codes over the union of both sides'
categories, ordered by reference frequency (then current-only categories): every
category keeps its own code (frequency encoding merges categories of equal frequency), a
category the reference never had lies beyond all reference codes (one split isolates
it), and the order gives PCA a meaningful axis (common to rare).  Missing is NaN.

Both run on one thread.  On an idle 2-core machine the classifier at 20,000 rows a
side takes about 2.2 s on one thread and 1.9-2.3 s on two, but 28-70 s on two when other
processes compete for the cores: OpenMP and BLAS workers spin while they wait, which
scikit-learn#30662 documents for HistGradientBoosting on small and medium data.  A
shared CI runner, where ``inferwatch check`` lives, is that second machine.

scikit-learn and scipy are imported inside the functions that need them, so
``inferwatch report`` without ``--multivariate`` never loads them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from inferwatch._threads import one_thread
from inferwatch.evaluate import MultivariateResult
from inferwatch.report._load import _f64, _is_numeric, _plain

if TYPE_CHECKING:
    from inferwatch.io import ColumnSource
    from inferwatch.report._load import LoadedData
    from inferwatch.schema import Schema

__all__ = ["domain_classifier", "multivariate", "pca_reconstruction", "sample_matrix"]

Matrix = npt.NDArray[np.float64]

MIN_ROWS = 50  # per side, below which neither method says anything useful
MIN_FEATURES = 2  # one feature is a univariate test, already in the report
TOP_FEATURES = 5
AUC_THRESHOLD = 0.55  # see the module docstring
CHANCE_SIGMAS = 3.0  # the AUC a random scorer exceeds with probability ~0.1%
MAX_ITER = 100
NATIVE_CATEGORIES = 255  # HistGradientBoosting's limit for native categorical splits
_KINDS = ("numeric", "boolean", "categorical")


def sample_matrix(
    source_ref: ColumnSource,
    source_cur: ColumnSource,
    schema: Schema,
    *,
    max_rows: int = 20_000,
    seed: int = 0,
) -> tuple[Matrix, Matrix, list[str]]:
    """The same random rows of every numeric, boolean and categorical feature, per side.

    At most ``max_rows`` rows of each side, drawn without replacement and kept in file
    order; features absent from either side are left out.  Numbers are float64 with NaN
    for missing (and for infinities), booleans 0/1, categories ordinal codes shared by
    both sides (see the module docstring).
    """
    rng = np.random.default_rng(seed)
    rows_ref = _rows(source_ref.n_rows, max_rows, rng)
    rows_cur = _rows(source_cur.n_rows, max_rows, rng)
    names: list[str] = []
    cols_ref: list[Matrix] = []
    cols_cur: list[Matrix] = []
    for feature in schema.features:
        if feature.kind not in _KINDS:
            continue
        if feature.name not in source_ref.names or feature.name not in source_cur.names:
            continue
        ref = _plain(source_ref.read(feature.name).take(rows_ref))
        cur = _plain(source_cur.read(feature.name).take(rows_cur))
        numbers = feature.kind == "numeric" or (_numberlike(ref) and _numberlike(cur))
        if feature.kind == "categorical" or not numbers:
            a, b = _codes(ref, cur)
        else:
            a, b = _numbers(ref), _numbers(cur)
        names.append(feature.name)
        cols_ref.append(a)
        cols_cur.append(b)
    return _stack(cols_ref, len(rows_ref)), _stack(cols_cur, len(rows_cur)), names


def _rows(n: int, max_rows: int, rng: np.random.Generator) -> pa.Array:
    if n <= max_rows:
        return pa.array(np.arange(n, dtype=np.int64))
    return pa.array(np.sort(rng.choice(n, size=max_rows, replace=False)))


def _stack(cols: list[Matrix], n: int) -> Matrix:
    return np.column_stack(cols) if cols else np.empty((n, 0), dtype=np.float64)


def _numberlike(col: pa.ChunkedArray) -> bool:
    t = col.type
    return _is_numeric(t) or pa.types.is_boolean(t) or pa.types.is_null(t)


def _numbers(col: pa.ChunkedArray) -> Matrix:
    """float64, NaN for missing, infinite and (in a text column) unparsable values."""
    if pa.types.is_null(col.type):
        return np.full(len(col), np.nan)
    if _numberlike(col):
        x = np.array(_f64(col), dtype=np.float64)  # a writable copy of the Arrow buffer
    else:  # text where numbers were expected (mismatched files): parse what parses
        x = np.array([_float(v) for v in col.to_pylist()], dtype=np.float64)
    x[~np.isfinite(x)] = np.nan
    return x


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _labels(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Category labels as strings, as the per-feature tests see them (1.0 and 1 agree)."""
    if pa.types.is_boolean(col.type):
        return pc.if_else(col, "True", "False")
    if pa.types.is_floating(col.type):
        col = pc.if_else(pc.equal(pc.floor(col), col), col.cast(pa.int64(), safe=False), col)
    if pa.types.is_string(col.type):
        return col
    return col.cast(pa.string())


def _codes(ref: pa.ChunkedArray, cur: pa.ChunkedArray) -> tuple[Matrix, Matrix]:
    """Ordinal codes over both sides' categories, most frequent in the reference first."""
    ref, cur = _labels(ref), _labels(cur)
    order: dict[str, None] = {}
    for col in (ref, cur):
        vc = pc.value_counts(col)
        pairs = zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True)
        for value, _ in sorted(((v, c) for v, c in pairs if v is not None), key=_by_count):
            order.setdefault(value)
    categories = pa.array(list(order), type=pa.string())
    code_ref = _f64(pc.index_in(ref, value_set=categories))
    return code_ref, _f64(pc.index_in(cur, value_set=categories))


def _by_count(pair: tuple[str, int]) -> tuple[int, str]:
    return -pair[1], pair[0]


# --- the domain classifier ------------------------------------------------------------------


def domain_classifier(
    X_ref: Matrix,
    X_cur: Matrix,
    names: Sequence[str],
    *,
    categorical: Sequence[str] = (),
    threshold: float = AUC_THRESHOLD,
    folds: int = 3,
    seed: int = 0,
) -> MultivariateResult:
    """Cross-validated ROC AUC of a model telling current rows from reference rows.

    ``categorical`` names the columns that hold category codes: the model splits them as
    categories (up to 255 of them) and ``top_features`` scores them order-free.
    """
    method = "domain_classifier"
    reason = _skip_reason(X_ref, X_cur, names)
    if reason is not None:
        return _skipped(method, threshold, reason)
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    rng = np.random.default_rng(seed)
    n = min(len(X_ref), len(X_cur))
    ref, cur = _subsample(X_ref, n, rng), _subsample(X_cur, n, rng)
    X = np.vstack([ref, cur])
    y = np.repeat(np.array([0, 1]), n)
    cats = set(categorical)
    is_cat = np.array([name in cats for name in names])
    native = is_cat & (np.nan_to_num(X, nan=0.0).max(axis=0, initial=0) < NATIVE_CATEGORIES)
    model = HistGradientBoostingClassifier(
        max_iter=MAX_ITER,
        early_stopping=False,
        categorical_features=native if native.any() else None,
        random_state=seed,
    )
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with one_thread(blas=True):
        aucs = cross_val_score(model, X, y, cv=cv, scoring="roc_auc", error_score="raise")
    auc = float(np.mean(aucs))
    chance = 0.5 + CHANCE_SIGMAS * math.sqrt((2 * n + 1) / (12 * n * n))
    applied = max(threshold, chance)
    scores = {
        name: abs(_feature_auc(ref[:, j], cur[:, j], bool(is_cat[j])) - 0.5)
        for j, name in enumerate(names)
    }
    top = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_FEATURES]
    return MultivariateResult(
        method=method,
        statistic=auc,
        threshold=applied,
        drift_detected=auc >= applied,
        details={
            "auc": auc,
            "auc_folds": [float(a) for a in aucs],
            "top_features": dict(top),
            "top_features_score": "|univariate AUC - 0.5| per feature",
            "n_reference_sampled": n,
            "n_current_sampled": n,
            "n_features": len(names),
            "folds": folds,
            "chance_bound": chance,
            "model": f"HistGradientBoostingClassifier(max_iter={MAX_ITER})",
        },
    )


def _subsample(X: Matrix, n: int, rng: np.random.Generator) -> Matrix:
    if len(X) == n:
        return X
    return X[np.sort(rng.choice(len(X), size=n, replace=False))]


def _rank_auc(a: Matrix, b: Matrix) -> float:
    """P(a current value ranks above a reference value), ties counting half: U / (n1 n2)."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([a, b]))
    n0, n1 = len(a), len(b)
    return float((ranks[n0:].sum() - n1 * (n1 + 1) / 2) / (n0 * n1))


def _feature_auc(a: Matrix, b: Matrix, categorical: bool) -> float:
    """One feature's AUC alone; missing at whichever end separates more (see module doc)."""
    if categorical:
        codes = np.nan_to_num(np.concatenate([a, b]), nan=-1.0)
        _, inverse = np.unique(codes, return_inverse=True)
        n_ref = np.bincount(inverse[: len(a)], minlength=inverse.max() + 1)
        n_cur = np.bincount(inverse[len(a) :], minlength=inverse.max() + 1)
        share = n_cur / (n_ref + n_cur)  # every category occurs on some side
        score = share[inverse]
        return _rank_auc(score[: len(a)], score[len(a) :])
    aucs = [
        _rank_auc(np.nan_to_num(a, nan=fill), np.nan_to_num(b, nan=fill))
        for fill in (-np.inf, np.inf)
    ]
    return max(aucs, key=lambda x: abs(x - 0.5))


# --- PCA reconstruction error ---------------------------------------------------------------


def pca_reconstruction(
    X_ref: Matrix,
    X_cur: Matrix,
    names: Sequence[str],
    *,
    variance: float = 0.65,
    chunks: int = 10,
    seed: int = 0,
) -> MultivariateResult:
    """Mean reconstruction error of the current rows under a PCA of the reference."""
    method = "pca_reconstruction"
    if not 0 < variance < 1:
        raise ValueError(f"variance must be in (0, 1), got {variance}")
    if chunks < 2:
        raise ValueError(f"chunks must be at least 2, got {chunks}")
    reason = _skip_reason(X_ref, X_cur, names)
    if reason is not None:
        return _skipped(method, math.nan, reason)
    z_ref, z_cur = _standardise(X_ref, X_cur)
    if z_ref.shape[1] < MIN_FEATURES:
        return _skipped(method, math.nan, "fewer than 2 features vary in the reference")
    from sklearn.decomposition import PCA

    def fit(Z: Matrix) -> Any:
        return PCA(n_components=variance, svd_solver="full", random_state=seed).fit(Z)

    with one_thread(blas=True):
        pca = fit(z_ref)
        error = float(_errors(pca, z_cur).mean())
        parts = np.array_split(np.arange(len(z_ref)), chunks)
        chunk_errors = np.array([_held_out_error(fit, z_ref, part) for part in parts])
    mean, std = float(chunk_errors.mean()), float(chunk_errors.std(ddof=1))
    lower, upper = max(0.0, mean - 3 * std), mean + 3 * std
    return MultivariateResult(
        method=method,
        statistic=error,
        threshold=upper,
        drift_detected=not lower <= error <= upper,
        details={
            "n_components": int(pca.n_components_),
            "variance": variance,
            "explained_variance": float(pca.explained_variance_ratio_.sum()),
            "reference_error": mean,
            "reference_error_std": std,
            "lower": lower,
            "upper": upper,
            "chunks": chunks,
            "n_features": int(z_ref.shape[1]),
            "n_reference_sampled": len(z_ref),
            "n_current_sampled": len(z_cur),
        },
    )


def _standardise(X_ref: Matrix, X_cur: Matrix) -> tuple[Matrix, Matrix]:
    """Impute reference medians, scale by reference mean/std; drop constant columns."""
    seen = ~np.isnan(X_ref).all(axis=0)
    ref, cur = X_ref[:, seen], X_cur[:, seen]
    median = np.nanmedian(ref, axis=0)
    ref = np.where(np.isnan(ref), median, ref)
    cur = np.where(np.isnan(cur), median, cur)
    mean, std = ref.mean(axis=0), ref.std(axis=0)
    varies = std > 1e-12 * np.maximum(np.abs(mean), 1.0)
    return (
        (ref[:, varies] - mean[varies]) / std[varies],
        (cur[:, varies] - mean[varies]) / std[varies],
    )


def _errors(pca: Any, Z: Matrix) -> Matrix:
    residual = Z - pca.inverse_transform(pca.transform(Z))
    return np.asarray(np.linalg.norm(residual, axis=1), dtype=np.float64)


def _held_out_error(fit: Callable[[Matrix], Any], Z: Matrix, part: npt.NDArray[np.intp]) -> float:
    rest = np.ones(len(Z), dtype=bool)
    rest[part] = False
    return float(_errors(fit(Z[rest]), Z[part]).mean())


# --- both, on a report's data ---------------------------------------------------------------


def multivariate(
    data: LoadedData, *, seed: int = 0, max_rows: int = 20_000
) -> tuple[MultivariateResult, ...]:
    """Both methods on a sample of the loaded files (skipped results when too little data)."""
    ref_src, cur_src = data.reference.source, data.current.source
    if min(ref_src.n_rows, cur_src.n_rows) < MIN_ROWS:
        return _skip_both(
            f"fewer than {MIN_ROWS} rows on a side "
            f"(reference {ref_src.n_rows}, current {cur_src.n_rows})"
        )
    X_ref, X_cur, names = sample_matrix(ref_src, cur_src, data.schema, max_rows=max_rows, seed=seed)
    usable = ~(np.isnan(X_ref).all(axis=0) & np.isnan(X_cur).all(axis=0))
    X_ref, X_cur = X_ref[:, usable], X_cur[:, usable]
    names = [names[i] for i in np.flatnonzero(usable)]
    categorical = [f.name for f in data.schema.features if f.kind == "categorical"]
    return (
        _guarded(
            "domain_classifier",
            lambda: domain_classifier(X_ref, X_cur, names, categorical=categorical, seed=seed),
        ),
        _guarded("pca_reconstruction", lambda: pca_reconstruction(X_ref, X_cur, names, seed=seed)),
    )


def _guarded(method: str, run: Callable[[], MultivariateResult]) -> MultivariateResult:
    """An extra of the report: a failure becomes a skipped result, not a failed report."""
    try:
        return run()
    except (ValueError, np.linalg.LinAlgError) as exc:
        return _skipped(method, math.nan, f"failed: {exc}")


def _skip_reason(X_ref: Matrix, X_cur: Matrix, names: Sequence[str]) -> str | None:
    if len(names) < MIN_FEATURES:
        return f"fewer than {MIN_FEATURES} usable features ({len(names)})"
    if min(len(X_ref), len(X_cur)) < MIN_ROWS:
        return (
            f"fewer than {MIN_ROWS} rows on a side (reference {len(X_ref)}, current {len(X_cur)})"
        )
    return None


def _skipped(method: str, threshold: float, reason: str) -> MultivariateResult:
    return MultivariateResult(method, math.nan, threshold, False, {"skipped": reason})


def _skip_both(reason: str) -> tuple[MultivariateResult, ...]:
    return (
        _skipped("domain_classifier", AUC_THRESHOLD, reason),
        _skipped("pca_reconstruction", math.nan, reason),
    )
