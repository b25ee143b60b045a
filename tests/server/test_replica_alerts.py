"""Replicas on one store: a silence made or ended through a follower reaches the leader.

Two apps from ``build_app`` on one SQLite file with the default rule pack, as two replicas
run; the first to start holds the evaluator lease, so only its alert engine runs.  The
follower stores what it is asked (its own engine does not run); the leader reloads the
stored silences before each cycle.
"""

from __future__ import annotations

from pathlib import Path

from inferwatch.server import build_app
from tests.server.conftest import TestClient, Trained
from tests.server.test_fleet_routes import load
from tests.server.test_registry import _auth


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
