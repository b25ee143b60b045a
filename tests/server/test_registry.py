"""Model versions kept for a rollback: ``models[].previous``, ``/v1/models`` and the switches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import yaml
from prometheus_client import CollectorRegistry
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline

from inferwatch.config import load_settings
from inferwatch.errors import ConfigError
from inferwatch.io import save_schema
from inferwatch.metrics import Metrics
from inferwatch.models import SklearnAdapter
from inferwatch.server import ServedModel, build_app
from inferwatch.server._registry import ModelRegistry, VersionChange
from tests.server.conftest import KEYS, TestClient, Trained, instances, make_frame


def _config(trained: Trained, tmp_path: Path, **extra: Any) -> Path:
    joblib.dump(trained.classifier, tmp_path / "v2.joblib")
    # version 1 always answers "no": easy to tell apart from version 2
    old = Pipeline([("model", DummyClassifier(strategy="constant", constant="no"))])
    old.fit(trained.frame, np.where(trained.frame["income"] > 0, "no", "yes"))
    joblib.dump(old, tmp_path / "v1.joblib")
    save_schema(trained.schema, tmp_path / "schema.yaml")
    config = {
        "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"},
        "auth": {"keys": [{"name": r, "key": k, "roles": [r]} for r, k in KEYS.items()]},
        "models": [
            {
                "name": "churn",
                "version": "2",
                "path": "v2.joblib",
                "schema": "schema.yaml",
                "previous": [{"version": "1", "path": "v1.joblib"}],
                **extra,
            }
        ],
    }
    path = tmp_path / "inferwatch.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[role]}"}


def test_rollback_switches_the_live_version_and_models_shows_it(
    trained: Trained, tmp_path: Path
) -> None:
    app = build_app(load_settings(_config(trained, tmp_path)))
    rows = instances(make_frame(np.random.default_rng(3), 40))
    with TestClient(app) as client:
        listed = client.get("/v1/models", headers=_auth("read")).json()["models"]
        assert [m["version"] for m in listed] == ["2"]
        scraped = client.get("/metrics", headers=_auth("read")).text
        assert 'inferwatch_model_live{model="churn",version="2"} 1.0' in scraped
        assert 'inferwatch_model_live{model="churn",version="1"} 0.0' in scraped
        assert listed[0]["versions"] == [
            {"version": "2", "flavor": "sklearn", "live": True},
            {"version": "1", "flavor": "sklearn", "live": False},
        ]
        before = client.post(
            "/v1/models/churn/predict", json={"instances": rows}, headers=_auth("predict")
        ).json()
        assert before["version"] == "2"
        assert {p["prediction"] for p in before["predictions"]} == {"yes", "no"}

        # a reader may not switch versions
        refused = client.post("/v1/models/churn/rollback", headers=_auth("read"))
        assert refused.status_code == 403

        done = client.post(
            "/v1/models/churn/rollback", params={"reason": "accuracy fell"}, headers=_auth("admin")
        )
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["live_version"] == "1"
        assert body["change"]["from_version"] == "2"
        assert body["change"]["reason"] == "accuracy fell"

        after = client.post(
            "/v1/models/churn/predict", json={"instances": rows}, headers=_auth("predict")
        ).json()
        assert after["version"] == "1"
        assert {p["prediction"] for p in after["predictions"]} == {"no"}
        model = client.get("/v1/models/churn", headers=_auth("read")).json()
        assert model["version"] == "1"
        assert model["last_change"]["to_version"] == "1"
        assert [v["live"] for v in model["versions"]] == [False, True]
        scraped = client.get("/metrics", headers=_auth("read")).text
        assert 'inferwatch_model_live{model="churn",version="1"} 1.0' in scraped
        assert 'inferwatch_model_live{model="churn",version="2"} 0.0' in scraped

        # nothing older than version 1: a clear conflict, the live version unchanged
        again = client.post("/v1/models/churn/rollback", headers=_auth("admin"))
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "no_previous_version"

        unknown = client.post("/v1/models/churn/versions/9/activate", headers=_auth("admin"))
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "unknown_version"
        forward = client.post("/v1/models/churn/versions/2/activate", headers=_auth("admin"))
        assert forward.json()["live_version"] == "2"
        same = client.post("/v1/models/churn/versions/2/activate", headers=_auth("admin"))
        assert same.json()["change"] is None
        assert client.post("/v1/models/nope/rollback", headers=_auth("admin")).status_code == 404
        # each switch asked through the API is in the action log, with its reason
        logged = client.get("/v1/actions", headers=_auth("read")).json()["rows"]
        assert [(r["kind"], r["version"]) for r in reversed(logged)] == [
            ("rollback", "1"),
            ("activate", "2"),
        ]
        assert logged[-1]["detail"] == "2 -> 1: accuracy fell"


def test_a_previous_version_listed_twice_is_refused_with_its_key(
    trained: Trained, tmp_path: Path
) -> None:
    path = _config(trained, tmp_path)
    data = yaml.safe_load(path.read_text())
    data["models"][0]["previous"].append({"version": "2", "path": "v1.joblib"})
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"previous\[1\]\.version: '2' is listed twice"):
        load_settings(path)


def test_registry_rolls_back_one_step_at_a_time_and_reports_each_change(
    trained: Trained, tmp_path: Path
) -> None:
    m = load_settings(_config(trained, tmp_path)).models[0]
    assert [v.version for v in m.versions()] == ["2", "1"]
    assert m.versions()[1].path == tmp_path / "v1.joblib"  # resolved against the YAML

    metrics = Metrics(CollectorRegistry())
    adapter = SklearnAdapter(trained.classifier, trained.schema.names)
    built = [ServedModel.build("m", v, adapter, trained.schema, metrics) for v in ("3", "2", "1")]
    seen: list[VersionChange] = []
    registry = ModelRegistry.of(built, on_change=seen.append)
    assert registry.live["m"].version == "3"
    first = registry.rollback("m", reason="r1")
    assert first is not None and first.to_version == "2"
    second = registry.rollback("m", reason="r2")
    assert second is not None and second.to_version == "1"
    assert registry.rollback("m") is None
    assert [(c.from_version, c.to_version, c.reason) for c in seen] == [
        ("3", "2", "r1"),
        ("2", "1", "r2"),
    ]
    with pytest.raises(ValueError, match="lists a version twice"):
        ModelRegistry.of([built[0], built[0]])


def test_a_rollback_outlives_a_restart_until_a_new_version_is_deployed(
    trained: Trained, tmp_path: Path
) -> None:
    path = _config(trained, tmp_path)
    with TestClient(build_app(load_settings(path))) as client:
        done = client.post("/v1/models/churn/rollback", headers=_auth("admin"))
        assert done.json()["live_version"] == "1"

    # restarted on the same configuration: the rolled-back version stays live
    with TestClient(build_app(load_settings(path))) as client:
        model = client.get("/v1/models/churn", headers=_auth("read")).json()
        assert model["version"] == "1"
        assert model["last_change"]["reason"].startswith("restored at start")
        scraped = client.get("/metrics", headers=_auth("read")).text
        assert 'inferwatch_model_live{model="churn",version="1"} 1.0' in scraped
        assert 'inferwatch_model_live{model="churn",version="2"} 0.0' in scraped
        # switching forward again is recorded, and the next restart follows it
        client.post("/v1/models/churn/versions/2/activate", headers=_auth("admin"))
    with TestClient(build_app(load_settings(path))) as client:
        assert client.get("/v1/models/churn", headers=_auth("read")).json()["version"] == "2"
        client.post("/v1/models/churn/rollback", headers=_auth("admin"))

    # a new deployment (version 3 over 2 and 1) is served, not the old rollback
    data = yaml.safe_load(path.read_text())
    joblib.dump(trained.classifier, tmp_path / "v3.joblib")
    data["models"][0].update(version="3", path="v3.joblib")
    data["models"][0]["previous"].insert(0, {"version": "2", "path": "v2.joblib"})
    path.write_text(yaml.safe_dump(data))
    with TestClient(build_app(load_settings(path))) as client:
        assert client.get("/v1/models/churn", headers=_auth("read")).json()["version"] == "3"


def test_switch_to_restore_takes_the_newest_successful_switch_under_the_same_config() -> None:
    from inferwatch.server._registry import switch_to_restore

    def rec(kind: str, to: str, configured: str = "3", outcome: str = "ok") -> dict[str, Any]:
        moved = "rollback" if kind == "rollback" else "change"
        evidence = {"configured_version": configured, moved: {"to_version": to}}
        return {"kind": kind, "outcome": outcome, "evidence": evidence}

    assert switch_to_restore([], "3") is None
    assert switch_to_restore([rec("rollback", "2")], "3") == "2"
    assert switch_to_restore([rec("activate", "1"), rec("rollback", "2")], "3") == "1"
    assert switch_to_restore([rec("activate", "3"), rec("rollback", "2")], "3") is None
    assert switch_to_restore([rec("rollback", "2", outcome="skipped"), rec("rollback", "1")],
                             "3") == "1"  # fmt: skip
    assert switch_to_restore([rec("retrain", "2"), rec("rollback", "1")], "3") == "1"
    # made while another version was configured: the new deployment wins
    assert switch_to_restore([rec("rollback", "1", configured="2")], "3") is None
    assert switch_to_restore([{"kind": "rollback", "outcome": "ok", "evidence": None}], "3") is None
    # an alert action's record keeps the configured version in its context
    action = {"kind": "rollback", "outcome": "ok",
              "evidence": {"context": {"configured_version": "3"},
                           "rollback": {"to_version": "2"}}}  # fmt: skip
    assert switch_to_restore([action], "3") == "2"
