"""The torchscript flavor: small PyTorch networks trained here on scikit-learn's bundled
datasets, scripted, saved with ``torch.jit.save`` and served; predictions are compared with
the module's own output computed by torch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from inferwatch.config import check_settings, load_settings
from inferwatch.errors import ModelError
from inferwatch.models import flavor_of, load_model
from inferwatch.models._torch import TorchScriptAdapter
from tests.cli.conftest import ServerProcess
from tests.models.conftest import serve_end_to_end, write_config
from tests.server.conftest import sample

pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.* is deprecated:DeprecationWarning"  # torch.jit is what writes a .pt
)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: float(v) for k, v in row.items()} for row in frame.to_dict("records")]


def train(net: Any, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any], loss: Any) -> Any:
    """Full-batch Adam, a few hundred steps: enough for a real (if small) model."""
    torch.manual_seed(0)
    xt = torch.tensor(x, dtype=torch.float32)
    yt = torch.tensor(y)
    optimiser = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(200):
        optimiser.zero_grad()
        loss(net(xt), yt).backward()
        optimiser.step()
    return net.eval()


def save(net: Any, path: Path, classes: list[str] | None = None) -> Path:
    extra = {} if classes is None else {"classes": json.dumps(classes)}
    torch.jit.save(torch.jit.script(net), str(path), _extra_files=extra)
    return path


def output(net: Any, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    with torch.no_grad():
        result: np.ndarray[Any, Any] = net(torch.tensor(frame.to_numpy(np.float32))).numpy()
    return result


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, np.ndarray[Any, Any], Any]:
    """An MLP answering logits (no softmax at the end), standardised inside the module."""
    frame, target = load_iris(return_X_y=True, as_frame=True)
    x = frame.to_numpy()
    mean = torch.tensor(x.mean(axis=0), dtype=torch.float32)
    std = torch.tensor(x.std(axis=0), dtype=torch.float32)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", mean)
            self.register_buffer("std", std)
            self.layers = torch.nn.Sequential(
                torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            scaled = (x - self.mean) / self.std  # type: ignore[operator]
            result: torch.Tensor = self.layers(scaled)
            return result

    net = train(Net(), x, target.to_numpy(), torch.nn.CrossEntropyLoss())
    return frame, target.to_numpy(), net


def test_an_iris_network_serves_end_to_end(
    tmp_path: Path, iris: tuple[pd.DataFrame, np.ndarray[Any, Any], Any]
) -> None:
    frame, target, net = iris
    names = ["setosa", "versicolor", "virginica"]
    save(net, tmp_path / "iris.pt", classes=names)
    reference = frame.assign(species=np.array(names)[target])
    # no flavor in the config: the .pt suffix names it; the classes come from the archive
    config = write_config(
        tmp_path, {"name": "iris", "path": "iris.pt", "target": "species"}, reference
    )
    traffic = frame.sample(120, random_state=0)

    result = serve_end_to_end(config, records(traffic))

    assert result.model_info["flavor"] == "torchscript"
    logits = output(net, traffic)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)  # logits: softmax
    got = np.array([[p["probabilities"][c] for c in names] for p in result.predictions])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    values = [p["prediction"] for p in result.predictions]
    assert values == [names[j] for j in logits.argmax(axis=1)]
    assert np.mean(np.array(values) == np.array(names)[target[traffic.index]]) > 0.9
    counted = {
        c: sample(result.metrics, "inferwatch_predictions_total", model="iris", predicted_class=c)
        for c in names
    }
    assert counted == {c: values.count(c) for c in names}
    assert sample(result.metrics, "inferwatch_requests_total", model="iris") >= 3
    assert result.stored == len(traffic)
    assert sample(result.metrics, "inferwatch_drift_window_rows", model="iris") == len(traffic)
    assert 'inferwatch_drift_score{feature="petal length (cm)"' in result.metrics


def test_a_softmax_output_is_taken_as_probabilities(
    tmp_path: Path, iris: tuple[pd.DataFrame, np.ndarray[Any, Any], Any]
) -> None:
    frame, _, net = iris
    with_softmax = torch.nn.Sequential(net, torch.nn.Softmax(dim=1)).eval()
    path = save(with_softmax, tmp_path / "p.pt")

    adapter = load_model(path, feature_names=list(frame.columns))
    predictions = adapter.predict(records(frame))

    # no classes anywhere: 0, 1, 2, and the value is the integer index like sklearn's
    assert adapter.classes == ("0", "1", "2")
    expected = output(with_softmax, frame)
    got = np.array([[p.probabilities[str(c)] for c in range(3)] for p in predictions])  # type: ignore[index]
    np.testing.assert_allclose(got, expected, atol=1e-6)  # not softmaxed twice
    assert [p.value for p in predictions] == expected.argmax(axis=1).tolist()
    assert all(p.score == max(p.probabilities.values()) for p in predictions)  # type: ignore[union-attr]


def test_a_single_sigmoid_output_with_two_classes_is_a_binary_classifier(tmp_path: Path) -> None:
    frame, target = load_breast_cancer(return_X_y=True, as_frame=True)
    x = (frame - frame.mean()) / frame.std()
    net = train(
        torch.nn.Sequential(torch.nn.Linear(30, 1), torch.nn.Sigmoid()),
        x.to_numpy(),
        target.to_numpy().astype(np.float32)[:, None],
        torch.nn.BCELoss(),
    )
    path = save(net, tmp_path / "cancer.pt")
    classes = ["malignant", "benign"]  # sklearn's target 1 is benign: the second class

    adapter = load_model(path, feature_names=list(x.columns), classes=classes)
    predictions = adapter.predict(records(x))

    p = output(net, x)[:, 0]
    got = np.array([q.probabilities["benign"] for q in predictions])  # type: ignore[index]
    np.testing.assert_allclose(got, p, atol=1e-6)
    assert [q.value for q in predictions] == np.where(p > 0.5, "benign", "malignant").tolist()
    assert np.mean(np.array([q.value == "benign" for q in predictions]) == target) > 0.95
    # without two classes a single number is a regression value
    plain = load_model(path, feature_names=list(x.columns))
    assert plain.classes is None
    assert [q.value for q in plain.predict(records(x.head(3)))] == pytest.approx(p[:3].tolist())


def test_a_regression_network_answers_floats(tmp_path: Path) -> None:
    frame, target = load_diabetes(return_X_y=True, as_frame=True)
    net = train(
        torch.nn.Linear(10, 1),
        frame.to_numpy() * 10,
        target.to_numpy().astype(np.float32)[:, None],
        torch.nn.MSELoss(),
    )
    path = save(torch.nn.Sequential(net), tmp_path / "diabetes.pt")
    rows = [{k: v * 10 for k, v in row.items()} for row in records(frame)]

    adapter = load_model(path, "torchscript", feature_names=list(frame.columns))
    predictions = adapter.predict(rows)

    assert adapter.classes is None
    assert all(type(p.value) is float and p.probabilities is None for p in predictions)
    expected = output(net, frame * 10)[:, 0]
    np.testing.assert_allclose([p.value for p in predictions], expected, rtol=1e-6)


def test_threads_set_torchs_pool_and_the_largest_ask_wins(
    tmp_path: Path, iris: tuple[pd.DataFrame, np.ndarray[Any, Any], Any]
) -> None:
    frame, _, net = iris
    path = save(net, tmp_path / "m.pt")
    names = list(frame.columns)

    load_model(path, feature_names=names, threads=2)
    assert torch.get_num_threads() == 2
    load_model(path, feature_names=names, threads=1)  # a later, smaller ask
    assert torch.get_num_threads() == 2


def test_a_corrupt_file_or_a_torch_save_pickle_is_refused_naming_it(
    tmp_path: Path, iris: tuple[pd.DataFrame, np.ndarray[Any, Any], Any]
) -> None:
    frame, _, net = iris
    (tmp_path / "broken.pt").write_bytes(b"not a zip archive at all")
    torch.save(net.state_dict(), tmp_path / "weights.pt")

    with pytest.raises(ModelError, match=r"cannot load TorchScript model .*broken\.pt"):
        load_model(tmp_path / "broken.pt", feature_names=list(frame.columns))
    with pytest.raises(ModelError, match=r"weights\.pt.*written by torch\.jit\.save"):
        load_model(tmp_path / "weights.pt", feature_names=list(frame.columns))


def test_a_schema_of_the_wrong_width_is_refused_at_load(
    tmp_path: Path, iris: tuple[pd.DataFrame, np.ndarray[Any, Any], Any]
) -> None:
    frame, target, net = iris
    save(net, tmp_path / "iris.pt")
    narrow = frame.iloc[:, :3].assign(species=target)  # one feature short
    config = write_config(
        tmp_path, {"name": "iris", "path": "iris.pt", "target": "species"}, narrow
    )

    with pytest.raises(ModelError, match=r"iris\.pt cannot take one float32 table .* 3 features"):
        load_model(tmp_path / "iris.pt", feature_names=list(frame.columns[:3]))
    (problem,) = check_settings(load_settings(config))
    assert problem.startswith("models[0].path: TorchScript model ")
    assert "3 features" in problem


def test_wrong_classes_and_text_features_are_clear_errors(
    tmp_path: Path, iris: tuple[pd.DataFrame, np.ndarray[Any, Any], Any]
) -> None:
    frame, _, net = iris
    path = save(net, tmp_path / "iris.pt")
    names = list(frame.columns)

    with pytest.raises(ModelError, match=r"3 scores a row for 2 classes"):
        load_model(path, feature_names=names, classes=["a", "b"])
    adapter = load_model(path, feature_names=names)
    row = {**records(frame.head(1))[0], "petal width (cm)": "wide"}
    with pytest.raises(ModelError, match=r"feature 'petal width \(cm\)' has the value 'wide'"):
        adapter.predict([row])
    with pytest.raises(ModelError, match="a sklearn model names its own classes"):
        load_model(tmp_path / "m.joblib", "sklearn", feature_names=names, classes=["a"])


def test_the_config_passes_classes_and_the_suffix_names_the_flavor(
    tmp_path: Path, iris: tuple[pd.DataFrame, np.ndarray[Any, Any], Any]
) -> None:
    frame, target, net = iris
    save(net, tmp_path / "iris.pt", classes=["a", "b", "c"])
    entry = {
        "name": "iris",
        "path": "iris.pt",
        "target": "species",
        "classes": ["setosa", "versicolor", "virginica"],
    }
    config = write_config(tmp_path, entry, frame.assign(species=target))
    traffic = frame.sample(40, random_state=1)

    result = serve_end_to_end(config, records(traffic))

    assert flavor_of("m.pt") == flavor_of("M.PT") == "torchscript"
    assert load_settings(config).models[0].flavor == "torchscript"
    # the config's names win over the archive's
    expected = np.array(entry["classes"])[output(net, traffic).argmax(axis=1)].tolist()
    assert [p["prediction"] for p in result.predictions] == expected
    assert result.stored == 40


def test_serve_flavor_torchscript_answers_over_http(
    tmp_path: Path, iris: tuple[pd.DataFrame, np.ndarray[Any, Any], Any]
) -> None:
    import httpx

    frame, target, net = iris
    # a file whose suffix names no flavor: --flavor says what it is
    save(net, tmp_path / "iris.model")
    frame.assign(species=target).to_csv(tmp_path / "reference.csv", index=False)
    server = ServerProcess(
        [
            "serve", "--model", "iris.model", "--flavor", "torchscript",
            "--reference", "reference.csv", "--target", "species", "--name", "iris",
        ],
        cwd=tmp_path,
    )  # fmt: skip
    try:
        server.wait_ready()
        rows = records(frame.head(5))
        resp = httpx.post(f"{server.base}/v1/models/iris/predict", json={"instances": rows})
        info = httpx.get(f"{server.base}/v1/models/iris").json()
    finally:
        rc = server.stop()
    assert rc == 0, server.output()
    assert resp.status_code == 200, resp.text
    assert info["flavor"] == "torchscript"
    expected = output(net, frame.head(5)).argmax(axis=1).tolist()
    assert [p["prediction"] for p in resp.json()["predictions"]] == expected


def test_the_adapter_is_exported_for_type_checks(
    tmp_path: Path, iris: tuple[pd.DataFrame, np.ndarray[Any, Any], Any]
) -> None:
    frame, _, net = iris
    adapter = load_model(save(net, tmp_path / "m.pt"), feature_names=list(frame.columns))
    assert isinstance(adapter, TorchScriptAdapter)
    assert adapter.flavor == "torchscript"


def test_ingest_checks_labels_against_the_configured_class_names(
    tmp_path: Path, iris: tuple[pd.DataFrame, np.ndarray[Any, Any], Any]
) -> None:
    from inferwatch.cli._ingest import _rules

    frame, target, net = iris
    save(net, tmp_path / "iris.pt")
    names = ["setosa", "versicolor", "virginica"]
    entry = {"name": "iris", "path": "iris.pt", "target": "species", "classes": names}
    config = write_config(tmp_path, entry, frame.assign(species=np.array(names)[target]))

    rules = _rules(load_settings(config).models[0])

    assert rules.classes == tuple(names)  # the config's, not the archive's 0, 1, 2
