"""Acknowledging a firing alert in a served app: admin only, shown on ``/v1/alerts``,
recorded in the alert history, and the receiver gets no repeat notification of it until it
resolves (while an unacknowledged alert keeps repeating)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from inferwatch.config import load_settings
from inferwatch.server import build_app
from tests.notify.conftest import Sink, sink
from tests.server._versions_models import Toggled
from tests.server.conftest import TestClient, Trained, instances, make_frame
from tests.server.test_alerts import SLOW, _auth, _config, _received, _until, toggled

__all__ = ["sink", "toggled"]  # fixtures


def test_an_acknowledged_alert_stops_repeating_until_it_resolves(
    trained: Trained, tmp_path: Path, sink: Sink, toggled: type[Toggled]
) -> None:
    route = {"group_wait": 0, "group_interval": 0.1, "repeat_interval": 0.3}
    app = build_app(load_settings(_config(trained, tmp_path, sink, route=route)))
    body = {"instances": instances(make_frame(np.random.default_rng(1), 1))}
    with TestClient(app) as client:

        def predict() -> None:
            r = client.post("/v1/models/churn/predict", json=body, headers=_auth("predict"))
            assert r.status_code == 200

        def critical() -> dict[str, Any] | None:
            alerts = client.get("/v1/alerts", headers=_auth("read")).json()["alerts"]
            return next((a for a in alerts if a["labels"]["severity"] == "critical"), None)

        toggled.delay = SLOW
        for _ in range(3):
            predict()
        _until(lambda: len(_received(sink, "firing", "critical")) >= 3)  # it repeats
        fp = _until(critical)["fingerprint"]
        ack = {"author": "ana", "comment": "looking at the slow model"}

        assert client.post(f"/v1/alerts/{fp}/acknowledge", json=ack,
                           headers=_auth("read")).status_code == 403  # fmt: skip
        unknown = client.post("/v1/alerts/feedfeed/acknowledge", json=ack, headers=_auth("admin"))
        assert unknown.status_code == 404
        bad = client.post(f"/v1/alerts/{fp}/acknowledge", json={"comment": "x"},
                          headers=_auth("admin"))  # fmt: skip
        assert bad.status_code == 422
        done = client.post(f"/v1/alerts/{fp}/acknowledge", json=ack, headers=_auth("admin"))
        assert done.status_code == 200, done.text
        assert done.json()["acknowledged_by"] == "ana" and done.json()["acknowledged_at"]
        assert _until(critical)["acknowledged_by"] == "ana"

        time.sleep(0.15)  # a flush already under way
        told = len(_received(sink, "firing", "critical"))
        time.sleep(1.0)  # three repeat intervals
        assert len(_received(sink, "firing", "critical")) == told  # no repeat

        toggled.delay = 0.0

        def resolved() -> list[dict[str, Any]]:
            predict()
            return _received(sink, "resolved", "critical")

        _until(resolved, timeout=15)  # the resolution is still news
        late = client.post(f"/v1/alerts/{fp}/acknowledge", json=ack, headers=_auth("admin"))
        assert late.status_code == 409
        assert late.json()["error"]["code"] == "not_firing"
        history = client.get("/v1/alerts/history", params={"fingerprint": fp},
                             headers=_auth("read")).json()["rows"]  # fmt: skip
    acks = [r for r in history if r["to_state"] == "acknowledged"]
    assert len(acks) == 1
    assert acks[0]["labels"]["acknowledged_by"] == "ana"
    assert acks[0]["labels"]["acknowledgement_comment"] == ack["comment"]
