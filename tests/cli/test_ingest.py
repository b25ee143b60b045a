"""Labels as a user brings them: a served breast_cancer classifier (a real process on a SQLite
store), labels over HTTP with ``POST /feedback``, then ``inferwatch ingest labels`` on CSV,
Parquet and JSONL files against the same store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import joblib
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from inferwatch.store import SQLStore
from tests.cli.conftest import Run, ServerProcess
from tests.server.conftest import sample


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Predictions of the whole breast_cancer set by a served model, stored, with truth."""
    path = tmp_path_factory.mktemp("ingest")
    frame, y = load_breast_cancer(return_X_y=True, as_frame=True)
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    model = LogisticRegression(max_iter=5000).fit(frame, y)
    joblib.dump(model, path / "model.joblib")
    frame.assign(target=y).to_parquet(path / "reference.parquet")
    store_url = f"sqlite:///{path}/store.db"
    (path / "inferwatch.yaml").write_text(
        "models:\n"
        "  - {name: cancer, version: '1', path: model.joblib, reference: reference.parquet,"
        " target: target}\n"
        f"store: {{url: '{store_url}', flush_interval_seconds: 0.05}}\n"
    )
    server = ServerProcess(["serve", "-c", str(path / "inferwatch.yaml")], cwd=path)
    server.wait_ready()
    try:
        rows = frame.to_dict(orient="records")
        r = httpx.post(
            f"{server.base}/v1/models/cancer/predict", json={"instances": rows}, timeout=60
        )
        assert r.status_code == 200, r.text
        ids = [p["id"] for p in r.json()["predictions"]]
        preds = [p["prediction"] for p in r.json()["predictions"]]
        # the first 100 labelled over HTTP right away, with one unknown id among them
        body = {
            "labels": [
                {"prediction_id": i, "label": int(t)}
                for i, t in zip(ids[:100], y[:100], strict=True)
            ]
        }
        body["labels"].append({"prediction_id": "not-an-id", "label": 1})
        fb = httpx.post(f"{server.base}/v1/models/cancer/feedback", json=body, timeout=30)
        metrics = httpx.get(f"{server.base}/metrics", timeout=10).text
    finally:
        server.stop(timeout=60)
    return {
        "path": path,
        "ids": ids,
        "truth": [int(t) for t in y],
        "preds": preds,
        "feedback": fb,
        "metrics": metrics,
        "url": store_url,
    }


def test_feedback_over_http_is_stored_and_counted(served: dict[str, Any]) -> None:
    fb = served["feedback"]
    assert fb.status_code == 207, fb.text
    assert (fb.json()["accepted"], fb.json()["rejected"]) == (100, 1)
    assert fb.json()["errors"][0]["code"] == "unknown_prediction_id"
    text = served["metrics"]
    assert sample(text, "inferwatch_labels_total", model="cancer", outcome="accepted") == 100
    assert (
        sample(text, "inferwatch_labels_total", model="cancer", outcome="unknown_prediction_id")
        == 1
    )
    assert sample(text, "inferwatch_label_delay_seconds_count", model="cancer") == 100


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_ingest_labels_from_a_file(served: dict[str, Any], run_cli: Run, fmt: str) -> None:
    path: Path = served["path"]
    ids, truth = served["ids"], served["truth"]
    frame = pd.DataFrame({"pid": ids, "y": truth})
    file = path / f"labels.{fmt}"
    if fmt == "csv":
        frame.to_csv(file, index=False)
    elif fmt == "parquet":
        frame.to_parquet(file)
    else:
        file.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict("records")))

    done = run_cli(
        "ingest",
        "labels",
        str(file),
        "-c",
        str(path / "inferwatch.yaml"),
        "--id-column",
        "pid",
        "--label-column",
        "y",
        "--progress",
        cwd=path,
    )

    assert done.returncode == 0, done.stderr
    assert f"{len(ids)} row(s)" in done.stdout
    store = SQLStore(served["url"])
    try:
        assert store.count_labels("cancer", "1") == len(ids)  # replaced, never duplicated
        pages = list(store.labelled_columns("cancer", "1", columns=("id", "output", "label")))
    finally:
        store.close()
    got = {
        pid: (out, label)
        for p in pages
        for pid, out, label in zip(p["id"], p["output"], p["label"], strict=True)
    }
    by_id = dict(zip(ids, zip(served["preds"], truth, strict=True), strict=True))
    assert got == {pid: (out, str(t)) for pid, (out, t) in by_id.items()}


