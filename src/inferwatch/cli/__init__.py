"""The ``inferwatch`` command line: parse, call the library, print with rich."""

from __future__ import annotations

from inferwatch.cli._app import app, main

__all__ = ["app", "main"]
