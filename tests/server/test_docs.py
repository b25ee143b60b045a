"""``/docs`` works offline: Swagger UI's files come from the package, not a CDN.

Checked over real HTTP (uvicorn on loopback, httpx): the page names no external host and
every asset it references is served, with the docs' access rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.server.conftest import KEYS, AppFactory, TestClient
from tests.server.test_live import LiveServer


class _Refs(HTMLParser):
    """Every ``src`` and ``href`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]


@pytest.fixture
def base(make_app: AppFactory) -> Iterator[str]:
    server = LiveServer(make_app())
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


def test_docs_reference_only_assets_the_app_serves(base: str) -> None:
    page = httpx.get(f"{base}/docs", timeout=10)
    assert page.status_code == 200
    html = page.text
    parser = _Refs()
    parser.feed(html)
    assert len(parser.refs) == 3  # script, style sheet, icon
    for ref in parser.refs:
        parts = urlsplit(ref)
        assert (parts.scheme, parts.netloc) == ("", ""), f"/docs loads {ref} from elsewhere"
        got = httpx.get(urljoin(f"{base}/docs", ref), timeout=10)
        assert got.status_code == 200, ref
        assert got.headers["cache-control"].startswith("public")
        kind = got.headers["content-type"]
        if "swagger-ui-bundle.js" in ref:
            assert kind.startswith("text/javascript")
            assert b"SwaggerUIBundle" in got.content and len(got.content) > 1_000_000
        elif "css" in ref:
            assert kind.startswith("text/css") and b".swagger-ui" in got.content
        else:
            assert kind == "image/png" and got.content.startswith(b"\x89PNG")
    assert "http://" not in html and "https://" not in html  # no CDN, no validator badge
    assert '"validatorUrl": null' in html
    spec = httpx.get(f"{base}/openapi.json", timeout=10).json()
    assert spec["openapi"].startswith("3.1")  # Swagger UI 5 renders 3.1 (4 would not)


def test_unknown_asset_is_a_json_404(base: str) -> None:
    r = httpx.get(f"{base}/docs/assets/..%2F..%2F_routes.py", timeout=10)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    r = httpx.get(f"{base}/docs/assets/swagger-ui.js.map", timeout=10)
    assert r.status_code == 404


def test_assets_follow_the_docs_access_rule(make_app: AppFactory) -> None:
    open_app = make_app(keys=True)
    with TestClient(open_app.app) as client:
        assert client.get("/docs/assets/swagger-ui.css").status_code == 200
    closed = make_app(keys=True, auth={"open_docs": False})
    with TestClient(closed.app) as client:
        assert client.get("/docs/assets/swagger-ui.css").status_code == 401
        read = {"x-api-key": KEYS["read"]}
        assert client.get("/docs/assets/swagger-ui.css", headers=read).status_code == 200
    hidden = make_app(server={"docs": False})
    with TestClient(hidden.app) as client:
        assert client.get("/docs/assets/swagger-ui.css").status_code == 404
