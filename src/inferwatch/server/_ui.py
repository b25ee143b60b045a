"""The built-in dashboard: ``GET /ui`` and its assets from the package, ``GET /`` redirects there.

A team without Grafana sees the models the moment the server starts: overview, model
pages (traffic, latency quantiles, confidence and classes, the drift heatmap, a feature's
distribution over the reference, data quality, performance realised beside estimated,
fairness, versions, alerts with silence and acknowledge) and the host's resources.  The
pages are plain JavaScript modules with no build step; every byte comes from
``server/static/ui`` in the package (no CDN, no internet), and the data from the JSON API
under ``/v1`` with the caller's key (the page itself holds no data).

Chart library: **uPlot** 1.6.32 (MIT, vendored in ``static/ui/vendor``, see VENDORED.md).
It is 22 KB gzipped and draws 166k points in ~34 ms on canvas, where Plotly (Evidently's
UI) ships megabytes; its columnar input (``[t, y1, y2...]``) is exactly what the history
routes answer, so no reshaping in the browser.  The whole page stays under 150 KB
gzipped (tests/ui/test_assets.py sums what a page loads).

Access: the page and its assets take the docs' rule (open unless ``auth.open_docs`` is
false): they are static and hold no data.  The data routes keep their own roles; the page
asks for a key when one answers 401 and sends it as ``Authorization: Bearer``.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Final

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from inferwatch.server._errors import ApiError

__all__ = ["UI_MEDIA_TYPES", "UPLOT_VERSION", "add_ui_routes", "ui_assets"]

#: the vendored uPlot (``server/static/ui/vendor``, see its VENDORED.md)
UPLOT_VERSION: Final = "1.6.32"

#: file suffix → media type of what ``GET /ui/{path}`` serves; other files are not served
UI_MEDIA_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        ".html": "text/html; charset=utf-8",
        ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".svg": "image/svg+xml",
        ".png": "image/png",
    }
)

#: the page loads scripts, styles and data from this server only (uPlot sizes its
#: elements through inline styles, hence 'unsafe-inline' for styles and nothing else)
_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'"
)


def _walk(folder: Traversable, prefix: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for entry in folder.iterdir():
        name = f"{prefix}{entry.name}"
        if entry.is_dir():
            out.update(_walk(entry, f"{name}/"))
        elif any(name.endswith(suffix) for suffix in UI_MEDIA_TYPES):
            out[name] = entry.read_bytes()
    return out


@functools.cache
def ui_assets() -> Mapping[str, tuple[bytes, str, str]]:
    """Every servable file of ``static/ui``: path → (bytes, media type, ETag).

    Read once: the set of files is fixed by the package, so a request can never name a
    file outside it (no path is joined from user input).
    """
    root = resources.files("inferwatch.server").joinpath("static", "ui")
    assets: dict[str, tuple[bytes, str, str]] = {}
    for path, body in _walk(root, "").items():
        media = UI_MEDIA_TYPES[path[path.rindex(".") :]]
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        assets[path] = (body, media, etag)
    return MappingProxyType(assets)


def _answer(request: Request, path: str) -> Response:
    found = ui_assets().get(path)
    if found is None:
        raise ApiError(404, "not_found", f"no dashboard file named {path!r}")
    body, media, etag = found
    # no-cache: revalidated on every load (a 304 when unchanged), so an upgraded server
    # never runs a stale script against a newer API
    headers = {
        "cache-control": "no-cache",
        "etag": etag,
        "x-content-type-options": "nosniff",
        "content-security-policy": _CSP,
        "referrer-policy": "no-referrer",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media, headers=headers)


def add_ui_routes(app: FastAPI) -> None:
    """``GET /`` (a redirect), ``GET /ui`` (the page) and ``GET /ui/{path}`` (its files)."""

    async def root(request: Request) -> Response:
        base = request.scope.get("root_path", "").rstrip("/")
        return RedirectResponse(f"{base}/ui/", status_code=307)

    async def page(request: Request) -> Response:
        # the page's relative asset paths need the trailing slash; its state (model,
        # range, refresh) is in the fragment and the query, which the redirect keeps
        base = request.scope.get("root_path", "").rstrip("/")
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"{base}/ui/{query}", status_code=307)

    async def asset(request: Request, path: str) -> Response:
        await run_in_threadpool(ui_assets)  # first call reads the files off the event loop
        return _answer(request, path or "index.html")

    app.add_api_route("/", root, methods=["GET"], include_in_schema=False)
    app.add_api_route("/ui", page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/ui/{path:path}", asset, methods=["GET"], include_in_schema=False)
