"""``POST /v1/models/{name}/predict``: read, validate, predict, log, answer.

The body is read and decoded here rather than by a pydantic body model (FastAPI's body
machinery costs about 200 µs a request): msgspec decodes, the schema's compiled
validator checks, and the answer is encoded with msgspec.  The standard library's
decoder is the fallback, so ``NaN``/``Infinity`` tokens reach the validator and come
back as a ``non_finite`` error naming the field.  Every answer to a known model is
counted in ``inferwatch_requests_total``; every refusal in ``..._rejected_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from fastapi import FastAPI, Request, Response
from starlette.background import BackgroundTasks

from inferwatch._traceparent import trace_id
from inferwatch._wire import encode_predictions
from inferwatch._wire import is_json_media_type as is_json_media_type  # re-exported
from inferwatch.errors import FieldError, ValidationError, echo
from inferwatch.metrics import UNKNOWN_MODEL, Metrics
from inferwatch.monitor import Monitor, new_prediction_id
from inferwatch.ports import Prediction
from inferwatch.server._errors import ApiError, error_response, status_for
from inferwatch.server._inference import infer
from inferwatch.server._request_id import request_id
from inferwatch.server._schemas import ERROR_RESPONSES, PredictResponse, predict_request_schema
from inferwatch.server._served import ServedModel
from inferwatch.server._versions import Shadow, Versions
from inferwatch.tracing import RequestTimes, Tracing

__all__ = [
    "Answered",
    "add_predict_route",
    "answer_rows",
    "count_refusal",
    "read_body",
    "trace_id",
]

log = logging.getLogger("inferwatch.server")

MAX_ID_HEADER = 100  # X-Prediction-Ids is sent for batches up to this size
_BODY_KEYS = frozenset({"instances", "parameters"})
_SURROGATE = re.compile("[\ud800-\udfff]")


def _unsupported_media_type(content_type: str | None) -> ApiError:
    got = "no Content-Type" if not content_type else f"Content-Type {echo(content_type)!r}"
    return ApiError(
        415,
        "unsupported_media_type",
        f"the body must be JSON sent as Content-Type: application/json (got {got})",
    )


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the request body is larger than {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (before reading, if it says so)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "invalid_body", "the Content-Length header is not a number")
        if int(declared) > limit:
            raise _too_large(limit)
        return await request.body()  # the server holds the body to the declared length
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def decode(body: bytes) -> Any:
    """JSON → Python; the stdlib fallback accepts NaN/Infinity for the validator to name."""
    try:
        return msgspec.json.decode(body)
    except (msgspec.MsgspecError, ValueError, RecursionError):  # ValueError: bad UTF-8
        pass
    try:
        payload = json.loads(body)
    except RecursionError:
        raise ApiError(
            400, "malformed_json", "the body is not valid JSON: nested too deeply"
        ) from None
    except ValueError as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    # msgspec refuses a lone surrogate escape ("\ud800"); the stdlib takes it, and such a
    # string has no UTF-8 form: the model, the answer and the store would all fail on it
    bad = _lone_surrogate(payload)
    if bad is not None:
        raise ApiError(400, "invalid_unicode", bad.message, (bad,))
    return payload


def _holds_surrogate(value: Any) -> bool:
    """Whether any string or key in ``value`` holds a lone surrogate (iterative: a body
    nested as deeply as the decoder allows must not overflow the stack here)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item) is not None:
                return True
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
    return False


def _surrogate_error(field: str, instance: int | None = None) -> FieldError:
    where = "the body" if instance is None else f"instances[{instance}]"
    return FieldError(
        "invalid_unicode",
        field,
        f"{where}: {field!r} holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff "
        "escape), which is not Unicode text",
        instance,
    )


def _lone_surrogate(payload: Any) -> FieldError | None:
    """The first field of the body holding a lone surrogate (in a name or a value), or None."""
    if not isinstance(payload, dict):
        return _surrogate_error("(body)") if _holds_surrogate(payload) else None
    for key, value in payload.items():
        if key == "instances" and isinstance(value, list):
            for i, instance in enumerate(value):
                if not isinstance(instance, dict):
                    if _holds_surrogate(instance):
                        return _surrogate_error(f"instances[{i}]", i)
                    continue
                for name, item in instance.items():
                    if _holds_surrogate(name) or _holds_surrogate(item):
                        return _surrogate_error(echo(name), i)
        elif _holds_surrogate(key) or _holds_surrogate(value):
            return _surrogate_error(echo(key))
    return None


