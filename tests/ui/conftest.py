"""The dashboard's tests reuse the server's fixtures (real sklearn models, real apps)."""

from __future__ import annotations

from tests.server.conftest import make_app, trained  # noqa: F401
