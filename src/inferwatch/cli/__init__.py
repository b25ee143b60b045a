"""The ``inferwatch`` command line: parse, call the library, print with rich."""

from __future__ import annotations

from inferwatch.cli import (
    _alerts,
    _demo,
    _export,
    _generate,
    _ingest,
    _performance,
    _profile,
    _push,
    _report,
    _rules,
    _serve,
    _status,
)
from inferwatch.cli._app import app, main

__all__ = ["app", "main"]

# imported for their commands, which register themselves on `app`
del (
    _alerts,
    _demo,
    _export,
    _generate,
    _ingest,
    _performance,
    _profile,
    _push,
    _report,
    _rules,
    _serve,
    _status,
)
