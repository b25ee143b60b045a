"""The mlflow flavor: scikit-learn models and pyfunc models logged here to a real MLflow
tracking store (a SQLite file under tmp, no server), registered, and served from a model
folder and from ``models:/name/version``; predictions are compared with the estimator's."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_iris, load_wine
from sklearn.linear_model import LogisticRegression, Ridge

from inferwatch.cli._serve import _overrides
from inferwatch.config import check_settings, load_settings
from inferwatch.errors import ModelError
from inferwatch.models import MlflowPyfuncAdapter, SklearnAdapter, flavor_of, load_model
from tests.cli.conftest import ServerProcess
from tests.models.conftest import serve_end_to_end, write_config
from tests.server.conftest import sample

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no network here
with warnings.catch_warnings():  # mlflow.pyfunc warns about MLflow's own type hints
    warnings.simplefilter("ignore", UserWarning)
    mlflow = pytest.importorskip("mlflow")
    for submodule in ("models", "pyfunc", "sklearn"):
        pytest.importorskip(f"mlflow.{submodule}")

pytestmark = pytest.mark.filterwarnings(
    # MLflow's own notes while logging (integer columns in a signature, pickle advice,
    # type hints) and its SQL store's use of a loader SQLAlchemy 2.1 deprecates
    "ignore::UserWarning:mlflow.*",
    "ignore::FutureWarning:mlflow.*",
    "ignore::sqlalchemy.exc.SADeprecationWarning",
)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


class Registry:
    """A tracking store (SQLite) holding the registered model ``iris`` (version 1, alias
    ``champion``): a LogisticRegression logged in MLflow's default (skops) format."""

    def __init__(self, root: Path) -> None:
        self.uri = f"sqlite:///{root / 'mlflow.db'}"
        frame, target = load_iris(return_X_y=True, as_frame=True)
        self.frame = frame
        self.target = target.to_numpy()
        self.model = LogisticRegression(max_iter=1000).fit(frame, self.target)
        client = mlflow.MlflowClient(tracking_uri=self.uri)
        experiment = client.create_experiment("iris", artifact_location=(root / "art").as_uri())
        mlflow.set_tracking_uri(self.uri)
        try:
            signature = mlflow.models.infer_signature(frame, self.model.predict(frame))
            with mlflow.start_run(experiment_id=experiment):
                mlflow.sklearn.log_model(
                    self.model,
                    name="model",
                    signature=signature,
                    pip_requirements=[],
                    registered_model_name="iris",
                )
        finally:
            mlflow.set_tracking_uri(None)
        client.set_registered_model_alias("iris", "champion", "1")
        self.folder = root / "iris_model"  # the same model as a local folder
        mlflow.sklearn.save_model(self.model, self.folder, signature=signature, pip_requirements=[])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return Registry(tmp_path_factory.mktemp("mlflow"))


def test_a_model_folder_serves_end_to_end(tmp_path: Path, registry: Registry) -> None:
    frame, target, model = registry.frame, registry.target, registry.model
    (tmp_path / "iris_model").symlink_to(registry.folder, target_is_directory=True)
    # no flavor: the folder's MLmodel file names it (relative to the config file's folder)
    config = write_config(
        tmp_path, {"name": "iris", "path": "iris_model", "target": "species"},
        frame.assign(species=target),
    )  # fmt: skip
    traffic = frame.sample(120, random_state=0)

    result = serve_end_to_end(config, records(traffic))

    assert result.model_info["flavor"] == "mlflow"
    values = [p["prediction"] for p in result.predictions]
    assert values == model.predict(traffic).tolist()
    got = np.array([[p["probabilities"][str(c)] for c in (0, 1, 2)] for p in result.predictions])
    np.testing.assert_allclose(got, model.predict_proba(traffic), atol=1e-12)
    counted = {
        c: sample(
            result.metrics, "inferwatch_predictions_total", model="iris", predicted_class=str(c)
        )
        for c in (0, 1, 2)
    }
    assert counted == {c: values.count(c) for c in (0, 1, 2)}
    assert sample(result.metrics, "inferwatch_requests_total", model="iris") >= 3
    assert result.stored == len(traffic)
    assert sample(result.metrics, "inferwatch_drift_window_rows", model="iris") == len(traffic)
    assert 'inferwatch_drift_score{feature="petal length (cm)"' in result.metrics


def test_a_registered_version_serves_from_the_config_tracking_uri(
    tmp_path: Path, registry: Registry
) -> None:
    frame, target, model = registry.frame, registry.target, registry.model
    entry = {
        "name": "iris",
        "path": "models:/iris/1",
        "tracking_uri": registry.uri,
        "target": "species",
    }
    config = write_config(tmp_path, entry, frame.assign(species=target))
    traffic = frame.sample(60, random_state=1)

    settings = load_settings(config)
    result = serve_end_to_end(config, records(traffic))

    assert settings.models[0].flavor == "mlflow"  # the URI names it
    assert str(settings.models[0].path) == "models:/iris/1"  # not resolved as a file
    assert check_settings(settings) == []
    assert [p["prediction"] for p in result.predictions] == model.predict(traffic).tolist()
    assert result.stored == len(traffic)


def test_an_alias_resolves_through_mlflows_own_environment_variable(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.uri)
    names = list(registry.frame.columns)

    adapter = load_model("models:/iris@champion", feature_names=names)
    # integers where the signature says double: cast, not refused
    row = {n: int(v) for n, v in zip(names, registry.frame.iloc[0], strict=True)}
    (p,) = adapter.predict([row])

    assert isinstance(adapter, SklearnAdapter) and adapter.flavor == "mlflow"
    assert adapter.classes == ("0", "1", "2")
    assert p.value == registry.model.predict(pd.DataFrame([row], dtype=float))[0]


