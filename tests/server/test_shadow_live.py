"""A slow shadow never delays its primary's answers: a real ``inferwatch serve`` process."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import yaml

from inferwatch.io import save_schema
from inferwatch.server._versions import MAX_PENDING_BATCHES, shadow_prediction_id
from inferwatch.store import SQLStore
from tests.cli.conftest import ServerProcess
from tests.server._versions_models import Slow
from tests.server.conftest import Trained, instances, make_frame, sample

REPO = Path(__file__).resolve().parents[2]
SLOW_SECONDS = 1.5


def _serve(trained: Trained, tmp_path: Path) -> ServerProcess:
    joblib.dump(trained.classifier, tmp_path / "primary.joblib")
    joblib.dump(Slow(trained.classifier, SLOW_SECONDS), tmp_path / "slow.joblib")
    save_schema(trained.schema, tmp_path / "schema.yaml")
    config = {
        "store": {"url": f"sqlite:///{tmp_path / 'store.db'}", "flush_interval_seconds": 0.05},
        "models": [
            {"name": "churn", "version": "3", "path": "primary.joblib", "schema": "schema.yaml"},
            {"name": "cand", "version": "4", "path": "slow.joblib", "schema": "schema.yaml",
             "shadow_of": "churn"},
        ],
    }  # fmt: skip
    (tmp_path / "inferwatch.yaml").write_text(yaml.safe_dump(config))
    # the slow estimator is pickled by reference to tests.server._versions_models
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return ServerProcess(
        ["serve", "-c", str(tmp_path / "inferwatch.yaml")], cwd=tmp_path, env={"PYTHONPATH": path}
    )


def _shadow_counts(base: str) -> dict[str, float]:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return {
        o: sample(text, "inferwatch_shadow_predictions_total", model="cand", outcome=o)
        for o in ("agree", "disagree", "error", "dropped")
    }


def test_a_slow_shadow_neither_delays_answers_nor_piles_up(
    trained: Trained, tmp_path: Path
) -> None:
    server = _serve(trained, tmp_path)
    rows = instances(make_frame(np.random.default_rng(5), 5))
    requests = 2 * MAX_PENDING_BATCHES + 8
    answers: list[dict[str, Any]] = []
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.base, timeout=30) as client:
            client.post("/v1/models/churn/predict", json={"instances": rows})  # warm up
            time.sleep(SLOW_SECONDS + 0.5)  # its shadow batch is done

            def one(_: int) -> tuple[float, dict[str, Any]]:
                t0 = time.perf_counter()
                res = client.post("/v1/models/churn/predict", json={"instances": rows})
                assert res.status_code == 200, res.text
                return time.perf_counter() - t0, res.json()

            with ThreadPoolExecutor(8) as pool:
                timed = list(pool.map(one, range(requests)))
        answers = [body for _, body in timed]
        seconds = sorted(t for t, _ in timed)
        # every answer came long before one shadow batch could finish
        assert seconds[len(seconds) // 2] < SLOW_SECONDS / 3, seconds
        assert all(a["model"] == "churn" and a["version"] == "3" for a in answers)
        # the shadow ran (or was dropped) for every batch, off the answers' path
        deadline = time.monotonic() + 30
        expected = (requests + 1) * len(rows)
        while time.monotonic() < deadline:
            counts = _shadow_counts(server.base)
            if sum(counts.values()) >= expected:
                break
            time.sleep(0.2)
        assert sum(counts.values()) == expected, counts
        assert counts["error"] == 0, server.output()[-3000:]
        # a shadow holds at most MAX_PENDING_BATCHES batches: a burst past that is dropped
        assert counts["dropped"] > 0, counts
        assert counts["agree"] >= MAX_PENDING_BATCHES * len(rows)  # the same model: agrees
        assert counts["disagree"] == 0
    finally:
        assert server.stop(60) == 0, server.output()
    store = SQLStore(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        assert store.count_predictions("churn", "3") == expected
        assert store.count_predictions("cand", "4") == counts["agree"]
        first = answers[0]["predictions"][0]
        record = store.get_prediction(shadow_prediction_id(first["id"], "cand"))
        if record is not None:  # its batch may have been one of the dropped ones
            assert str(record.output) == str(first["prediction"])
    finally:
        store.close()
