"""The onnx flavor: scikit-learn models converted with skl2onnx, served through ONNX Runtime.

Every model is trained here on scikit-learn's bundled datasets, converted, written to a
.onnx file and loaded back; predictions are compared with scikit-learn's own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import numpy as np
import onnx
import pandas as pd
import pytest
from skl2onnx import convert_sklearn, to_onnx
from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes, load_iris, load_wine
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from inferwatch.config import ModelFlavor, ModelSettings, check_settings, load_settings
from inferwatch.errors import ModelError
from inferwatch.io import read_columns
from inferwatch.metrics import Metrics
from inferwatch.models import FLAVORS, OnnxAdapter, flavor_of, load_model
from inferwatch.schema import infer_schema
from inferwatch.server._build import load_served_model
from tests.models.conftest import serve_end_to_end, write_config
from tests.server.conftest import sample


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts of plain Python values."""
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def save(model: Any, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, np.ndarray[Any, Any], LogisticRegression]:
    frame, target = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=1000).fit(frame.to_numpy(), target.to_numpy())
    return frame, target.to_numpy(), model


def test_an_iris_classifier_serves_end_to_end(
    tmp_path: Path, iris: tuple[pd.DataFrame, np.ndarray[Any, Any], LogisticRegression]
) -> None:
    frame, target, model = iris
    save(to_onnx(model, frame.to_numpy()[:1].astype(np.float32)), tmp_path / "iris.onnx")
    reference = frame.assign(species=target)
    # no flavor in the config: the .onnx suffix names it
    config = write_config(
        tmp_path, {"name": "iris", "path": "iris.onnx", "target": "species"}, reference
    )
    traffic = frame.sample(120, random_state=0)

    result = serve_end_to_end(config, records(traffic))

    assert result.model_info["flavor"] == "onnx"
    values = [p["prediction"] for p in result.predictions]
    assert values == model.predict(traffic.to_numpy()).tolist()
    expected = model.predict_proba(traffic.to_numpy())
    got = np.array([[p["probabilities"][str(c)] for c in (0, 1, 2)] for p in result.predictions])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    counted = {
        c: sample(
            result.metrics, "inferwatch_predictions_total", model="iris", predicted_class=str(c)
        )
        for c in (0, 1, 2)
    }
    assert counted == {c: values.count(c) for c in (0, 1, 2)}
    assert result.stored == len(traffic)
    # the live drift window judged the served rows against the reference
    assert sample(result.metrics, "inferwatch_drift_window_rows", model="iris") == len(traffic)
    assert 'inferwatch_drift_score{feature="petal length (cm)"' in result.metrics


def test_a_column_transformer_pipeline_gets_one_input_per_feature(tmp_path: Path) -> None:
    """skl2onnx's mixed-type pipelines take one named input per column, the names turned
    into identifiers ("alcohol", "color_intensity", "grade")."""
    frame, target = load_wine(return_X_y=True, as_frame=True)
    frame = (
        frame[["alcohol", "color_intensity", "proline", "hue"]]
        .assign(grade=np.where(frame["proline"] > 750, "high grade", "low grade"))
        .rename(columns={"color_intensity": "color intensity"})
    )
    labels = np.array(["barolo", "grignolino", "barbera"])[target]
    numeric = ["alcohol", "color intensity", "proline", "hue"]
    pipeline = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), numeric),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["grade"]),
                    ]
                ),
            ),
            ("model", LogisticRegression(max_iter=1000)),
        ]
    ).fit(frame, labels)
    inputs = [(c, FloatTensorType([None, 1])) for c in numeric]
    inputs.append(("grade", StringTensorType([None, 1])))
    path = save(convert_sklearn(pipeline, initial_types=inputs), tmp_path / "wine.onnx")
    # the schema's order differs from the graph's: inputs are matched by name
    schema_order = ["grade", *reversed(numeric)]

    adapter = load_model(path, feature_names=schema_order)
    predictions = adapter.predict(records(frame))

    assert isinstance(adapter, OnnxAdapter)
    assert adapter.inputs["color_intensity"] == ("color intensity",)
    assert adapter.classes == ("barbera", "barolo", "grignolino")  # the graph's, sorted
    assert [p.value for p in predictions] == pipeline.predict(frame).tolist()
    expected = pipeline.predict_proba(frame)
    got = [[p.probabilities[c] for c in pipeline.classes_] for p in predictions]  # type: ignore[index]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert all(p.score == max(p.probabilities.values()) for p in predictions)  # type: ignore[union-attr]


