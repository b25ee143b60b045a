"""Shadow versions and A/B splits, built from settings as ``serve`` builds them (real
joblib model files, a real SQLite store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from inferwatch.config import ModelSettings, Settings, StoreSettings
from inferwatch.errors import ConfigError
from inferwatch.io import save_schema
from inferwatch.server import build_app
from inferwatch.server._versions import shadow_prediction_id
from inferwatch.store import SQLStore
from tests.server._versions_models import Broken, Slow
from tests.server.conftest import TestClient, Trained, _preprocess, instances, make_frame, sample


@pytest.fixture
def files(trained: Trained, tmp_path: Path) -> dict[str, Path]:
    """The churn classifier, a weaker candidate, a slow copy and a broken one, as files."""
    weak = Pipeline([("prep", _preprocess()), ("model", LogisticRegression(C=0.002))])
    y = trained.classifier.predict(trained.frame)
    rng = np.random.default_rng(3)
    flipped = np.where(rng.random(y.size) < 0.25, np.where(y == "yes", "no", "yes"), y)
    weak.fit(trained.frame, flipped)
    out = {
        "schema": save_schema(trained.schema, tmp_path / "schema.yaml"),
        "db": tmp_path / "store.db",
    }
    for name, model in (
        ("primary", trained.classifier),
        ("weak", weak),
        ("slow", Slow(trained.classifier, 1.0)),
        ("broken", Broken(trained.classifier)),
    ):
        out[name] = tmp_path / f"{name}.joblib"
        joblib.dump(model, out[name])
    return out


def settings(files: dict[str, Path], *models: dict[str, Any]) -> Settings:
    return Settings(
        store=StoreSettings(url=f"sqlite:///{files['db']}", flush_interval_seconds=0.02),
        models=[ModelSettings.model_validate({"schema": files["schema"], **m}) for m in models],
    )


@pytest.fixture
def rows() -> list[dict[str, Any]]:
    return instances(make_frame(np.random.default_rng(11), 40))


def post(client: TestClient, name: str, batch: list[dict[str, Any]]) -> Any:
    res = client.post(f"/v1/models/{name}/predict", json={"instances": batch})
    assert res.status_code == 200, res.text
    return res


def metrics_text(client: TestClient) -> str:
    return str(client.get("/metrics").text)


def open_store(files: dict[str, Path]) -> Iterator[SQLStore]:
    store = SQLStore(f"sqlite:///{files['db']}")
    try:
        yield store
    finally:
        store.close()


def test_a_shadow_logs_its_own_outputs_and_counts_agreement(
    files: dict[str, Path], rows: list[dict[str, Any]], trained: Trained
) -> None:
    app = build_app(
        settings(
            files,
            {"name": "churn", "version": "3", "path": files["primary"]},
            {"name": "churn-next", "version": "4", "path": files["weak"], "shadow_of": "churn"},
        )
    )
    answers: list[dict[str, Any]] = []
    with TestClient(app) as client:
        for i in range(0, len(rows), 10):
            answers += post(client, "churn", rows[i : i + 10]).json()["predictions"]
        text = metrics_text(client)
    # the primary's answer holds its own predictions only
    ours = [str(v) for v in trained.classifier.predict(_frame(rows))]
    assert [a["prediction"] for a in answers] == ours
    weak = joblib.load(files["weak"])
    theirs = [str(v) for v in weak.predict(_frame(rows))]
    agree = sum(a == b for a, b in zip(ours, theirs, strict=True))
    assert 0 < agree < len(rows)  # the candidate differs on some rows
    labels = {"model": "churn-next", "version": "4"}
    assert sample(text, "inferwatch_shadow_predictions_total", **labels, outcome="agree") == agree
    assert sample(text, "inferwatch_shadow_predictions_total", **labels, outcome="disagree") == (
        len(rows) - agree
    )
    assert sample(text, "inferwatch_shadow_predictions_total", outcome="error") == 0
    # the shadow's predictions are stored under its own name and version, under ids
    # derived from the primary's
    for store in open_store(files):
        assert store.count_predictions("churn", "3") == len(rows)
        assert store.count_predictions("churn-next", "4") == len(rows)
        for answer, expected in zip(answers, theirs, strict=True):
            record = store.get_prediction(shadow_prediction_id(answer["id"], "churn-next"))
            assert record is not None
            assert (record.model, record.version, str(record.output)) == (
                "churn-next",
                "4",
                expected,
            )


def _frame(rows: list[dict[str, Any]]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows)[["age", "income", "plan"]]


def test_a_failing_shadow_never_fails_the_answer(
    files: dict[str, Path], rows: list[dict[str, Any]]
) -> None:
    app = build_app(
        settings(
            files,
            {"name": "churn", "path": files["primary"]},
            {"name": "cand", "path": files["broken"], "shadow_of": "churn"},
        )
    )
    with TestClient(app) as client:
        for _ in range(3):
            res = post(client, "churn", rows)
            assert "cand" not in res.text
        text = metrics_text(client)
    assert sample(text, "inferwatch_shadow_predictions_total", model="cand", outcome="error") == (
        3 * len(rows)
    )
    assert sample(text, "inferwatch_requests_total", model="churn", status="200") == 3
    for store in open_store(files):
        assert store.count_predictions("churn", "1") == 3 * len(rows)
        assert store.count_predictions("cand", "1") == 0


def test_an_ab_split_routes_by_share_and_says_who_answered(
    files: dict[str, Path], rows: list[dict[str, Any]]
) -> None:
    app = build_app(
        settings(
            files,
            {
                "name": "churn-a",
                "version": "1",
                "path": files["primary"],
                "ab_group": "churn",
                "traffic_share": 70,
            },
            {
                "name": "churn-b",
                "version": "2",
                "path": files["weak"],
                "ab_group": "churn",
                "traffic_share": 30,
            },
        )
    )
    n = 200
    seen: dict[str, int] = {"churn-a": 0, "churn-b": 0}
    with TestClient(app) as client:
        for i in range(n):
            res = post(client, "churn", rows[i % len(rows) : i % len(rows) + 1])
            body = res.json()
            assert res.headers["x-model-name"] == body["model"]
            assert res.headers["x-model-version"] == body["version"]
            assert (body["model"], body["version"]) in {("churn-a", "1"), ("churn-b", "2")}
            seen[body["model"]] += 1
        # each member stays callable on its own, and the group's name is in the OpenAPI
        assert post(client, "churn-b", rows[:1]).json()["version"] == "2"
        enum = client.get("/openapi.json").json()["paths"]["/v1/models/{name}/predict"]["post"]
        assert "churn" in enum["parameters"][0]["schema"]["enum"]
        text = metrics_text(client)
    # 30% of 200: mean 60, sd 6.5; 5 sd either side (the draw itself is tested below)
    assert 28 <= seen["churn-b"] <= 92, seen
    assert sample(text, "inferwatch_requests_total", model="churn-b", status="200") == (
        seen["churn-b"] + 1
    )
    for store in open_store(files):
        assert store.count_predictions("churn-a", "1") == seen["churn-a"]
        assert store.count_predictions("churn-b", "2") == seen["churn-b"] + 1


def test_the_split_draws_members_in_proportion_to_their_shares() -> None:
    from inferwatch.server._versions import Split

    members = tuple(object() for _ in range(3))
    split = Split("g", members, (20.0, 70.0, 100.0))  # type: ignore[arg-type]
    n = 30_000
    counts = [0, 0, 0]
    for _ in range(n):
        counts[members.index(split.choose())] += 1
    for count, share in zip(counts, (0.2, 0.5, 0.3), strict=True):
        sd = (n * share * (1 - share)) ** 0.5
        assert abs(count - n * share) <= 5 * sd, counts


def test_a_refused_request_to_a_group_is_counted_for_the_member_that_drew_it(
    files: dict[str, Path],
) -> None:
    app = build_app(
        settings(
            files,
            {"name": "a", "path": files["primary"], "ab_group": "g", "traffic_share": 50},
            {"name": "b", "path": files["weak"], "ab_group": "g", "traffic_share": 50},
        )
    )
    with TestClient(app) as client:
        res = client.post("/v1/models/g/predict", json={"instances": [{"age": "old"}]})
        assert res.status_code == 422
        assert res.json()["error"]["code"]
        text = metrics_text(client)
    refused = sum(sample(text, "inferwatch_requests_rejected_total", model=m) for m in ("a", "b"))
    assert refused == 1
    assert sample(text, "inferwatch_requests_rejected_total", model="g") == 0


def test_a_shadow_needing_features_its_primary_lacks_is_refused_at_start(
    files: dict[str, Path], trained: Trained, tmp_path: Path
) -> None:
    s = settings(
        files,
        {"name": "churn", "path": files["primary"]},
        {"name": "cand", "path": files["weak"], "shadow_of": "churn"},
    )
    # the primary takes fewer features than the shadow needs
    from inferwatch.schema import Schema

    kept = tuple(f for f in trained.schema.features if f.name != "plan")
    small = Schema(kept, trained.schema.target)
    s.models[0].schema_path = save_schema(small, tmp_path / "small.yaml")
    from sklearn.preprocessing import StandardScaler

    two = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])
    two.fit(trained.frame[["age", "income"]], trained.frame["plan"])
    joblib.dump(two, tmp_path / "two.joblib")
    s.models[0].path = tmp_path / "two.joblib"
    with pytest.raises(ConfigError, match=r"models\[1\]\.shadow_of: 'cand' needs .*'plan'"):
        build_app(s)


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ([{"name": "a", "shadow_of": "zz"}], "models[0].shadow_of: no model named 'zz'"),
        ([{"name": "a", "shadow_of": "a"}], "cannot shadow itself"),
        (
            [{"name": "a"}, {"name": "b", "shadow_of": "a"}, {"name": "c", "shadow_of": "b"}],
            "'b' is itself a shadow",
        ),
        (
            [
                {"name": "a", "ab_group": "g", "traffic_share": 60},
                {"name": "b", "ab_group": "g", "traffic_share": 30},
            ],
            "ab_group 'g': traffic_share must sum to 100, got 90 (a=60.0, b=30.0)",
        ),
        ([{"name": "a", "ab_group": "g", "traffic_share": 100}], "has one model"),
        (
            [{"name": "a", "ab_group": "g"}, {"name": "b", "ab_group": "g", "traffic_share": 100}],
            "models[0].traffic_share: required in an ab_group",
        ),
        ([{"name": "a", "traffic_share": 50}], "only applies with ab_group"),
        (
            [
                {"name": "a", "ab_group": "b", "traffic_share": 50},
                {"name": "b", "ab_group": "b", "traffic_share": 50},
            ],
            "'b' is also a model's name",
        ),
        (
            [{"name": "a"}, {"name": "b", "shadow_of": "a", "ab_group": "g", "traffic_share": 100}],
            "a shadow takes no A/B traffic",
        ),
    ],
)
def test_bad_version_settings_name_the_key(
    models: list[dict[str, Any]], message: str, tmp_path: Path
) -> None:
    import yaml

    from inferwatch.config import load_settings

    config = tmp_path / "inferwatch.yaml"
    full = [{"path": "m.joblib", "schema": "s.yaml", **m} for m in models]
    config.write_text(yaml.safe_dump({"models": full}))
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert message in str(info.value)


def test_shadow_ids_are_stable_distinct_and_id_shaped() -> None:
    a = shadow_prediction_id("p-1", "cand")
    assert a == shadow_prediction_id("p-1", "cand")
    assert a != shadow_prediction_id("p-1", "other") != shadow_prediction_id("p-2", "cand")
    assert len(a) == 36
