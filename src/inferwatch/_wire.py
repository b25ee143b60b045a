"""The prediction API's wire format, shared by the server and the framework integrations.

Free of FastAPI and Starlette, so that ``inferwatch.integrations.flask`` can answer
exactly as the server does without importing them: which validation codes map to which
HTTP status, which media types count as JSON, and how predictions are encoded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from inferwatch.models import to_python
from inferwatch.ports import Prediction

__all__ = ["encode_predictions", "is_json_media_type", "json_encoder", "status_for"]

# validation codes that are not 422 (a field problem)
_STATUS_FOR_CODE = {
    "malformed_json": 400,
    "invalid_body": 400,
    "invalid_unicode": 400,
    "unsupported_media_type": 415,
    "empty_batch": 400,
    "batch_too_large": 413,
    "body_too_large": 413,
    "unknown_model": 404,
}


def status_for(code: str) -> int:
    """HTTP status of a validation code: 422 for a field problem, else 400/404/413/415."""
    return _STATUS_FOR_CODE.get(code, 422)


def is_json_media_type(content_type: str | None) -> bool:
    """True for ``application/json`` and ``application/*+json``, with any parameters.

    Anything else is refused with 415: a web page can post ``text/plain`` and forms to a
    loopback server without a CORS preflight, and ``application/json`` needs one.
    """
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _enc_hook(value: Any) -> Any:
    converted = to_python(value)  # numpy values from a custom adapter or function
    if converted is value:
        raise TypeError(f"cannot encode a {type(value).__name__} as JSON")
    return converted


#: msgspec's JSON encoder, with numpy values turned into plain ones
json_encoder = msgspec.json.Encoder(enc_hook=_enc_hook)


def encode_predictions(
    model: str, version: str, ids: Sequence[str], predictions: Sequence[Prediction]
) -> bytes:
    """The V1 answer: ``{"model", "version", "predictions": [{"id", "prediction",
    "probabilities"}]}`` (probabilities only for a model that gives them)."""
    out: list[dict[str, Any]] = []
    for pid, p in zip(ids, predictions, strict=True):
        item: dict[str, Any] = {"id": pid, "prediction": p.value}
        if p.probabilities is not None:
            item["probabilities"] = p.probabilities
        out.append(item)
    return json_encoder.encode({"model": model, "version": version, "predictions": out})
