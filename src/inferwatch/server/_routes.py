"""The routes around predict: model listing, live drift, /metrics, health probes and the docs."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import threading
from collections.abc import Callable, Collection, Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any, Final, Literal

import msgspec
from fastapi import FastAPI, Query, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.exposition import choose_encoder
from starlette.concurrency import run_in_threadpool

from inferwatch.ports import Store
from inferwatch.server._errors import ApiError
from inferwatch.server._registry import ModelRegistry, VersionChange
from inferwatch.server._schemas import (
    ERROR_RESPONSES,
    DriftResponse,
    HealthResponse,
    ModelDetail,
    ModelList,
    ReadyResponse,
    VersionSwitch,
)
from inferwatch.server._served import ServedModel

__all__ = [
    "DriftStatus",
    "SWAGGER_ASSETS",
    "SWAGGER_UI_VERSION",
    "add_docs_routes",
    "add_drift_route",
    "add_health_routes",
    "add_metrics_route",
    "add_model_routes",
    "drift_answer",
]

log = logging.getLogger("inferwatch.server")


def _json(data: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(data), status, media_type="application/json")


def add_model_routes(
    app: FastAPI,
    models: Mapping[str, ServedModel],
    registry: ModelRegistry | None = None,
    store: Store | None = None,
) -> None:
    """``GET /v1/models`` and ``GET /v1/models/{name}``; with a registry, the version switches
    ``POST /v1/models/{name}/rollback`` and ``.../versions/{version}/activate`` too."""

    def summary(served: ServedModel) -> dict[str, Any]:
        out = served.describe()
        if registry is not None and served.name in registry:
            out.update(registry.describe(served.name))
        return out

    async def list_models() -> Response:
        return _json({"models": [summary(m) for m in models.values()]})

    async def get_model(name: str) -> Response:
        served = models.get(name)
        if served is None:
            raise ApiError(404, "unknown_model", f"no model named {name!r}")
        return _json({**summary(served), "schema": served.schema.to_dict()})

    errors: dict[int | str, dict[str, Any]] = {k: ERROR_RESPONSES[k] for k in (401, 403)}
    app.add_api_route(
        "/v1/models",
        list_models,
        methods=["GET"],
        name="list_models",
        summary="List the served models",
        tags=["models"],
        response_model=ModelList,
        responses=errors,
    )
    app.add_api_route(
        "/v1/models/{name}",
        get_model,
        methods=["GET"],
        name="get_model",
        summary="One served model with its feature schema",
        tags=["models"],
        response_model=ModelDetail,
        responses={**errors, 404: ERROR_RESPONSES[404]},
    )
    if registry is None:
        return
    reg = registry

    def record(change: VersionChange, kind: str) -> None:
        """A switch asked for through the API goes to the action log too (best effort: the
        switch is made, and a store that is down only loses its record)."""
        if store is None:
            return
        try:
            store.write_action_record(
                action="api",
                kind=kind,
                model=change.model,
                version=change.to_version,
                at=change.at,
                outcome="ok",
                detail=f"{change.from_version} -> {change.to_version}: {change.reason}",
                evidence={
                    "change": change.to_dict(),
                    "configured_version": reg.configured(change.model),
                },
            )
        except Exception as exc:
            log.warning("could not record the switch of %s: %s", change.model, exc)

    def switched(name: str, change: VersionChange | None, unchanged: str) -> Response:
        body: dict[str, Any] = {"model": name, "live_version": reg.live[name].version}
        body["change"] = change.to_dict() if change is not None else None
        if change is None:
            body["message"] = unchanged
        return _json(body)

    async def rollback(name: str, reason: str = Query("", max_length=500)) -> Response:
        if name not in reg:
            raise ApiError(404, "unknown_model", f"no model named {name!r}")
        change = reg.rollback(name, reason=reason or "requested through the API")
        if change is None:
            raise ApiError(
                409,
                "no_previous_version",
                f"model {name!r} is live at its oldest version "
                f"({reg.live[name].version}); configure models[].previous to roll back",
            )
        log.warning("model %s rolled back from %s to %s: %s", name, change.from_version,
                    change.to_version, change.reason)  # fmt: skip
        await run_in_threadpool(record, change, "rollback")
        return switched(name, change, "")

    async def activate(
        name: str, version: str, reason: str = Query("", max_length=500)
    ) -> Response:
        if name not in reg:
            raise ApiError(404, "unknown_model", f"no model named {name!r}")
        try:
            change = reg.activate(name, version, reason=reason or "requested through the API")
        except LookupError as exc:
            raise ApiError(404, "unknown_version", str(exc.args[0])) from None
        if change is not None:
            log.warning("model %s switched from %s to %s: %s", name, change.from_version,
                        change.to_version, change.reason)  # fmt: skip
            await run_in_threadpool(record, change, "activate")
        return switched(name, change, f"version {version!r} is already live")

    admin_errors = {**errors, 404: ERROR_RESPONSES[404]}
    app.add_api_route(
        "/v1/models/{name}/rollback",
        rollback,
        methods=["POST"],
        name="rollback_model",
        summary="Make the model's next older version live (models[].previous)",
        tags=["models"],
        response_model=VersionSwitch,
        responses={**admin_errors, 409: ERROR_RESPONSES[409]},
    )
    app.add_api_route(
        "/v1/models/{name}/versions/{version}/activate",
        activate,
        methods=["POST"],
        name="activate_model_version",
        summary="Make one of the model's loaded versions live",
        tags=["models"],
        response_model=VersionSwitch,
        responses=admin_errors,
    )


DriftStatus = Literal["judged", "not_judged", "no_reference"]
LatestReport = Callable[[str, str], "Mapping[str, Any] | None"]


def drift_answer(
    model: str,
    version: str,
    report: Mapping[str, Any] | None,
    *,
    has_reference: bool,
    interval: float | None = None,
) -> dict[str, Any]:
    """The body of ``GET /v1/models/{name}/drift`` for one model version.

    ``report`` is what the evaluation loop last published (``DriftReport.to_dict()`` plus
    ``window``): the newest judged window, or the current one while nothing was judged
    yet.  Only a judged report is returned as ``report``; otherwise ``status`` and
    ``message`` say why there is none, so a client never mistakes "not yet" for "no drift".
    """
    out: dict[str, Any] = {"model": model, "version": version}
    window = report.get("window") if report is not None else None
    if not has_reference:
        message = (
            f"model {model!r} has no reference, so its live drift is not judged; "
            "set models[].reference in the configuration"
        )
        return {**out, "status": "no_reference", "message": message, "window": None, "report": None}
    if report is None or not isinstance(window, Mapping) or not window.get("judged"):
        if report is None:
            every = f" (every {interval:g} s)" if interval is not None else ""
            message = f"no window evaluated yet: the evaluator judges the current window{every}"
        else:
            errors = [f.get("error") for f in report.get("features") or () if f.get("error")]
            message = errors[0] if errors else f"window has {report.get('n_current', 0)} rows"
        shown = dict(window) if isinstance(window, Mapping) else None
        return {**out, "status": "not_judged", "message": message, "window": shown, "report": None}
    return {**out, "status": "judged", "message": None, "window": dict(window), "report": report}


def add_drift_route(
    app: FastAPI,
    models: Mapping[str, ServedModel],
    latest: LatestReport,
    live: Collection[tuple[str, str]],
    interval: float | None = None,
) -> None:
    """``GET /v1/models/{name}/drift``: the newest judged live window's full report.

    ``latest(model, version)`` reads the report the evaluation loop last published (the
    :class:`~inferwatch.metrics.LiveDriftCollector`, the one place it is kept, so the
    route and ``/metrics`` always tell the same story); ``live`` holds the model versions
    under live evaluation (those with a reference).
    """

    async def drift(name: str) -> Response:
        served = models.get(name)
        if served is None:
            raise ApiError(404, "unknown_model", f"no model named {name!r}")
        key = (served.name, served.version)
        return _json(drift_answer(*key, latest(*key), has_reference=key in live, interval=interval))

    errors: dict[int | str, dict[str, Any]] = {k: ERROR_RESPONSES[k] for k in (401, 403, 404)}
    app.add_api_route(
        "/v1/models/{name}/drift",
        drift,
        methods=["GET"],
        name="get_drift",
        summary="The newest judged live window's drift and data-quality report",
        description=(
            "Per feature: the test, statistic, threshold used (calibrated at the window's "
            "size unless drift.calibration is fixed) and the test's nominal threshold, the "
            "verdict, and data quality with its limits; prediction drift; the window's "
            "start and rows. status is not_judged until a window has drift.min_window_rows "
            "rows, and no_reference for a model without a reference."
        ),
        tags=["drift"],
        response_model=DriftResponse,
        responses=errors,
    )


def add_metrics_route(app: FastAPI, registry: CollectorRegistry) -> None:
    """``GET /metrics``: the Prometheus text format, or OpenMetrics (with the latency
    buckets' exemplars) when the scraper's ``Accept`` asks for it, as Prometheus does with
    ``--enable-feature=exemplar-storage``."""

    async def metrics(request: Request) -> Response:
        accept = request.headers.get("accept", "")
        # serve --workers N: every worker's samples, asked over sockets (server._workers),
        # so encoded on a thread, not on the event loop
        fleet = getattr(request.app.state, "metrics_source", None)
        if "application/openmetrics-text" not in accept:
            if fleet is not None:
                body = await run_in_threadpool(generate_latest, fleet)
                return Response(body, media_type=CONTENT_TYPE_LATEST)
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
        encoder, content_type = choose_encoder(accept)
        if fleet is not None:
            return Response(await run_in_threadpool(encoder, fleet), media_type=content_type)
        return Response(encoder(registry), media_type=content_type)

    app.add_api_route(
        "/metrics",
        metrics,
        methods=["GET"],
        name="metrics",
        summary="Prometheus metrics",
        tags=["operations"],
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Exposition."}},
    )


def add_health_routes(app: FastAPI, store: Store, accepting: Callable[[], bool]) -> None:
    """``GET /healthz`` (the process answers) and ``GET /readyz`` (models and store ready)."""

    async def healthz() -> Response:
        return _json({"status": "ok"})

    probe = StoreProbe(store)
    app.state.store_probe = probe  # the Open Inference Protocol's ready route asks it too

    async def readyz() -> Response:
        checks = {"models": accepting(), "store": await probe.ready()}
        ready = all(checks.values())
        return _json(
            {"status": "ready" if ready else "not_ready", "checks": checks}, 200 if ready else 503
        )

    app.add_api_route(
        "/healthz",
        healthz,
        methods=["GET"],
        name="healthz",
        summary="Liveness: the process answers",
        tags=["operations"],
        response_model=HealthResponse,
    )
    app.add_api_route(
        "/readyz",
        readyz,
        methods=["GET"],
        name="readyz",
        summary="Readiness: models loaded and the store reachable",
        tags=["operations"],
        response_model=ReadyResponse,
        responses={503: {"model": ReadyResponse, "description": "Not ready; see checks."}},
    )


def _ping(store: Store) -> bool:
    try:
        return bool(store.ping())
    except Exception:
        log.warning("store ping failed", exc_info=True)
        return False


#: how long a readiness check waits for the store (a probe's own timeout is usually 1 s)
READY_TIMEOUT_SECONDS: Final = 0.8


class StoreProbe:
    """The store's readiness, answered within :data:`READY_TIMEOUT_SECONDS` whatever the
    store does.

    A frozen database (PostgreSQL SIGSTOPped: the kernel still accepts and acknowledges,
    nothing answers) blocks a ping for as long as the freeze lasts, and no client-side
    timeout of the driver ends a read the server never answers.  So the ping runs on a
    thread of its own and the probe waits for it at most the timeout: past it the store is
    "not ready".  While that ping is stuck, later probes wait on the same one rather than
    starting another, so a long freeze costs one blocked thread, not one per probe.
    """

    def __init__(self, store: Store, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        self.store = store
        self.timeout = timeout
        self._pending: concurrent.futures.Future[bool] | None = None
        self._lock = threading.Lock()

    def _start(self) -> concurrent.futures.Future[bool]:
        with self._lock:
            pending = self._pending
            if pending is None or pending.done():
                pending = concurrent.futures.Future()
                self._pending = pending
                threading.Thread(
                    target=self._run, args=(pending,), name="inferwatch-store-ping", daemon=True
                ).start()
            return pending

    def _run(self, future: concurrent.futures.Future[bool]) -> None:
        future.set_result(_ping(self.store))

    async def ready(self) -> bool:
        """Whether the store answered a ping within the timeout."""
        pending = asyncio.wrap_future(self._start())
        try:
            return await asyncio.wait_for(asyncio.shield(pending), self.timeout)
        except TimeoutError:
            log.warning("store ping: no answer within %.1f s", self.timeout)
            return False


#: the vendored Swagger UI (``server/static/swagger-ui``, see its VENDORED.md)
SWAGGER_UI_VERSION: Final = "5.35.0"
#: what ``GET /docs/assets/{asset}`` serves: asset name → (vendored file, media type)
SWAGGER_ASSETS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        "swagger-ui-bundle.js": ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
        "swagger-ui.css": ("swagger-ui.css", "text/css; charset=utf-8"),
        "favicon.png": ("favicon-32x32.png", "image/png"),
    }
)


@functools.cache
def _asset(file: str) -> bytes:
    return resources.files("inferwatch.server").joinpath("static", "swagger-ui", file).read_bytes()


def add_docs_routes(app: FastAPI) -> None:
    """``GET /openapi.json``, ``GET /docs`` (Swagger UI) and its assets, guarded like any route.

    Swagger UI's script, style sheet and icon are served from the package
    (``GET /docs/assets/{asset}``) rather than FastAPI's default CDN, so the docs work on a
    machine without internet; the validator badge (a call to validator.swagger.io) is off.
    The assets take the docs' access rule (``auth.open_docs``) like the page itself.
    """

    async def openapi() -> Response:
        return _json(app.openapi())

    async def docs(request: Request) -> Response:
        root = request.scope.get("root_path", "").rstrip("/")
        assets = f"{root}/docs/assets"
        return get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{app.title} - docs",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}",
            swagger_css_url=f"{assets}/swagger-ui.css?v={SWAGGER_UI_VERSION}",
            swagger_favicon_url=f"{assets}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    async def docs_asset(asset: str) -> Response:
        found = SWAGGER_ASSETS.get(asset)
        if found is None:
            raise ApiError(404, "not_found", f"no docs asset named {asset!r}")
        file, media_type = found
        body = await run_in_threadpool(_asset, file)
        headers = {"cache-control": "public, max-age=86400", "x-content-type-options": "nosniff"}
        return Response(body, media_type=media_type, headers=headers)

    app.add_api_route("/openapi.json", openapi, methods=["GET"], include_in_schema=False)
    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
    app.add_api_route("/docs/assets/{asset}", docs_asset, methods=["GET"], include_in_schema=False)
