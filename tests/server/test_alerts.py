"""The built-in alert engine in a served app, with no Prometheus: a slow model fires the
latency alert at a real webhook receiver, a fast one resolves it; the history, silences
and the routes that show them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import yaml

from inferwatch.config import load_settings
from inferwatch.server import build_app
from tests.notify.conftest import Sink, sink
from tests.server._versions_models import Toggled
from tests.server.conftest import KEYS, TestClient, Trained, instances, make_frame

__all__ = ["sink"]  # the receiver fixture, from the notify tests

SLOW = 0.3  # seconds a prediction takes while the model is slow
RULE = {
    "name": "SlowModel",
    "signal": "latency",
    "aggregation": "p99",
    "window": "3s",
    "warning": 0.1,
    "critical": 0.25,
    "for": "0s",
    "summary": "p99 latency of {{ $labels.model }} is {{ $value }} s",
}


@pytest.fixture
def toggled() -> Iterator[type[Toggled]]:
    Toggled.delay = 0.0
    yield Toggled
    Toggled.delay = 0.0


def _config(trained: Trained, tmp_path: Path, sink: Sink, **alerting: Any) -> Path:
    joblib.dump(Toggled(trained.classifier), tmp_path / "model.joblib")
    from inferwatch.io import save_schema

    save_schema(trained.schema, tmp_path / "schema.yaml")
    config = {
        "store": {"url": f"sqlite:///{tmp_path / 'store.db'}", "flush_interval_seconds": 0.05},
        "auth": {"keys": [{"name": r, "key": k, "roles": [r]} for r, k in KEYS.items()]},
        "models": [{"name": "churn", "path": "model.joblib", "schema": "schema.yaml"}],
        "alerting": {
            "evaluation_interval": 0.1,
            "rules": [RULE],
            "receivers": [{"name": "hook", "type": "webhook", "url": sink.url}],
            "route": {"group_wait": 0, "group_interval": 0.2, "repeat_interval": "1h"},
            **alerting,
        },
    }
    path = tmp_path / "inferwatch.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[role]}"}


def _until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s")


def _received(sink: Sink, status: str, severity: str) -> list[dict[str, Any]]:
    return [
        a
        for r in sink.requests
        for a in r.json()["alerts"]
        if a["status"] == status and a["labels"]["severity"] == severity
    ]


def test_a_slow_model_fires_the_latency_alert_and_a_fast_one_resolves_it(
    trained: Trained, tmp_path: Path, sink: Sink, toggled: type[Toggled]
) -> None:
    app = build_app(load_settings(_config(trained, tmp_path, sink)))
    rows = instances(make_frame(np.random.default_rng(1), 1))
    body = {"instances": rows}
    with TestClient(app) as client:

        def predict() -> None:
            r = client.post("/v1/models/churn/predict", json=body, headers=_auth("predict"))
            assert r.status_code == 200

        predict()  # fast traffic: nothing fires
        time.sleep(0.5)
        assert client.get("/v1/alerts", headers=_auth("read")).json()["alerts"] == []

        toggled.delay = SLOW
        for _ in range(3):
            predict()
        fired = _until(lambda: _received(sink, "firing", "critical"))
        assert fired[0]["labels"]["alertname"] == "SlowModel"
        assert fired[0]["labels"]["model"] == "churn"
        value = float(fired[0]["annotations"]["summary"].split(" is ")[1].split()[0])
        assert value > 0.25  # the p99 the engine computed, rendered in the summary

        listed = client.get("/v1/alerts", headers=_auth("read")).json()
        by_severity = {a["labels"]["severity"]: a for a in listed["alerts"]}
        assert by_severity["critical"]["state"] == "firing"
        assert by_severity["warning"]["inhibited"] is True  # the critical mutes it
        assert listed["receivers"] == ["hook"]
        assert _received(sink, "firing", "warning") == []  # never notified while inhibited

        toggled.delay = 0.0

        def resolved() -> list[dict[str, Any]]:
            predict()  # fast traffic pushes the slow requests out of the 3 s window
            return _received(sink, "resolved", "critical")

        _until(resolved, timeout=15)
        history = client.get(
            "/v1/alerts/history", params={"alertname": "SlowModel"}, headers=_auth("read")
        ).json()["rows"]
        moves = [(r["severity"], r["from_state"], r["to_state"]) for r in reversed(history)]
        assert ("critical", "inactive", "firing") in moves
        assert ("critical", "firing", "resolved") in moves
        attempts = client.get("/v1/alerts/notifications", headers=_auth("read")).json()["rows"]
        assert attempts and all(a["outcome"] == "ok" for a in attempts)
        assert {a["receiver"] for a in attempts} == {"hook"}


def test_silences_mute_matching_alerts_survive_a_restart_and_need_admin(
    trained: Trained, tmp_path: Path, sink: Sink, toggled: type[Toggled]
) -> None:
    settings = load_settings(_config(trained, tmp_path, sink))
    body = {"matchers": ["model=churn", "severity=critical"], "created_by": "ana",
            "comment": "deploy in progress", "duration": "2h"}  # fmt: skip
    with TestClient(build_app(settings)) as client:
        refused = client.post("/v1/silences", json=body, headers=_auth("read"))
        assert refused.status_code == 403
        bad = client.post(
            "/v1/silences", json={**body, "matchers": ["model=~("]}, headers=_auth("admin")
        )
        assert bad.status_code == 422
        assert bad.json()["error"]["details"][0]["field"] == "matchers"
        no_end = client.post(
            "/v1/silences", json={**body, "duration": None}, headers=_auth("admin")
        )
        assert no_end.status_code == 422
        made = client.post("/v1/silences", json=body, headers=_auth("admin"))
        assert made.status_code == 201, made.text
        silence = made.json()
        assert silence["state"] == "active"
        assert silence["created_by"] == "ana"

        toggled.delay = SLOW
        for _ in range(3):
            client.post(
                "/v1/models/churn/predict",
                json={"instances": instances(make_frame(np.random.default_rng(2), 1))},
                headers=_auth("predict"),
            )

        def critical() -> dict[str, Any] | None:
            alerts = client.get("/v1/alerts", headers=_auth("read")).json()["alerts"]
            return next((a for a in alerts if a["labels"]["severity"] == "critical"), None)

        alert = _until(critical)
        assert alert["silenced_by"] == [silence["id"]]
        time.sleep(0.5)  # several cycles: the silenced critical is never sent
        assert _received(sink, "firing", "critical") == []
        toggled.delay = 0.0

    # a restart loads the silence from the store
    with TestClient(build_app(settings)) as client:
        listed = client.get("/v1/silences", headers=_auth("read")).json()["silences"]
        assert [s["id"] for s in listed] == [silence["id"]]
        gone = client.delete(f"/v1/silences/{silence['id']}", headers=_auth("admin"))
        assert gone.status_code == 200
        assert gone.json()["state"] == "expired"
        assert client.delete("/v1/silences/nope", headers=_auth("admin")).status_code == 404
    with TestClient(build_app(settings)) as client:
        assert client.get("/v1/silences", headers=_auth("read")).json()["silences"] == []
