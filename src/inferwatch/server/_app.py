"""The app factory: ``create_app(settings, models=, monitor=, store=, metrics=, evaluator=)``.

Everything the app uses is handed in (no module-level app, no I/O at import); the
lifespan starts the prediction log's writer and the live evaluation loop and, at
shutdown, stops the loop (a bounded join), drains the log into the store and then closes
the store, so every prediction answered 200 is stored.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from inferwatch._version import __version__
from inferwatch.config import Settings
from inferwatch.lease import Leadership
from inferwatch.metrics import Metrics
from inferwatch.monitor import Monitor
from inferwatch.ports import Store
from inferwatch.server._alerting import AlertingService
from inferwatch.server._alerts import add_alert_routes
from inferwatch.server._auth import Guard, guarded_route_class
from inferwatch.server._errors import install_error_handlers
from inferwatch.server._feedback import add_feedback_route, label_ingestor_of
from inferwatch.server._history import HistoryService, add_history_routes
from inferwatch.server._performance import add_performance_routes
from inferwatch.server._predict import add_predict_route
from inferwatch.server._registry import ModelRegistry
from inferwatch.server._request_id import RequestIdMiddleware
from inferwatch.server._routes import (
    add_docs_routes,
    add_drift_route,
    add_health_routes,
    add_metrics_route,
    add_model_routes,
)
from inferwatch.server._served import ServedModel
from inferwatch.server._sidecar import add_log_route
from inferwatch.server._ui import add_ui_routes
from inferwatch.server._v2 import add_v2_routes

if TYPE_CHECKING:
    from inferwatch.evaluate import EvaluationLoop
    from inferwatch.labels import LabelIngestor
    from inferwatch.metrics import LiveDriftCollector
    from inferwatch.server._versions import Versions
    from inferwatch.tracing import Tracing

__all__ = ["create_app"]

log = logging.getLogger("inferwatch.server")

#: how long shutdown waits for an evaluation in progress (it is a daemon thread after that)
EVALUATOR_STOP_SECONDS = 10.0
WORKER_STOP_SECONDS = 5.0  # a model call still running at shutdown is left to finish
#: how long shutdown waits for an alert cycle in progress
ALERTING_STOP_SECONDS = 10.0
#: how long shutdown waits for a history write in progress
HISTORY_STOP_SECONDS = 5.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _Readiness:
    accepting = False


def _close_workers(models: Sequence[ServedModel]) -> None:
    for m in models:
        if not m.worker.close(WORKER_STOP_SECONDS):
            log.warning("model %s version %s: a call still runs at shutdown", m.name, m.version)


def create_app(
    settings: Settings,
    *,
    models: Sequence[ServedModel],
    monitor: Monitor,
    store: Store,
    metrics: Metrics,
    evaluator: EvaluationLoop | None = None,
    drift: LiveDriftCollector | None = None,
    versions: Versions | None = None,
    labels: LabelIngestor | None = None,
    registry: ModelRegistry | None = None,
    alerting: AlertingService | None = None,
    tracing: Tracing | None = None,
    history: HistoryService | None = None,
    leadership: Leadership | None = None,
) -> FastAPI:
    """The inferwatch HTTP app serving ``models``.

    ``monitor`` should write to ``store`` and report to ``metrics`` (as ``build_app``
    arranges); ``evaluator``, when given, judges the monitor's live windows and publishes
    its reports to ``drift``, which ``GET /v1/models/{name}/drift`` reads.  The app
    owns them from here: its shutdown stops the evaluator, closes the monitor (writing
    every logged prediction) and then the store.  ``labels`` is the label ingestor of
    the feedback route (by default one for ``models`` that feeds no performance windows).
    ``registry`` holds the versions of each model and which is live (by default ``models``
    as given, the first of each name live; two entries with one name and version are
    refused).  ``alerting``, when given, is the built-in alert engine: started with the
    app, stopped before the monitor closes.  ``tracing``, when given, records OpenTelemetry
    spans of each prediction request (flushed at shutdown).  ``history``, when given,
    samples the app's metrics into the store (started with the app, stopped before the
    store closes); the history routes answer either way.  ``leadership``, when given, is
    the evaluator lease (``inferwatch.lease``): the evaluator and the alert engine run
    their cycles only while this replica holds it; without one, this process leads.
    """
    if registry is None:
        registry = ModelRegistry.of(models)
    # name -> live version, read on every request: a rollback swaps an entry in place
    served = registry.live
    models = list(served.values())
    if monitor.metrics is None:
        log.warning("the monitor has no metrics hook: predictions will not be counted")
    readiness = _Readiness()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.auth.enabled:
            log.warning("access control is off (no API keys configured); serving on loopback only")
        monitor.start()
        if leadership is not None:
            await run_in_threadpool(leadership.start)
        else:
            metrics.evaluator_leader.set(1)
        if evaluator is not None:
            evaluator.start()
        if alerting is not None:
            await run_in_threadpool(alerting.start)
        # serve --workers: one worker samples, reading every worker's (server._workers)
        if history is not None and getattr(app.state, "sample_history", True):
            history.start()
        readiness.accepting = True
        try:
            yield
        finally:
            readiness.accepting = False
            # uvicorn has answered every request by now: what a worker still runs is a call
            # past its timeout, whose answer nobody waits for
            await run_in_threadpool(_close_workers, registry.all_versions())
            if alerting is not None:
                await run_in_threadpool(alerting.stop, ALERTING_STOP_SECONDS)
            if history is not None:
                await run_in_threadpool(history.stop, HISTORY_STOP_SECONDS)
            if evaluator is not None:
                await run_in_threadpool(evaluator.stop, EVALUATOR_STOP_SECONDS)
            if leadership is not None:  # released, so another replica need not wait
                await run_in_threadpool(leadership.stop)
            if tracing is not None:
                await run_in_threadpool(tracing.shutdown)
            if not await run_in_threadpool(monitor.close):
                log.error("the prediction log was not fully written at shutdown: %s", monitor.stats)
            share = getattr(app.state, "window_share", None)
            if share is not None:  # fleet.share_windows: the drained rows' last write
                await run_in_threadpool(share.stop)
            store.close()

    app = FastAPI(
        title="inferwatch",
        version=__version__,
        description="Monitored model serving: predictions, model metadata, metrics, health.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    guard = Guard(settings.auth, metrics, {n: m.metrics for n, m in served.items()})
    route_class = guarded_route_class(guard)
    app.router.route_class = route_class
    install_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    app.state.tracing = tracing  # read by every predict route (server._predict.answer_rows)
    app.state.metrics = metrics  # for the server around the app (serve's connection guard)
    app.state.evaluator = evaluator  # serve --workers merges its windows across workers
    app.state.alerting = alerting  # serve --workers: its rules read every worker's samples
    app.state.history = history  # serve --workers: slot 0's reads every worker's samples
    app.state.leadership = leadership  # serve --workers: the leading worker answers for it
    app.state.registry = registry  # serve --workers: a switch reaches every worker
    app.state.store = store
    add_predict_route(
        app,
        served,
        monitor=monitor,
        metrics=metrics,
        max_body_bytes=settings.server.max_body_bytes,
        versions=versions,
    )
    add_log_route(
        app, served, monitor=monitor, metrics=metrics, max_body_bytes=settings.server.max_body_bytes
    )
    add_v2_routes(
        app,
        served,
        registry=registry,
        monitor=monitor,
        metrics=metrics,
        store=store,
        accepting=lambda: readiness.accepting,
        max_body_bytes=settings.server.max_body_bytes,
        versions=versions,
    )
    add_model_routes(app, served, registry, store)
    add_drift_route(
        app,
        served,
        drift.report if drift is not None else lambda model, version: None,
        {(t.model, t.version) for t in evaluator.targets} if evaluator is not None else (),
        evaluator.interval if evaluator is not None else None,
    )
    add_performance_routes(app, served, store, evaluator)
    add_feedback_route(
        app,
        served,
        labels if labels is not None else label_ingestor_of(models, store, monitor, metrics),
        metrics=metrics,
        max_body_bytes=settings.server.max_body_bytes,
        max_labels=settings.server.max_labels_per_request,
    )
    add_alert_routes(
        app, alerting, store, alerting.engine.clock if alerting is not None else _utc_now
    )
    add_history_routes(
        app,
        served,
        store,
        settings.history,
        report=drift.report if drift is not None else lambda model, version: None,
        evaluator=evaluator,
        alerting=alerting,
    )
    add_metrics_route(app, metrics.registry)
    add_health_routes(app, store, lambda: readiness.accepting)
    if settings.server.docs:
        add_docs_routes(app)
    add_ui_routes(app)
    unguarded = [r for r in app.routes if not isinstance(r, route_class)]
    if unguarded:
        raise RuntimeError(f"routes without a declared role: {unguarded}")
    return app