def instances_of(payload: Any) -> Any:
    """``payload["instances"]`` after checking the envelope ``{"instances": [...]}``."""
    if not isinstance(payload, dict):
        raise ApiError(
            400,
            "invalid_body",
            'the body must be a JSON object: {"instances": [{...}, ...]}',
            (FieldError("wrong_type", "(body)", "expected a JSON object"),),
        )
    if "instances" not in payload:
        raise ApiError(
            400,
            "invalid_body",
            "the body has no 'instances' list",
            (FieldError("missing_field", "instances", "required"),),
        )
    unknown = [k for k in payload if k not in _BODY_KEYS]
    if unknown:
        shown = [echo(str(k)) for k in unknown[:5]]
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise ApiError(
            400,
            "invalid_body",
            f"unknown top-level key(s) {', '.join(map(repr, shown))}{more}; "
            "expected 'instances' and optionally 'parameters'",
            tuple(FieldError("unknown_field", k, "not allowed here") for k in shown),
        )
    params = payload.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise ApiError(
            400,
            "invalid_body",
            "'parameters' must be an object",
            (FieldError("wrong_type", "parameters", "expected an object"),),
        )
    instances = payload["instances"]
    if not isinstance(instances, list):
        raise ApiError(
            400,
            "invalid_body",
            "'instances' must be a list of objects",
            (FieldError("wrong_type", "instances", "expected a list of objects"),),
        )
    return instances


def add_predict_route(
    app: FastAPI,
    models: Mapping[str, ServedModel],
    *,
    monitor: Monitor,
    metrics: Metrics,
    max_body_bytes: int,
    versions: Versions | None = None,
) -> None:
    """Register the predict route for ``models`` (and A/B groups in ``versions``) on ``app``."""
    splits = versions.splits if versions else {}
    shadows = versions.shadows if versions else {}
    routable = sorted([*models, *splits])
    known = ", ".join(routable) or "(none)"

    # ``name`` is read from the path, not declared as a parameter: FastAPI's parameter
    # machinery costs several µs a request; the OpenAPI parameter is declared below instead.
    async def predict(request: Request) -> Response:
        start = time.perf_counter()
        name: str = request.path_params["name"]
        served = models.get(name)
        split = False
        if served is None and name in splits:  # an A/B group: one member answers
            served, split = splits[name].choose(), True
            name = served.name
        if served is None:
            metrics.reject(UNKNOWN_MODEL, "unknown_model")
            return error_response(
                request, 404, "unknown_model", f"no model named {echo(name)!r}; serving: {known}"
            )
        inflight = served.metrics.inflight
        inflight.inc()
        try:
            return await _answer(request, served, name, start, split)
        finally:
            inflight.dec()

    async def _answer(
        request: Request, served: ServedModel, name: str, start: float, split: bool
    ) -> Response:
        try:
            content_type = request.headers.get("content-type")
            if not is_json_media_type(content_type):
                raise _unsupported_media_type(content_type)
            payload = decode(await read_body(request, max_body_bytes))
            rows = served.validator.validate(instances_of(payload))
        except (ApiError, ValidationError) as exc:
            refused = count_refusal(metrics, served, name, exc, start)
            return error_response(
                request, refused.status, refused.code, refused.message, refused.details
            )
        try:
            return await _predict(
                request, served, rows, monitor, start, shadows.get(name, ()), split=split
            )
        except Exception:  # answered as a 500 by the catch-all handler; count it here
            served.metrics.request(500, time.perf_counter() - start)
            raise

    app.add_api_route(
        "/v1/models/{name}/predict",
        predict,
        methods=["POST"],
        name="predict",
        summary="Predict a batch of instances",
        tags=["predict"],
        response_model=PredictResponse,
        responses=ERROR_RESPONSES,
        openapi_extra={
            "parameters": [
                {
                    "name": "name",
                    "in": "path",
                    "required": True,
                    "description": "The served model's name.",
                    "schema": {"type": "string", "enum": routable},
                }
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": predict_request_schema(list(models.values()))}
                },
            },
        },
    )


