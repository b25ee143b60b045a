"""``inferwatch.integrations.flask`` under werkzeug's threaded server on loopback."""

from __future__ import annotations

import atexit
from typing import Any

import httpx
import pandas as pd
import pytest
from flask import Flask

from inferwatch import Monitor
from inferwatch.integrations.flask import Inferwatch
from tests.integrations.conftest import Data, Werkzeug, post_raw, rejected, stored, value

MV = {"model": "tumour", "version": "1"}
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}


@pytest.fixture
def app() -> Flask:
    return Flask("integration_test")


def make(app: Flask | None, monitor: Monitor) -> Inferwatch:
    ext = Inferwatch(app, monitor)
    atexit.unregister(ext.close)  # the fixture closes the monitor; keep exit clean
    return ext


def test_an_estimator_route_validates_predicts_logs_and_counts(
    app: Flask, data: Data, monitor: Monitor, db_url: str
) -> None:
    make(app, monitor).add_predict_route(data.model)
    assert app.extensions["inferwatch"].monitor is monitor
    with Werkzeug(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        resp = client.post("/predict", json=data.rows, headers=TRACEPARENT)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        got = [p["prediction"] for p in body["predictions"]]
        assert got == data.model.predict(pd.DataFrame(data.rows)).tolist()
        ids = [p["id"] for p in body["predictions"]]
        assert resp.headers["x-prediction-ids"] == ",".join(ids)
        bad = client.post("/predict", json=[dict(data.rows[0], **{"mean area": None})])
        assert bad.status_code == 422
        error = bad.json()["error"]
        assert (error["code"], error["details"][0]["field"]) == ("null_not_allowed", "mean area")
        assert post_raw(client, "/predict", b"nope", "application/json").status_code == 400
        assert client.post("/predict", data={"a": "1"}).status_code == 415
        text = client.get("/metrics").text
        om = client.get("/metrics", headers={"accept": "application/openmetrics-text"})
        assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert value(text, "inferwatch_requests_total", **MV, status="200") == 1
    assert value(text, "inferwatch_requests_total", **MV, status="422") == 1
    assert value(text, "inferwatch_requests_total", **MV, status="400") == 1
    assert value(text, "inferwatch_requests_total", **MV, status="415") == 1
    counted = sum(
        value(text, "inferwatch_predictions_total", **MV, predicted_class=c) for c in ("0", "1")
    )
    assert counted == len(data.rows)
    assert rejected(text, "null_not_allowed") == 1
    assert monitor.flush()
    rows = stored(db_url)
    assert set(rows) == set(ids)
    assert rows[ids[0]].trace_id == TRACE
    assert rows[ids[0]].probabilities is not None


def test_init_app_a_decorated_function_and_a_raising_model(
    app: Flask, data: Data, monitor: Monitor, db_url: str
) -> None:
    ext = make(None, monitor)  # the extension pattern: routes first, the app later
    fail = {"next": True}

    @ext.predict_route("/score")
    def score(rows: list[dict[str, Any]]) -> Any:
        if fail["next"]:
            fail["next"] = False
            raise ValueError("secret internal detail")
        return data.model.predict(pd.DataFrame(rows))

    ext.init_app(app)
    with Werkzeug(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        failed = client.post("/score", json={"instances": data.rows})
        assert failed.status_code == 500
        assert failed.json()["error"]["code"] == "model_error"
        assert "secret" not in failed.text and "Traceback" not in failed.text
        ok = client.post("/score", json={"instances": data.rows})
        assert ok.status_code == 200
        assert [p["prediction"] for p in ok.json()["predictions"]] == data.model.predict(
            pd.DataFrame(data.rows)
        ).tolist()
        big = client.post("/score", json=data.rows * 200)  # > 1 MiB
        assert big.status_code == 413
        text = client.get("/metrics").text
    assert value(text, "inferwatch_requests_total", **MV, status="500") == 1
    assert value(text, "inferwatch_requests_total", **MV, status="200") == 1
    assert value(text, "inferwatch_requests_total", **MV, status="413") == 1
    assert value(text, "inferwatch_inflight_requests", model="tumour") == 0
    assert monitor.flush()
    assert len(stored(db_url)) == len(data.rows)


def test_close_at_exit_is_registered_and_harmless_twice(data: Data, monitor: Monitor) -> None:
    ext = Inferwatch(Flask("x"), monitor)
    try:
        assert ext.close() and ext.close()  # what atexit runs; closing twice is fine
    finally:
        atexit.unregister(ext.close)
    with pytest.raises(TypeError, match="monitor="):
        Inferwatch(Flask("y"))
