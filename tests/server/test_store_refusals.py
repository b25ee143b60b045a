"""Answered predictions reach the store even when a value is one the store cannot hold.

PostgreSQL's JSONB refuses U+0000: before the store sanitised it, one such string failed
its whole batch, which was retried for 30 s as if the store were down and then dropped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferwatch.store import SQLStore
from tests.server.conftest import AppFactory, TestClient


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/t.db"
    else:
        url = request.getfixturevalue("postgres_db_url")
    store = SQLStore(url)
    store.upgrade()
    yield store
    store.close()


def test_answered_predictions_with_u0000_are_all_in_the_store(
    make_app: AppFactory, sql_store: SQLStore, good_rows: list[dict[str, Any]]
) -> None:
    served = make_app(store=sql_store)
    ids: list[str] = []
    with TestClient(served.app) as client:
        for i in range(60):
            row = dict(good_rows[i % len(good_rows)])
            if i % 5 == 0:  # 12 of 60 carry U+0000, as a JSON escape, in a category
                row["plan"] = "pro\u0000"
            response = client.post(
                "/v1/models/churn/predict",
                content=_json({"instances": [row]}),
                headers={"content-type": "application/json"},
            )
            assert response.status_code == 200, response.text
            ids.append(response.json()["predictions"][0]["id"])
        started = time.monotonic()
        assert served.monitor.flush(20)
        assert time.monotonic() - started < 10

    assert sql_store.count_predictions("churn") == 60
    stored = sql_store.get_prediction(ids[0])
    assert stored is not None
    assert stored.inputs["plan"] == "pro\ufffd"
    assert served.monitor.stats.failed == 0
    assert served.sample("inferwatch_prediction_log_rows_total", outcome="written") == 60


def _json(payload: Any) -> bytes:
    import json

    return json.dumps(payload).encode()  # escapes U+0000 as \u0000 in the body
