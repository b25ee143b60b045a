"""The ``inferwatch`` command line: parse, call the library, print with rich."""

from __future__ import annotations

from inferwatch.cli import _demo, _report, _serve
from inferwatch.cli._app import app, main

__all__ = ["app", "main"]

del _demo, _report, _serve  # imported for their commands, which register themselves on `app`
