"""Rollback end to end in a served app: labels show the live version's accuracy is below the
critical level, the built-in engine fires ``AccuracyLow``, the rollback action makes the
previous version live, ``/v1/models`` shows it, the record says why, and the cooldown
stops a second rollback."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import yaml
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline

from inferwatch.config import load_settings
from inferwatch.server import build_app
from tests.server.conftest import KEYS, TestClient, Trained, instances, make_frame


def _auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[role]}"}


def _until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s")


def _config(trained: Trained, tmp_path: Path) -> Path:
    # the truth is what the good model (version 1) says; version 2 always answers "no"
    truth = trained.classifier.predict(trained.frame)
    reference = trained.frame.assign(churn=truth)
    reference.to_csv(tmp_path / "reference.csv", index=False)
    joblib.dump(trained.classifier, tmp_path / "v1.joblib")
    bad = Pipeline([("model", DummyClassifier(strategy="constant", constant="no"))])
    joblib.dump(bad.fit(trained.frame, truth), tmp_path / "v2.joblib")
    config = {
        "store": {"url": f"sqlite:///{tmp_path / 'store.db'}", "flush_interval_seconds": 0.05},
        "auth": {"keys": [{"name": r, "key": k, "roles": [r]} for r, k in KEYS.items()]},
        "drift": {"evaluation_interval_seconds": 0.2, "window_seconds": 86_400},
        "performance": {"window_seconds": 86_400, "min_labels": 20, "estimate": False},
        "models": [
            {"name": "churn", "version": "2", "path": "v2.joblib", "reference": "reference.csv",
             "target": "churn", "previous": [{"version": "1", "path": "v1.joblib"}]},
        ],
        "alerting": {
            "evaluation_interval": 0.2,
            "rules": [{"name": "AccuracyLow", "signal": "accuracy", "aggregation": "last",
                       "warning": 0.92, "critical": 0.85, "for": "0s",
                       "summary": "realised accuracy of {{ $labels.model }} is {{ $value }}"}],
            # both levels fire in the same cycle: the first rolls back, the cooldown
            # stops the second
            "actions": [{"name": "rollback-on-accuracy", "kind": "rollback",
                         "when": ["alertname=AccuracyLow"], "cooldown": "1h"}],
        },
    }  # fmt: skip
    path = tmp_path / "inferwatch.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_an_accuracy_drop_rolls_the_model_back_once(trained: Trained, tmp_path: Path) -> None:
    app = build_app(load_settings(_config(trained, tmp_path)))
    frame = make_frame(np.random.default_rng(11), 120)
    truth = trained.classifier.predict(frame)
    with TestClient(app) as client:
        answer = client.post(
            "/v1/models/churn/predict",
            json={"instances": instances(frame)},
            headers=_auth("predict"),
        ).json()
        assert answer["version"] == "2"
        labels = [
            {"prediction_id": p["id"], "label": str(t)}
            for p, t in zip(answer["predictions"], truth, strict=True)
        ]
        fed = client.post("/v1/models/churn/feedback", json={"labels": labels},
                          headers=_auth("feedback"))  # fmt: skip
        assert fed.status_code == 200, fed.text

        def rolled_back() -> dict[str, Any] | None:
            model = client.get("/v1/models/churn", headers=_auth("read")).json()
            return model if model["version"] == "1" else None

        model = _until(rolled_back)
        assert model["last_change"]["from_version"] == "2"
        assert "alert action" in model["last_change"]["reason"]
        after = client.post(
            "/v1/models/churn/predict",
            json={"instances": instances(frame)},
            headers=_auth("predict"),
        ).json()
        assert after["version"] == "1"

        def records() -> list[dict[str, Any]] | None:
            rows = client.get("/v1/actions", headers=_auth("read")).json()["rows"]
            return rows if len(rows) >= 2 else None

        rows = sorted(_until(records), key=lambda r: r["id"])
        assert [r["outcome"] for r in rows] == ["ok", "skipped"]
        done, skipped = rows
        assert done["kind"] == "rollback" and done["model"] == "churn"
        assert "2" in done["detail"] and "1" in done["detail"]
        evidence = done["evidence"]
        assert evidence["alert"]["labels"]["alertname"] == "AccuracyLow"
        assert evidence["alert"]["value"] < 0.85
        assert evidence["context"]["live_version"] == "2"  # read before the switch
        assert any(e["metric"] == "accuracy" for e in evidence["context"]["evaluations"])
        assert "cooldown" in skipped["detail"]
        # still version 1: the cooldown held the second trigger
        assert client.get("/v1/models/churn", headers=_auth("read")).json()["version"] == "1"
        assert evidence["context"]["configured_version"] == "2"
    # a restart on the same configuration keeps the rollback the alert made
    with TestClient(build_app(load_settings(tmp_path / "inferwatch.yaml"))) as client:
        model = client.get("/v1/models/churn", headers=_auth("read")).json()
        assert model["version"] == "1"
        assert model["last_change"]["reason"].startswith("restored at start")
