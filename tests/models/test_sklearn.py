"""SklearnAdapter and load_model on tiny real scikit-learn models."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression, RidgeClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from inferwatch.errors import ModelError
from inferwatch.models import FLAVORS, ModelPrediction, SklearnAdapter, load_model
from inferwatch.ports import ModelAdapter

FEATURES = ("age", "income", "plan")


@pytest.fixture
def frame(rng: np.random.Generator) -> pd.DataFrame:
    n = 120
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50.0, 10.0, n),
            "plan": rng.choice(["basic", "plus", "pro"], n),
        }
    )


def pipeline(model: Any) -> Pipeline:
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "income"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )
    return Pipeline([("prep", prep), ("model", model)])


def rows_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {"age": int(r.age), "income": float(r.income), "plan": str(r.plan)}
        for r in frame.itertuples(index=False)
    ]


def assert_plain(value: Any) -> None:
    assert not isinstance(value, np.generic | np.ndarray), f"numpy value {value!r}"
    assert type(value) in (int, float, str, bool), type(value)


@pytest.mark.parametrize(
    "labels",
    [np.array(["no", "yes"]), np.array([0, 1]), np.array([False, True]), np.array([1.0, 2.0])],
    ids=["str", "int", "bool", "float"],
)
def test_classifier_with_column_transformer(
    frame: pd.DataFrame, rng: np.random.Generator, labels: np.ndarray[Any, Any]
) -> None:
    y = labels[(frame["income"] + rng.normal(0, 5, len(frame)) > 50).to_numpy().astype(int)]
    model = pipeline(LogisticRegression()).fit(frame, y)
    # the adapter takes instances with keys in any order and builds the columns itself
    adapter = SklearnAdapter(model, ["plan", "income", "age"])
    rows = rows_of(frame.iloc[:20])

    preds = adapter.predict(rows)

    assert isinstance(adapter, ModelAdapter)
    assert adapter.classes == tuple(str(c) for c in labels.tolist())
    expected = model.predict(frame.iloc[:20]).tolist()
    proba = model.predict_proba(frame.iloc[:20])
    assert [p.value for p in preds] == expected
    for p, row in zip(preds, proba, strict=True):
        assert_plain(p.value)
        assert p.probabilities is not None
        assert list(p.probabilities) == list(adapter.classes)
        assert math.isclose(sum(p.probabilities.values()), 1.0)
        assert list(p.probabilities.values()) == pytest.approx(row.tolist())
        assert p.score == pytest.approx(row.max())
        assert all(type(v) is float for v in p.probabilities.values())
        assert type(p.score) is float


def test_regressor_returns_floats(frame: pd.DataFrame) -> None:
    y = frame["income"] * 2 + frame["age"]
    model = pipeline(LinearRegression()).fit(frame, y)
    adapter = SklearnAdapter(model, FEATURES)

    preds = adapter.predict(rows_of(frame.iloc[:10]))

    assert adapter.classes is None
    assert [p.value for p in preds] == pytest.approx(model.predict(frame.iloc[:10]).tolist())
    assert all(type(p.value) is float and p.score is None for p in preds)
    assert all(p.probabilities is None for p in preds)


def test_classifier_without_predict_proba_uses_predict(
    frame: pd.DataFrame, rng: np.random.Generator
) -> None:
    y = (frame["age"] > 45).astype(int)
    model = pipeline(RidgeClassifier()).fit(frame, y)
    adapter = SklearnAdapter(model, FEATURES)

    preds = adapter.predict(rows_of(frame.iloc[:10]))

    assert adapter.classes == ("0", "1")
    assert [p.value for p in preds] == model.predict(frame.iloc[:10]).tolist()
    assert all(type(p.value) is int and p.score is None for p in preds)


def test_model_fitted_on_an_array_gets_columns_in_schema_order(
    frame: pd.DataFrame,
) -> None:
    x = frame[["age", "income"]].to_numpy()
    model = LogisticRegression().fit(x, (frame["income"] > 50).astype(int))
    adapter = SklearnAdapter(model, ["age", "income"])

    preds = adapter.predict([{"income": 80.0, "age": 30}, {"age": 30, "income": 20.0}])

    assert [p.value for p in preds] == model.predict([[30, 80.0], [30, 20.0]]).tolist()


class DuckModel:
    """Not a scikit-learn estimator: only ``predict``, returning numpy values."""

    def predict(self, x: list[list[Any]]) -> np.ndarray[Any, Any]:
        return np.array([np.int64(len(str(row[1]))) for row in x])


def test_a_duck_typed_model_with_predict_works() -> None:
    adapter = SklearnAdapter(DuckModel(), ["a", "b"])

    preds = adapter.predict([{"a": 1, "b": "four"}, {"b": "xy", "a": 2}])

    assert adapter.classes is None
    assert [p.value for p in preds] == [4, 2]
    assert all(type(p.value) is int for p in preds)


def test_schema_missing_a_fitted_feature_is_refused(frame: pd.DataFrame) -> None:
    model = pipeline(LinearRegression()).fit(frame, frame["age"])
    with pytest.raises(ModelError, match="'plan'"):
        SklearnAdapter(model, ["age", "income"])


def test_an_object_without_predict_is_refused() -> None:
    with pytest.raises(ModelError, match="no predict"):
        SklearnAdapter(object(), ["x"])


def test_model_prediction_is_frozen() -> None:
    p = ModelPrediction("yes", {"yes": 0.75, "no": 0.25}, 0.75)
    with pytest.raises(AttributeError):
        p.value = "no"  # type: ignore[misc]


# -- load_model -----------------------------------------------------------------------


@pytest.fixture
def fitted(frame: pd.DataFrame) -> Pipeline:
    return pipeline(LogisticRegression()).fit(frame, (frame["age"] > 45).astype(int))


@pytest.mark.parametrize("suffix", [".joblib", ".pkl", ".pickle"])
def test_load_model_round_trip(
    tmp_path: Path, fitted: Pipeline, frame: pd.DataFrame, suffix: str
) -> None:
    path = tmp_path / f"model{suffix}"
    joblib.dump(fitted, path)

    adapter = load_model(path, "sklearn", feature_names=FEATURES)

    assert adapter.flavor == "sklearn"
    assert [p.value for p in adapter.predict(rows_of(frame.iloc[:5]))] == fitted.predict(
        frame.iloc[:5]
    ).tolist()


def test_load_model_defaults_feature_names_to_what_the_model_records(
    tmp_path: Path, fitted: Pipeline
) -> None:
    path = tmp_path / "m.joblib"
    joblib.dump(fitted, path)
    adapter = load_model(path)
    assert isinstance(adapter, SklearnAdapter)
    assert adapter.feature_names == FEATURES


def test_load_model_errors(tmp_path: Path, frame: pd.DataFrame) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "missing.joblib", feature_names=FEATURES)

    corrupt = tmp_path / "corrupt.pkl"
    corrupt.write_bytes(b"not a pickle")
    with pytest.raises(ModelError, match="cannot load model"):
        load_model(corrupt, feature_names=FEATURES)

    odd = tmp_path / "model.bin"  # a suffix that names no flavor: read as sklearn's
    odd.write_bytes(b"x")
    with pytest.raises(ModelError, match=r"\.joblib"):
        load_model(odd, feature_names=FEATURES)
    with pytest.raises(ModelError, match=r"\.joblib"):  # an explicit flavor wins over a suffix
        load_model(odd.rename(tmp_path / "model.onnx"), "sklearn", feature_names=FEATURES)

    unfitted = tmp_path / "unfitted.joblib"
    joblib.dump(LogisticRegression(), unfitted)
    with pytest.raises(ModelError, match="not been fitted"):
        load_model(unfitted, feature_names=FEATURES)

    not_a_model = tmp_path / "dict.pkl"
    not_a_model.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ModelError, match="no predict"):
        load_model(not_a_model, feature_names=FEATURES)

    array_model = tmp_path / "array.joblib"
    joblib.dump(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), array_model)
    with pytest.raises(ModelError, match="feature_names"):
        load_model(array_model)


def test_unknown_flavor_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=f"known: {', '.join(sorted(FLAVORS))}$"):
        load_model(tmp_path / "m.onnx", "onnx-ish")
    assert {"onnx", "python", "sklearn", "torchscript"} <= set(FLAVORS)


def test_importing_the_facade_does_not_import_sklearn() -> None:
    code = "import sys, inferwatch.models; print('sklearn' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
