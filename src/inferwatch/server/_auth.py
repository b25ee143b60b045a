"""API-key access control: which role each route needs, who holds it, and the bind rule.

Keys arrive hashed (``config.ApiKey`` keeps only the SHA-256), so a presented key is
hashed and compared with every stored digest in constant time, without early exit.
Every route's need is declared in :data:`ROUTE_ACCESS`; the route class refuses to build
a route that is not in the table, so an unguarded route cannot be added by mistake.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from types import MappingProxyType
from typing import Any, Final, Literal, cast

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.datastructures import Headers

from inferwatch.config import ApiKey, AuthSettings, Role, is_loopback
from inferwatch.errors import ConfigError
from inferwatch.metrics import UNKNOWN_MODEL, Metrics, ModelMetrics
from inferwatch.server._errors import ApiError

__all__ = ["ROUTE_ACCESS", "Access", "Guard", "check_bind", "guarded_route_class", "required_role"]

log = logging.getLogger("inferwatch.server")

#: A role, or a group of routes that stay open unless its ``auth.open_*`` flag is false
#: (then they need ``read``).
Access = Literal["predict", "feedback", "read", "admin", "metrics", "health", "docs"]

#: (method, path) → what the route needs.  Every route of the app must be listed here.
ROUTE_ACCESS: Final[Mapping[tuple[str, str], Access]] = MappingProxyType(
    {
        ("POST", "/v1/models/{name}/predict"): "predict",
        ("POST", "/v1/models/{name}/log"): "predict",
        ("POST", "/v1/models/{name}/feedback"): "feedback",
        ("GET", "/v1/models"): "read",
        ("GET", "/v1/models/{name}"): "read",
        ("POST", "/v1/models/{name}/rollback"): "admin",
        ("POST", "/v1/models/{name}/versions/{version}/activate"): "admin",
        ("GET", "/v1/models/{name}/drift"): "read",
        ("GET", "/v1/models/{name}/evaluations"): "read",
        ("GET", "/v1/models/{name}/performance"): "read",
        ("GET", "/v1/models/{name}/compare"): "read",
        ("POST", "/v1/models/{name}/evaluate"): "admin",
        ("GET", "/v1/alerts"): "read",
        ("GET", "/v1/alerts/history"): "read",
        ("GET", "/v1/alerts/notifications"): "read",
        ("GET", "/v1/actions"): "read",
        ("GET", "/v1/silences"): "read",
        ("POST", "/v1/silences"): "admin",
        ("DELETE", "/v1/silences/{silence_id}"): "admin",
        ("POST", "/v1/alerts/{fingerprint}/acknowledge"): "admin",
        ("GET", "/v1/overview"): "read",
        ("GET", "/v1/models/{name}/history"): "read",
        ("GET", "/v1/history/resources"): "read",
        ("GET", "/v1/models/{name}/drift/history"): "read",
        ("GET", "/v1/models/{name}/features/{feature}/distribution"): "read",
        ("GET", "/v2"): "read",
        ("GET", "/v2/health/live"): "health",
        ("GET", "/v2/health/ready"): "health",
        ("GET", "/v2/models/{name}"): "read",
        ("GET", "/v2/models/{name}/versions/{version}"): "read",
        ("GET", "/v2/models/{name}/ready"): "health",
        ("GET", "/v2/models/{name}/versions/{version}/ready"): "health",
        ("POST", "/v2/models/{name}/infer"): "predict",
        ("POST", "/v2/models/{name}/versions/{version}/infer"): "predict",
        ("GET", "/metrics"): "metrics",
        ("GET", "/healthz"): "health",
        ("GET", "/readyz"): "health",
        ("GET", "/openapi.json"): "docs",
        ("GET", "/docs"): "docs",
        ("GET", "/docs/assets/{asset}"): "docs",
        # the dashboard's page and files: static, no data (server._ui)
        ("GET", "/"): "docs",
        ("GET", "/ui"): "docs",
        ("GET", "/ui/{path:path}"): "docs",
    }
)

_OPEN_FLAG: Final[Mapping[str, str]] = MappingProxyType(
    {"metrics": "open_metrics", "health": "open_health", "docs": "open_docs"}
)

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def required_role(access: Access, auth: AuthSettings) -> Role | None:
    """The role a route needs under these settings; None when it is open to anyone."""
    if not auth.enabled:
        return None
    flag = _OPEN_FLAG.get(access)
    if flag is not None:
        return None if getattr(auth, flag) else "read"
    return cast(Role, access)  # every other Access value is a role


def check_bind(host: str, auth: AuthSettings) -> None:
    """Refuse to listen beyond loopback while access control is off (no API keys)."""
    if not auth.enabled and not is_loopback(host):
        raise ConfigError(
            f"refusing to bind {host}: access control is off (no API keys configured); "
            "configure auth.keys or bind 127.0.0.1"
        )


def presented_key(headers: Headers) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or else ``X-API-Key: <key>``."""
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token:
            return token
    key = headers.get("x-api-key")
    return (key.strip() or None) if key else None


