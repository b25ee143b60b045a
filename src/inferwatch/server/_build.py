"""The composition root: ``build_app(settings)`` opens the store, loads models, builds the app.

A model with a ``reference`` also gets live drift windows: the engine's
:func:`~inferwatch.evaluate.live_target` builds the reference's bins and profile once
(scoring the reference with the loaded model for prediction drift), the monitor's writer
thread profiles every logged batch into its model's window
(:class:`~inferwatch.windows.WindowProfiler`), and one
:class:`~inferwatch.evaluate.EvaluationLoop` (started and stopped by the app's lifespan)
judges the current windows, stores the evaluations and publishes them to the one
:class:`~inferwatch.metrics.LiveDriftCollector` on the app's registry.  This module only
turns settings into those engine calls.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import secrets
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from inferwatch.config import (
    DriftSettings,
    ModelSettings,
    PerformanceSettings,
    ServerSettings,
    Settings,
)
from inferwatch.evaluate import EvaluationLoop, LiveTarget, live_target
from inferwatch.lease import Leadership
from inferwatch.metrics import LiveDriftCollector, Metrics, PerformanceCollector
from inferwatch.monitor import Monitor, store_options
from inferwatch.performance_windows import PerformanceWindows
from inferwatch.server._alerting import AlertingService, build_alerting
from inferwatch.server._app import create_app
from inferwatch.server._batching import BatchSettings
from inferwatch.server._feedback import label_ingestor_of
from inferwatch.server._history import HistoryService
from inferwatch.server._registry import ModelRegistry
from inferwatch.server._served import ServedModel
from inferwatch.server._switches import SwitchFollower, restore_switches
from inferwatch.server._versions import build_versions, shadow_labels
from inferwatch.shared_windows import StorePerformance, StoreWindows, WindowShare
from inferwatch.tracing import build_tracing
from inferwatch.windows import WindowFanout, WindowRouter

if TYPE_CHECKING:
    import numpy.typing as npt
    from fastapi import FastAPI

    from inferwatch.performance_windows import PerformanceSetup
    from inferwatch.ports import LabelSink, ModelAdapter, Store, WindowSink
    from inferwatch.schema import Schema

__all__ = ["build_app", "live_target_of", "load_served_model", "performance_setup_of"]

log = logging.getLogger("inferwatch.server")


Columns = dict[str, "npt.NDArray[Any]"]


def _schema_and_reference(m: ModelSettings) -> tuple[Schema, Columns | None]:
    """The model's schema (from its YAML, else inferred) and its reference's columns."""
    from inferwatch.io import load_schema, read_columns
    from inferwatch.schema import infer_schema

    # read the reference once: to infer the schema, count its rows and fit its bins
    columns = read_columns(m.reference) if m.reference is not None else None
    if m.schema_path is not None:
        schema = load_schema(m.schema_path).with_task(m.task)
    else:
        assert columns is not None  # ModelSettings requires a schema or a reference
        schema = infer_schema(columns, target=m.target, prediction=m.prediction, task=m.task)
    return schema, columns


def live_target_of(
    m: ModelSettings,
    schema: Schema,
    reference: Columns,
    drift: DriftSettings,
    adapter: ModelAdapter | None = None,
) -> LiveTarget:
    """The engine's :func:`~inferwatch.evaluate.live_target` for one configured model."""
    return live_target(
        m.name,
        m.version,
        schema,
        reference,
        adapter,
        options=drift.to_options(),
        task=m.task,
        window_seconds=drift.window_seconds,
        min_window_rows=drift.min_window_rows,
        calibration=drift.calibration,
        calibration_quantile=drift.calibration_quantile,
        calibration_resamples=drift.calibration_resamples,
    )


def performance_setup_of(
    m: ModelSettings,
    schema: Schema,
    reference: Columns,
    performance: PerformanceSettings,
    adapter: ModelAdapter,
) -> PerformanceSetup | None:
    """The engine's :func:`~inferwatch.evaluate.performance_setup` for one configured model
    (None when performance is off or the reference has no target column)."""
    from inferwatch.evaluate import performance_setup

    if not performance.enabled:
        return None
    return performance_setup(
        m.name,
        m.version,
        schema,
        reference,
        adapter,
        task=m.task,
        positive=m.positive_class,
        segments=m.segments,
        max_segment_values=performance.max_segment_values,
        protected=m.protected_attribute,
        false_alarm_budget=performance.false_alarm_budget,
        estimate=performance.estimate,
        fairness_difference=performance.fairness_difference_threshold,
        fairness_ratio=performance.fairness_ratio_threshold,
    )


