"""FastAPI: one line for a monitored predict route, ``/metrics``, and closing at shutdown.

::

    add_predict_route(app, monitor, model)          # POST /predict, GET /metrics

    @predict_route(app, monitor, "/score")          # or around your own function
    def score(rows: list[dict]) -> list: ...

The route reads a JSON list of instances (or the server's ``{"instances": [...]}``),
validates it with the monitor's schema (a 4xx with the server's JSON error naming the
field), runs the model, logs the batch with the request's latency, the model's time and
the W3C ``traceparent`` trace id, and answers as the server's V1 route does (see
:class:`~inferwatch.integrations._core.Endpoint`).  A synchronous model and the log
write run in Starlette's thread pool, so a slow model or a full log buffer does not hold
the event loop; an ``async def`` model is awaited on it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from inferwatch._traceparent import trace_id
from inferwatch.integrations._core import DEFAULT_MAX_BODY_BYTES, Answer, Endpoint, Refused

if TYPE_CHECKING:
    from inferwatch.monitor import Monitor

__all__ = ["add_predict_route", "predict_route"]

_JSON = "application/json"


def add_predict_route(
    app: FastAPI,
    monitor: Monitor,
    model: Any,
    path: str = "/predict",
    *,
    classes: Sequence[Any] | None = None,
    metrics_path: str | None = "/metrics",
    close_on_shutdown: bool = True,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    name: str | None = None,
) -> Endpoint:
    """Serve ``model`` at ``POST path`` on ``app``, monitored by ``monitor``.

    ``model`` is a scikit-learn estimator (or anything with ``predict``, run as the server
    runs it: ``predict_proba`` gives the probabilities), an inferwatch ``ModelAdapter``, or
    a function (sync or ``async``) of the validated rows, a list of dicts, returning one
    output per row; with ``classes`` it returns probabilities, one column per class.

    ``metrics_path`` (None: none) serves the monitor's metrics, once per app;
    ``close_on_shutdown`` closes the monitor when the app's lifespan ends (the buffered
    rows written, the drift thread stopped), added to the app's own lifespan.
    """
    endpoint = Endpoint(monitor, model, classes=classes, max_body_bytes=max_body_bytes)
    is_async = endpoint.model.is_async
    function = endpoint.model.function

    async def predict(request: Request) -> Response:
        start = time.perf_counter()
        with endpoint.watch.inflight():
            try:
                body = await _read_body(request, endpoint, start)
                rows = endpoint.rows(body, request.headers.get("content-type"), start)
            except Refused as refused:
                return _response(refused.answer)
            except ClientDisconnect:  # gone while sending its body: nobody to answer
                return Response(status_code=400)
            trace = trace_id(request.headers.get("traceparent"))
            if not is_async:
                answer = await run_in_threadpool(endpoint.answer, rows, start, trace)
                return _response(answer)
            assert function is not None
            t0 = time.perf_counter()
            try:
                returned = await function(rows)
            except Exception as exc:
                return _response(endpoint.failed(exc, start))
            inference = time.perf_counter() - t0
            answer = await run_in_threadpool(
                endpoint.finish, rows, returned, start, inference, trace
            )
            return _response(answer)

    w = endpoint.watch
    app.add_api_route(
        path,
        predict,
        methods=["POST"],
        name=name or f"predict_{w.name}",
        summary=f"Predict with model {w.name!r} version {w.version!r}, monitored",
        openapi_extra={"requestBody": _request_body(w.names)},
    )
    if metrics_path is not None:
        _serve_metrics(app, monitor, metrics_path)
    if close_on_shutdown:
        _close_at_shutdown(app, monitor)
    return endpoint


def predict_route(
    app: FastAPI,
    monitor: Monitor,
    path: str = "/predict",
    *,
    classes: Sequence[Any] | None = None,
    metrics_path: str | None = "/metrics",
    close_on_shutdown: bool = True,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """:func:`add_predict_route` as a decorator of the model function (returned unchanged)."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        add_predict_route(
            app, monitor, function, path, classes=classes, metrics_path=metrics_path,
            close_on_shutdown=close_on_shutdown, max_body_bytes=max_body_bytes,
            name=getattr(function, "__name__", None),
        )  # fmt: skip
        return function

    return register


def _response(answer: Answer) -> Response:
    return Response(answer.body, answer.status, headers=answer.headers, media_type=_JSON)


async def _read_body(request: Request, endpoint: Endpoint, start: float) -> bytes:
    """The body, refused (413, counted) past the limit: before reading when it says so."""
    limit = endpoint.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise endpoint.refused(endpoint.too_large(), start)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise endpoint.refused(endpoint.too_large(), start)
        chunks.append(chunk)
    return b"".join(chunks)


def _serve_metrics(app: FastAPI, monitor: Monitor, path: str) -> None:
    """``GET path``: the monitor's metrics, Prometheus text or OpenMetrics as asked."""
    served = _app_set(app, "inferwatch_metrics_paths")
    if path in served:
        return
    served.add(path)

    async def metrics(request: Request) -> Response:
        body, content_type = await run_in_threadpool(
            monitor.render_metrics, request.headers.get("accept")
        )
        return Response(body, media_type=content_type)

    app.add_api_route(path, metrics, methods=["GET"], include_in_schema=False)


def _close_at_shutdown(app: FastAPI, monitor: Monitor) -> None:
    """Close ``monitor`` after the app's own lifespan ends (once per monitor)."""
    closing = _app_set(app, "inferwatch_closing_monitors")
    if id(monitor) in closing:
        return
    closing.add(id(monitor))
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(the_app: Any) -> AsyncIterator[Any]:
        try:
            async with inner(the_app) as state:
                yield state
        finally:
            await run_in_threadpool(monitor.close)

    app.router.lifespan_context = lifespan


def _app_set(app: FastAPI, key: str) -> set[Any]:
    """A set kept on ``app.state`` (what was added to this app already)."""
    found: set[Any] | None = getattr(app.state, key, None)
    if found is None:
        found = set()
        setattr(app.state, key, found)
    return found


def _request_body(names: Sequence[str]) -> dict[str, Any]:
    """The OpenAPI request body: a list of instances with the schema's features."""
    instance = {"type": "object", "properties": {n: {} for n in names}}
    return {
        "required": True,
        "content": {_JSON: {"schema": {"type": "array", "items": instance, "minItems": 1}}},
    }
