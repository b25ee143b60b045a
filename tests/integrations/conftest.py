"""Real servers for the integrations: uvicorn (FastAPI) and werkzeug (Flask) on loopback,
port 0, in a thread; a breast-cancer classifier and a monitor on a SQLite file."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from inferwatch import Monitor
from inferwatch.observation import PredictionRecord
from inferwatch.store import SQLStore


class Uvicorn:
    """An ASGI app served by uvicorn on 127.0.0.1, port 0, lifespan on."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.url = ""

    def __enter__(self) -> Uvicorn:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True  # the lifespan's shutdown runs before run() returns
        self.thread.join(30)
        assert not self.thread.is_alive(), "uvicorn did not stop"


class Werkzeug:
    """A WSGI app served by werkzeug's threaded server on 127.0.0.1, port 0."""

    def __init__(self, app: Any) -> None:
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> Werkzeug:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(10)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    """A sample of a scrape; 0 when the series is absent (a counter never incremented)."""
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def rejected(text: str, reason: str) -> float:
    """``inferwatch_requests_rejected_total`` of the test model for ``reason``."""
    return value(text, "inferwatch_requests_rejected_total", model="tumour", reason=reason)


def post_raw(client: Any, path: str, body: Any, content_type: str) -> Any:
    """POST ``body`` as is with ``content_type``."""
    return client.post(path, content=body, headers={"content-type": content_type})


def stored(url: str, model: str = "tumour", version: str = "1") -> dict[str, PredictionRecord]:
    """The prediction rows in the SQLite file, by id."""
    store = SQLStore(url)
    try:
        return {r.id: r for r in store.iter_predictions(model, version)}
    finally:
        store.close()


class Data:
    """load_breast_cancer, a fitted classifier and a few rows as the clients send them."""

    def __init__(self) -> None:
        X, y = load_breast_cancer(return_X_y=True, as_frame=True)
        self.X: pd.DataFrame = X
        self.model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
        self.rows: list[dict[str, Any]] = X.iloc[::20].to_dict("records")


@pytest.fixture(scope="session")
def data() -> Data:
    return Data()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'predictions.db'}"


@pytest.fixture
def monitor(data: Data, db_url: str) -> Iterator[Monitor]:
    """A monitor of the classifier (its classes label the metrics), no drift thread."""
    found = Monitor.from_reference(
        data.X,
        model="tumour",
        version="1",
        store=db_url,
        predictor=data.model,
        evaluation_interval=None,
    )
    try:
        yield found
    finally:
        found.close()