def load_served_model(
    m: ModelSettings, schema: Schema, metrics: Metrics, server: ServerSettings
) -> ServedModel:
    """Load one configured model behind its schema (raises ModelError if it cannot)."""
    from inferwatch.models import load_model

    adapter = load_model(
        m.path,
        m.flavor,
        feature_names=schema.names,
        trusted_hashes=m.trusted_model_hashes,
        threads=m.threads,
        classes=m.classes,
        tracking_uri=m.tracking_uri,
    )
    return ServedModel.build(
        m.name,
        m.version,
        adapter,
        schema,
        metrics,
        max_batch=server.max_batch_size,
        allow_extra=server.allow_extra_features,
        task=m.task,
        batching=batch_settings(m),
    )


def batch_settings(m: ModelSettings) -> BatchSettings:
    """How ``models[]`` entry ``m`` is run and batched (server._batching)."""
    return BatchSettings(
        max_batch_size=m.max_batch_size,
        max_wait=m.max_wait_ms / 1000,
        timeout=m.timeout_seconds,
        max_queue=m.max_queued_rows,
        workers=m.workers,
    )


def build_alerting_of(
    settings: Settings, metrics: Metrics, store: Store, models: ModelRegistry | None = None
) -> AlertingService | None:
    """The built-in alert engine for ``alerting.*`` over the app's own metrics (None when
    alerting is off or no rule is configured)."""
    address = f"{settings.server.host}:{settings.server.port}"
    return build_alerting(
        settings.alerting,
        registry=metrics.registry,
        store=store,
        instance=address,
        external_url=f"http://{address}",
        models=models,
        metrics=metrics,
    )


def _leadership_of(
    settings: Settings,
    store: Store,
    metrics: Metrics,
    evaluator: EvaluationLoop | None,
    alerting: AlertingService | None,
) -> Leadership:
    """The evaluator lease (``inferwatch.lease``): the evaluator's and the alert runner's
    cycles run only while this replica holds it; ``inferwatch_evaluator_leader`` says
    whether it does."""
    fleet = settings.fleet
    leadership = Leadership(
        store,
        holder=fleet.instance or None,
        ttl_seconds=fleet.lease_ttl_seconds,
        on_change=lambda leading: metrics.evaluator_leader.set(1 if leading else 0),
    )
    if evaluator is not None:
        evaluator.gate = lambda: leadership.is_leader
    if alerting is not None:
        alerting.runner.gate = lambda: leadership.is_leader
    return leadership


def _share_windows_of(
    settings: Settings,
    store: Store,
    metrics: Metrics,
    evaluator: EvaluationLoop | None,
    leadership: Leadership,
) -> WindowShare | None:
    """With ``fleet.share_windows``: this process writes its window profiles and its
    performance window states to the store (``inferwatch.shared_windows``), and its
    evaluator, when it holds the lease, judges each window with every other holder's
    stored profile or state added, and judges a closed drift window once more two share
    intervals after it closed.  A model with performance tracking but no drift target
    shares too.

    The holder is this process (the lease's holder id, or ``fleet.instance``, the pid and
    a random tag):
    under ``serve --workers N`` every worker writes its own rows and the judging worker
    reads them all from the store, so the socket merges (``FleetWindows`` and the
    performance one) are skipped there, and no worker's rows are counted twice."""
    fleet = settings.fleet
    if not fleet.share_windows or evaluator is None:
        return None
    own_performance = evaluator.performance
    if not evaluator.targets and own_performance is None:
        return None
    # a restarted process must not take over its predecessor's rows (a container's pid
    # repeats): those rows were answered and stay counted, so each start gets its own tag;
    # and the id fits the holder column (200 characters) whatever fleet.instance's length
    holder = (
        f"{fleet.instance[:180]}:{os.getpid()}:{secrets.token_hex(3)}"
        if fleet.instance
        else leadership.holder
    )
    errors = metrics.window_share_errors.inc
    share = WindowShare(
        {(t.model, t.version): t.profiler for t in evaluator.targets},
        store,
        holder,
        interval_seconds=fleet.share_interval_seconds,
        on_error=errors,
        performance=own_performance,
    )
    evaluator.targets = tuple(
        dataclasses.replace(t, profiler=StoreWindows(t.profiler, store, holder, on_error=errors))  # type: ignore[arg-type]
        for t in evaluator.targets
    )
    if own_performance is not None:
        evaluator.performance = StorePerformance(  # type: ignore[assignment]
            own_performance, store, holder, on_error=errors
        )
    evaluator.settle_seconds = 2 * fleet.share_interval_seconds
    return share


