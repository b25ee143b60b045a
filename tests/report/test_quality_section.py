"""The report's model-quality section, run as a user runs it: real files, the real CLI.

load_breast_cancer split in two with a fitted LogisticRegression's predictions and
probabilities as columns; the realised metrics in ``--json`` must equal scikit-learn's on
each half, and the HTML must show them beside the confusion matrix and the reliability
diagram.  Iris (three score columns) and diabetes (regression) cover the other shapes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from inferwatch.report import render_html


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERWATCH_")}
    return subprocess.run(
        [sys.executable, "-m", "inferwatch", *args],
        capture_output=True, text=True, timeout=180, cwd=cwd, env=env,
    )  # fmt: skip


def _split(frame: pd.DataFrame, tmp: Path, name: str) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(frame))
    half = len(frame) // 2
    ref, cur = tmp / f"{name}_ref.csv", tmp / f"{name}_cur.csv"
    frame.iloc[idx[:half]].to_csv(ref, index=False)
    frame.iloc[idx[half:]].to_csv(cur, index=False)
    return ref, cur


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    data = load_breast_cancer(as_frame=True)
    x, y = data.data, data.target
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=1000))
    model.fit(x.iloc[::3], y.iloc[::3])
    frame = x.copy()
    frame["target"] = y
    frame["pred"] = model.predict(x)
    frame["proba"] = model.predict_proba(x)[:, 1]
    return _split(frame, tmp_path_factory.mktemp("cancer"), "cancer")


def _check_json(ref: Path, cur: Path, *extra: str) -> dict[str, Any]:
    res = _cli("check", "-r", str(ref), "--current", str(cur), "--json", *extra, cwd=ref.parent)
    assert res.returncode in (0, 1), res.stderr
    out: dict[str, Any] = json.loads(res.stdout)["performance"]
    return out


def test_realised_metrics_equal_sklearn_on_each_half(cancer: tuple[Path, Path]) -> None:
    ref, cur = cancer
    perf = _check_json(ref, cur, "--target", "target", "--prediction", "pred", "--score", "proba")
    assert perf["task"] == "classification" and perf["classes"] == ["0", "1"]
    for side, path in (("reference", ref), ("current", cur)):
        frame = pd.read_csv(path)
        y, yp, p = frame["target"], frame["pred"], frame["proba"]
        got = perf[side]
        m = got["metrics"]
        assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, yp), abs=1e-9)
        assert m["f1"] == pytest.approx(skm.f1_score(y, yp), abs=1e-9)
        assert m["log_loss"] == pytest.approx(skm.log_loss(y, p), abs=1e-9)
        assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p), abs=1e-9)
        assert abs(m["roc_auc"] - skm.roc_auc_score(y, p)) <= got["roc_auc_bound"] + 1e-12
        assert got["confusion_matrix"] == skm.confusion_matrix(y, yp).tolist()
        assert sum(got["reliability"]["count"]) == len(frame) == got["rows"]
        assert m["label_coverage"] == 1.0


def test_html_shows_the_section_from_aggregates(cancer: tuple[Path, Path]) -> None:
    ref, cur = cancer
    out = ref.parent / "report.html"
    res = _cli(
        "report", "-r", str(ref), "--current", str(cur), "--target", "target",
        "--prediction", "pred", "--score", "proba", "-o", str(out), cwd=ref.parent,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    page = out.read_text()
    section = page[page.index('<section id="model-quality">') :]
    section = section[: section.index("</section>")]
    assert 'href="#model-quality"' in page
    assert "Reliability diagram" in section and section.count("<circle") >= 4
    frame = pd.read_csv(ref)
    matrix = skm.confusion_matrix(frame["target"], frame["pred"])
    assert f">{matrix[1, 1]:,}</td>" in section
    acc = skm.accuracy_score(frame["target"], frame["pred"])
    assert f">{acc:.4g}</td>" in section
    # aggregates only: no row's probability appears in the page
    assert not any(f"{v:.6f}"[:8] in section for v in frame["proba"] if 0.01 < v < 0.99)


def test_current_without_labels_has_predictions_only(cancer: tuple[Path, Path]) -> None:
    ref, cur = cancer
    unlabelled = cur.parent / "cur_unlabelled.csv"
    pd.read_csv(cur).drop(columns=["target"]).to_csv(unlabelled, index=False)
    perf = _check_json(
        ref, unlabelled, "--target", "target", "--prediction", "pred", "--score", "proba"
    )
    current = perf["current"]
    assert current["has_target"] is False and current["labelled"] == 0
    assert current["metrics"]["accuracy"] is None and current["metrics"]["label_coverage"] == 0
    assert sum(current["reliability"]["count"]) == 0
    assert perf["reference"]["metrics"]["accuracy"] is not None
    html = render_html({"performance": perf})
    assert "The current file has no labels" in html


def test_multiclass_with_one_score_column_per_class(tmp_path: Path) -> None:
    data = load_iris(as_frame=True)
    x, y = data.data, data.target
    model = LogisticRegression(max_iter=1000).fit(x.iloc[::2], y.iloc[::2])
    frame = x.copy()
    frame["species"] = y
    frame["pred"] = model.predict(x)
    proba = model.predict_proba(x)
    for k in range(3):
        frame[f"p{k}"] = proba[:, k]
    ref, cur = _split(frame, tmp_path, "iris")
    scores = ["--score", "p0", "--score", "p1", "--score", "p2"]
    perf = _check_json(ref, cur, "--target", "species", "--prediction", "pred", *scores)
    cur_frame = pd.read_csv(cur)
    m = perf["current"]["metrics"]
    p = cur_frame[["p0", "p1", "p2"]].to_numpy()
    assert m["f1"] == pytest.approx(
        skm.f1_score(cur_frame["species"], cur_frame["pred"], average="macro"), abs=1e-9
    )
    assert m["log_loss"] == pytest.approx(skm.log_loss(cur_frame["species"], p), abs=1e-9)
    assert perf["positive"] is None and len(perf["current"]["confusion_matrix"]) == 3
    bad = _cli(
        "check", "-r", str(ref), "--current", str(cur), "--target", "species",
        "--prediction", "pred", "--score", "p0", "--score", "p1", cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 2 and "--score: 2 column(s) for 3 classes" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_regression_errors(tmp_path: Path) -> None:
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    frame = x.copy()
    frame["progression"] = y
    frame["pred"] = Ridge(alpha=0.5).fit(x.iloc[::2], y.iloc[::2]).predict(x)
    ref, cur = _split(frame, tmp_path, "diabetes")
    perf = _check_json(ref, cur, "--target", "progression", "--prediction", "pred")
    assert perf["task"] == "regression"
    cur_frame = pd.read_csv(cur)
    m = perf["current"]["metrics"]
    yt, yp = cur_frame["progression"], cur_frame["pred"]
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(yt, yp), abs=1e-9)
    assert m["rmse"] == pytest.approx(skm.root_mean_squared_error(yt, yp), abs=1e-9)
    assert m["r2"] == pytest.approx(skm.r2_score(yt, yp), abs=1e-9)
    html = render_html({"performance": perf})
    assert "MAE" in html and "Reliability" not in html


def test_score_mistakes_are_one_line_errors(cancer: tuple[Path, Path]) -> None:
    ref, cur = cancer
    for extra, message in (
        (["--score", "proba"], "--score needs both --target and --prediction"),
        (["--target", "target", "--prediction", "pred", "--score", "nope"], "no column 'nope'"),
    ):
        res = _cli("check", "-r", str(ref), "--current", str(cur), *extra, cwd=ref.parent)
        assert res.returncode == 2 and message in res.stderr, res.stderr
        assert "Traceback" not in res.stderr


def test_html_tolerates_a_malformed_block() -> None:
    assert 'id="model-quality"' not in render_html({})
    odd = {
        "task": "classification",
        "classes": ["a", None],
        "reference": {"metrics": None},
        "current": {"confusion_matrix": [["x", 1]], "reliability": {"count": "many"}},
    }
    assert 'id="model-quality"' in render_html({"performance": odd})


def test_rows_without_a_label_count_as_predictions_only(cancer: tuple[Path, Path]) -> None:
    ref, cur = cancer
    frame = pd.read_csv(cur)
    frame["target"] = frame["target"].astype("Int64")
    frame.loc[frame.index[::2], "target"] = pd.NA
    partial = cur.parent / "cur_partial.csv"
    frame.to_csv(partial, index=False)
    perf = _check_json(ref, partial, "--target", "target", "--prediction", "pred")
    current = perf["current"]
    labelled = frame.dropna(subset=["target"])
    assert current["rows"] == len(frame) and current["labelled"] == len(labelled)
    assert current["metrics"]["label_coverage"] == pytest.approx(len(labelled) / len(frame))
    assert current["metrics"]["accuracy"] == pytest.approx(
        skm.accuracy_score(labelled["target"].astype(int), labelled["pred"]), abs=1e-12
    )
    assert "reliability" not in current  # no --score: no score metrics


def test_check_prints_one_line_of_model_quality(cancer: tuple[Path, Path]) -> None:
    ref, cur = cancer
    res = _cli(
        "check", "-r", str(ref), "--current", str(cur), "--target", "target",
        "--prediction", "pred", cwd=ref.parent,
    )  # fmt: skip
    assert res.returncode in (0, 1), res.stderr
    frame = pd.read_csv(cur)
    acc = skm.accuracy_score(frame["target"], frame["pred"])
    line = next(x for x in res.stderr.splitlines() if x.startswith("model quality"))
    assert f"-> {acc:.4g}" in line and "roc_auc" in line
