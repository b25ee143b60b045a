"""A model's live drift pipeline, built from its reference: bins, profile, windows, evaluator.

:func:`live_target` is what the server's composition root and the library's ``Monitor``
both call to watch one model version live: the reference's bins and profile are built
once, a :class:`~inferwatch.windows.WindowProfiler` profiles the logged rows on those
bins, and a :class:`~inferwatch.evaluate.LiveEvaluator` judges its windows.  It takes
engine-level parameters (:class:`~inferwatch.evaluate.DriftOptions` and plain numbers),
not the adapters' settings.

Prediction drift needs the reference's model outputs, which a reference file does not
hold: with the model's adapter, the model scores the reference once
(:func:`score_reference`), at most :data:`MAX_SCORED_REFERENCE_ROWS` rows (a seeded sample
of a larger reference), in calls of :data:`SCORE_BATCH_ROWS` rows.  Its outputs are
binned and profiled with the reference's inputs, and the live windows profile the logged
outputs on those bins:

* a classifier's predicted class is a categorical column (the counts tests);
* a regressor's predicted value is a numeric column, binned on the reference's
  predictions and judged with the numeric tests and calibration, as any numeric feature;
* a score (``Prediction.score``, the top class probability of classifiers) is a numeric
  ``confidence`` column.

The task decides which: the ``task`` given (forced by the user) wins; else a model that
names its classes is a classifier; else the schema's task; else the task is inferred from
the scored values with the schema inference rule (:func:`inferwatch.schema.infer_task`).
A model that fails on the reference rows is logged and watched without prediction drift.

Engine layer: numpy, the core and the model port only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from inferwatch.evaluate._calibration import CalibrationMode
from inferwatch.evaluate._live import LiveEvaluator
from inferwatch.evaluate._loop import LiveTarget
from inferwatch.evaluate._results import DriftOptions
from inferwatch.windows import (
    CONFIDENCE_COLUMN,
    WindowProfiler,
    output_features,
    output_labels,
    output_numbers,
    prediction_column,
)

if TYPE_CHECKING:
    from inferwatch._typing import Task
    from inferwatch.ports import ModelAdapter
    from inferwatch.schema import Schema

__all__ = [
    "MAX_SCORED_REFERENCE_ROWS",
    "SCORE_BATCH_ROWS",
    "live_target",
    "output_task",
    "score_reference",
]

#: at most this many reference rows are scored at start for prediction drift
MAX_SCORED_REFERENCE_ROWS = 20_000
#: reference rows per ``adapter.predict`` call when scoring the reference
SCORE_BATCH_ROWS = 1_000

log = logging.getLogger("inferwatch.evaluate")

Columns = Mapping[str, npt.NDArray[Any]]


def _n_unique(values: npt.NDArray[Any]) -> int:
    arr = np.asarray(values, dtype=np.float64)
    return int(np.unique(arr[np.isfinite(arr)]).size)


def _plain(value: Any) -> Any:
    """A reference cell as a request would bring it: Python scalars, None for missing."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def score_reference(
    adapter: ModelAdapter,
    schema: Schema,
    reference: Columns,
    *,
    max_rows: int = MAX_SCORED_REFERENCE_ROWS,
    batch_rows: int = SCORE_BATCH_ROWS,
    seed: int = 0,
) -> tuple[dict[str, npt.NDArray[Any]], list[Any], list[float | None]]:
    """The model's outputs on (at most ``max_rows`` of) the reference rows.

    Returns the scored rows' input columns (all of them, or a seeded sample of
    ``max_rows`` rows in reference order), their predicted values and their scores.
    Raises whatever the model raises, and ValueError when it answers a different number
    of rows than it was given.
    """
    n = len(next(iter(reference.values()))) if reference else 0
    rows = np.arange(n)
    if n > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(n, max_rows, replace=False))
    names = [f.name for f in schema.features if f.name in reference]
    sample = {k: np.asarray(v)[rows] for k, v in reference.items()}
    values: list[Any] = []
    scores: list[float | None] = []
    for lo in range(0, len(rows), batch_rows):
        chunk = {k: sample[k][lo : lo + batch_rows] for k in names}
        size = len(rows[lo : lo + batch_rows])
        instances = [{k: _plain(chunk[k][i]) for k in names} for i in range(size)]
        for pred in adapter.predict(instances):
            values.append(pred.value)
            scores.append(None if pred.score is None else float(pred.score))
    if len(values) != len(rows):
        raise ValueError(f"the model gave {len(values)} predictions for {len(rows)} rows")
    return sample, values, scores


