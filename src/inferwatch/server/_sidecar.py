"""``POST /v1/models/{name}/log``: an existing service sends the predictions it made itself.

A team whose model already runs in its own service keeps it there and sends inferwatch
what went in and what came out.  The records go through what a served prediction goes
through: the inputs are checked by the model's compiled validator (the same reason codes
as predict), the outputs against the model's task (a classifier's known classes, a
regressor's finite numbers), then ``Monitor.log`` counts them in the metrics, profiles
them into the drift and performance windows and writes them to the store.  A bad batch is
refused whole (422 naming ``records[i].field``) and counted in
``inferwatch_requests_rejected_total``; nothing of it is stored, so a corrected resend
does not double anything.

Body::

    {"records": [{"inputs": {...}, "output": "yes",
                  "id": "...", "timestamp": "2026-11-29T12:00:00Z",
                  "probabilities": {"no": 0.2, "yes": 0.8}, "score": 0.8}, ...],
     "latency_seconds": 0.012}

``id`` (unique, at most 100 characters; generated when absent: send labels for it later
with ``/feedback``), ``timestamp`` (ISO 8601, naive means UTC; when the prediction was
made, default now), ``probabilities``, ``score`` and the batch's ``latency_seconds`` are
optional.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
from fastapi import FastAPI, Request, Response

from inferwatch.errors import FieldError, ValidationError, echo
from inferwatch.metrics import UNKNOWN_MODEL, Metrics
from inferwatch.monitor import Monitor, new_prediction_id
from inferwatch.server._errors import ApiError, error_response, status_for
from inferwatch.server._predict import decode, is_json_media_type, read_body
from inferwatch.server._schemas import ERROR_RESPONSES
from inferwatch.server._served import ServedModel

__all__ = ["MAX_ID_LENGTH", "add_log_route"]

MAX_ID_LENGTH = 100
_RECORD_KEYS = frozenset({"inputs", "output", "id", "timestamp", "probabilities", "score"})
_BODY_KEYS = frozenset({"records", "latency_seconds"})


def _bad(field: str, message: str, instance: int | None = None) -> FieldError:
    return FieldError("invalid_record", field, message, instance=instance)


def _refuse(details: list[FieldError]) -> ValidationError:
    first = details[0]
    return ValidationError(
        "invalid_record",
        f"{len(details)} problem(s) in the records; the first: {first.field}: {first.message}",
        tuple(details[:100]),
    )


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _timestamp(value: Any, field: str, i: int, problems: list[FieldError]) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(_bad(field, "expected an ISO 8601 time", i))
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        problems.append(_bad(field, f"{echo(value[:40])!r} is not an ISO 8601 time", i))
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class _Batch:
    """The checked columns of one body (what ``Monitor.log`` takes)."""

    def __init__(self, served: ServedModel, payload: Any) -> None:
        if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
            raise ApiError(
                400,
                "invalid_body",
                'the body must be a JSON object: {"records": [{"inputs": {...}, "output": ...}]}',
                (FieldError("missing_field", "records", "a list of records is required"),),
            )
        unknown = sorted(str(k) for k in payload if k not in _BODY_KEYS)
        if unknown:
            raise ApiError(
                400,
                "invalid_body",
                f"unknown top-level key(s) {', '.join(repr(echo(k)) for k in unknown[:5])}; "
                "expected 'records' and optionally 'latency_seconds'",
                tuple(
                    FieldError("unknown_field", echo(k), "not allowed here") for k in unknown[:5]
                ),
            )
        latency = payload.get("latency_seconds")
        if latency is not None and not (_finite(latency) and latency >= 0):
            raise _refuse([_bad("latency_seconds", "expected a number of seconds >= 0")])
        self.latency: float | None = None if latency is None else float(latency)
        records: list[Any] = payload["records"]
        problems: list[FieldError] = []
        inputs: list[Any] = []
        for i, r in enumerate(records):
            if not isinstance(r, dict):
                problems.append(_bad(f"records[{i}]", "expected an object", i))
                inputs.append(None)
                continue
            extra = sorted(str(k) for k in r if k not in _RECORD_KEYS)
            if extra:
                problems.append(_bad(f"records[{i}].{echo(extra[0])}", "unknown key", i))
            if "output" not in r:
                problems.append(_bad(f"records[{i}].output", "required", i))
            inputs.append(r.get("inputs"))
        if problems:
            raise _refuse(problems)
        # the inputs: the model's own validator (its reason codes, instance = record index)
        self.rows = served.validator.validate(inputs)
        classes = set(served.adapter.classes or ())
        regression = served.task == "regression"
        self.outputs: list[Any] = []
        self.ids: list[str] = []
        self.timestamps: list[datetime] = []
        self.probabilities: list[Mapping[str, float] | None] = []
        self.scores: list[float | None] = []
        seen: set[str] = set()
        now = datetime.now(UTC)
        for i, r in enumerate(records):
            out = r["output"]
            if regression and not _finite(out):
                problems.append(_bad(f"records[{i}].output", "expected a finite number", i))
            elif not regression and classes and str(out) not in classes:
                known = ", ".join(sorted(classes)[:10])
                problems.append(
                    _bad(
                        f"records[{i}].output",
                        f"{echo(str(out)[:40])!r} is not a class of the model ({known})",
                        i,
                    )
                )
            elif not regression and not isinstance(out, str | int | bool):
                problems.append(_bad(f"records[{i}].output", "expected a class label", i))
            self.outputs.append(str(out) if classes and not regression else out)
            rid = r.get("id")
            if rid is None:
                rid = new_prediction_id()
            elif not isinstance(rid, str) or not rid or len(rid) > MAX_ID_LENGTH:
                problems.append(
                    _bad(
                        f"records[{i}].id",
                        f"expected a string of 1 to {MAX_ID_LENGTH} characters",
                        i,
                    )
                )
            elif rid in seen:
                problems.append(_bad(f"records[{i}].id", "the same id twice in one batch", i))
            seen.add(str(rid))
            self.ids.append(str(rid))
            ts = _timestamp(r.get("timestamp"), f"records[{i}].timestamp", i, problems)
            self.timestamps.append(ts or now)
            probs = r.get("probabilities")
            if probs is not None and not (
                isinstance(probs, dict)
                and all(isinstance(k, str) and _finite(v) and 0 <= v <= 1 for k, v in probs.items())
            ):
                problems.append(
                    _bad(
                        f"records[{i}].probabilities", "expected {class: probability in [0, 1]}", i
                    )
                )
                probs = None
            self.probabilities.append(probs)
            score = r.get("score")
            if score is not None and not (_finite(score) and 0 <= score <= 1):
                problems.append(_bad(f"records[{i}].score", "expected a number in [0, 1]", i))
                score = None
            if score is None and probs:
                score = max(probs.values())  # confidence: the top class's probability
            self.scores.append(None if score is None else float(score))
        if problems:
            raise _refuse(problems)


def add_log_route(
    app: FastAPI,
    models: Mapping[str, ServedModel],
    *,
    monitor: Monitor,
    metrics: Metrics,
    max_body_bytes: int,
) -> None:
    """``POST /v1/models/{name}/log`` for ``models`` (see the module docstring)."""

    async def log_predictions(request: Request) -> Response:
        start = time.perf_counter()
        name: str = request.path_params["name"]
        served = models.get(name)
        if served is None:
            metrics.reject(UNKNOWN_MODEL, "unknown_model")
            return error_response(request, 404, "unknown_model", f"no model named {echo(name)!r}")
        try:
            content_type = request.headers.get("content-type")
            if not is_json_media_type(content_type):
                raise ApiError(415, "unsupported_media_type", "send application/json")
            batch = _Batch(served, decode(await read_body(request, max_body_bytes)))
        except ApiError as exc:
            metrics.reject(name, exc.code)
            return error_response(request, exc.status, exc.code, exc.message, exc.details)
        except ValidationError as exc:
            status = status_for(exc.code)
            metrics.reject(name, exc.code, [(e.reason, e.kind) for e in exc.errors])
            return error_response(request, status, exc.code, exc.message, exc.errors)
        ids = monitor.log(
            served.name,
            served.version,
            batch.rows,
            batch.outputs,
            ids=batch.ids,
            scores=batch.scores,
            probabilities=batch.probabilities,
            timestamps=batch.timestamps,
            latency_seconds=batch.latency,
            block=False,  # the event loop never waits on the store: a full buffer drops
        )
        body = {
            "model": served.name,
            "version": served.version,
            "accepted": len(ids),
            "ids": ids,
            "seconds": round(time.perf_counter() - start, 6),
        }
        return Response(msgspec.json.encode(body), media_type="application/json")

    app.add_api_route(
        "/v1/models/{name}/log",
        log_predictions,
        methods=["POST"],
        name="log_predictions",
        summary="Record predictions another service made (sidecar logging)",
        tags=["predict"],
        responses=ERROR_RESPONSES,
        openapi_extra={
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["records"],
                            "properties": {
                                "records": {"type": "array", "items": {"type": "object"}},
                                "latency_seconds": {"type": "number", "minimum": 0},
                            },
                        }
                    }
                },
            },
        },
    )
