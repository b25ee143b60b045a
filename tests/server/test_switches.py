"""Replicas on one store follow each other's model switches (``server._switches``).

Two apps from ``build_app`` on one SQLite file, as two replicas would run: a rollback made
through one is made live on the other at its next lease round (``lease_ttl_seconds / 3``),
recorded once; a switch back through the other is followed too; and an older record never
undoes a newer local switch.
"""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from inferwatch.config import load_settings
from inferwatch.server import build_app
from inferwatch.server._switches import SwitchFollower
from tests.server.conftest import TestClient, Trained
from tests.server.test_registry import _auth, _config


def _live(client: TestClient) -> str:
    (model,) = client.get("/v1/models", headers=_auth("read")).json()["models"]
    return str(model["version"])


def _until(cond, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_switch_on_one_replica_is_followed_by_the_other(trained: Trained, tmp_path: Path) -> None:
    path = _config(trained, tmp_path)
    config = yaml.safe_load(path.read_text())
    config["fleet"] = {"lease_ttl_seconds": 1.5}  # a round every 0.5 s
    path.write_text(yaml.safe_dump(config))
    settings = load_settings(path)
    a, b = build_app(settings), build_app(settings)
    with TestClient(a) as ca, TestClient(b) as cb:
        assert _live(ca) == _live(cb) == "2"
        assert cb.post("/v1/models/churn/rollback", headers=_auth("admin")).status_code == 200
        assert _live(cb) == "1"
        assert _until(lambda: _live(ca) == "1", 5), "replica a did not follow the rollback"
        records = ca.get("/v1/actions", headers=_auth("read")).json()["rows"]
        assert [r["kind"] for r in records] == ["rollback"]  # recorded once, by b
        (change,) = ca.get("/v1/models", headers=_auth("read")).json()["models"]
        assert "another replica" in change["last_change"]["reason"]

        r = ca.post("/v1/models/churn/versions/2/activate", headers=_auth("admin"))
        assert r.status_code == 200, r.text
        assert _until(lambda: _live(cb) == "2", 5), "replica b did not follow the activation"
        time.sleep(1.2)  # two more rounds: nothing flips back
        assert _live(ca) == _live(cb) == "2"


def test_the_follower_acts_once_per_record_and_only_on_newer_ones(
    trained: Trained, tmp_path: Path
) -> None:
    settings = load_settings(_config(trained, tmp_path))
    app = build_app(settings)
    with TestClient(app) as client:
        registry, store = app.state.registry, app.state.store
        assert client.post("/v1/models/churn/rollback", headers=_auth("admin")).status_code == 200
        follower = SwitchFollower(registry, store)  # starts from the newest record
        registry.restore("churn", "2", reason="a local switch the store has not seen")
        follower.poll()
        assert registry.live["churn"].version == "2" and follower.followed == 0
