"""The composition root: ``build_app(settings)`` opens the store, loads models, builds the app.

A model with a ``reference`` also gets live drift windows: the reference's bins and
profile are built once at start, the monitor's writer thread profiles every logged batch
into its model's window (:class:`~inferwatch.windows.WindowProfiler`), and one
:class:`~inferwatch.evaluate.EvaluationLoop` (started and stopped by the app's lifespan)
judges the current windows, stores the evaluations and publishes them to the one
:class:`~inferwatch.metrics.LiveDriftCollector` on the app's registry.

Prediction drift needs the reference's model outputs, which the reference file does not
hold: at start the loaded model scores the reference once (:func:`score_reference`), at
most :data:`MAX_SCORED_REFERENCE_ROWS` rows (a seeded sample of a larger reference), in
calls of :data:`SCORE_BATCH_ROWS` rows.  Its predicted classes (classifiers) and scores
(models that give them) are binned and profiled with the reference's inputs, and the live
windows profile the logged outputs on those bins.  A model that fails on the reference
rows is logged and served without prediction drift.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from prometheus_client import CollectorRegistry

from inferwatch.config import DriftSettings, ModelSettings, ServerSettings, Settings
from inferwatch.evaluate import DriftOptions, EvaluationLoop, LiveEvaluator, LiveTarget
from inferwatch.metrics import LiveDriftCollector, Metrics
from inferwatch.monitor import Monitor
from inferwatch.server._app import create_app
from inferwatch.server._served import ServedModel
from inferwatch.windows import (
    CONFIDENCE_COLUMN,
    WindowProfiler,
    WindowRouter,
    output_features,
    output_labels,
    prediction_column,
)

if TYPE_CHECKING:
    import numpy.typing as npt
    from fastapi import FastAPI

    from inferwatch.ports import ModelAdapter, Store
    from inferwatch.schema import Schema

__all__ = [
    "MAX_SCORED_REFERENCE_ROWS",
    "SCORE_BATCH_ROWS",
    "build_app",
    "live_target",
    "load_served_model",
    "score_reference",
]

#: at most this many reference rows are scored at start for prediction drift
MAX_SCORED_REFERENCE_ROWS = 20_000
#: reference rows per ``adapter.predict`` call when scoring the reference
SCORE_BATCH_ROWS = 1_000

log = logging.getLogger("inferwatch.server")


Columns = dict[str, "npt.NDArray[Any]"]


def _schema_and_reference(m: ModelSettings) -> tuple[Schema, Columns | None]:
    """The model's schema (from its YAML, else inferred) and its reference's columns."""
    from inferwatch.io import load_schema, read_columns
    from inferwatch.schema import infer_schema

    # read the reference once: to infer the schema, count its rows and fit its bins
    columns = read_columns(m.reference) if m.reference is not None else None
    if m.schema_path is not None:
        schema = load_schema(m.schema_path)
    else:
        assert columns is not None  # ModelSettings requires a schema or a reference
        schema = infer_schema(columns, target=m.target, prediction=m.prediction)
    return schema, columns


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
) -> tuple[Columns, list[Any], list[float | None]]:
    """The model's outputs on (at most ``max_rows`` of) the reference rows.

    Returns the scored rows' input columns (all of them, or a seeded sample of
    ``max_rows`` rows in reference order), their predicted values and their scores.
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


