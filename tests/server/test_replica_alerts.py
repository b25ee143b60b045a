"""Replicas on one store: a silence made or ended through a follower reaches the leader.

Two apps from ``build_app`` on one SQLite file with the default rule pack, as two replicas
run; the first to start holds the evaluator lease, so only its alert engine runs.  The
follower stores what it is asked (its own engine does not run); the leader reloads the
stored silences before each cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inferwatch.config import load_settings
from inferwatch.server import build_app
from tests.notify.conftest import Sink, sink
from tests.server.conftest import TestClient, Trained
from tests.server.test_alerts import _config, _until
from tests.server.test_fleet_routes import load
from tests.server.test_registry import _auth

__all__ = ["sink"]  # the receiver fixture, from the notify tests


def test_a_silence_made_and_ended_through_a_follower_applies_on_the_leader(
    trained: Trained, tmp_path: Path
) -> None:
    settings = load(trained, tmp_path)
    leader_app, follower_app = build_app(settings), build_app(settings)
    with TestClient(leader_app) as leader, TestClient(follower_app) as follower:
        assert leader_app.state.leadership.is_leader
        assert not follower_app.state.leadership.is_leader
        engine = leader_app.state.alerting
        body = {"matchers": ["model=churn"], "duration": "1h", "created_by": "ops"}
        made = follower.post("/v1/silences", json=body, headers=_auth("admin"))
        assert made.status_code == 201, made.text
        sid = made.json()["id"]
        assert engine.silences.get(sid) is None  # not yet: the leader's next cycle
        engine.run_once()
        held = engine.silences.get(sid)
        assert held is not None and held.state(engine.engine.clock()) == "active"
        listed = leader.get("/v1/silences", headers=_auth("read")).json()["silences"]
        assert sid in {s["id"] for s in listed}

        ended = follower.delete(f"/v1/silences/{sid}", headers=_auth("admin"))
        assert ended.status_code == 200, ended.text
        engine.run_once()
        held = engine.silences.get(sid)
        assert held is not None and held.state(engine.engine.clock()) == "expired"


def test_a_follower_lists_the_leaders_alerts_and_sends_acknowledgements_to_it(
    trained: Trained, tmp_path: Path, sink: Sink
) -> None:
    """A follower's engine does not run: ``GET /v1/alerts`` there lists what the leader
    stored (the same alert, its start, its acknowledgement and what mutes it), and an
    acknowledgement sent to it is refused with 409 naming where to send it."""
    rule = {"name": "MemoryUsed", "signal": "memory", "aggregation": "last",
            "warning": 1, "for": "0s", "summary": "{{ $value }} bytes"}  # fmt: skip
    settings = load_settings(_config(trained, tmp_path, sink, rules=[rule]))
    leader_app, follower_app = build_app(settings), build_app(settings)
    with TestClient(leader_app) as leader, TestClient(follower_app) as follower:
        assert not follower_app.state.leadership.is_leader

        def listed(client: TestClient) -> list[dict[str, Any]]:
            got: list[dict[str, Any]] = client.get("/v1/alerts", headers=_auth("read")).json()[
                "alerts"
            ]
            return got

        (fired,) = _until(lambda: [a for a in listed(leader) if a["state"] == "firing"])
        fp = fired["fingerprint"]
        (seen,) = _until(lambda: listed(follower))
        assert (seen["fingerprint"], seen["state"], seen["starts_at"]) == (
            fp, "firing", fired["starts_at"],
        )  # fmt: skip
        ack = {"author": "ana", "comment": "on it"}
        refused = follower.post(f"/v1/alerts/{fp}/acknowledge", json=ack, headers=_auth("admin"))
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_leader"
        done = leader.post(f"/v1/alerts/{fp}/acknowledge", json=ack, headers=_auth("admin"))
        assert done.status_code == 200, done.text
        assert _until(lambda: listed(follower)[0]["acknowledged_by"] == "ana")
        body = {"matchers": ["alertname=MemoryUsed"], "duration": "1h", "created_by": "ops"}
        made = follower.post("/v1/silences", json=body, headers=_auth("admin"))
        assert made.status_code == 201, made.text
        assert listed(follower)[0]["silenced_by"] == [made.json()["id"]]
