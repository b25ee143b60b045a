"""Labels sent for the primary reach its shadow's predictions of the same rows, so each
version gets its own realised performance, and the two can be compared (breast-cancer
data, real SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import pytest
import yaml
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from inferwatch.config import load_settings
from inferwatch.performance._compare import compare_proportions
from inferwatch.server import build_app
from inferwatch.server._versions import shadow_prediction_id
from tests.server.conftest import TestClient


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Any]:
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x.columns = [c.replace(" ", "_") for c in x.columns]
    truth = y.map({0: "malignant", 1: "benign"})
    ref = x.iloc[:300].assign(target=truth.iloc[:300])
    ref.to_parquet(tmp_path / "ref.parquet")
    features, target = ref.drop(columns="target"), ref["target"]
    primary = make_pipeline(StandardScaler(), LogisticRegression()).fit(features, target)
    candidate = DecisionTreeClassifier(max_depth=2, random_state=0).fit(features, target)
    joblib.dump(primary, tmp_path / "v1.joblib")
    joblib.dump(candidate, tmp_path / "v3.joblib")
    common = {"reference": "ref.parquet", "target": "target"}
    config = {
        "store": {"url": f"sqlite:///{tmp_path / 'store.db'}", "flush_interval_seconds": 0.02},
        "drift": {"calibration": "fixed"},
        "performance": {"estimate": False},
        "models": [
            {"name": "cancer", "version": "1", "path": "v1.joblib", **common},
            {
                "name": "cancer-tree",
                "version": "3",
                "path": "v3.joblib",
                "shadow_of": "cancer",
                **common,
            },
        ],
    }
    (tmp_path / "inferwatch.yaml").write_text(yaml.safe_dump(config))
    current = x.iloc[300:]
    return {
        "config": tmp_path / "inferwatch.yaml",
        "rows": current.to_dict(orient="records"),
        "truth": truth.iloc[300:].tolist(),
        "expected": {
            "1": accuracy_score(truth.iloc[300:], primary.predict(current)),
            "3": accuracy_score(truth.iloc[300:], candidate.predict(current)),
        },
    }


def test_labels_for_the_primary_give_each_version_its_accuracy(
    setup: dict[str, Any],
) -> None:
    rows, truth = setup["rows"], setup["truth"]
    app = build_app(load_settings(setup["config"]))
    with TestClient(app) as client:
        ids: list[str] = []
        for i in range(0, len(rows), 50):
            res = client.post("/v1/models/cancer/predict", json={"instances": rows[i : i + 50]})
            assert res.status_code == 200, res.text
            ids += [p["id"] for p in res.json()["predictions"]]
        labels = [{"prediction_id": p, "label": t} for p, t in zip(ids, truth, strict=True)]
        res = client.post("/v1/models/cancer/feedback", json={"labels": labels})
        assert res.status_code == 200, res.text
        assert res.json()["accepted"] == len(rows)
        # the shadow got them as well, for its own ids: sent again, each one replaces itself
        derived = [
            {"prediction_id": shadow_prediction_id(p, "cancer-tree"), "label": t}
            for p, t in zip(ids, truth, strict=True)
        ]
        res = client.post("/v1/models/cancer-tree/feedback", json={"labels": derived})
        assert res.status_code == 200, res.text
        assert (res.json()["accepted"], res.json()["replaced"]) == (0, len(rows))
        realised = {}
        for model, version in (("cancer", "1"), ("cancer-tree", "3")):
            assert client.post(f"/v1/models/{model}/evaluate").status_code == 200
            body = client.get(f"/v1/models/{model}/performance").json()
            realised[version] = body["versions"][version]["realised"]["accuracy"]
    for version, expected in setup["expected"].items():
        assert realised[version] == pytest.approx(expected, abs=1e-9)
    n = len(rows)
    correct = {v: round(acc * n) for v, acc in realised.items()}
    result = compare_proportions(correct["1"], n, correct["3"], n)
    assert result.difference == pytest.approx(realised["3"] - realised["1"], abs=1e-9)
    assert result.ci_low <= result.difference <= result.ci_high
    # the same rows scored twice: the independent-samples test is conservative here
    assert 0 < result.p_value < 1
