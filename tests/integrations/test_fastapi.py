"""``inferwatch.integrations.fastapi`` under a real uvicorn on loopback."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI

from inferwatch import Monitor
from inferwatch.integrations.fastapi import add_predict_route, predict_route
from tests.integrations.conftest import Data, Uvicorn, post_raw, rejected, stored, value

MV = {"model": "tumour", "version": "1"}
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}


@pytest.fixture
def slow_monitor(data: Data, db_url: str) -> Any:
    """Rows reach the store only when the monitor is flushed or closed."""
    found = Monitor.from_reference(
        data.X, model="tumour", version="1", store=db_url, predictor=data.model,
        evaluation_interval=None, flush_interval=3600, batch_size=100_000,
    )  # fmt: skip
    yield found
    found.close()


def test_an_estimator_route_validates_predicts_logs_and_closes_at_shutdown(
    data: Data, slow_monitor: Monitor, db_url: str
) -> None:
    app = FastAPI()
    add_predict_route(app, slow_monitor, data.model)
    with Uvicorn(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        resp = client.post("/predict", json=data.rows, headers=TRACEPARENT)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert (body["model"], body["version"]) == ("tumour", "1")
        got = [p["prediction"] for p in body["predictions"]]
        assert got == data.model.predict(pd.DataFrame(data.rows)).tolist()
        proba = data.model.predict_proba(pd.DataFrame(data.rows))
        assert [p["probabilities"]["1"] for p in body["predictions"]] == pytest.approx(proba[:, 1])
        ids = [p["id"] for p in body["predictions"]]
        assert resp.headers["x-prediction-ids"] == ",".join(ids)
        enveloped = client.post("/predict", json={"instances": data.rows[:2]})
        assert enveloped.status_code == 200
        assert [p["prediction"] for p in enveloped.json()["predictions"]] == got[:2]

        bad = client.post("/predict", json=[data.rows[0], {**data.rows[1], "mean radius": "x"}])
        assert bad.status_code == 422
        error = bad.json()["error"]
        assert error["code"] == "wrong_type"
        assert error["details"][0]["field"] == "mean radius"
        assert error["details"][0]["instance"] == 1
        assert post_raw(client, "/predict", b"[{", "application/json").status_code == 400
        assert post_raw(client, "/predict", b"{}", "text/plain").status_code == 415
        assert client.post("/predict", json=[]).json()["error"]["code"] == "empty_batch"
        text = client.get("/metrics").text
        assert monitor_rows_written(slow_monitor) == 0  # still buffered: written at shutdown
    n = len(data.rows) + 2
    rows = stored(db_url)  # the lifespan's shutdown closed the monitor: every row written
    assert len(rows) == n and set(ids) <= set(rows)
    assert rows[ids[0]].trace_id == TRACE
    assert rows[ids[0]].inputs == data.rows[0]
    assert value(text, "inferwatch_requests_total", **MV, status="200") == 2
    assert value(text, "inferwatch_requests_total", **MV, status="422") == 1
    assert value(text, "inferwatch_requests_total", **MV, status="400") == 2
    assert value(text, "inferwatch_requests_total", **MV, status="415") == 1
    counted = sum(
        value(text, "inferwatch_predictions_total", **MV, predicted_class=c) for c in ("0", "1")
    )
    assert counted == n
    assert rejected(text, "wrong_type") == 1
    assert (
        value(
            text,
            "inferwatch_requests_rejected_total",
            model="tumour",
            reason="unsupported_media_type",
        )
        == 1
    )
    assert rejected(text, "malformed_json") == 1
    assert value(text, "inferwatch_model_inference_duration_seconds_count", **MV) == 2


def monitor_rows_written(monitor: Monitor) -> int:
    return monitor.stats.written


def test_a_raising_model_answers_500_json_and_the_route_keeps_serving(
    data: Data, monitor: Monitor, db_url: str
) -> None:
    app = FastAPI()
    calls = {"n": 0}

    @predict_route(app, monitor)
    def predict(rows: list[dict[str, Any]]) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("secret internal detail")
        return data.model.predict(pd.DataFrame(rows))

    calls["n"] = 1  # the decorator returns the function unchanged: callable directly
    assert predict(data.rows[:1]).tolist() == [data.model.predict(data.X.iloc[[0]])[0]]
    calls["n"] = 0
    with Uvicorn(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        failed = client.post("/predict", json=data.rows)
        assert failed.status_code == 500
        error = failed.json()["error"]
        assert error["code"] == "model_error"
        assert "RuntimeError" in error["message"]
        assert "secret" not in failed.text and "Traceback" not in failed.text
        ok = client.post("/predict", json=data.rows)
        assert ok.status_code == 200
        text = client.get("/metrics").text
    assert value(text, "inferwatch_requests_total", **MV, status="500") == 1
    assert value(text, "inferwatch_requests_total", **MV, status="200") == 1
    assert monitor.flush()
    assert len(stored(db_url)) == len(data.rows)  # the failed batch logged nothing


def test_a_slow_sync_model_does_not_hold_the_event_loop(data: Data, monitor: Monitor) -> None:
    app = FastAPI()
    started = threading.Event()

    @predict_route(app, monitor)
    def predict(rows: list[dict[str, Any]]) -> Any:
        started.set()
        time.sleep(1.5)
        return [0] * len(rows)

    with Uvicorn(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        slow = threading.Thread(target=client.post, args=("/predict",), kwargs={"json": data.rows})
        slow.start()
        assert started.wait(10)
        t0 = time.perf_counter()
        assert client.get("/metrics").status_code == 200
        scrape_seconds = time.perf_counter() - t0
        slow.join(30)
    assert scrape_seconds < 1.0, scrape_seconds


def test_an_async_model_and_classes(data: Data, monitor: Monitor, db_url: str) -> None:
    app = FastAPI()

    @predict_route(app, monitor, "/proba", classes=[0, 1])
    async def proba(rows: list[dict[str, Any]]) -> Any:
        await asyncio.sleep(0)
        return data.model.predict_proba(pd.DataFrame(rows))

    add_predict_route(app, monitor, data.model, "/predict")  # a second route, one /metrics
    with Uvicorn(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        resp = client.post("/proba", json=data.rows)
        assert resp.status_code == 200, resp.text
        expected = data.model.predict_proba(pd.DataFrame(data.rows))
        predictions = resp.json()["predictions"]
        assert [p["prediction"] for p in predictions] == expected.argmax(axis=1).tolist()
        got = np.array([[p["probabilities"]["0"], p["probabilities"]["1"]] for p in predictions])
        np.testing.assert_allclose(got, expected)
        assert client.get("/metrics").status_code == 200
    assert [getattr(r, "path", None) for r in app.routes].count("/metrics") == 1


def test_a_body_past_the_limit_is_413_and_counted(data: Data, monitor: Monitor) -> None:
    app = FastAPI()
    add_predict_route(app, monitor, data.model, max_body_bytes=2048)
    with Uvicorn(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        resp = client.post("/predict", json=data.rows)
        assert resp.status_code == 413
        assert resp.json()["error"]["code"] == "body_too_large"

        def chunks() -> Any:  # no Content-Length: refused while reading
            for _ in range(10):
                yield b" " * 1000

        streamed = post_raw(client, "/predict", chunks(), "application/json")
        assert streamed.status_code == 413
        text = client.get("/metrics").text
    assert value(text, "inferwatch_requests_total", **MV, status="413") == 2
    assert rejected(text, "body_too_large") == 2
