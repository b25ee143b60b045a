"""GET /v1/models/{name}/compare: two served versions' realised accuracy, tested, on real data."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import load_breast_cancer
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from inferwatch.config import load_settings
from inferwatch.server import build_app
from tests.server.conftest import TestClient


def test_compare_two_served_versions(tmp_path: Path) -> None:
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    features = [c for c in frame.columns if c != "target"]
    idx = np.random.default_rng(1).permutation(len(frame))
    train, ref, live = frame.iloc[idx[:250]], frame.iloc[idx[250:400]], frame.iloc[idx[400:]]
    good = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        train[features], train["target"]
    )
    weak = DummyClassifier(strategy="stratified", random_state=0).fit(
        train[features], train["target"]
    )
    joblib.dump(good, tmp_path / "good.joblib")
    joblib.dump(weak, tmp_path / "weak.joblib")
    ref.to_csv(tmp_path / "ref.csv", index=False)
    entry = {"reference": str(tmp_path / "ref.csv"), "target": "target"}
    settings = load_settings(
        None,
        {
            "models": [
                {"name": "a", "path": str(tmp_path / "good.joblib"), **entry},
                {"name": "b", "version": "2", "path": str(tmp_path / "weak.joblib"), **entry},
            ],
            "store": {"url": f"sqlite:///{tmp_path}/c.db", "flush_interval_seconds": 0.05},
            "drift": {"evaluation_interval_seconds": 3600},
        },
    )
    rows = live[features].to_dict(orient="records")
    truth = live["target"].tolist()
    correct = {}
    with TestClient(build_app(settings)) as client:
        for name in ("a", "b"):
            answer = client.post(f"/v1/models/{name}/predict", json={"instances": rows}).json()
            ids = [p["id"] for p in answer["predictions"]]
            correct[name] = sum(
                str(p["prediction"]) == str(t)
                for p, t in zip(answer["predictions"], truth, strict=True)
            )
            labels = [{"prediction_id": i, "label": t} for i, t in zip(ids, truth, strict=True)]
            assert (
                client.post(f"/v1/models/{name}/feedback", json={"labels": labels}).status_code
                == 200
            )
        got = client.get("/v1/models/a/compare", params={"with": "b"}).json()
        bad = client.get("/v1/models/a/compare", params={"with": "b", "metric": "rmse"})
        unknown = client.get("/v1/models/a/compare", params={"with": "nope"})
    n = len(truth)
    assert got["status"] == "compared"
    assert (got["a"]["labelled"], got["b"]["labelled"]) == (n, n)
    assert got["a"]["version"] == "1" and got["b"]["version"] == "2"
    assert got["difference"] == pytest.approx((correct["b"] - correct["a"]) / n, abs=1e-12)
    assert got["significant"] is True and got["difference"] < 0
    # the same 2x2 table through scipy: the p-value agrees in kind (both tiny)
    table = [[correct["a"], n - correct["a"]], [correct["b"], n - correct["b"]]]
    assert stats.fisher_exact(table).pvalue < 0.001 and got["p_value"] < 0.001
    assert bad.status_code == 422 and "rmse" in bad.json()["error"]["message"]
    assert unknown.status_code == 404