def count_refusal(
    metrics: Metrics,
    served: ServedModel,
    name: str,
    exc: ApiError | ValidationError,
    start: float,
    *,
    field_status: int = 422,
) -> ApiError:
    """Count a refused predict request and return the refusal to answer.

    Shared by every predict route (V1 and the Open Inference Protocol) so a refusal is
    counted the same way whichever protocol it came in: in ``..._rejected_total`` with
    its reason (and each bad field's reason and kind), and in ``inferwatch_requests_total``
    with the status answered.  ``field_status`` is the status of a field problem (V1 says
    422; the Open Inference Protocol's clients expect 400).
    """
    if isinstance(exc, ApiError):
        metrics.reject(name, exc.code)
        served.metrics.request(exc.status, time.perf_counter() - start)
        return exc
    status = status_for(exc.code)
    fields = [(e.reason, e.kind) for e in exc.errors] if status == 422 else ()
    status = field_status if status == 422 else status
    metrics.reject(name, exc.code, fields)
    served.metrics.request(status, time.perf_counter() - start)
    return ApiError(status, exc.code, exc.message, exc.errors)


@dataclass(frozen=True, slots=True)
class Answered:
    """A batch predicted, counted and logged: what a route encodes into its answer."""

    ids: list[str]
    predictions: Sequence[Prediction]
    body: bytes  # what ``encode`` made of them
    background: BackgroundTasks | None  # the shadows' work, run after the answer is sent


Encode = Callable[[ServedModel, list[str], Sequence[Prediction]], bytes]


async def answer_rows(
    request: Request,
    served: ServedModel,
    rows: list[dict[str, Any]],
    monitor: Monitor,
    start: float,
    encode: Encode,
    shadows: Sequence[Shadow] = (),
) -> Answered:
    """Predict validated ``rows`` with ``served``, encode, log and count the request as 200.

    The one path from validated rows to logged predictions, shared by every predict route
    (V1 and the Open Inference Protocol), so each is monitored and logged the same way.
    Raises :class:`ApiError` (a 5xx, already counted, nothing logged) when the model fails
    or its output cannot be encoded; ``encode`` may raise an ApiError of its own (counted
    with its status, nothing logged) to refuse an answer the request asked for.
    """
    traced = _begin_trace(request, start)
    times = traced[2] if traced is not None else None
    try:
        predictions = await infer(served, rows, times)
        ids = [new_prediction_id() for _ in rows]
        try:
            body = encode(served, ids, predictions)
        except ApiError:  # the request asked for what this model cannot give (a 4xx)
            raise
        except Exception as exc:
            log.exception("model %s version %s: answer not encodable", served.name, served.version)
            raise ApiError(
                500,
                "model_error",
                f"model {served.name!r} returned a prediction that cannot be encoded "
                f"({type(exc).__name__}); the server log has the details",
            ) from None
    except ApiError as exc:
        served.metrics.request(exc.status, time.perf_counter() - start, _failure(request, traced))
        if traced is not None:
            tracing, span, times = traced
            tracing.finish(span, times, exc.status, _span_attributes(served, rows))
        raise
    if traced is not None:
        trace: str | None = traced[0].trace_id(traced[1])
    else:
        trace = trace_id(request.headers.get("traceparent"))
    strict = _strict_waiter() if monitor.prediction_log.strict else None
    monitor.log(
        served.name,
        served.version,
        rows,
        [p.value for p in predictions],
        ids=ids,
        scores=[p.score for p in predictions],
        probabilities=[p.probabilities for p in predictions],
        latency_seconds=time.perf_counter() - start,
        trace_id=trace,
        block=False,  # the event loop never waits on the store: a full buffer drops
        on_stored=None if strict is None else strict[1],
    )
    if strict is not None and not await _committed(strict[0], monitor):
        served.metrics.request(503, time.perf_counter() - start, _failure(request, traced))
        if traced is not None:
            tracing, span, times = traced
            tracing.finish(span, times, 503, _span_attributes(served, rows))
        raise ApiError(
            503,
            "store_unavailable",
            "the prediction could not be stored (store.durability is strict: only "
            "predictions committed to the store are answered); retry",
            headers={"Retry-After": "1"},
        )
    if traced is not None:
        tracing, span, times = traced
        times.logged = time.perf_counter()
        tracing.finish(span, times, 200, _span_attributes(served, rows))
    background = _shadow_tasks(request, shadows, rows, ids, predictions, trace) if shadows else None
    served.metrics.request(200)  # its duration is the latency_seconds logged above
    return Answered(ids, predictions, body, background)


