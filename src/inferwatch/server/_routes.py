"""The routes around predict: model listing, /metrics, health probes and the docs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool

from inferwatch.ports import Store
from inferwatch.server._errors import ApiError
from inferwatch.server._schemas import (
    ERROR_RESPONSES,
    HealthResponse,
    ModelDetail,
    ModelList,
    ReadyResponse,
)
from inferwatch.server._served import ServedModel

__all__ = ["add_docs_routes", "add_health_routes", "add_metrics_route", "add_model_routes"]

log = logging.getLogger("inferwatch.server")


def _json(data: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(data), status, media_type="application/json")


def add_model_routes(app: FastAPI, models: Mapping[str, ServedModel]) -> None:
    """``GET /v1/models`` and ``GET /v1/models/{name}``."""

    async def list_models() -> Response:
        return _json({"models": [m.describe() for m in models.values()]})

    async def get_model(name: str) -> Response:
        served = models.get(name)
        if served is None:
            raise ApiError(404, "unknown_model", f"no model named {name!r}")
        return _json({**served.describe(), "schema": served.schema.to_dict()})

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


def add_metrics_route(app: FastAPI, registry: CollectorRegistry) -> None:
    """``GET /metrics`` in the Prometheus text format."""

    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

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

    async def readyz() -> Response:
        checks = {"models": accepting(), "store": await run_in_threadpool(_ping, store)}
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


def add_docs_routes(app: FastAPI) -> None:
    """``GET /openapi.json`` and ``GET /docs`` (Swagger UI), guarded like any route."""

    async def openapi() -> Response:
        return _json(app.openapi())

    async def docs(request: Request) -> Response:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(openapi_url=f"{root}/openapi.json", title=f"{app.title} - docs")

    app.add_api_route("/openapi.json", openapi, methods=["GET"], include_in_schema=False)
    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
