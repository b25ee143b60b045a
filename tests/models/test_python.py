"""The python flavor: ``module:attribute`` names an object with ``predict(X)`` (and maybe
``predict_proba(X)``), called with a DataFrame of the schema's columns in order.

Each test writes its own module into its tmp folder under a name no other test uses
(``sys.modules`` caches a module by name for the whole run).
"""

from __future__ import annotations

import itertools
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from inferwatch.cli._serve import _overrides
from inferwatch.config import check_settings, load_settings
from inferwatch.errors import ModelError
from inferwatch.models import SklearnAdapter, load_model
from tests.models.conftest import serve_end_to_end, write_config
from tests.server.conftest import sample

_numbers = itertools.count()

#: a user's wrapper around a pickled scikit-learn model; it records what it was called with
WRAPPER = """
from pathlib import Path

import joblib


class Wrapper:
    def __init__(self):
        self.model = joblib.load(Path(__file__).with_name("model.joblib"))
        self.classes_ = self.model.classes_
        self.calls = []

    def predict(self, X):
        self.calls.append((type(X).__name__, tuple(X.columns)))
        return self.model.predict(X.to_numpy())

    def predict_proba(self, X):
        self.calls.append((type(X).__name__, tuple(X.columns)))
        return self.model.predict_proba(X.to_numpy())


model = Wrapper()
"""


def write_module(folder: Path, source: str) -> str:
    """A module holding ``source`` in ``folder``, under a name used once; its name."""
    name = f"user_model_{next(_numbers)}_{folder.name}".replace("-", "_")
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return name


def test_a_wrapped_model_serves_end_to_end(tmp_path: Path) -> None:
    data = load_breast_cancer(as_frame=True)
    features = ["mean radius", "mean texture", "mean smoothness", "worst area", "worst symmetry"]
    frame = data.data[features]
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        frame.to_numpy(), data.target.to_numpy()
    )
    joblib.dump(model, tmp_path / "model.joblib")
    module = write_module(tmp_path, WRAPPER)
    entry = {"name": "cancer", "flavor": "python", "path": f"{module}:model", "target": "benign"}
    config = write_config(tmp_path, entry, frame.assign(benign=data.target))
    traffic = frame.sample(100, random_state=1)
    rows = [dict(zip(features, map(float, r), strict=True)) for r in traffic.to_numpy()]

    result = serve_end_to_end(config, rows)

    assert result.model_info["flavor"] == "python"
    values = [p["prediction"] for p in result.predictions]
    assert values == model.predict(traffic.to_numpy()).tolist()
    got = [[p["probabilities"][k] for k in ("0", "1")] for p in result.predictions]
    np.testing.assert_allclose(got, model.predict_proba(traffic.to_numpy()), rtol=1e-12)
    # imported from the config's folder; called with DataFrames of the schema's columns
    wrapper = sys.modules[module].model
    assert Path(sys.modules[module].__file__ or "").parent == tmp_path
    assert wrapper.calls and set(wrapper.calls) == {("DataFrame", tuple(features))}
    assert sample(result.metrics, "inferwatch_predictions_total", model="cancer") == len(rows)
    assert result.stored == len(rows)
    assert sample(result.metrics, "inferwatch_drift_window_rows", model="cancer") == len(rows)
    assert 'inferwatch_drift_score{feature="worst area"' in result.metrics


def test_an_object_with_predict_alone_answers_its_values(tmp_path: Path) -> None:
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    ridge = Ridge().fit(x, y)
    joblib.dump(ridge, tmp_path / "ridge.joblib")
    module = write_module(
        tmp_path,
        """
        from pathlib import Path
        import joblib

        class Model:
            def __init__(self):
                self.ridge = joblib.load(Path(__file__).with_name("ridge.joblib"))

            def predict(self, X):
                return self.ridge.predict(X[self.ridge.feature_names_in_])  # by name

        regressor = Model()
        """,
    )
    reversed_schema = list(reversed(x.columns))

    adapter = load_model(tmp_path / f"{module}:regressor", "python", feature_names=reversed_schema)
    predictions = adapter.predict(x.head(20).to_dict("records"))

    assert isinstance(adapter, SklearnAdapter)
    assert adapter.flavor == "python"
    assert adapter.classes is None
    assert all(p.probabilities is None and p.score is None for p in predictions)
    assert all(type(p.value) is float for p in predictions)
    np.testing.assert_allclose([p.value for p in predictions], ridge.predict(x.head(20)))


