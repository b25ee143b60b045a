"""Two workers of one ``serve --workers`` in this process: the forwarding and the switches.

Each worker is a whole app from ``build_app`` on one SQLite store, given its slot by
``attach_fleet`` (its socket in a shared run directory, as ``serve --workers 2`` arranges).
The first to start holds the evaluator lease.  A silence made through the other worker must
be in the leader's alert engine (the request was forwarded, not kept by the worker that
took it), and a rollback through either must make the older version live on both.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from inferwatch.config import Settings, load_settings
from inferwatch.server import build_app
from inferwatch.server._fleet_routes import is_leader_route
from inferwatch.server._workers import attach_fleet
from tests.server.conftest import TestClient, Trained
from tests.server.test_registry import _auth, _config


def load(trained: Trained, tmp_path: Path) -> Settings:
    """The registry tests' config (versions 2 and 1 of churn) with the default rule pack."""
    path = _config(trained, tmp_path)
    config = yaml.safe_load(path.read_text())
    config["alerting"] = {"default_pack": True}
    path.write_text(yaml.safe_dump(config))
    return load_settings(path)


def _live(client: TestClient) -> str:
    (model,) = client.get("/v1/models", headers=_auth("read")).json()["models"]
    return str(model["version"])


def test_leader_routes_are_the_judge_state_routes_only() -> None:
    assert is_leader_route("GET", "/v1/models/churn/drift")
    assert is_leader_route("POST", "/v1/silences")
    assert is_leader_route("DELETE", "/v1/silences/abc")
    assert not is_leader_route("POST", "/v1/models/churn/predict")
    assert not is_leader_route("GET", "/v1/models/churn/drift/history")  # the store's
    assert not is_leader_route("GET", "/metrics")


def test_a_follower_forwards_to_the_leader_and_a_switch_reaches_both(
    trained: Trained, tmp_path: Path
) -> None:
    settings = load(trained, tmp_path)
    rundir = tmp_path / "run"
    rundir.mkdir()
    apps = [build_app(settings) for _ in range(2)]
    for slot, app in enumerate(apps):
        attach_fleet(app, rundir, slot, 2)
    with TestClient(apps[0]) as leader, TestClient(apps[1]) as follower:
        assert apps[0].state.leadership.is_leader and not apps[1].state.leadership.is_leader

        silence = {
            "matchers": ["model=churn"],
            "duration": "1h",
            "created_by": "ops",
            "comment": "maintenance",
        }
        made = follower.post("/v1/silences", json=silence, headers=_auth("admin"))
        assert made.status_code == 201, made.text
        sid = made.json()["id"]
        # in the leader's engine (its own route answers it, unforwarded) ...
        assert sid in {
            s["id"] for s in leader.get("/v1/silences", headers=_auth("read")).json()["silences"]
        }
        assert apps[1].state.alerting.silences.get(sid) is None
        # ... and read through the follower, which forwards
        assert sid in {
            s["id"] for s in follower.get("/v1/silences", headers=_auth("read")).json()["silences"]
        }
        # access control is the leader's, on the request's own headers
        assert follower.post("/v1/silences", json=silence, headers=_auth("read")).status_code == 403
        assert follower.get("/v1/silences").status_code == 401

        # a rollback through the follower: both serve version 1, recorded once
        assert _live(leader) == _live(follower) == "2"
        r = follower.post("/v1/models/churn/rollback", headers=_auth("admin"))
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 10
        while _live(leader) != "1" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _live(leader) == _live(follower) == "1"
        actions = leader.get("/v1/actions", headers=_auth("read")).json()["rows"]
        assert [a["kind"] for a in actions].count("rollback") == 1
        # and back through the leader
        assert (
            leader.post("/v1/models/churn/versions/2/activate", headers=_auth("admin")).status_code
            == 200
        )
        deadline = time.monotonic() + 10
        while _live(follower) != "2" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _live(follower) == "2"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_without_a_leading_sibling_the_worker_answers_itself(
    trained: Trained, tmp_path: Path, method: str
) -> None:
    settings = load(trained, tmp_path)
    rundir = tmp_path / "run"
    rundir.mkdir()
    app = build_app(settings)
    attach_fleet(app, rundir, 1, 2)  # slot 0 is empty: nobody to forward to
    with TestClient(app) as client:
        app.state.leadership._leader = False  # another replica holds the lease
        if method == "GET":
            r = client.get("/v1/silences", headers=_auth("read"))
        else:
            r = client.post(
                "/v1/silences",
                json={"matchers": ["model=churn"], "duration": "1h", "created_by": "ops",
                      "comment": "c"},
                headers=_auth("admin"),
            )  # fmt: skip
        assert r.status_code == (200 if method == "GET" else 201), r.text