def test_rejected_rows_exit_1_with_counts(served: dict[str, Any], run_cli: Run) -> None:
    path: Path = served["path"]
    ids = served["ids"]
    rows = [
        {"pid": ids[0], "y": 1},
        {"pid": ids[1], "y": 7},  # not a class of the model
        {"pid": ids[2], "y": 0},
        {"pid": ids[2], "y": 1},  # twice in the file
        {"pid": "unknown", "y": 1},
    ]
    file = path / "bad.csv"
    pd.DataFrame(rows).to_csv(file, index=False)

    done = run_cli(
        "ingest",
        "labels",
        str(file),
        "-c",
        str(path / "inferwatch.yaml"),
        "--id-column",
        "pid",
        "--label-column",
        "y",
        cwd=path,
    )

    assert done.returncode == 1, done.stderr
    assert "replaced 1" in done.stdout
    assert "invalid_label 1" in done.stdout and "duplicate_prediction_id 2" in done.stdout
    assert "unknown_prediction_id 1" in done.stdout
    assert "row 2: invalid_label: '7' is not one of the model's classes" in done.stderr
    assert "Traceback" not in done.stderr


def test_usage_errors_exit_2(served: dict[str, Any], run_cli: Run) -> None:
    path: Path = served["path"]
    config = str(path / "inferwatch.yaml")
    file = path / "few.csv"
    pd.DataFrame({"pid": served["ids"][:2], "y": [0, 1]}).to_csv(file, index=False)

    missing = run_cli(
        "ingest",
        "labels",
        str(file),
        "-c",
        config,
        "--id-column",
        "nope",
        "--label-column",
        "y",
        cwd=path,
    )
    no_model = run_cli(
        "ingest",
        "labels",
        str(file),
        "-c",
        config,
        "--id-column",
        "pid",
        "--label-column",
        "y",
        "--model",
        "other",
        cwd=path,
    )
    no_file = run_cli("ingest", "labels", str(path / "none.csv"), "-c", config, cwd=path)

    for done in (missing, no_model, no_file):
        assert done.returncode == 2, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
    assert "nope" in missing.stderr
    assert "other" in no_model.stderr


def test_a_regressors_csv_labels_are_numbers_even_in_a_mixed_column(
    tmp_path: Path, run_cli: Run
) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    from inferwatch.monitor import Monitor

    frame = load_diabetes(as_frame=True).frame
    features = frame.drop(columns="target")
    model = Ridge().fit(features, frame["target"])
    joblib.dump(model, tmp_path / "ridge.joblib")
    frame.to_csv(tmp_path / "ref.csv", index=False)
    url = f"sqlite:///{tmp_path}/s.db"
    (tmp_path / "inferwatch.yaml").write_text(
        "models:\n  - {name: ridge, version: '1', path: ridge.joblib, reference: ref.csv,"
        f" target: target}}\nstore: {{url: '{url}'}}\n"
    )
    store = SQLStore(url)
    store.upgrade()
    rows = features.head(3).to_dict("records")
    with Monitor(store, metrics=None) as monitor:
        ids = monitor.log("ridge", "1", rows, [float(v) for v in model.predict(features.head(3))])
    # one word in the column makes the CSV reader type it all as text
    (tmp_path / "l.csv").write_text(f"pid,y\n{ids[0]},80.5\n{ids[1]},yes\n{ids[2]},1e999\n")

    done = run_cli(
        "ingest",
        "labels",
        "l.csv",
        "-c",
        "inferwatch.yaml",
        "--id-column",
        "pid",
        "--label-column",
        "y",
        cwd=tmp_path,
    )

    assert done.returncode == 1, done.stderr
    assert "accepted 1" in done.stdout and "invalid_label 2" in done.stdout
    (page,) = store.labelled_columns("ridge", "1", columns=("id", "label"))
    assert page == {"id": [ids[0]], "label": [80.5]}
    store.close()


def test_ingest_labels_through_a_running_server(served: dict[str, Any], run_cli: Run) -> None:
    """``--url``: the labels go through the server's feedback route, so its live performance
    windows count them (a direct write to the store would not reach them)."""
    from sklearn.metrics import accuracy_score

    path: Path = served["path"]
    ids, truth = served["ids"], served["truth"]
    file = path / "via_url.csv"
    pd.DataFrame({"pid": ids, "y": truth}).to_csv(file, index=False)
    server = ServerProcess(["serve", "-c", str(path / "inferwatch.yaml")], cwd=path)
    server.wait_ready()
    try:
        done = run_cli(
            "ingest", "labels", str(file), "--url", server.base, "--model", "cancer",
            "--id-column", "pid", "--label-column", "y", cwd=path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"{len(ids)} row(s)" in done.stdout
        r = httpx.post(f"{server.base}/v1/models/cancer/evaluate", timeout=60)
        state = r.json()["performance"]["1"]
        assert state["labelled"] == len(ids)
        expected = accuracy_score([str(t) for t in truth], [str(p) for p in served["preds"]])
        assert state["realised"]["accuracy"] == pytest.approx(expected, abs=1e-12)
        down = run_cli(
            "ingest", "labels", str(file), "--url", "http://127.0.0.1:9", "--model", "cancer",
            "--id-column", "pid", "--label-column", "y", cwd=path,
        )  # fmt: skip
        assert down.returncode == 2 and "could not reach" in down.stderr
    finally:
        server.stop(timeout=60)
