"""Serve a model end to end: a config file, ``build_app``, real HTTP requests through a
TestClient, a real SQLite store and the live drift loop; every wait is a bounded poll."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from inferwatch.config import load_settings
from inferwatch.server import build_app
from inferwatch.store import SQLStore
from tests.server.conftest import TestClient, sample

WAIT_SECONDS = 20.0


@dataclass
class EndToEnd:
    """What a served model answered, exported and stored."""

    predictions: list[dict[str, Any]]
    metrics: str
    stored: int
    model_info: dict[str, Any]


def write_config(tmp_path: Path, entry: dict[str, Any], reference: pd.DataFrame) -> Path:
    """``inferwatch.yaml`` in ``tmp_path`` serving ``entry`` with ``reference`` as reference.csv."""
    reference.to_csv(tmp_path / "reference.csv", index=False)
    config = {
        "store": {"url": "sqlite:///live.db", "flush_interval_seconds": 0.05},
        "drift": {"evaluation_interval_seconds": 0.2, "window_seconds": 86_400},
        "models": [{"reference": "reference.csv", **entry}],
    }
    path = tmp_path / "inferwatch.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def serve_end_to_end(config: Path, rows: Sequence[dict[str, Any]]) -> EndToEnd:
    """Post ``rows`` (in batches of 50) to the config's one model; wait until the live
    drift window has judged them all."""
    settings = load_settings(config)
    name = settings.models[0].name
    answers: list[dict[str, Any]] = []
    with TestClient(build_app(settings)) as client:
        info = client.get(f"/v1/models/{name}").json()
        for i in range(0, len(rows), 50):
            r = client.post(f"/v1/models/{name}/predict", json={"instances": rows[i : i + 50]})
            assert r.status_code == 200, r.text
            answers += r.json()["predictions"]
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            text = client.get("/metrics").text
            if sample(text, "inferwatch_drift_window_rows", model=name) == len(rows):
                break
            assert time.monotonic() < deadline, "the drift window did not judge every row"
            time.sleep(0.05)
    store = SQLStore(settings.store.url)
    try:
        stored = store.count_predictions(name, settings.models[0].version)
    finally:
        store.close()
    return EndToEnd(answers, text, stored, info)