def _run_share(app: FastAPI, share: WindowShare) -> None:
    """Start ``share`` with the app; the app's shutdown stops it (one last write) after the
    prediction log is drained and before the store closes (``app.state.window_share``)."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as state:
            share.start()
            yield state

    app.router.lifespan_context = lifespan
    app.state.window_share = share


def build_app(settings: Settings) -> FastAPI:
    """The app for ``settings``: store opened (and migrated), models loaded and registered.

    Raises ConfigError, SchemaError, InputFileError, ModelError or StoreError at start
    rather than serving a broken model.
    """
    from inferwatch.store import open_store

    store: Store = open_store(
        settings.store.url, statement_timeout=settings.store.statement_timeout_seconds
    )
    try:
        if settings.store.auto_migrate:
            store.upgrade()
        metrics = Metrics(CollectorRegistry())
        models = []
        targets: list[LiveTarget] = []
        setups: list[PerformanceSetup] = []
        versions: dict[str, list[ServedModel]] = {}
        for configured in settings.models:
            schema, reference = _schema_and_reference(configured)
            n_rows = len(next(iter(reference.values()))) if reference else 0
            # the live version, then the older ones kept for a rollback: each is loaded
            # now and monitored on its own (metric children, drift target, windows)
            for m in configured.versions():
                served = load_served_model(m, schema, metrics, settings.server)
                versions.setdefault(m.name, []).append(served)
                if reference is not None:
                    targets.append(
                        live_target_of(m, schema, reference, settings.drift, served.adapter)
                    )
                    setup = performance_setup_of(
                        m, schema, reference, settings.performance, served.adapter
                    )
                    if setup is not None:
                        setups.append(setup)
                store.register_model(m.name, m.version, flavor=m.flavor, uri=str(m.path))
                store.register_reference(
                    m.name,
                    m.version,
                    uri=None if m.reference is None else str(m.reference),
                    n_rows=n_rows,
                    schema=schema.to_dict(),
                )
                log.info("loaded model %s version %s from %s", m.name, m.version, m.path)
            models.append(versions[configured.name][0])
        registry = ModelRegistry(versions)
        follower = SwitchFollower(registry, store, restore_switches(registry, store))
    except BaseException:
        store.close()
        raise
    router = WindowRouter({(t.model, t.version): t.profiler for t in targets})
    p = settings.performance
    windows = (
        PerformanceWindows(setups, window_seconds=p.window_seconds, retention=p.retention_windows)
        if setups
        else None
    )
    sinks: list[WindowSink] = [router] if targets else []
    if windows is not None:
        sinks.append(windows)
    monitor = Monitor(
        store,
        metrics=metrics,
        **store_options(settings),  # buffer, timeouts, spill file, durability, drain
        profiler=(sinks[0] if len(sinks) == 1 else WindowFanout(sinks)) if sinks else None,
    )
    try:  # shadows and A/B splits (models[].shadow_of, ab_group), checked on the schemas
        shadows = build_versions(settings.models, models, monitor, metrics)
    except BaseException:
        store.close()
        raise
    evaluator = collector = None
    if targets or windows is not None:
        collector = LiveDriftCollector()
        metrics.registry.register(collector)  # once: it yields every model's gauges
        quality = PerformanceCollector()
        metrics.registry.register(quality)
        evaluator = EvaluationLoop(
            targets,
            interval=settings.drift.evaluation_interval_seconds,
            sink=store,
            publish=collector.publish,
            performance=windows,
            publish_performance=quality.publish,
            min_labels=p.min_labels,
            gap_tolerance=p.gap_tolerance,
        )
    # the feedback route's ingestor: accepted labels go to the performance windows, which
    # fold them in by prediction time (None: no model tracks performance)
    label_sink: LabelSink | None = windows
    labels = label_ingestor_of(models, store, monitor, metrics, sink=label_sink)
    labels = shadow_labels(labels, shadows)  # a primary's labels reach its shadows too
    try:  # a receiver whose secret cannot be read fails the start, not the first alert
        alerting = build_alerting_of(settings, metrics, store, registry)
    except BaseException:
        store.close()
        raise
    leadership = _leadership_of(settings, store, metrics, evaluator, alerting)
    leadership.on_round = follower.poll  # a switch on another replica is followed here
    share = _share_windows_of(settings, store, metrics, evaluator, leadership)
    app = create_app(
        settings,
        models=models,
        monitor=monitor,
        store=store,
        metrics=metrics,
        evaluator=evaluator,
        drift=collector,
        versions=shadows,
        labels=labels,
        registry=registry,
        alerting=alerting,
        tracing=build_tracing(settings.tracing),
        leadership=leadership,
        history=(
            HistoryService(settings.history, metrics.registry, store, metrics)
            if settings.history.enabled
            else None
        ),
    )
    if share is not None:
        _run_share(app, share)
    return app
