"""Liveness, readiness (models and store), /metrics, and what the lifespan does at shutdown."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from inferwatch.store import MemoryStore
from tests.server.conftest import AppFactory, Served, TestClient

GOOD = {"age": 41, "income": 52_000.5, "plan": "basic"}


def test_healthz_and_readyz_when_all_is_well(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "checks": {"models": True, "store": True}}


def test_readyz_is_503_when_the_store_does_not_answer(make_app: AppFactory) -> None:
    served = make_app(store=MemoryStore(available=False))
    with TestClient(served.app) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json() == {"status": "not_ready", "checks": {"models": True, "store": False}}
        assert client.get("/healthz").status_code == 200


class PingRaises(MemoryStore):
    def ping(self) -> bool:
        raise OSError("connection refused")


def test_readyz_is_503_when_the_store_ping_raises(make_app: AppFactory) -> None:
    served = make_app(store=PingRaises())
    with TestClient(served.app) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["store"] is False


def test_readyz_is_503_before_start_up(served: Served) -> None:
    client = TestClient(served.app)  # no lifespan: the app has not started
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["models"] is False


def test_metrics_exposition(client: TestClient) -> None:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == CONTENT_TYPE_LATEST
    assert "inferwatch_build_info" in r.text
    assert 'inferwatch_model_info{model="churn",version="1"} 1.0' in r.text


class ClosingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.closed_with: int | None = None

    def close(self) -> None:
        self.closed_with = self.count_predictions()


def test_shutdown_drains_the_log_then_closes_the_store(make_app: AppFactory) -> None:
    store = ClosingStore()
    served = make_app(store=store)
    answered: list[Any] = []
    with TestClient(served.app) as client:
        for _ in range(20):
            r = client.post("/v1/models/churn/predict", json={"instances": [GOOD, GOOD]})
            assert r.status_code == 200
            answered += [p["id"] for p in r.json()["predictions"]]

    assert store.closed_with == len(answered) == 40
    assert all(store.get_prediction(i) is not None for i in answered)
    assert served.monitor.stats.dropped == 0