def test_a_nested_attribute_is_followed(tmp_path: Path) -> None:
    module = write_module(
        tmp_path,
        """
        class Constant:
            def predict(self, X):
                return [len(X.columns)] * len(X)

        class Registry:
            churn = Constant()
        """,
    )

    adapter = load_model(tmp_path / f"{module}:Registry.churn", "python", feature_names=["a", "b"])

    assert [p.value for p in adapter.predict([{"a": 1, "b": 2}] * 3)] == [2, 2, 2]


@pytest.mark.parametrize(
    ("reference", "source", "message"),
    [
        ("no_such_module_xyz:model", None, r"no module named 'no_such_module_xyz' \(looked in "),
        ("{m}:model", "import no_such_dependency_xyz\n", r"importing '\w+' failed: No module"),
        ("{m}:model", "model = 1 / 0\n", r"importing '\w+' raised ZeroDivisionError"),
        ("{m}:absent", "model = None\n", r"has no attribute 'absent'"),
        ("{m}:model", "model = {'predict': 1}\n", r"a dict has no predict\(X\) method"),
        ("{m}:Model", "class Model:\n    def predict(self, X): ...\n", r"names the class Model"),
        ("{m}.py:model", "model = None\n", r"expected module:attribute"),
        ("just_a_module", None, r"expected module:attribute"),
    ],
)
def test_a_bad_reference_is_a_clear_model_error(
    tmp_path: Path, reference: str, source: str | None, message: str
) -> None:
    name = write_module(tmp_path, source) if source is not None else ""

    with pytest.raises(ModelError, match=message):
        load_model(tmp_path / reference.format(m=name), "python", feature_names=["a"])


def test_a_missing_folder_and_pinned_hashes_are_refused_before_importing(tmp_path: Path) -> None:
    name = write_module(
        tmp_path, "import pathlib\npathlib.Path(__file__).with_suffix('.ran').touch()\n"
    )

    with pytest.raises(ModelError, match=r"folder .*nowhere does not exist"):
        load_model(tmp_path / "nowhere" / f"{name}:model", "python", feature_names=["a"])
    with pytest.raises(ModelError, match="trusted_model_hashes pins model files"):
        load_model(tmp_path / f"{name}:model", "python", trusted_hashes=["0" * 64])
    assert not (tmp_path / f"{name}.ran").exists()


def test_config_validate_reports_a_bad_python_model(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": np.arange(20.0), "y": np.arange(20) % 2})
    name = write_module(tmp_path, "model = object()\n")
    config = write_config(
        tmp_path, {"name": "m", "flavor": "python", "path": f"{name}:model", "target": "y"}, frame
    )

    problems = check_settings(load_settings(config))

    assert problems == [
        f"models[0].path: python model {name}:model: a object has no predict(X) method"
    ]


def test_serve_flag_names_a_python_model_after_its_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    out = _overrides(
        Path("pkg.churn:model"),
        Path("ref.csv"),
        None,
        "y",
        None,
        None,
        None,
        None,
        None,
        flavor="python",
    )

    (entry,) = out["models"]
    assert entry["name"] == "churn"
    assert entry["flavor"] == "python"
    assert entry["path"] == str(tmp_path / "pkg.churn:model")  # imported from the cwd
    onnx = _overrides(Path("m.onnx"), Path("ref.csv"), None, None, None, None, None, None, None)
    assert onnx["models"][0]["name"] == "m" and "flavor" not in onnx["models"][0]