class Guard:
    """Checks a request's API key against a role and records refusals in the metrics.

    ``predict_metrics`` holds each served model's children: a refused predict request for
    a known model is counted in ``inferwatch_requests_total`` like any other answer.
    """

    def __init__(
        self,
        auth: AuthSettings,
        metrics: Metrics,
        predict_metrics: Mapping[str, ModelMetrics] | None = None,
    ) -> None:
        self.auth = auth
        self.metrics = metrics
        self.predict_metrics = dict(predict_metrics or {})
        self._keys: tuple[tuple[str, ApiKey], ...] = tuple(
            (k.key_sha256 or "", k) for k in auth.keys
        )

    def identify(self, headers: Headers) -> ApiKey | None:
        """The configured key the request presents, or None."""
        presented = presented_key(headers)
        if presented is None:
            return None
        digest = hashlib.sha256(presented.encode()).hexdigest()
        found: ApiKey | None = None
        for stored, key in self._keys:  # no early exit: same work whichever key matches
            if hmac.compare_digest(digest, stored) and found is None:
                found = key
        return found

    def authorize(self, request: Request, role: Role) -> None:
        """Raise a 401/403 ApiError unless the request holds ``role`` (or ``admin``)."""
        key = self.identify(request.headers)
        if key is None:
            missing = presented_key(request.headers) is None
            raise ApiError(
                401,
                "unauthorized",
                "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
                if missing
                else "invalid API key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if role not in key.roles and "admin" not in key.roles:
            raise ApiError(403, "forbidden", f"API key {key.name!r} lacks the role {role!r}")

    def wrap(self, handler: Handler, role: Role | None) -> Handler:
        """``handler`` behind the role check (unchanged for an open route)."""
        if role is None:
            return handler

        async def guarded(request: Request) -> Response:
            start = time.perf_counter()
            try:
                self.authorize(request, role)
            except ApiError as exc:
                self._record(request, role, exc.status, exc.code, time.perf_counter() - start)
                raise
            return await handler(request)

        return guarded

    def _record(self, request: Request, role: Role, status: int, reason: str, secs: float) -> None:
        name = request.path_params.get("name")
        children = self.predict_metrics.get(name) if isinstance(name, str) else None
        if children is None:
            self.metrics.reject(UNKNOWN_MODEL, reason)
            return
        self.metrics.reject(children.model, reason)
        if role == "predict":
            children.request(status, secs)


def guarded_route_class(guard: Guard) -> type[APIRoute]:
    """An APIRoute class whose routes check ``guard`` first, per :data:`ROUTE_ACCESS`."""

    class GuardedRoute(APIRoute):
        access: Access
        role: Role | None

        def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
            methods = sorted(m.upper() for m in kwargs.get("methods") or ("GET",))
            needs = [ROUTE_ACCESS.get((m, path)) for m in methods]
            access = needs[0]
            if access is None or any(n != access for n in needs):
                raise RuntimeError(
                    f"route {'/'.join(methods)} {path} declares no role: "
                    "add it to inferwatch.server._auth.ROUTE_ACCESS"
                )
            self.access = access
            self.role = required_role(self.access, guard.auth)
            super().__init__(path, endpoint, **kwargs)

        def get_route_handler(self) -> Handler:
            return guard.wrap(super().get_route_handler(), self.role)

    return GuardedRoute
