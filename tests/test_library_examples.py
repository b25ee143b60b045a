"""The README's library examples (FastAPI, Flask, a batch script) run as written.

Each fenced block that starts with ``# example: FILE`` is written to FILE and run: the
apps are imported and answer real HTTP requests (FastAPI through its test client, Flask
on a real server bound to port 0), then their own ``/metrics`` must show the predicted
classes, the latency and the live drift of that traffic; the batch script runs in its own
process and must print them.  A README edit that breaks an example fails here.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

README = Path(__file__).resolve().parents[1] / "README.md"
BATCH_ROWS = 20


def example(name: str) -> str:
    found = re.findall(
        rf"```python\n(# example: {re.escape(name)}\n.*?)```", README.read_text(), flags=re.S
    )
    assert len(found) == 1, f"README has {len(found)} blocks marked '# example: {name}'"
    return str(found[0])


def load(name: str, folder: Path) -> ModuleType:
    """Write the README's block to ``folder/name`` and import it as a module."""
    path = folder / name
    path.write_text(example(name))
    spec = importlib.util.spec_from_file_location(f"readme_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


def traffic() -> list[dict[str, Any]]:
    """The coarser-tissue half of the dataset the apps were trained on: drift in
    ``mean texture``."""
    from sklearn.datasets import load_breast_cancer

    frame, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    rough = frame[frame["mean texture"] > frame["mean texture"].median()]
    return list(rough.to_dict("records"))


def check_metrics(text: str, n_rows: int, n_batches: int) -> None:
    """Predicted classes, latency and live drift of the traffic, on one scrape."""
    mv = {"model": "tumour", "version": "1"}
    classes = [
        v
        for (name, labels), v in samples(text).items()
        if name == "inferwatch_predictions_total" and dict(labels).get("predicted_class")
    ]
    assert sum(classes) == n_rows
    assert value(text, "inferwatch_predictions_total", **mv, predicted_class="0")
    assert value(text, "inferwatch_predictions_total", **mv, predicted_class="1")
    assert value(text, "inferwatch_request_duration_seconds_count", **mv) == n_batches
    assert (value(text, "inferwatch_request_duration_seconds_sum", **mv) or 0) > 0
    assert value(text, "inferwatch_drift_window_rows", **mv) == n_rows
    assert value(text, "inferwatch_drift_detected", **mv, feature="mean texture") == 1.0
    assert value(text, "inferwatch_drift_detected", **mv, feature="prediction") is not None
    assert (
        value(text, "inferwatch_requests_rejected_total", model="tumour", reason="wrong_type") == 1
    )


def send(client: httpx.Client | Any, rows: list[dict[str, Any]]) -> int:
    batches = 0
    for lo in range(0, len(rows), BATCH_ROWS):
        resp = client.post("/predict", json=rows[lo : lo + BATCH_ROWS])
        assert resp.status_code == 200, resp.text
        body = resp.json()["predictions"]
        assert len(body) == len(rows[lo : lo + BATCH_ROWS])
        assert {p["class"] for p in body} <= {0, 1}
        batches += 1
    bad = client.post("/predict", json=[dict(rows[0], **{"mean radius": "large"})])
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert error["code"] == "wrong_type"
    assert error["details"][0]["field"] == "mean radius"
    return batches


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # the examples keep predictions.db in the working folder
    return tmp_path


def test_the_fastapi_example(workdir: Path) -> None:
    from tests.server.conftest import TestClient

    module = load("fastapi_app.py", workdir)
    rows = traffic()
    with TestClient(module.app) as client:
        batches = send(client, rows)
        module.monitor.evaluate()  # what its thread does every evaluation_interval
        text = client.get("/metrics").text
    check_metrics(text, len(rows), batches)
    assert module.monitor.evaluation is not None and not module.monitor.evaluation.running
    _stored(workdir, len(rows))


@pytest.fixture
def flask_server(workdir: Path) -> Iterator[tuple[ModuleType, str]]:
    from werkzeug.serving import make_server

    module = load("flask_app.py", workdir)
    server = make_server("127.0.0.1", 0, module.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield module, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        module.monitor.close()


def test_the_flask_example(flask_server: tuple[ModuleType, str], workdir: Path) -> None:
    module, url = flask_server
    rows = traffic()
    with httpx.Client(base_url=url, timeout=30) as client:
        batches = send(client, rows)
        module.monitor.evaluate()
        text = client.get("/metrics").text
    check_metrics(text, len(rows), batches)
    assert module.monitor.close()
    _stored(workdir, len(rows))


def test_the_batch_example(workdir: Path) -> None:
    (workdir / "batch_score.py").write_text(example("batch_score.py"))
    out = subprocess.run(
        [sys.executable, "batch_score.py"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    n_drifted = int(lines[0].split()[0])
    assert n_drifted > 0
    assert "mean texture" in lines[0]
    text = "\n".join(lines[1:]) + "\n"
    mv = {"model": "tumour", "version": "1"}
    counted = (value(text, "inferwatch_predictions_total", **mv, predicted_class="0") or 0) + (
        value(text, "inferwatch_predictions_total", **mv, predicted_class="1") or 0
    )
    assert counted == len(traffic())
    assert (value(text, "inferwatch_request_duration_seconds_sum", **mv) or 0) > 0
    assert value(text, "inferwatch_dataset_drift", **mv) == 1.0
    _stored(workdir, len(traffic()))


def _stored(folder: Path, n: int) -> None:
    from inferwatch.store import SQLStore

    store = SQLStore(f"sqlite:///{folder / 'predictions.db'}")
    try:
        assert store.count_predictions("tumour", "1") == n
        assert store.latest_evaluations("tumour", "1")  # the window's verdicts were stored
    finally:
        store.close()


# -- the one-line integrations (inferwatch.integrations), each on a real server -----------


def exercise_oneline(client: httpx.Client, module: ModuleType, rows: list[dict[str, Any]]) -> str:
    """Batches predicted as the model predicts them, a bad row refused naming the field, a
    raising model answered as a JSON 500; then the window judged and ``/metrics`` read."""
    import pandas as pd

    batches = 0
    for lo in range(0, len(rows), BATCH_ROWS):
        batch = rows[lo : lo + BATCH_ROWS]
        resp = client.post("/predict", json=batch)
        assert resp.status_code == 200, resp.text
        got = [p["prediction"] for p in resp.json()["predictions"]]
        assert got == module.model.predict(pd.DataFrame(batch)).tolist()
        batches += 1
    bad = client.post("/predict", json=[dict(rows[0], **{"mean radius": "large"})])
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert (error["code"], error["details"][0]["field"]) == ("wrong_type", "mean radius")

    def broken(x: Any) -> Any:
        raise MemoryError("the model ran out of memory")

    module.model.predict_proba = broken  # the estimator the route holds, failing
    try:
        failed = client.post("/predict", json=rows[:3])
    finally:
        del module.model.predict_proba
    assert failed.status_code == 500
    assert failed.json()["error"]["code"] == "model_error"
    assert "Traceback" not in failed.text
    module.monitor.evaluate()
    text = client.get("/metrics").text
    mv = {"model": "tumour", "version": "1"}
    assert value(text, "inferwatch_requests_total", **mv, status="200") == batches
    assert value(text, "inferwatch_requests_total", **mv, status="422") == 1
    assert value(text, "inferwatch_requests_total", **mv, status="500") == 1
    assert (
        value(text, "inferwatch_requests_rejected_total", model="tumour", reason="wrong_type") == 1
    )
    counted = sum(
        value(text, "inferwatch_predictions_total", **mv, predicted_class=c) or 0
        for c in ("0", "1")
    )
    assert counted == len(rows)
    assert value(text, "inferwatch_drift_window_rows", **mv) == len(rows)
    assert value(text, "inferwatch_drift_detected", **mv, feature="mean texture") == 1.0
    return text


def test_the_one_line_fastapi_example(workdir: Path) -> None:
    from tests.integrations.conftest import Uvicorn

    module = load("fastapi_oneline.py", workdir)
    rows = traffic()
    with Uvicorn(module.app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        exercise_oneline(client, module, rows)
    # the app's lifespan closed the monitor at shutdown: drift thread stopped, rows written
    assert module.monitor.evaluation is not None and not module.monitor.evaluation.running
    _stored(workdir, len(rows))


def test_the_one_line_flask_example(workdir: Path) -> None:
    import atexit

    from tests.integrations.conftest import Werkzeug

    module = load("flask_oneline.py", workdir)
    rows = traffic()
    try:
        with (
            Werkzeug(module.app) as server,
            httpx.Client(base_url=server.url, timeout=30) as client,
        ):
            exercise_oneline(client, module, rows)
        extension = module.app.extensions["inferwatch"]
        assert extension.close()  # what atexit runs when the process ends
    finally:
        atexit.unregister(module.app.extensions["inferwatch"].close)
        module.monitor.close()
    _stored(workdir, len(rows))


def test_the_monitored_function_example(workdir: Path) -> None:
    from inferwatch.store import SQLStore

    (workdir / "monitored_function.py").write_text(example("monitored_function.py"))
    out = subprocess.run(
        [sys.executable, "monitored_function.py"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "alcohol"  # the refused field, named
    assert lines[1] == "50 (50, 3)"
    text = "\n".join(lines[2:]) + "\n"
    mv = {"model": "wine", "version": "1"}
    assert value(text, "inferwatch_requests_total", **mv, status="200") == 1
    assert value(text, "inferwatch_requests_total", **mv, status="422") == 1
    assert value(text, "inferwatch_requests_rejected_total", model="wine", reason="wrong_type") == 1
    counted = sum(
        value(text, "inferwatch_predictions_total", **mv, predicted_class=c) or 0
        for c in ("0", "1", "2")
    )
    assert counted == 50
    store = SQLStore(f"sqlite:///{workdir / 'predictions.db'}")
    try:
        records = list(store.iter_predictions("wine", "1"))
    finally:
        store.close()
    assert len(records) == 50
    for rec in records:
        assert rec.probabilities is not None and set(rec.probabilities) == {"0", "1", "2"}
        assert str(rec.output) == max(rec.probabilities, key=lambda c: rec.probabilities[c])  # type: ignore[index]
        assert rec.score == max(rec.probabilities.values())