def test_registry_errors_name_the_model_and_the_store(registry: Registry) -> None:
    names = list(registry.frame.columns)

    with pytest.raises(ModelError, match=r"cannot fetch MLflow model models:/iris/9 from sqlite"):
        load_model("models:/iris/9", feature_names=names, tracking_uri=registry.uri)
    with pytest.raises(ModelError, match=r"models:/iris@nobody from sqlite"):
        load_model("models:/iris@nobody", feature_names=names, tracking_uri=registry.uri)
    with pytest.raises(ModelError, match=r"expected models:/NAME/VERSION or models:/NAME@ALIAS"):
        load_model("models:/iris/latest/x", feature_names=names, tracking_uri=registry.uri)


def test_a_signature_the_schema_does_not_satisfy_is_refused(
    tmp_path: Path, registry: Registry
) -> None:
    frame, target = registry.frame, registry.target
    (tmp_path / "iris_model").symlink_to(registry.folder, target_is_directory=True)
    narrow = frame.drop(columns=["petal width (cm)"]).assign(species=target)
    config = write_config(
        tmp_path, {"name": "iris", "path": "iris_model", "target": "species"}, narrow
    )

    (problem,) = check_settings(load_settings(config))

    assert problem.startswith("models[0].path: MLflow model ")
    assert "needs column(s) 'petal width (cm)' that the schema does not have" in problem


def test_folders_and_pins_are_checked_before_anything_loads(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()

    assert flavor_of(tmp_path / "empty") is None
    assert flavor_of("models:/iris/1") == flavor_of("models:/iris@prod") == "mlflow"
    with pytest.raises(ModelError, match=r"empty is not an MLflow model: .* MLmodel file"):
        load_model(tmp_path / "empty", "mlflow", feature_names=["a"])
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "nowhere", "mlflow", feature_names=["a"])
    with pytest.raises(ModelError, match="leave trusted_model_hashes out"):
        load_model("models:/iris/1", feature_names=["a"], trusted_hashes=["0" * 64])


# (MLflow prints a note when these classes are made, whatever the warning filters say)
class WineScores(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """A pyfunc answering a DataFrame of class probabilities (columns named by class)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    # no type hints: MLflow reads them as a signature and warns they are not list[...]
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        proba = self.model.predict_proba(model_input)
        return pd.DataFrame(proba, columns=[str(c) for c in self.model.classes_])


class Regressor(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return self.model.predict(model_input)


def test_a_pyfunc_model_answering_class_probabilities(tmp_path: Path) -> None:
    frame, target = load_wine(return_X_y=True, as_frame=True)
    labels = np.array(["barolo", "grignolino", "barbera"])[target]
    model = LogisticRegression(max_iter=5000).fit(frame, labels)
    path = tmp_path / "wine"
    signature = mlflow.models.infer_signature(frame, model.predict_proba(frame))
    mlflow.pyfunc.save_model(
        path, python_model=WineScores(model), signature=signature, pip_requirements=[]
    )

    adapter = load_model(path, feature_names=list(frame.columns))
    predictions = adapter.predict(records(frame))

    assert isinstance(adapter, MlflowPyfuncAdapter)
    assert adapter.classes == tuple(model.classes_)
    assert [p.value for p in predictions] == model.predict(frame).tolist()
    got = [[p.probabilities[c] for c in model.classes_] for p in predictions]  # type: ignore[index]
    np.testing.assert_allclose(got, model.predict_proba(frame), atol=1e-12)


def test_a_pyfunc_regressor_answers_floats(tmp_path: Path) -> None:
    frame, target = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge().fit(frame, target)
    path = tmp_path / "diabetes"
    mlflow.pyfunc.save_model(path, python_model=Regressor(model), pip_requirements=[])
    # no signature: the schema's columns, in the schema's order
    adapter = load_model(path, "mlflow", feature_names=list(frame.columns))

    predictions = adapter.predict(records(frame))

    assert adapter.classes is None
    assert all(type(p.value) is float and p.probabilities is None for p in predictions)
    np.testing.assert_allclose([p.value for p in predictions], model.predict(frame))


def test_serve_flag_keeps_a_registry_uri_and_names_the_model_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    out = _overrides(
        Path("models:/iris@champion"), Path("ref.csv"), None, "y", None, None, None, None, None
    )

    (entry,) = out["models"]
    assert entry == {
        "name": "iris",
        "path": "models:/iris@champion",
        "reference": str(tmp_path / "ref.csv"),
        "target": "y",
    }


def test_serve_a_registered_model_over_http(tmp_path: Path, registry: Registry) -> None:
    import httpx

    frame, target, model = registry.frame, registry.target, registry.model
    frame.assign(species=target).to_csv(tmp_path / "reference.csv", index=False)
    server = ServerProcess(
        [
            "serve", "--model", "models:/iris/1",
            "--reference", "reference.csv", "--target", "species",
        ],
        cwd=tmp_path,
        env={"MLFLOW_TRACKING_URI": registry.uri},
        timeout=120,
    )  # fmt: skip
    try:
        server.wait_ready(timeout=120)
        rows = records(frame.head(5))
        resp = httpx.post(f"{server.base}/v1/models/iris/predict", json={"instances": rows})
        info = httpx.get(f"{server.base}/v1/models/iris").json()
    finally:
        rc = server.stop()
    assert rc == 0, server.output()
    assert resp.status_code == 200, resp.text
    assert info["flavor"] == "mlflow"
    assert [p["prediction"] for p in resp.json()["predictions"]] == model.predict(
        frame.head(5)
    ).tolist()
