"""Every route in the OpenAPI document enforces its declared role (401 / 403 / 2xx)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute

from inferwatch.config import ROLES
from inferwatch.server import ROUTE_ACCESS, required_role
from tests.server.conftest import KEYS, AppFactory, Served, TestClient

GOOD = {"age": 41, "income": 52_000.5, "plan": "basic"}
SILENCE = {"matchers": ["model=churn"], "created_by": "test", "duration": "1h"}


@pytest.fixture
def keyed(make_app: AppFactory) -> Served:
    return make_app(keys=True, alerting={"default_pack": True})


@pytest.fixture
def kclient(keyed: Served) -> Iterator[TestClient]:
    with TestClient(keyed.app) as c:
        yield c


def operations(served: Served) -> list[tuple[str, str]]:
    """(method, path) of every operation the OpenAPI document publishes."""
    ops = [
        (method.upper(), path)
        for path, item in served.app.openapi()["paths"].items()
        for method in item
    ]
    assert ops, "the OpenAPI document lists no operations"
    return ops


def call(client: TestClient, method: str, path: str, headers: dict[str, str] | None = None) -> Any:
    url = path.replace("{name}", "churn").replace("{version}", "1")
    url = url.replace("{fingerprint}", "0123456789abcdef").replace("{feature}", "age")
    if "{silence_id}" in path:  # a silence to expire, made for this call
        made = client.post("/v1/silences", json=SILENCE, headers={"x-api-key": KEYS["admin"]})
        url = url.replace("{silence_id}", made.json()["id"])
    assert "{" not in url, f"unfilled path parameter in {path}"
    kwargs: dict[str, Any] = {"headers": headers or {}}
    if method == "POST" and path.endswith("/feedback"):  # a label for a fresh prediction
        made = client.post(
            "/v1/models/churn/predict",
            json={"instances": [GOOD]},
            headers={"x-api-key": KEYS["admin"]},
        )
        (pred,) = made.json()["predictions"]
        kwargs["json"] = {"labels": [{"prediction_id": pred["id"], "label": pred["prediction"]}]}
    elif method == "POST" and path == "/v1/silences":
        kwargs["json"] = SILENCE
    elif method == "POST" and path.endswith("/acknowledge"):
        kwargs["json"] = {"author": "ana", "comment": "on it"}
    elif method == "POST" and path.endswith("/log"):
        kwargs["json"] = {"records": [{"inputs": GOOD, "output": "no"}]}
    elif method == "POST" and path.startswith("/v2/"):  # one tensor per feature
        kwargs["json"] = {
            "inputs": [
                {
                    "name": k,
                    "shape": [1],
                    "datatype": "BYTES" if k == "plan" else "FP64",
                    "data": [v],
                }
                for k, v in GOOD.items()
            ]
        }
    elif method == "POST":
        kwargs["json"] = {"instances": [GOOD]}
    if path.endswith("/compare"):  # compare the model with itself
        kwargs["params"] = {"with": "churn"}
    return client.request(method, url, **kwargs)


def passed(path: str, response: Any) -> bool:
    """The request got past the guard: a 2xx, or the handler's own answer for a rollback of
    a model served at one version (nothing older to go back to)."""
    if path.endswith("/rollback") and response.status_code == 409:
        return bool(response.json()["error"]["code"] == "no_previous_version")
    if path.endswith("/acknowledge") and response.status_code == 404:  # no such alert
        return bool(response.json()["error"]["code"] == "unknown_alert")
    if path.endswith("/distribution") and response.status_code == 404:  # no judged window
        return bool(response.json()["error"]["code"] == "not_judged")
    status: int = response.status_code
    return 200 <= status < 300


def code_of(response: Any) -> str:
    """The error code, in our shape or (under /v2) the Open Inference Protocol's."""
    body = response.json()
    code: str = body["code"] if isinstance(body["error"], str) else body["error"]["code"]
    return code


def wrong_role_key(role: str) -> str:
    """A key that is valid but holds neither ``role`` nor admin."""
    return next(k for r, k in KEYS.items() if r not in (role, "admin"))


def test_the_document_publishes_exactly_the_table_but_the_docs(keyed: Served) -> None:
    published = set(operations(keyed))
    undocumented = {op for op, access in ROUTE_ACCESS.items() if access == "docs"}
    assert published == set(ROUTE_ACCESS) - undocumented
    served_routes = {
        (method, route.path)
        for route in keyed.app.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    assert len(keyed.app.routes) == len(served_routes)  # nothing but APIRoutes
    assert served_routes == set(ROUTE_ACCESS)


def test_every_route_enforces_its_role(keyed: Served, kclient: TestClient) -> None:
    checked_closed = 0
    for method, path in operations(keyed):
        role = required_role(ROUTE_ACCESS[(method, path)], keyed.settings.auth)
        where = f"{method} {path}"
        if role is None:
            assert call(kclient, method, path).status_code == 200, where
            continue
        checked_closed += 1
        none = call(kclient, method, path)
        assert none.status_code == 401, where
        assert none.headers["www-authenticate"] == "Bearer", where
        assert code_of(none) == "unauthorized", where
        wrong = call(kclient, method, path, {"authorization": "Bearer not-a-key-0123456789"})
        assert wrong.status_code == 401, where
        other = call(kclient, method, path, {"x-api-key": wrong_role_key(role)})
        assert other.status_code == 403, where
        assert code_of(other) == "forbidden", where
        right = call(kclient, method, path, {"authorization": f"Bearer {KEYS[role]}"})
        assert passed(path, right), f"{where}: {right.text}"
        admin = call(kclient, method, path, {"x-api-key": KEYS["admin"]})
        assert passed(path, admin), f"{where}: {admin.text}"
    assert checked_closed >= 3  # predict and the two model routes at least


def test_open_routes_answer_without_a_key_by_default(kclient: TestClient) -> None:
    for path in ("/metrics", "/healthz", "/readyz", "/docs", "/openapi.json"):
        assert kclient.get(path).status_code == 200, path


@pytest.mark.parametrize(
    ("flag", "paths"),
    [
        ("open_metrics", ["/metrics"]),
        ("open_health", ["/healthz", "/readyz"]),
        ("open_docs", ["/docs", "/openapi.json"]),
    ],
)
def test_open_routes_need_read_when_their_flag_is_off(
    make_app: AppFactory, flag: str, paths: list[str]
) -> None:
    served = make_app(keys=True, auth={flag: False})
    with TestClient(served.app) as client:
        for path in paths:
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers={"x-api-key": KEYS["predict"]}).status_code == 403
            assert client.get(path, headers={"x-api-key": KEYS["read"]}).status_code == 200
            assert client.get(path, headers={"x-api-key": KEYS["admin"]}).status_code == 200


def test_docs_are_not_published_when_disabled(make_app: AppFactory) -> None:
    served = make_app(server={"docs": False})
    with TestClient(served.app) as client:
        assert client.get("/docs").status_code == 404
        assert client.get("/openapi.json").status_code == 404


def test_role_table_names_only_known_roles_and_groups() -> None:
    groups = {"metrics", "health", "docs"}
    assert set(ROUTE_ACCESS.values()) <= set(ROLES) | groups
