"""``store.durability: strict``: a predict is answered 200 only once its rows are
committed; with the store frozen it is answered 503 with Retry-After within the store
bound, and nothing answered 200 is missing from the store."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from inferwatch.config import Settings, load_settings
from inferwatch.demo import make_customers, prepare_workdir, to_instances
from inferwatch.server import build_app
from inferwatch.store import SQLStore
from tests.server.conftest import TestClient
from tests.store.test_timeouts import _freeze, _thaw, frozen

__all__ = ["frozen"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("strict")
    prepare_workdir(path, port=0, n_reference=1000)
    return path


def _settings(workdir: Path, url: str, tmp_path: Path, **store: object) -> Settings:
    return load_settings(
        workdir / "inferwatch.yaml",
        {
            "store": {
                "url": url,
                "durability": "strict",
                # a flush interval no answer could hide behind: strict writes at once
                "flush_interval_seconds": 30,
                "spill_path": str(tmp_path / "spill.bin"),
                **store,
            }
        },
    )


def test_a_strict_answer_means_the_row_is_already_stored(workdir: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/strict.db"
    rng = np.random.default_rng(3)
    with TestClient(build_app(_settings(workdir, url, tmp_path))) as client:
        store = SQLStore(url)
        for n in (1, 3, 2):
            body = {"instances": to_instances(make_customers(n, rng))}
            started = time.perf_counter()
            r = client.post("/v1/models/churn/predict", json=body)
            assert r.status_code == 200, r.text
            assert time.perf_counter() - started < 5  # not the 30 s flush interval
            for p in r.json()["predictions"]:  # no flush: in the store when answered
                assert store.get_prediction(p["id"]) is not None
        store.close()


@pytest.mark.integration
def test_strict_answers_503_with_retry_after_while_postgres_is_frozen(
    workdir: Path, tmp_path: Path, postgres_db_url: str, frozen: list[int]
) -> None:
    settings = _settings(workdir, postgres_db_url, tmp_path, statement_timeout_seconds=0.5)
    rng = np.random.default_rng(4)
    answered: list[str] = []

    def predict() -> tuple[int, float, dict[str, str]]:
        body = {"instances": to_instances(make_customers(2, rng))}
        t0 = time.perf_counter()
        r = client.post("/v1/models/churn/predict", json=body)
        if r.status_code == 200:
            answered.extend(p["id"] for p in r.json()["predictions"])
        else:
            assert r.json()["error"]["code"] == "store_unavailable"
        return r.status_code, time.perf_counter() - t0, dict(r.headers)

    with TestClient(build_app(settings)) as client:
        assert [predict()[0] for _ in range(5)] == [200] * 5
        _freeze(postgres_db_url, frozen)
        during = [predict() for _ in range(4)]
        _thaw(frozen)
        deadline = time.monotonic() + 30
        while predict()[0] != 200:
            assert time.monotonic() < deadline, "not answering 200 again after the thaw"
            time.sleep(0.2)
        assert [predict()[0] for _ in range(3)] == [200] * 3

    assert [status for status, _, _ in during] == [503] * 4
    assert all(h.get("retry-after") == "1" for _, _, h in during)
    # the first waits out the call bound (0.5 + 1 s); the next fail at once (still hung)
    assert max(took for _, took, _ in during) < 2 * 1.5 + 1.5, during
    store = SQLStore(postgres_db_url)
    assert set(store.find_predictions(answered)) == set(answered)  # every 200 is stored
    store.close()
