"""Live model quality: a model version's performance setup, and its windows judged as rows.

:func:`performance_setup` is built once at start from the labelled reference (the reference
file with the target column): the model scores the reference (class probabilities or
values), and from those pairs the engine fits what it needs before any label arrives:

* classifiers: a :class:`~inferwatch.estimate.CBPE` (confidence-based estimation; it
  calibrates the scores on the reference);
* regressors: a :class:`~inferwatch.estimate.DLE` (a model of the loss from the inputs
  and the prediction);
* both: an :class:`~inferwatch.concept.ErrorStreamMonitor` whose thresholds are in units
  of the reference's own per-prediction error, tuned to a false-alarm budget.

:func:`performance_rows` turns one window of :class:`~inferwatch.performance_windows.
PerformanceWindows` into :class:`~inferwatch.observation.Evaluation` rows (``test`` says
``realised`` or the estimator) and the JSON the metrics collector publishes:

* ``label_coverage``; realised metrics once the window has ``min_labels`` labels;
* estimated metrics of all of the window's predictions (``test="cbpe"`` or ``"dle"``,
  the band in ``details``);
* ``estimate_gap`` per metric that is both realised and estimated: the realised value
  minus the estimate of exactly the labelled predictions, ``critical`` when the realised
  value falls outside the estimate's band (the estimate assumes P(y|x) unchanged; a gap
  says it changed: concept drift);
* per segment value, the realised headline metrics (``feature`` is ``column=value``);
* fairness gaps across the protected attribute (``feature`` is the attribute).

Engine layer: numpy, the core and the model port only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from inferwatch.evaluate._reference import _plain
from inferwatch.observation import Evaluation, EvaluationStatus
from inferwatch.performance import ClassificationSummary, RegressionSummary, class_indices
from inferwatch.performance_windows import (
    PerformanceSetup,
    WindowPerformance,
)

if TYPE_CHECKING:
    from inferwatch.estimate import Estimate
    from inferwatch.ports import ModelAdapter
    from inferwatch.schema import Schema

__all__ = [
    "ESTIMATED_METRICS",
    "HEADLINE_METRICS",
    "performance_rows",
    "performance_setup",
    "recompute_windows",
]

log = logging.getLogger("inferwatch.evaluate")

#: the metrics shown per segment (all metrics are shown for the whole window)
HEADLINE_METRICS = {
    "classification": ("accuracy", "f1", "roc_auc"),
    "regression": ("mae", "rmse"),
}
#: what each task's estimator estimates
ESTIMATED_METRICS = {
    "classification": ("accuracy", "precision", "recall", "f1", "roc_auc"),
    "regression": ("mae", "rmse"),
}
#: reference rows the model scores at start to fit the estimators
MAX_FIT_ROWS = 50_000

Columns = Mapping[str, npt.NDArray[Any]]


def _score(
    adapter: ModelAdapter, names: Sequence[str], columns: Columns, rows: npt.NDArray[np.intp]
) -> tuple[list[Any], list[Mapping[str, float] | None], list[float | None]]:
    values: list[Any] = []
    probs: list[Mapping[str, float] | None] = []
    scores: list[float | None] = []
    for lo in range(0, len(rows), 1000):
        chunk = rows[lo : lo + 1000]
        instances = [{k: _plain(columns[k][i]) for k in names} for i in chunk]
        for pred in adapter.predict(instances):
            values.append(pred.value)
            probs.append(pred.probabilities)
            scores.append(pred.score)
    return values, probs, scores


def _encode(
    columns: Columns, names: Sequence[str], rows: npt.NDArray[np.intp]
) -> tuple[npt.NDArray[np.float64], dict[str, dict[str, float]]]:
    """Inputs as a float matrix for the loss model; categories as codes (kept for live)."""
    x = np.full((len(rows), len(names)), np.nan)
    categories: dict[str, dict[str, float]] = {}
    for j, name in enumerate(names):
        col = np.asarray(columns[name])[rows]
        if col.dtype.kind in "biuf":
            x[:, j] = col.astype(np.float64)
            continue
        codes: dict[str, float] = {}
        for i, v in enumerate(col):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            x[i, j] = codes.setdefault(str(v), float(len(codes)))
        categories[name] = codes
    return x, categories


def performance_setup(
    model: str,
    version: str,
    schema: Schema,
    reference: Columns,
    adapter: ModelAdapter,
    *,
    task: Literal["classification", "regression"] | None = None,
    positive: str | None = None,
    segments: Sequence[str] = (),
    max_segment_values: int = 20,
    protected: str | None = None,
    false_alarm_budget: int = 100_000,
    estimate: bool = True,
    seed: int = 0,
    fairness_difference: float = 0.1,
    fairness_ratio: float = 0.8,
) -> PerformanceSetup | None:
    """The performance setup of one model version from its labelled reference.

    Needs the schema's target column in ``reference`` (None, logged, when it is absent or
    the model fails on the reference).  ``estimate=False`` skips the estimators.
    """
    from inferwatch.concept import ErrorStreamMonitor
    from inferwatch.performance_windows import score_matrix

    target = schema.target
    if target is None or target.name not in reference:
        log.info("model %s version %s: no target in the reference, no performance", model, version)
        return None
    names = [f.name for f in schema.features if f.name in reference]
    y_all = np.asarray(reference[target.name])
    n = len(y_all)
    rows = np.arange(n)
    if n > MAX_FIT_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(n, MAX_FIT_ROWS, replace=False))
    try:
        values, probs, scores = _score(adapter, names, reference, rows)
    except Exception as exc:  # any model failure: serve it, without model quality
        log.warning("model %s version %s could not score its reference (%s)", model, version, exc)
        return None
    y_ref = [_plain(v) for v in y_all[rows]]
    if task is None:
        task = "classification" if adapter.classes or target.task == "classification" else None
    if task is None:
        task = "regression" if target.task == "regression" else None
    if task is None:
        log.info("model %s version %s: task unknown, no performance", model, version)
        return None
    if task == "classification":
        classes = tuple(
            adapter.classes or target.classes or sorted({str(v) for v in y_ref if v is not None})
        )
        setup = PerformanceSetup(
            model, version, "classification", classes=classes, positive=positive,
            segments=tuple(segments), max_segment_values=max_segment_values, protected=protected,
            fairness_difference=fairness_difference, fairness_ratio=fairness_ratio,
        )  # fmt: skip
        y_pred = class_indices(classes, [None if v is None else str(v) for v in values])
        y_true = class_indices(classes, [None if v is None else str(v) for v in y_ref])
        ok = (y_true >= 0) & (y_pred >= 0)
        errors = (y_true[ok] != y_pred[ok]).astype(np.float64)
        if estimate:
            from inferwatch.estimate import CBPE

            matrix = score_matrix(probs, scores, y_pred, classes)
            if matrix is not None:
                good = ok & np.isfinite(matrix).all(axis=1)
                try:
                    setup.cbpe = CBPE.fit(
                        classes, y_true[good], y_pred[good], matrix[good], positive=positive,
                        seed=seed,
                    )  # fmt: skip
                except ValueError as exc:
                    log.warning("model %s version %s: no estimation (%s)", model, version, exc)
    else:
        setup = PerformanceSetup(
            model, version, "regression", segments=tuple(segments),
            max_segment_values=max_segment_values,
        )  # fmt: skip
        pred = np.array([np.nan if v is None else float(v) for v in values])
        true = np.array([np.nan if v is None else float(v) for v in y_ref])
        ok = np.isfinite(pred) & np.isfinite(true)
        errors = np.abs(true[ok] - pred[ok])
        if estimate and ok.sum() >= 50:
            from inferwatch.estimate import DLE

            x, categories = _encode(reference, names, rows)
            setup.features = tuple(names)
            setup.categories = categories
            setup.dle = DLE.fit(x[ok], pred[ok], true[ok], seed=seed)
    if errors.size >= 30:
        try:
            setup.detector = ErrorStreamMonitor.from_reference(
                errors, false_alarm_budget=false_alarm_budget
            )
        except ValueError as exc:  # e.g. no error at all on the reference: nothing to scale by
            log.info("model %s version %s: no stream detectors (%s)", model, version, exc)
    return setup


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _finite(x: float) -> bool:
    return isinstance(x, float | int) and math.isfinite(x)


def _estimates(
    setup: PerformanceSetup,
    summary: ClassificationSummary | RegressionSummary,
    losses: Any,
    memo: dict[Any, Any] | None = None,
    key: str = "all",
) -> dict[str, Estimate]:
    """The setup's estimate of the predictions ``summary`` observed.

    ``memo`` keeps the last estimate under ``key`` with the number of predictions it was
    made of: an estimate depends on the predictions only, so a window whose labels change
    while its predictions do not is not estimated again (a CBPE estimate simulates label
    draws: tens of milliseconds for two classes, hundreds for ten)."""
    if memo is not None:
        seen = memo.get(key)
        if seen is not None and seen[0] == summary.n_predictions:
            return seen[1]  # type: ignore[no-any-return]
    out = _estimate(setup, summary, losses)
    if memo is not None:
        memo[key] = (summary.n_predictions, out)
    return out


def _estimate(
    setup: PerformanceSetup, summary: ClassificationSummary | RegressionSummary, losses: Any
) -> dict[str, Estimate]:
    if setup.cbpe is not None and isinstance(summary, ClassificationSummary):
        if summary.n_predictions == 0:
            return {}
        return setup.cbpe.estimate_marginals(summary.scored_counts, summary.scored_sums)
    if setup.dle is not None and losses[0] > 0:
        return setup.dle.estimate_sums(int(losses[0]), float(losses[1]), float(losses[2]))
    return {}


def performance_rows(
    setup: PerformanceSetup,
    start: float,
    end: float,
    window: WindowPerformance,
    *,
    evaluated_at: float,
    min_labels: int = 30,
    min_predictions: int = 30,
    gap_tolerance: float = 0.02,
    memo: dict[Any, Any] | None = None,
) -> tuple[list[Evaluation], dict[str, Any]]:
    """The evaluation rows of one window and its JSON form (module docstring).

    ``gap_tolerance``: a realised value within this distance of the estimate is never a
    reconciliation finding, however narrow the band (bands shrink as windows grow, while
    the estimator's bias under covariate shift does not).  ``memo``: a dict kept per
    window by the caller, so unchanged predictions are not estimated again.
    """
    rows: list[Evaluation] = []
    now = _dt(evaluated_at)

    def row(metric: str, value: float, status: EvaluationStatus = "ok", **fields: Any) -> None:
        rows.append(
            Evaluation(
                model=setup.model, version=setup.version, window_start=_dt(start),
                window_end=_dt(end), evaluated_at=now, metric=metric, value=float(value),
                status=status, **fields,
            )
        )  # fmt: skip

    summary = window.summary
    out: dict[str, Any] = {
        "window": {"start": start, "end": end, "evaluated_at": evaluated_at},
        "task": setup.task,
        "predictions": summary.n_predictions,
        "labelled": summary.n_labelled,
        "label_coverage": summary.label_coverage,
        "realised": None,
        "estimated": None,
        "reconciliation": None,
        "segments": {},
        "fairness": None,
    }
    if summary.n_predictions == 0 and summary.n_labelled == 0:
        return rows, out
    row("label_coverage", summary.label_coverage, details={"labelled": summary.n_labelled,
        "predictions": summary.n_predictions})  # fmt: skip
    realised: dict[str, float] | None = None
    if summary.n_labelled >= min_labels:
        realised = (
            summary.metrics(setup.positive)
            if isinstance(summary, ClassificationSummary)
            else summary.metrics()
        )
        for name, value in realised.items():
            if name in {"label_coverage", "labelled"} or not _finite(value):
                continue
            row(name, value, test="realised", details={"labelled": summary.n_labelled})
        out["realised"] = realised
        if isinstance(summary, ClassificationSummary):
            out["confusion_matrix"] = summary.confusion_matrix().tolist()
            out["classes"] = list(summary.classes)
    if summary.n_predictions >= min_predictions:
        estimated = _estimates(setup, summary, window.losses, memo, "all")
        if estimated:
            out["estimated"] = {k: _estimate_dict(e) for k, e in estimated.items()}
            for name, est in estimated.items():
                if _finite(est.value):
                    row(name, est.value, test=est.method, details=_estimate_dict(est))
    if realised is not None:
        on_labelled = _estimates(setup, window.labelled, window.labelled_losses, memo, "labelled")
        recon: dict[str, Any] = {}
        for name, est in on_labelled.items():
            value = realised.get(name, math.nan)
            if not (_finite(value) and _finite(est.value)):
                continue
            # a gap inside the band, or smaller than the tolerance (CBPE's own bias under
            # covariate shift is a few points at most), is not a finding
            inside = est.contains(value) or abs(value - est.value) <= gap_tolerance
            recon[name] = {
                "realised": value,
                "estimated": est.value,
                "lower": est.lower,
                "upper": est.upper,
                "gap": value - est.value,
                "concept_drift_suspected": not inside,
            }
            row(
                "estimate_gap", value - est.value, "ok" if inside else "critical",
                feature=name, test=est.method,
                threshold=max(est.upper - est.value, est.value - est.lower, gap_tolerance),
                details=recon[name],
            )  # fmt: skip
        out["reconciliation"] = recon or None
    headline = HEADLINE_METRICS[setup.task]
    for column, by_value in window.segments.items():
        seg_out: dict[str, Any] = {}
        for seg_value, seg in by_value.items():
            entry: dict[str, Any] = {"predictions": seg.n_predictions, "labelled": seg.n_labelled}
            if seg.n_labelled >= min_labels:
                m = (
                    seg.metrics(setup.positive)
                    if isinstance(seg, ClassificationSummary)
                    else seg.metrics()
                )
                entry["realised"] = {k: m[k] for k in headline if k in m}
                for k in headline:
                    if _finite(m.get(k, math.nan)):
                        row(k, m[k], feature=f"{column}={seg_value}", test="realised",
                            details={"labelled": seg.n_labelled, "segment": column})  # fmt: skip
            seg_out[seg_value] = entry
        out["segments"][column] = seg_out
    if window.fairness is not None and setup.protected is not None:
        from inferwatch.fairness import assess

        results = assess(
            window.fairness,
            difference_threshold=setup.fairness_difference,
            ratio_threshold=setup.fairness_ratio,
        )
        out["fairness"] = {
            "attribute": setup.protected,
            "results": [_fairness_dict(r) for r in results],
        }
        for r in results:
            if not _finite(r.value):
                continue
            row(
                r.metric, r.value, "critical" if r.verdict == "unfair" else "ok",
                feature=setup.protected, threshold=r.threshold, test="fairness",
                details=_fairness_dict(r),
            )  # fmt: skip
    return rows, out


def _estimate_dict(e: Estimate) -> dict[str, Any]:
    return {
        "value": e.value,
        "lower": e.lower,
        "upper": e.upper,
        "coverage": e.coverage,
        "method": e.method,
    }


def _fairness_dict(r: Any) -> dict[str, Any]:
    return dict(r.to_dict())  # plain JSON: NaN as null


def detection_rows(detections: Sequence[Any], *, window_seconds: float) -> list[Evaluation]:
    """Stream detections as ``concept_drift`` rows (``critical``), one per detector and
    model version for each batch handed in: a real change fires a burst of detections
    as the detector's window shrinks and grows again, and one row (with the count, the
    first and last positions) says it once.  ``value`` is the first position."""
    from inferwatch.windows import window_start

    groups: dict[tuple[str, str, str], list[Any]] = {}
    for d in detections:
        groups.setdefault((d.model, d.version, d.detector), []).append(d)
    out = []
    for (model, version, detector), hits in groups.items():
        first, last = hits[0], hits[-1]
        start = window_start(first.at, window_seconds)
        out.append(
            Evaluation(
                model=model, version=version, window_start=_dt(start),
                window_end=_dt(start + window_seconds), evaluated_at=_dt(last.at),
                metric="concept_drift", value=float(first.position), status="critical",
                test=detector,
                details={"detections": len(hits), "first_position": first.position,
                         "last_position": last.position, **dict(last.details)},
            )
        )  # fmt: skip
    return out


def recompute_windows(
    pages: Iterable[Mapping[str, Sequence[Any]]],
    setup: PerformanceSetup,
    *,
    window_seconds: float,
) -> dict[float, ClassificationSummary | RegressionSummary]:
    """Windowed performance recomputed from scratch from stored labelled predictions.

    ``pages`` are the store's ``labelled_columns`` pages (``ts`` prediction time in epoch
    seconds, ``output``, ``score``, ``probabilities``, ``label``).  Returns one summary per
    window start (by prediction time) holding the labelled predictions: what the live
    windows hold for windows past their retention, or after a restart.  Vectorised per page.
    """
    from inferwatch.performance_windows import class_positions, score_matrix

    lookup = {c: i for i, c in enumerate(setup.classes)}
    out: dict[float, ClassificationSummary | RegressionSummary] = {}
    for page in pages:
        ts = np.asarray(page["ts"], dtype=np.float64)
        if ts.size == 0:
            continue
        starts = np.floor(ts / window_seconds) * window_seconds
        if setup.task == "classification":
            y_pred = class_positions(lookup, page["output"])
            y_true = class_positions(lookup, page["label"])
            matrix = score_matrix(page["probabilities"], page["score"], y_pred, setup.classes)
        else:
            pred = np.array([np.nan if v is None else float(v) for v in page["output"]])
            true = np.array([np.nan if v is None else float(v) for v in page["label"]])
        uniq, inverse = np.unique(starts, return_inverse=True)
        for i, start in enumerate(uniq):
            pick = inverse == i
            summary = out.get(float(start))
            if summary is None:
                summary = out[float(start)] = setup.new_summary()
            if isinstance(summary, ClassificationSummary):
                sub = None if matrix is None else matrix[pick]
                summary.observe(y_pred[pick], sub)
                summary.add_labels(y_true[pick], y_pred[pick], sub)
            else:
                summary.observe(pred[pick])
                summary.add_labels(true[pick], pred[pick])
    return out