def test_probabilities_as_a_tensor_take_the_class_names_from_the_graph(
    tmp_path: Path, iris: tuple[pd.DataFrame, np.ndarray[Any, Any], LogisticRegression]
) -> None:
    frame, target, _ = iris
    names = np.array(["setosa", "versicolor", "virginica"])[target]
    model = LogisticRegression(max_iter=1000).fit(frame.to_numpy(), names)
    converted = to_onnx(model, frame.to_numpy()[:1].astype(np.float32), options={"zipmap": False})
    adapter = load_model(save(converted, tmp_path / "m.onnx"), feature_names=list(frame.columns))

    predictions = adapter.predict(records(frame.head(30)))

    assert adapter.classes == ("setosa", "versicolor", "virginica")
    assert [p.value for p in predictions] == model.predict(frame.head(30).to_numpy()).tolist()
    got = [[p.probabilities[c] for c in model.classes_] for p in predictions]  # type: ignore[index]
    np.testing.assert_allclose(got, model.predict_proba(frame.head(30).to_numpy()), atol=1e-5)


def test_class_names_in_the_metadata_win(tmp_path: Path) -> None:
    """A model exported by another tool can name its classes in metadata ``classes``."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    y = (x[:, 0] > 0).astype(np.int64)
    converted = to_onnx(
        LogisticRegression().fit(x, y), x[:1].astype(np.float32), options={"zipmap": False}
    )
    onnx.helper.set_model_props(converted, {"classes": json.dumps(["stay", "churn"])})
    adapter = load_model(save(converted, tmp_path / "m.onnx"), feature_names=["a", "b"])

    (p,) = adapter.predict([{"a": 3.0, "b": 0.0}])

    assert adapter.classes == ("stay", "churn")
    assert set(p.probabilities or {}) == {"stay", "churn"}
    assert p.probabilities is not None and p.probabilities["churn"] > 0.9


def test_a_regressor_answers_floats(tmp_path: Path) -> None:
    x, y = load_diabetes(return_X_y=True)
    model = Ridge().fit(x, y)
    path = save(to_onnx(model, x[:1].astype(np.float32)), tmp_path / "ridge.onnx")
    names = [f"f{i}" for i in range(x.shape[1])]

    adapter = load_model(path, "onnx", feature_names=names)
    predictions = adapter.predict([dict(zip(names, row, strict=True)) for row in x.tolist()])

    assert adapter.classes is None
    assert all(type(p.value) is float and p.probabilities is None for p in predictions)
    np.testing.assert_allclose([p.value for p in predictions], model.predict(x), rtol=1e-5)


def test_an_integer_input_is_fed_integers(tmp_path: Path) -> None:
    x = np.arange(40, dtype=np.int64).reshape(20, 2)
    model = Ridge().fit(x, x[:, 0] * 2.0 + x[:, 1])
    converted = convert_sklearn(model, initial_types=[("X", Int64TensorType([None, 2]))])
    adapter = load_model(save(converted, tmp_path / "m.onnx"), feature_names=["a", "b"])

    (p,) = adapter.predict([{"a": 3, "b": 4}])

    assert p.value == pytest.approx(float(model.predict([[3, 4]])[0]), rel=1e-5)


def test_session_threads_default_to_one(
    tmp_path: Path, iris: tuple[pd.DataFrame, np.ndarray[Any, Any], LogisticRegression]
) -> None:
    frame, _, model = iris
    path = save(to_onnx(model, frame.to_numpy()[:1].astype(np.float32)), tmp_path / "m.onnx")
    names = list(frame.columns)

    one = load_model(path, feature_names=names)
    three = load_model(path, feature_names=names, threads=3)

    assert isinstance(one, OnnxAdapter) and isinstance(three, OnnxAdapter)
    assert one.session.get_session_options().intra_op_num_threads == 1
    assert three.session.get_session_options().intra_op_num_threads == 3
    with pytest.raises(ModelError, match="threads"):
        load_model(path, feature_names=names, threads=0)


def test_models_threads_reaches_the_served_session(
    tmp_path: Path, iris: tuple[pd.DataFrame, np.ndarray[Any, Any], LogisticRegression]
) -> None:
    frame, target, model = iris
    save(to_onnx(model, frame.to_numpy()[:1].astype(np.float32)), tmp_path / "iris.onnx")
    config = write_config(
        tmp_path, {"name": "iris", "path": "iris.onnx", "threads": 2}, frame.assign(y=target)
    )
    settings = load_settings(config)
    m = settings.models[0]
    assert m.threads == 2
    schema = infer_schema(read_columns(m.reference), target="y") if m.reference else None
    assert schema is not None
    served = load_served_model(m, schema, Metrics(process=False), settings.server)
    assert isinstance(served.adapter, OnnxAdapter)
    assert served.adapter.session.get_session_options().intra_op_num_threads == 2


def test_a_corrupt_file_is_refused_at_load_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x08\x07this is not a protobuf")

    with pytest.raises(ModelError, match=r"cannot load ONNX model .*broken\.onnx"):
        load_model(path, feature_names=["a"])


def test_inputs_that_match_no_feature_are_refused(
    tmp_path: Path, iris: tuple[pd.DataFrame, np.ndarray[Any, Any], LogisticRegression]
) -> None:
    frame, _, model = iris
    table = save(to_onnx(model, frame.to_numpy()[:1].astype(np.float32)), tmp_path / "t.onnx")
    columns = [(c, FloatTensorType([None, 1])) for c in ("a", "b")]
    x = frame.to_numpy()[:, :2]
    by_column = Pipeline(
        [
            ("prep", ColumnTransformer([("n", StandardScaler(), [0, 1])])),
            ("m", LogisticRegression()),
        ]
    ).fit(x, x[:, 0] > 5.8)
    split = save(convert_sklearn(by_column, initial_types=columns), tmp_path / "c.onnx")

    with pytest.raises(ModelError, match=r"input 'X' takes 4 features and the schema has 3"):
        load_model(table, feature_names=["a", "b", "c"])
    with pytest.raises(ModelError, match=r"input\(s\) 'b' that match no feature"):
        load_model(split, feature_names=["a", "z"])
    with pytest.raises(ModelError, match="does not record its columns"):
        load_model(table)


def test_config_validate_reports_a_model_that_does_not_match_its_schema(
    tmp_path: Path, iris: tuple[pd.DataFrame, np.ndarray[Any, Any], LogisticRegression]
) -> None:
    frame, target, model = iris
    save(to_onnx(model, frame.to_numpy()[:1].astype(np.float32)), tmp_path / "iris.onnx")
    (tmp_path / "broken.onnx").write_bytes(b"junk")
    narrow = frame.iloc[:, :3].assign(species=target)  # one feature short
    config = write_config(
        tmp_path,
        {
            "name": "iris",
            "path": "iris.onnx",
            "target": "species",
            "previous": [{"version": "0", "path": "broken.onnx"}],
        },
        narrow,
    )

    problems = check_settings(load_settings(config))

    assert len(problems) == 2, problems
    assert problems[0].startswith("models[0].path: ")
    assert "iris.onnx: input 'X' takes 4 features and the schema has 3" in problems[0]
    assert problems[1].startswith("models[0].previous[0].path: cannot load ONNX model ")
    assert "broken.onnx" in problems[1]


def test_the_flavor_comes_from_the_suffix_unless_given(tmp_path: Path) -> None:
    assert flavor_of("m.onnx") == flavor_of("M.ONNX") == "onnx"
    assert flavor_of("m.joblib") == flavor_of("m.pkl") == flavor_of("m.pickle") == "sklearn"
    assert flavor_of("m.bin") is None
    m = ModelSettings.model_validate(
        {
            "name": "m",
            "path": "m.onnx",
            "reference": "r.csv",
            "previous": [
                {"version": "0", "path": "old.joblib"},
                {"version": "00", "path": "older.bin"},
            ],
        }
    )
    assert m.flavor == "onnx"
    assert [v.flavor for v in m.versions()] == ["onnx", "sklearn", "onnx"]
    given = ModelSettings.model_validate(
        {"name": "m", "path": "m.onnx", "reference": "r.csv", "flavor": "sklearn"}
    )
    assert given.flavor == "sklearn"


def test_the_config_knows_every_flavor_there_is_a_loader_for() -> None:
    assert set(get_args(ModelFlavor)) == set(FLAVORS)
