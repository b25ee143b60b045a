"""One JSON error shape for every refusal: ``{"error": {"code", "message", "details"}}``.

Every exception that can reach a client is turned into that shape here; a stack trace
never is (unexpected errors are logged server-side and answered with a generic 500).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from inferwatch._wire import status_for as status_for  # re-exported
from inferwatch.errors import FieldError, ValidationError, echo
from inferwatch.server._request_id import REQUEST_ID_HEADER, request_id

__all__ = [
    "ApiError",
    "error_response",
    "install_error_handlers",
    "is_v2_path",
    "status_for",
]

log = logging.getLogger("inferwatch.server")

_CODE_FOR_HTTP_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    """A refusal with its HTTP status, stable code, message and field details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def is_v2_path(path: str) -> bool:
    """Whether ``path`` is one of the Open Inference Protocol's (``/v2`` and below)."""
    return path.startswith("/v2/") or path == "/v2"


def error_response(
    request: Request | None,
    status: int,
    code: str,
    message: str,
    details: Sequence[FieldError | Mapping[str, Any]] = (),
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The JSON error response; ``details`` are FieldErrors (or dicts of the same shape).

    Under ``/v2`` (the Open Inference Protocol) ``error`` is the message itself, as that
    protocol's clients read it (tritonclient makes its exception's text of it), with
    ``code`` and ``details`` beside it.
    """
    listed = [d.to_dict() if isinstance(d, FieldError) else d for d in details]
    body: dict[str, Any]
    if request is not None and is_v2_path(request.scope.get("path", "")):
        body = {"error": message, "code": code, "details": listed}
    else:
        body = {"error": {"code": code, "message": message, "details": listed}}
    response = Response(
        msgspec.json.encode(body), status, headers=headers, media_type="application/json"
    )
    rid = None if request is None else request_id(request)
    if rid is not None:
        response.headers[REQUEST_ID_HEADER] = rid
    return response


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(request, exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    return error_response(request, status_for(exc.code), exc.code, exc.message, exc.errors)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _CODE_FOR_HTTP_STATUS.get(exc.status_code, "http_error")
    if exc.status_code == 404:
        message = f"no route {echo(request.method)} {echo(request.url.path)}"
    elif exc.status_code == 405:
        message = f"method {echo(request.method)} is not allowed on {echo(request.url.path)}"
    else:
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(request, exc.status_code, code, message, (), exc.headers)


async def _request_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = [
        {
            "reason": str(err.get("type", "invalid")),
            "field": ".".join(str(part) for part in err.get("loc", ())),
            "instance": None,
            "kind": "none",
            "message": str(err.get("msg", "")),
        }
        for err in exc.errors()
    ]
    return error_response(request, 422, "invalid_request", "the request is invalid", details)


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client left (or the server's body timeout dropped it) while its body was read:
    nobody to answer, nothing to log (else every slow-body client wrote a traceback)."""
    return Response(status_code=400)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, 500, "internal_error", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error the app can raise in the one JSON shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(ValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected_error)