def _strict_waiter() -> tuple[asyncio.Future[bool], Callable[[bool], None]]:
    """A future of this event loop, and the callback the log writer thread calls with
    whether the request's rows were committed (``store.durability: strict``)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[bool] = loop.create_future()

    def resolve(ok: bool) -> None:
        if not future.done():  # the request may have given up (timed out, disconnected)
            future.set_result(ok)

    def stored(ok: bool) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
            loop.call_soon_threadsafe(resolve, ok)

    return future, stored


async def _committed(future: asyncio.Future[bool], monitor: Monitor) -> bool:
    """Wait for the writer's word on the rows; False past two store-call bounds (the
    writer tries once, within one bound; the second covers the batch ahead of it)."""
    bound = monitor.prediction_log.call_timeout
    try:
        return await asyncio.wait_for(future, None if bound is None else 2 * bound + 1.0)
    except TimeoutError:
        return False


def _failure(
    request: Request, traced: tuple[Tracing, Any, RequestTimes] | None
) -> dict[str, str] | None:
    """The exemplar of a failed request: its trace id and request id (a failed request
    has no prediction id), when it has a trace."""
    trace = traced[0].trace_id(traced[1]) if traced is not None else None
    if trace is None:
        trace = trace_id(request.headers.get("traceparent"))
    if trace is None:
        return None
    out = {"trace_id": trace}
    rid = request_id(request)
    if rid is not None:
        out["request_id"] = rid[:64]
    return out


def _begin_trace(request: Request, start: float) -> tuple[Tracing, Any, RequestTimes] | None:
    """The request's server span when the app traces and samples it (tracing's set-up is
    on ``app.state.tracing``; none, and a request costs this one lookup)."""
    tracing: Tracing | None = getattr(request.app.state, "tracing", None)
    if tracing is None:
        return None
    route = getattr(request.scope.get("route"), "path", request.url.path)
    span = tracing.begin(f"{request.method} {route}", request.headers, start)
    if span is None:
        return None
    return tracing, span, RequestTimes(start, validated=time.perf_counter())


def _span_attributes(served: ServedModel, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "inferwatch.model": served.name,
        "inferwatch.version": served.version,
        "inferwatch.rows": len(rows),
    }


async def _predict(
    request: Request,
    served: ServedModel,
    rows: list[dict[str, Any]],
    monitor: Monitor,
    start: float,
    shadows: Sequence[Shadow] = (),
    *,
    split: bool = False,
) -> Response:
    try:
        answered = await answer_rows(request, served, rows, monitor, start, _encode, shadows)
    except ApiError as exc:
        return error_response(request, exc.status, exc.code, exc.message, exc.details, exc.headers)
    ids = answered.ids
    headers = {"x-prediction-ids": ",".join(ids)} if len(ids) <= MAX_ID_HEADER else None
    if split:  # which member of the A/B group answered (the body says it too)
        headers = {**(headers or {}), "x-model-name": served.name}
        headers["x-model-version"] = served.version
    return Response(
        answered.body,
        headers=headers,
        media_type="application/json",
        background=answered.background,
    )


def _shadow_tasks(
    request: Request,
    shadows: Sequence[Shadow],
    rows: list[dict[str, Any]],
    ids: list[str],
    predictions: Sequence[Prediction],
    trace: str | None,
) -> BackgroundTasks | None:
    """The shadows' work on this batch, run by Starlette after the response is sent (in
    the thread pool: the event loop keeps answering).  A shadow already holding its
    maximum of batches skips this one (counted as dropped)."""
    tasks = BackgroundTasks()
    outputs = [p.value for p in predictions]
    for shadow in shadows:
        if shadow.reserve(len(rows)):
            tasks.add_task(shadow.run, rows, ids, outputs, trace)
    return tasks if tasks.tasks else None


def _encode(served: ServedModel, ids: list[str], predictions: Sequence[Prediction]) -> bytes:
    return encode_predictions(served.name, served.version, ids, predictions)
