"""The trace id of a W3C ``traceparent`` header, for the prediction log.

Its own module so that every way in (the server's routes, the Flask and FastAPI
integrations) logs the same trace id without importing a web framework it does not use.
"""

from __future__ import annotations

import re

__all__ = ["trace_id"]

# version-traceid-parentid-flags, lower-case hex (https://www.w3.org/TR/trace-context/)
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


def trace_id(traceparent: str | None) -> str | None:
    """The trace id of a W3C ``traceparent`` header, or None when absent or malformed."""
    if not traceparent:
        return None
    match = _TRACEPARENT.fullmatch(traceparent.strip())
    if match is None or match.group(1) == "0" * 32:
        return None
    return match.group(1)