def output_task(
    values: list[Any],
    schema: Schema,
    adapter: ModelAdapter | None = None,
    task: Task | None = None,
) -> Task | None:
    """The task of a model's outputs (module docstring): forced, classes, schema, values."""
    from inferwatch.schema import infer_task

    if task is not None:
        return task
    if adapter is not None and adapter.classes:
        return "classification"
    if schema.task is not None:
        return schema.task
    present = [v for v in values if v is not None]
    if not present:
        return None
    return infer_task(np.asarray(present, dtype=object))


def _with_outputs(
    name: str,
    version: str,
    schema: Schema,
    reference: Columns,
    adapter: ModelAdapter,
    task: Task | None,
) -> tuple[Columns, Schema, str | None, str | None]:
    """The reference columns and bin schema with the model's outputs on the reference."""
    from inferwatch.schema import Schema as Schema_

    started = time.perf_counter()
    try:
        sample, values, scores = score_reference(adapter, schema, reference)
    except Exception as exc:  # any model failure: watch it, without prediction drift
        log.warning(
            "model %s version %s could not score its reference (%s); no prediction drift",
            name, version, exc,
        )  # fmt: skip
        return reference, schema, None, None
    kind = {"classification": "categorical", "regression": "numeric"}.get(
        output_task(values, schema, adapter, task) or ""
    )
    prediction = prediction_column(schema) if kind is not None else None
    confidence = CONFIDENCE_COLUMN if any(s is not None for s in scores) else None
    extra = output_features(
        schema,
        prediction=prediction,
        confidence=confidence,
        prediction_kind="numeric" if kind == "numeric" else "categorical",
    )
    kept = {f.name for f in extra}
    columns = dict(sample)
    if prediction in kept:
        columns[prediction] = output_numbers(values) if kind == "numeric" else output_labels(values)
    if confidence in kept:
        columns[confidence] = np.array([np.nan if s is None else s for s in scores])
    log.info(
        "model %s version %s scored %d reference rows for prediction drift in %.2fs",
        name, version, len(values), time.perf_counter() - started,
    )  # fmt: skip
    bin_schema = Schema_(features=(*schema.features, *extra))
    return (
        columns,
        bin_schema,
        prediction if prediction in kept else None,
        confidence if confidence in kept else None,
    )


def live_target(
    name: str,
    version: str,
    schema: Schema,
    reference: Columns,
    adapter: ModelAdapter | None = None,
    *,
    options: DriftOptions = DriftOptions(),
    task: Task | None = None,
    window_seconds: float = 3600.0,
    min_window_rows: int = 100,
    calibration: CalibrationMode = "reference",
    calibration_quantile: float = 0.99,
    calibration_resamples: int = 200,
    clock: Callable[[], float] = time.time,
) -> LiveTarget:
    """Reference bins and profile, a window profiler and a live evaluator for one model.

    ``reference`` holds the reference's columns (numpy arrays by name).  With the
    model's ``adapter`` the model's outputs are judged too (prediction drift, see the
    module docstring): the reference is scored once (:func:`score_reference`); its bins
    and profile are then those of the scored rows (all of them up to
    :data:`MAX_SCORED_REFERENCE_ROWS`).  ``task`` forces how the predictions are judged
    (classes or numbers).  ``window_seconds`` cuts the windows; ``min_window_rows`` and
    the ``calibration*`` parameters are :class:`~inferwatch.evaluate.LiveEvaluator`'s.

    >>> import numpy as np
    >>> from inferwatch.schema import infer_schema
    >>> ref = {"x": np.random.default_rng(0).normal(size=500)}
    >>> t = live_target("m", "1", infer_schema(ref), ref, window_seconds=60)
    >>> t.model, t.profiler.window_seconds, t.evaluator.prediction
    ('m', 60.0, None)
    """
    from inferwatch.profile import ReferenceBins, profile

    prediction = confidence = None
    bin_schema = schema
    if adapter is not None:
        reference, bin_schema, prediction, confidence = _with_outputs(
            name, version, schema, reference, adapter, task
        )
    bins = ReferenceBins().fit(reference, bin_schema)
    n_unique = {}
    for feat in bin_schema.features:
        if feat.kind == "numeric" and feat.name in reference:
            try:
                n_unique[feat.name] = _n_unique(reference[feat.name])
            except (TypeError, ValueError):  # a column that is not numbers after all
                continue
    evaluator = LiveEvaluator(
        profile(reference, bins),
        schema,
        options=options,
        min_window_rows=min_window_rows,
        calibration=calibration,
        calibration_quantile=calibration_quantile,
        calibration_resamples=calibration_resamples,
        n_unique=n_unique,
        prediction=prediction,
        confidence=confidence,
    )
    profiler = WindowProfiler(
        bins,
        schema,
        window_seconds=window_seconds,
        clock=clock,
        prediction=prediction,
        confidence=confidence,
    )
    return LiveTarget(name, version, profiler, evaluator)
