"""The keras flavor: small Keras 3 models (torch backend) trained here on scikit-learn's
bundled datasets, saved as ``.keras`` and legacy ``.h5`` and served; predictions are
compared with ``model.predict``'s."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from inferwatch.config import check_settings, load_settings
from inferwatch.errors import ModelError
from inferwatch.models import KerasAdapter, flavor_of, load_model
from tests.models.conftest import serve_end_to_end, write_config
from tests.server.conftest import sample

os.environ.setdefault("KERAS_BACKEND", "torch")  # as the adapter sets it, before keras loads
keras = pytest.importorskip("keras")

pytestmark = pytest.mark.filterwarnings(
    # Keras 3 saving its optimizer's variables under numpy 2 (a Keras matter, not ours)
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: float(v) for k, v in row.items()} for row in frame.to_dict("records")]


def fit(layers: list[Any], x: pd.DataFrame, y: np.ndarray[Any, Any], loss: str) -> Any:
    """A small model on standardised inputs (a Normalization layer adapted to ``x``)."""
    keras.utils.set_random_seed(0)
    norm = keras.layers.Normalization()
    norm.adapt(x.to_numpy(np.float32))
    model = keras.Sequential([keras.Input((x.shape[1],)), norm, *layers])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=loss)
    model.fit(x.to_numpy(np.float32), y, epochs=20, batch_size=64, verbose=0)
    return model


def expected(model: Any, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    result: np.ndarray[Any, Any] = model.predict(frame.to_numpy(np.float32), verbose=0)
    return result


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, np.ndarray[Any, Any], Any]:
    frame, target = load_iris(return_X_y=True, as_frame=True)
    model = fit(
        [keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3, activation="softmax")],
        frame,
        target.to_numpy(),
        "sparse_categorical_crossentropy",
    )
    return frame, target.to_numpy(), model


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_an_iris_model_serves_end_to_end(
    tmp_path: Path, iris: tuple[pd.DataFrame, np.ndarray[Any, Any], Any], suffix: str
) -> None:
    frame, target, model = iris
    model.save(tmp_path / f"iris{suffix}")
    names = ["setosa", "versicolor", "virginica"]
    # no flavor in the config: the suffix names it; class names from the config
    entry = {"name": "iris", "path": f"iris{suffix}", "target": "species", "classes": names}
    config = write_config(tmp_path, entry, frame.assign(species=np.array(names)[target]))
    traffic = frame.sample(120, random_state=0)

    result = serve_end_to_end(config, records(traffic))

    assert result.model_info["flavor"] == "keras"
    proba = expected(model, traffic)
    got = np.array([[p["probabilities"][c] for c in names] for p in result.predictions])
    np.testing.assert_allclose(got, proba, atol=1e-6)  # softmax output: taken as it is
    values = [p["prediction"] for p in result.predictions]
    assert values == [names[j] for j in proba.argmax(axis=1)]
    assert np.mean(np.array(values) == np.array(names)[target[traffic.index]]) > 0.9
    counted = {
        c: sample(result.metrics, "inferwatch_predictions_total", model="iris", predicted_class=c)
        for c in names
    }
    assert counted == {c: values.count(c) for c in names}
    assert sample(result.metrics, "inferwatch_requests_total", model="iris") >= 3
    assert result.stored == len(traffic)
    assert sample(result.metrics, "inferwatch_drift_window_rows", model="iris") == len(traffic)
    assert 'inferwatch_drift_score{feature="sepal width (cm)"' in result.metrics


def test_one_sigmoid_unit_is_a_binary_classifier_of_the_second_class(tmp_path: Path) -> None:
    frame, target = load_breast_cancer(return_X_y=True, as_frame=True)
    model = fit(
        [keras.layers.Dense(1, activation="sigmoid")],
        frame,
        target.to_numpy().astype(np.float32),
        "binary_crossentropy",
    )
    model.save(tmp_path / "cancer.keras")

    adapter = load_model(tmp_path / "cancer.keras", feature_names=list(frame.columns))
    predictions = adapter.predict(records(frame))

    p = expected(model, frame)[:, 0]
    assert adapter.classes == ("0", "1")
    proba = np.array([[q.probabilities[c] for c in ("0", "1")] for q in predictions])  # type: ignore[index]
    np.testing.assert_allclose(proba, np.stack([1 - p, p], axis=1), atol=1e-6)
    assert [q.value for q in predictions] == (p > 0.5).astype(int).tolist()
    assert np.mean(np.array([q.value for q in predictions]) == target) > 0.95


def test_a_linear_output_of_several_units_is_logits(
    tmp_path: Path, iris: tuple[pd.DataFrame, np.ndarray[Any, Any], Any]
) -> None:
    frame, target, _ = iris
    model = fit(
        [keras.layers.Dense(3)],
        frame,
        target,
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.save(tmp_path / "logits.keras")

    adapter = load_model(tmp_path / "logits.keras", feature_names=list(frame.columns))
    predictions = adapter.predict(records(frame))

    logits = expected(model, frame)
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    got = np.array([[q.probabilities[str(c)] for c in range(3)] for q in predictions])  # type: ignore[index]
    np.testing.assert_allclose(got, softmax, atol=1e-6)
    assert [q.value for q in predictions] == logits.argmax(axis=1).tolist()


def test_a_regression_model_answers_floats(tmp_path: Path) -> None:
    frame, target = load_diabetes(return_X_y=True, as_frame=True)
    model = fit([keras.layers.Dense(1)], frame, target.to_numpy().astype(np.float32), "mse")
    model.save(tmp_path / "diabetes.h5")

    adapter = load_model(tmp_path / "diabetes.h5", "keras", feature_names=list(frame.columns))
    predictions = adapter.predict(records(frame))

    assert isinstance(adapter, KerasAdapter)
    assert adapter.classes is None
    assert all(type(p.value) is float and p.probabilities is None for p in predictions)
    values = [p.value for p in predictions]
    np.testing.assert_allclose(values, expected(model, frame)[:, 0], rtol=1e-5)


def test_a_corrupt_file_and_a_wrong_width_are_refused_naming_the_model(
    tmp_path: Path, iris: tuple[pd.DataFrame, np.ndarray[Any, Any], Any]
) -> None:
    frame, target, model = iris
    model.save(tmp_path / "iris.keras")
    (tmp_path / "broken.keras").write_bytes(b"not a zip file")
    (tmp_path / "broken.h5").write_bytes(b"not hdf5 either")
    narrow = frame.iloc[:, :3].assign(species=target)  # one feature short
    config = write_config(
        tmp_path, {"name": "iris", "path": "iris.keras", "target": "species"}, narrow
    )

    for broken in ("broken.keras", "broken.h5"):
        with pytest.raises(ModelError, match=rf"cannot load Keras model .*{broken}"):
            load_model(tmp_path / broken, feature_names=list(frame.columns))
    with pytest.raises(ModelError, match=r"iris\.keras takes 4 features and the schema has 3"):
        load_model(tmp_path / "iris.keras", feature_names=list(frame.columns[:3]))
    (problem,) = check_settings(load_settings(config))
    assert problem.startswith("models[0].path: Keras model ")
    assert "takes 4 features and the schema has 3" in problem


def test_the_suffix_names_the_flavor_and_classes_must_fit(
    tmp_path: Path, iris: tuple[pd.DataFrame, np.ndarray[Any, Any], Any]
) -> None:
    frame, _, model = iris
    model.save(tmp_path / "iris.keras")

    assert flavor_of("m.keras") == flavor_of("m.h5") == flavor_of("M.H5") == "keras"
    with pytest.raises(ModelError, match=r"3 scores a row for 2 classes"):
        load_model(tmp_path / "iris.keras", feature_names=list(frame.columns), classes=["a", "b"])


def test_the_torch_backend_is_chosen_and_tensorflow_never_imported(
    tmp_path: Path, iris: tuple[pd.DataFrame, np.ndarray[Any, Any], Any]
) -> None:
    frame, _, model = iris
    model.save(tmp_path / "iris.keras")
    code = (
        "import sys; from inferwatch.models import load_model; "
        f"m = load_model({str(tmp_path / 'iris.keras')!r}, feature_names={list(frame.columns)!r}); "
        "import keras; print(keras.backend.backend(), 'tensorflow' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["torch", "False"]
