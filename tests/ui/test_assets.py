"""The dashboard's files: served from the package, nothing from another host, under 150 KB.

Over the app's real routes (TestClient): ``/`` and ``/ui`` redirect to the page, every
file the page loads (its ``src``/``href`` and, recursively, each module's imports) is
served with the right type, and their gzipped sizes sum under the issue's 150 KB budget.
"""

from __future__ import annotations

import gzip
import re
from html.parser import HTMLParser
from posixpath import dirname, join, normpath

import pytest

from inferwatch.server._ui import ui_assets
from tests.server.conftest import KEYS, AppFactory, TestClient

#: the issue's budget for everything one page load fetches, gzipped
PAGE_BUDGET_BYTES = 150 * 1024

_IMPORT = re.compile(r"""(?:^|[;\s])(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']""", re.M)


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]


def page_files(client: TestClient) -> dict[str, bytes]:
    """Every dashboard file one load of the page fetches: path under /ui/ → body."""
    index = client.get("/ui/")
    assert index.status_code == 200
    refs = _Refs()
    refs.feed(index.text)
    files = {"index.html": index.content}
    todo = [r for r in refs.refs if not r.startswith(("#", "../"))]
    assert all("//" not in r for r in todo), todo  # no other host, no CDN
    while todo:
        path = normpath(todo.pop())
        if path in files:
            continue
        got = client.get(f"/ui/{path}")
        assert got.status_code == 200, path
        files[path] = got.content
        if path.endswith(".js"):
            for spec in _IMPORT.findall(got.text):
                assert spec.startswith("."), f"{path} imports {spec} from elsewhere"
                todo.append(normpath(join(dirname(path), spec)))
    return files


@pytest.fixture
def client(make_app: AppFactory) -> TestClient:
    return TestClient(make_app().app)


def test_root_and_ui_redirect_to_the_page(client: TestClient) -> None:
    for path, target in (("/", "/ui/"), ("/ui", "/ui/"), ("/ui?x=1", "/ui/?x=1")):
        got = client.get(path, follow_redirects=False)
        assert got.status_code == 307, path
        assert got.headers["location"] == target
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_every_file_the_page_loads_is_served_and_the_page_is_under_150_kb(
    client: TestClient,
) -> None:
    files = page_files(client)
    # the page, the chart library and every module of the router and its pages
    for needed in ("vendor/uPlot.iife.min.js", "vendor/uPlot.min.css", "theme.css", "app.js",
                   "format.js", "api.js", "pages/overview.js", "pages/model.js",
                   "pages/resources.js"):  # fmt: skip
        assert needed in files
    gzipped = sum(len(gzip.compress(body, 9)) for body in files.values())
    assert gzipped < PAGE_BUDGET_BYTES, f"{gzipped} bytes gzipped"
    # every servable file is one the page loads or the vendored licence notes
    assert set(ui_assets()) - set(files) <= {"favicon.svg"}


def test_types_caching_and_unknown_files(client: TestClient) -> None:
    js = client.get("/ui/app.js")
    assert js.headers["content-type"].startswith("text/javascript")
    assert js.headers["x-content-type-options"] == "nosniff"
    again = client.get("/ui/app.js", headers={"if-none-match": js.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert client.get("/ui/theme.css").headers["content-type"].startswith("text/css")
    unknown = ("nope.js", "../_ui.py", "..%2F_ui.py", "vendor/VENDORED.md", "%2e%2e/%2e%2e/x.py")
    for bad in unknown:
        got = client.get(f"/ui/{bad}")
        assert got.status_code == 404, bad
        assert got.json()["error"]["code"] in {"not_found"}


def test_the_page_takes_the_docs_access_rule(make_app: AppFactory) -> None:
    """The page holds no data: open by default with keys configured, closed with open_docs
    false (then a read key opens it); the data routes keep their roles."""
    with TestClient(make_app(keys=True).app) as open_client:
        assert open_client.get("/ui/").status_code == 200
        assert open_client.get("/v1/models").status_code == 401
    with TestClient(make_app(keys=True, auth={"open_docs": False}).app) as closed:
        assert closed.get("/ui/app.js").status_code == 401
        assert closed.get("/", follow_redirects=False).status_code == 401
        read = {"authorization": f"Bearer {KEYS['read']}"}
        assert closed.get("/ui/app.js", headers=read).status_code == 200
