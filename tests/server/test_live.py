"""The real app under uvicorn on 127.0.0.1 with a SQLite file store, hit over HTTP with httpx;
and ``build_app`` from settings and files on disk."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import pytest
import uvicorn

from inferwatch.config import Settings
from inferwatch.errors import ModelError
from inferwatch.io import save_schema, write_frame
from inferwatch.server import build_app
from inferwatch.store import SQLStore
from tests.server.conftest import AppFactory, Served, TestClient, Trained, sample

GOOD = {"age": 41, "income": 52_000.5, "plan": "basic"}


class LiveServer:
    def __init__(self, served: Served) -> None:
        config = uvicorn.Config(served.app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="live-server", daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        assert not self.thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/s.db"
    store = SQLStore(url)
    store.upgrade()
    store.close()
    return url


@pytest.fixture
def live(make_app: AppFactory, db_url: str) -> Iterator[tuple[LiveServer, str]]:
    server = LiveServer(make_app(store=SQLStore(db_url)))
    base = server.start()
    try:
        yield server, base
    finally:
        if server.thread.is_alive():
            server.stop()


def test_live_server_predicts_exposes_metrics_and_stores_every_answer(
    live: tuple[LiveServer, str], db_url: str
) -> None:
    server, base = live
    answered: list[str] = []
    with httpx.Client(base_url=base, timeout=10) as client:
        for i in range(10):
            rows = [{**GOOD, "age": 20 + i}] * (1 + i % 3)
            r = client.post("/v1/models/churn/predict", json={"instances": rows})
            assert r.status_code == 200
            answered += [p["id"] for p in r.json()["predictions"]]
        bad = client.post(
            "/v1/models/churn/predict",
            content=b'{"instances": [{"age": NaN}]}',
            headers={"content-type": "application/json"},
        )
        assert bad.status_code == 422
        assert client.get("/readyz").json()["status"] == "ready"
        metrics = client.get("/metrics").text
    server.stop()

    assert sample(metrics, "inferwatch_requests_total", model="churn", status="200") == 10
    assert sample(metrics, "inferwatch_predictions_total", model="churn") == len(answered)
    assert sample(metrics, "inferwatch_requests_rejected_total", reason="non_finite") == 1
    reopened = SQLStore(db_url)
    try:
        assert reopened.count_predictions("churn", "1") == len(answered)
        for pid in answered:
            stored = reopened.get_prediction(pid)
            assert stored is not None
            assert stored.output in ("yes", "no")
    finally:
        reopened.close()


# -- build_app: the composition root, from settings and files on disk ----------------------


@pytest.fixture
def model_files(tmp_path: Path, trained: Trained) -> dict[str, Path]:
    frame = trained.frame.assign(churn=trained.classifier.predict(trained.frame))
    files = {
        "model": tmp_path / "churn.joblib",
        "reference": write_frame(frame, tmp_path / "reference.csv"),
        "schema": save_schema(trained.schema, tmp_path / "schema.yaml"),
    }
    joblib.dump(trained.classifier, files["model"])
    return files


def settings_for(tmp_path: Path, files: dict[str, Path], **model: Any) -> Settings:
    entry = {"name": "churn", "version": "3", "path": files["model"], **model}
    return Settings(
        store={"url": f"sqlite:///{tmp_path}/built.db"},
        models=[entry],
        server={"max_batch_size": 4},
    )


@pytest.mark.parametrize("source", ["reference", "schema"])
def test_build_app_loads_registers_serves_and_drains(
    tmp_path: Path, model_files: dict[str, Path], trained: Trained, source: str
) -> None:
    model: dict[str, Any] = {"reference": model_files["reference"]}
    if source == "reference":
        model["target"] = "churn"
    else:
        model["schema"] = model_files["schema"]
    settings = settings_for(tmp_path, model_files, **model)

    app = build_app(settings)
    with TestClient(app) as client:
        info = client.get("/v1/models/churn").json()
        r = client.post("/v1/models/churn/predict", json={"instances": [GOOD] * 3})
        too_many = client.post("/v1/models/churn/predict", json={"instances": [GOOD] * 5})

    assert info["features"] == list(trained.schema.names)
    assert info["classes"] == ["no", "yes"]
    assert r.status_code == 200
    assert too_many.status_code == 413
    store = SQLStore(settings.store.url)
    try:
        assert store.count_predictions("churn", "3") == 3
        assert [(m["name"], m["version"], m["flavor"]) for m in store.list_models()] == [
            ("churn", "3", "sklearn")
        ]
        reference = store.get_reference("churn", "3")
        assert reference is not None
        assert reference["n_rows"] == len(trained.frame)
        assert reference["uri"] == str(model_files["reference"])
        assert reference["schema"]["features"] == trained.schema.to_dict()["features"]
    finally:
        store.close()


def test_build_app_refuses_a_model_it_cannot_load(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    model_files["model"].write_bytes(b"not a model")
    settings = settings_for(tmp_path, model_files, schema=model_files["schema"])
    with pytest.raises(ModelError, match="cannot load model"):
        build_app(settings)
