"""Response shapes for the OpenAPI document only: routes encode with msgspec, not these.

Also builds the predict request body's JSON Schema from the served models' schemas,
since the predict route reads its body itself (no pydantic body model on the hot path).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from inferwatch.schema import instance_json_schema

if TYPE_CHECKING:
    from inferwatch.server._served import ServedModel

__all__ = [
    "DriftResponse",
    "ERROR_RESPONSES",
    "ErrorResponse",
    "HealthResponse",
    "ModelDetail",
    "ModelList",
    "ModelSummary",
    "PredictResponse",
    "ReadyResponse",
    "VersionSwitch",
    "predict_request_schema",
]


class ErrorDetail(BaseModel):
    reason: str = Field(description="Stable code of this field's problem, e.g. missing_feature.")
    field: str = Field(description="The offending field (feature name, or 'instances').")
    instance: int | None = Field(description="Index of the instance in the batch, if any.")
    kind: str = Field(description="The feature's kind (numeric, categorical ...) or 'none'.")
    message: str


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine code, e.g. unknown_model, wrong_type.")
    message: str
    details: list[ErrorDetail]


class ErrorResponse(BaseModel):
    error: ErrorBody


class PredictionOut(BaseModel):
    id: str = Field(description="Prediction id; send labels for it later.")
    prediction: Any
    probabilities: dict[str, float] | None = Field(
        None, description="Class probabilities (classifiers with predict_proba only)."
    )


class PredictResponse(BaseModel):
    model: str
    version: str
    predictions: list[PredictionOut]


class VersionInfo(BaseModel):
    version: str
    flavor: str
    live: bool = Field(description="Whether requests go to this version now.")


class VersionChangeOut(BaseModel):
    model: str
    from_version: str
    to_version: str
    at: str
    reason: str


class ModelSummary(BaseModel):
    name: str
    version: str = Field(description="The live version.")
    flavor: str
    task: str | None
    features: list[str]
    classes: list[str] | None = None
    live_since: str | None = None
    versions: list[VersionInfo] | None = Field(
        None, description="Every loaded version, newest first (models[].previous)."
    )
    last_change: VersionChangeOut | None = Field(
        None, description="The newest switch of the live version (rollback or activate)."
    )


class VersionSwitch(BaseModel):
    model: str
    live_version: str
    change: VersionChangeOut | None
    message: str | None = None


class ModelDetail(ModelSummary):
    model_schema: dict[str, Any] = Field(alias="schema")


class ModelList(BaseModel):
    models: list[ModelSummary]


class DriftResponse(BaseModel):
    model: str
    version: str
    status: str = Field(
        description="'judged', 'not_judged' (window too small or not yet "
        "evaluated) or 'no_reference' (live drift is off for this model)."
    )
    message: str | None = Field(description="Why there is no report, when there is none.")
    window: dict[str, Any] | None = Field(
        description="The window: start and end (Unix seconds), rows, judged, evaluated_at."
    )
    report: dict[str, Any] | None = Field(
        description="The window's drift report (the JSON of 'inferwatch report -o x.json'), "
        "with calibrated thresholds, nominal thresholds and quality limits per feature."
    )


class HealthResponse(BaseModel):
    status: str


class ReadyResponse(BaseModel):
    status: str = Field(description="'ready' or 'not_ready'.")
    checks: dict[str, bool]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("Malformed JSON, a body that is not {'instances': [...]}, or an empty batch."),
    401: _error("Missing or invalid API key."),
    403: _error("The API key lacks the route's role."),
    404: _error("Unknown model."),
    413: _error("Body or batch larger than the configured maximum."),
    422: _error("An instance does not match the model's schema; details name each field."),
    409: _error("The request conflicts with the current state (e.g. no older version)."),
    500: _error("The model failed to predict."),
}


def predict_request_schema(models: Sequence[ServedModel]) -> dict[str, Any]:
    """JSON Schema of ``{"instances": [...], "parameters": {...}}`` for the served models."""
    max_batch = max((m.validator.max_batch for m in models), default=1)
    instances: list[dict[str, Any]] = [
        {"title": f"{m.name} instance", **instance_json_schema(m.schema)} for m in models
    ]
    if not instances:
        items: dict[str, Any] = {"type": "object"}
    elif len(instances) == 1:
        items = instances[0]
    else:
        items = {"oneOf": instances}
    return {
        "title": "PredictRequest",
        "type": "object",
        "required": ["instances"],
        "additionalProperties": False,
        "properties": {
            "instances": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_batch,
                "items": items,
                "description": "The instances to predict (KServe v1 / TF Serving convention).",
            },
            "parameters": {"type": "object", "description": "Reserved; ignored for now."},
        },
    }
