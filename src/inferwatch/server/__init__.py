"""The HTTP server: monitored prediction, model metadata, metrics, health and docs routes."""

from __future__ import annotations

from inferwatch.server._app import create_app
from inferwatch.server._auth import ROUTE_ACCESS, check_bind, required_role
from inferwatch.server._build import build_app
from inferwatch.server._served import ServedModel

__all__ = [
    "ROUTE_ACCESS",
    "ServedModel",
    "build_app",
    "check_bind",
    "create_app",
    "required_role",
]
