"""API keys (Bearer and X-API-Key), refusal metrics, the guarded route class and the bind rule."""

from __future__ import annotations

import hashlib
import logging

import pytest
from fastapi import Response

from inferwatch.config import ApiKey, AuthSettings
from inferwatch.errors import ConfigError
from inferwatch.server import check_bind
from tests.server.conftest import KEYS, AppFactory, Served, TestClient

GOOD = {"age": 41, "income": 52_000.5, "plan": "basic"}
PREDICT = "/v1/models/churn/predict"


def post(client: TestClient, headers: dict[str, str], model: str = "churn") -> int:
    r = client.post(f"/v1/models/{model}/predict", json={"instances": [GOOD]}, headers=headers)
    return int(r.status_code)


@pytest.fixture
def keyed(make_app: AppFactory) -> Served:
    return make_app(keys=True)


def test_bearer_and_x_api_key_both_work(keyed: Served) -> None:
    key = KEYS["predict"]
    with TestClient(keyed.app) as client:
        assert post(client, {"authorization": f"Bearer {key}"}) == 200
        assert post(client, {"authorization": f"bearer {key}"}) == 200
        assert post(client, {"x-api-key": key}) == 200
        assert post(client, {"authorization": f"Basic {key}"}) == 401
        assert post(client, {"authorization": "Bearer "}) == 401
        assert post(client, {"x-api-key": key[:-1]}) == 401
        assert post(client, {"x-api-key": key + "x"}) == 401


def test_a_key_configured_by_its_digest_works(make_app: AppFactory) -> None:
    secret = "digest-only-key-0123456789"
    digest = hashlib.sha256(secret.encode()).hexdigest()
    served = make_app(auth={"keys": [ApiKey(name="ci", key_sha256=digest, roles=["predict"])]})
    with TestClient(served.app) as client:
        assert post(client, {"x-api-key": secret}) == 200
        assert post(client, {"x-api-key": digest}) == 401


def test_refusals_are_counted_by_model_and_reason(keyed: Served) -> None:
    with TestClient(keyed.app) as client:
        assert post(client, {}) == 401
        assert post(client, {"x-api-key": KEYS["read"]}) == 403
        assert post(client, {}, model="nope") == 401
        assert client.get("/v1/models/churn").status_code == 401

    s = keyed.sample
    assert s("inferwatch_requests_rejected_total", model="churn", reason="unauthorized") == 2
    assert s("inferwatch_requests_rejected_total", model="churn", reason="forbidden") == 1
    assert s("inferwatch_requests_rejected_total", model="unknown", reason="unauthorized") == 1
    # refused predict requests to a known model are answers like any other
    assert s("inferwatch_requests_total", model="churn", status="401") == 1
    assert s("inferwatch_requests_total", model="churn", status="403") == 1
    assert keyed.store.count_predictions() == 0


def test_without_keys_everything_is_open_and_start_warns(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    served = make_app()
    with caplog.at_level(logging.WARNING), TestClient(served.app) as client:
        assert post(client, {}) == 200
        assert client.get("/v1/models").status_code == 200
    assert "access control is off (no API keys configured); serving on loopback only" in (
        caplog.text
    )


def test_a_route_without_a_declared_role_cannot_be_added(served: Served) -> None:
    async def sneaky() -> Response:
        return Response(b"secret")

    with pytest.raises(RuntimeError, match="declares no role"):
        served.app.add_api_route("/v1/secret", sneaky, methods=["GET"])


def test_check_bind() -> None:
    no_keys = AuthSettings()
    with_keys = AuthSettings(keys=[ApiKey(name="k", key=KEYS["admin"], roles=["admin"])])

    with pytest.raises(ConfigError, match=r"auth\.keys.*127\.0\.0\.1"):
        check_bind("0.0.0.0", no_keys)
    with pytest.raises(ConfigError):
        check_bind("192.168.1.10", no_keys)
    check_bind("127.0.0.1", no_keys)
    check_bind("localhost", no_keys)
    check_bind("::1", no_keys)
    check_bind("0.0.0.0", with_keys)
