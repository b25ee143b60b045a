"""``POST /v1/models/{name}/feedback``: late labels, joined to predictions by id.

The body is ``{"labels": [{"prediction_id": "...", "label": ...}, ...]}``, read and
decoded as the predict route does (msgspec, the same size limit and media type rule).
A body that is not that shape is refused whole (422 naming the field); otherwise each
item is judged on its own by the :class:`~inferwatch.labels.LabelIngestor` and the
answer lists every rejected item with its code:

- 200: every label was stored (``accepted`` new, ``replaced`` an earlier one);
- 207: some were stored, some rejected (the stored ones stay stored);
- 404 when every item named an unknown prediction id, 422 when none was stored for
  other reasons: the JSON error shape, one detail per item;
- 503 when the store is down: nothing was stored (one transaction), send it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from inferwatch.errors import FieldError, StoreError, echo
from inferwatch.labels import LabelIngestor, LabelReport, LabelResult, LabelRules
from inferwatch.metrics import UNKNOWN_MODEL, Metrics
from inferwatch.server._errors import ApiError, error_response
from inferwatch.server._predict import decode, is_json_media_type, read_body
from inferwatch.server._schemas import ERROR_RESPONSES
from inferwatch.server._served import ServedModel

if TYPE_CHECKING:
    from inferwatch.monitor import Monitor
    from inferwatch.ports import LabelSink, Store

__all__ = ["FeedbackResponse", "add_feedback_route", "feedback_items", "label_ingestor_of"]

log = logging.getLogger("inferwatch.server")

_ITEM_KEYS = frozenset({"prediction_id", "label"})
_MAX_ID = 200  # longer ids are refused as malformed (stored ids are 36 characters)


class FeedbackError(BaseModel):
    index: int = Field(description="Position of the item in 'labels'.")
    prediction_id: str
    code: str = Field(
        description="unknown_prediction_id, wrong_model, duplicate_prediction_id or invalid_label."
    )
    message: str


class FeedbackResponse(BaseModel):
    model: str
    accepted: int = Field(description="Labels stored for predictions that had none.")
    replaced: int = Field(description="Labels stored in place of an earlier label.")
    rejected: int = Field(description="Items refused (see errors).")
    counts: dict[str, int] = Field(description="Rejected items per code.")
    errors: list[FeedbackError]


def _invalid(message: str, field: str, reason: str = "invalid_body") -> ApiError:
    return ApiError(422, "invalid_feedback", message, (FieldError(reason, field, message),))


def feedback_items(payload: Any, max_labels: int) -> list[tuple[str, Any]]:
    """``(prediction_id, label)`` pairs of a decoded body, or an ApiError naming the field."""
    if not isinstance(payload, dict):
        raise _invalid(
            'the body must be a JSON object: {"labels": [{"prediction_id": ..., "label": ...}]}',
            "(body)",
            "wrong_type",
        )
    unknown = [echo(str(k)) for k in payload if k != "labels"]
    if unknown:
        raise _invalid(
            f"unknown top-level key {unknown[0]!r}; expected 'labels'", unknown[0], "unknown_field"
        )
    items = payload.get("labels")
    if not isinstance(items, list):
        raise _invalid(
            "'labels' must be a list of {prediction_id, label} objects",
            "labels",
            "missing_field" if items is None else "wrong_type",
        )
    if not items:
        raise ApiError(
            400,
            "empty_batch",
            "'labels' is empty",
            (FieldError("empty_batch", "labels", "send at least one label"),),
        )
    if len(items) > max_labels:
        raise ApiError(
            413,
            "batch_too_large",
            f"{len(items)} labels in one request; at most {max_labels} "
            "(server.max_labels_per_request)",
        )
    pairs: list[tuple[str, Any]] = []
    for i, item in enumerate(items):
        where = f"labels[{i}]"
        if not isinstance(item, dict):
            raise _invalid(
                f"{where} must be an object with prediction_id and label", where, "wrong_type"
            )
        extra = [echo(str(k)) for k in item if k not in _ITEM_KEYS]
        if extra:
            raise _invalid(
                f"{where}: unknown key {extra[0]!r}; expected prediction_id and label",
                f"{where}.{extra[0]}",
                "unknown_field",
            )
        for key in ("prediction_id", "label"):
            if key not in item:
                raise _invalid(f"{where}.{key} is required", f"{where}.{key}", "missing_field")
        pid = item["prediction_id"]
        if not isinstance(pid, str) or not pid or len(pid) > _MAX_ID:
            raise _invalid(
                f"{where}.prediction_id must be a non-empty string of at most "
                f"{_MAX_ID} characters (a prediction's id)",
                f"{where}.prediction_id",
                "wrong_type",
            )
        pairs.append((pid, item["label"]))
    return pairs


def _detail(result: LabelResult) -> dict[str, Any]:
    field = "label" if result.outcome == "invalid_label" else "prediction_id"
    return {
        "reason": result.outcome,
        "field": f"labels[{result.index}].{field}",
        "instance": result.index,
        "kind": "label",
        "message": result.message or result.outcome,
        "prediction_id": result.prediction_id,
    }


def feedback_status(report: LabelReport) -> int:
    """200 all stored, 207 some, 404 none and all unknown, 422 none otherwise."""
    if not report.rejected:
        return 200
    if report.accepted or report.replaced:
        return 207
    unknown = report.counts["unknown_prediction_id"]
    return 404 if unknown == len(report.results) else 422


def add_feedback_route(
    app: FastAPI,
    models: Mapping[str, ServedModel],
    ingestor: LabelIngestor,
    *,
    metrics: Metrics,
    max_body_bytes: int,
    max_labels: int,
) -> None:
    """Register ``POST /v1/models/{name}/feedback`` for ``models`` on ``app``."""
    known = ", ".join(sorted(models)) or "(none)"

    async def feedback(request: Request) -> Response:
        name: str = request.path_params["name"]
        if name not in models:
            metrics.reject(UNKNOWN_MODEL, "unknown_model")
            return error_response(
                request, 404, "unknown_model", f"no model named {echo(name)!r}; serving: {known}"
            )
        try:
            content_type = request.headers.get("content-type")
            if not is_json_media_type(content_type):
                got = "no Content-Type" if not content_type else repr(echo(content_type))
                raise ApiError(
                    415,
                    "unsupported_media_type",
                    f"the body must be JSON sent as Content-Type: application/json (got {got})",
                )
            pairs = feedback_items(decode(await read_body(request, max_body_bytes)), max_labels)
        except ApiError as exc:
            metrics.reject(name, exc.code)
            return error_response(request, exc.status, exc.code, exc.message, exc.details)
        start = time.perf_counter()
        try:
            report = await run_in_threadpool(ingestor.ingest, name, pairs)
        except StoreError as exc:
            log.error("storing %d labels of %s failed: %s", len(pairs), name, exc)
            return error_response(
                request,
                503,
                "store_unavailable",
                "the store is unavailable; no label of this request was stored: send it again",
                headers={"Retry-After": "5"},
            )
        log.debug("%d labels of %s in %.3f s", len(pairs), name, time.perf_counter() - start)
        status = feedback_status(report)
        if status in (200, 207):
            return Response(
                msgspec.json.encode(report.to_dict()), status, media_type="application/json"
            )
        rejected = report.rejections()
        code = "unknown_prediction_id" if status == 404 else "no_label_stored"
        message = (
            f"none of the {len(rejected)} prediction ids is known"
            if status == 404
            else f"no label was stored: {len(rejected)} item(s) rejected ({_summary(report)})"
        )
        return error_response(request, status, code, message, [_detail(r) for r in rejected])

    errors: dict[int | str, dict[str, Any]] = {k: ERROR_RESPONSES[k] for k in (400, 401, 403, 413)}
    app.add_api_route(
        "/v1/models/{name}/feedback",
        feedback,
        methods=["POST"],
        name="feedback",
        summary="Send late labels (ground truth) for earlier predictions, by prediction id",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        tags=["feedback"],
        response_model=FeedbackResponse,
        responses={
            **errors,
            207: {"model": FeedbackResponse, "description": "Some labels stored, some rejected."},
            404: {**ERROR_RESPONSES[404], "description": "Unknown model, or every id unknown."},
            422: {
                **ERROR_RESPONSES[422],
                "description": "Malformed body, or no label stored; "
                "details name each item's problem.",
            },
            503: {**ERROR_RESPONSES[422], "description": "The store is down: nothing stored."},
        },
        openapi_extra={
            "parameters": [
                {
                    "name": "name",
                    "in": "path",
                    "required": True,
                    "description": "The served model's name.",
                    "schema": {"type": "string", "enum": sorted(models)},
                }
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _request_schema(max_labels)}},
            },
        },
    )


def _summary(report: LabelReport) -> str:
    return ", ".join(f"{k}: {v}" for k, v in report.to_dict()["counts"].items())


def _request_schema(max_labels: int) -> dict[str, Any]:
    return {
        "title": "FeedbackRequest",
        "type": "object",
        "required": ["labels"],
        "additionalProperties": False,
        "properties": {
            "labels": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_labels,
                "items": {
                    "type": "object",
                    "required": ["prediction_id", "label"],
                    "additionalProperties": False,
                    "properties": {
                        "prediction_id": {
                            "type": "string",
                            "description": "The id the predict route returned.",
                        },
                        "label": {
                            "description": "The ground truth: one of the classifier's "
                            'classes (1, 1.0 and "1" are the same class) or a regressor\'s '
                            "finite number."
                        },
                    },
                },
            }
        },
    }


def label_ingestor_of(
    models: Mapping[str, ServedModel] | Sequence[ServedModel],
    store: Store,
    monitor: Monitor,
    metrics: Metrics | None,
    sink: LabelSink | None = None,
) -> LabelIngestor:
    """The ingestor of the served models: each version's label rules from its schema's
    target and its adapter's classes, unflushed rows from the monitor's prediction log,
    accepted batches to ``sink`` (the performance windows)."""
    served = list(models.values()) if isinstance(models, Mapping) else list(models)
    rules = {(m.name, m.version): LabelRules.of(m.schema, m.adapter.classes) for m in served}
    for m in served:  # a forced task (models[].task) wins over the schema's
        if m.forced_task == "regression":
            rules[(m.name, m.version)] = LabelRules("regression")
        elif m.forced_task == "classification":
            rules[(m.name, m.version)] = LabelRules(
                "classification", rules[(m.name, m.version)].classes
            )
    return LabelIngestor(store, rules=rules, log=monitor.prediction_log, sink=sink, metrics=metrics)