def _with_outputs(
    name: str, version: str, schema: Schema, reference: Columns, adapter: ModelAdapter
) -> tuple[Columns, Schema, str | None, str | None]:
    """The reference columns and bin schema with the model's outputs on the reference."""
    from inferwatch.schema import Schema as Schema_

    classifier = schema.task == "classification" or bool(adapter.classes)
    started = time.perf_counter()
    try:
        sample, values, scores = score_reference(adapter, schema, reference)
    except Exception as exc:  # any model failure: serve it, without prediction drift
        log.warning(
            "model %s version %s could not score its reference (%s); no prediction drift",
            name, version, exc,
        )  # fmt: skip
        return reference, schema, None, None
    prediction = prediction_column(schema) if classifier else None
    confidence = CONFIDENCE_COLUMN if any(s is not None for s in scores) else None
    extra = output_features(schema, prediction=prediction, confidence=confidence)
    kept = {f.name for f in extra}
    columns = dict(sample)
    if prediction in kept:
        columns[prediction] = output_labels(values)
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
    drift: DriftSettings,
    adapter: ModelAdapter | None = None,
) -> LiveTarget:
    """Reference bins and profile, a window profiler and a live evaluator for one model.

    With the model's ``adapter`` the model's outputs are judged too (prediction drift):
    the reference is scored once (:func:`score_reference`); its bins and profile are then
    those of the scored rows (all of them up to :data:`MAX_SCORED_REFERENCE_ROWS`).
    """
    from inferwatch.profile import ReferenceBins, profile

    prediction = confidence = None
    bin_schema = schema
    if adapter is not None:
        reference, bin_schema, prediction, confidence = _with_outputs(
            name, version, schema, reference, adapter
        )
    bins = ReferenceBins().fit(reference, bin_schema)
    n_unique = {}
    for feat in bin_schema.features:
        if feat.kind == "numeric" and feat.name in reference:
            try:
                n_unique[feat.name] = _n_unique(reference[feat.name])
            except (TypeError, ValueError):  # a column that is not numbers after all
                continue
    options = DriftOptions(
        drift_share=drift.drift_share,
        tests=dict(drift.tests),
        thresholds=dict(drift.thresholds),
        correction=drift.correction,
    )
    evaluator = LiveEvaluator(
        profile(reference, bins),
        schema,
        options=options,
        min_window_rows=drift.min_window_rows,
        calibration=drift.calibration,
        calibration_quantile=drift.calibration_quantile,
        calibration_resamples=drift.calibration_resamples,
        n_unique=n_unique,
        prediction=prediction,
        confidence=confidence,
    )
    profiler = WindowProfiler(
        bins,
        schema,
        window_seconds=drift.window_seconds,
        prediction=prediction,
        confidence=confidence,
    )
    return LiveTarget(name, version, profiler, evaluator)


def load_served_model(
    m: ModelSettings, schema: Schema, metrics: Metrics, server: ServerSettings
) -> ServedModel:
    """Load one configured model behind its schema (raises ModelError if it cannot)."""
    from inferwatch.models import load_model

    adapter = load_model(m.path, m.flavor, feature_names=schema.names)
    return ServedModel.build(
        m.name,
        m.version,
        adapter,
        schema,
        metrics,
        max_batch=server.max_batch_size,
        allow_extra=server.allow_extra_features,
    )


def build_app(settings: Settings) -> FastAPI:
    """The app for ``settings``: store opened (and migrated), models loaded and registered.

    Raises ConfigError, SchemaError, InputFileError, ModelError or StoreError at start
    rather than serving a broken model.
    """
    from inferwatch.store import open_store

    store: Store = open_store(settings.store.url)
    try:
        if settings.store.auto_migrate:
            store.upgrade()
        metrics = Metrics(CollectorRegistry())
        models = []
        targets: list[LiveTarget] = []
        for m in settings.models:
            schema, reference = _schema_and_reference(m)
            n_rows = len(next(iter(reference.values()))) if reference else 0
            served = load_served_model(m, schema, metrics, settings.server)
            models.append(served)
            if reference is not None:
                targets.append(
                    live_target(
                        m.name, m.version, schema, reference, settings.drift, served.adapter
                    )
                )
            store.register_model(m.name, m.version, flavor=m.flavor, uri=str(m.path))
            store.register_reference(
                m.name,
                m.version,
                uri=None if m.reference is None else str(m.reference),
                n_rows=n_rows,
                schema=schema.to_dict(),
            )
            log.info("loaded model %s version %s from %s", m.name, m.version, m.path)
    except BaseException:
        store.close()
        raise
    s = settings.store
    router = WindowRouter({(t.model, t.version): t.profiler for t in targets})
    monitor = Monitor(
        store,
        metrics=metrics,
        queue_size=s.queue_size,
        batch_size=s.batch_size,
        flush_interval=s.flush_interval_seconds,
        enqueue_timeout=s.enqueue_timeout_seconds,
        profiler=router if targets else None,
    )
    evaluator = None
    if targets:
        collector = LiveDriftCollector()
        metrics.registry.register(collector)  # once: it yields every model's gauges
        evaluator = EvaluationLoop(
            targets,
            interval=settings.drift.evaluation_interval_seconds,
            sink=store,
            publish=collector.publish,
        )
    return create_app(
        settings, models=models, monitor=monitor, store=store, metrics=metrics, evaluator=evaluator
    )
