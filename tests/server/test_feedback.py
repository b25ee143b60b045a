"""``POST /v1/models/{name}/feedback``: labels joined by prediction id, per-item verdicts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferwatch.store import SQLStore
from tests.server.conftest import KEYS, AppFactory, Served, TestClient


@pytest.fixture
def sql_served(make_app: AppFactory, tmp_path: Path) -> Iterator[Served]:
    store = SQLStore(f"sqlite:///{tmp_path}/feedback.db")
    store.upgrade()
    yield make_app(store=store)
    store.close()


@pytest.fixture
def sql_client(sql_served: Served) -> Iterator[TestClient]:
    with TestClient(sql_served.app) as c:
        yield c


def predict(client: TestClient, model: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = client.post(f"/v1/models/{model}/predict", json={"instances": rows})
    assert response.status_code == 200, response.text
    predictions: list[dict[str, Any]] = response.json()["predictions"]
    return predictions


def feedback(client: TestClient, model: str, labels: list[dict[str, Any]], **kw: Any) -> Any:
    return client.post(f"/v1/models/{model}/feedback", json={"labels": labels}, **kw)


def test_labels_are_stored_and_a_repeated_label_replaces(
    sql_client: TestClient, sql_served: Served, good_rows: list[dict[str, Any]]
) -> None:
    preds = predict(sql_client, "churn", good_rows)
    sql_served.monitor.flush()
    labels = [{"prediction_id": p["id"], "label": p["prediction"]} for p in preds]

    first = feedback(sql_client, "churn", labels)
    again = feedback(sql_client, "churn", labels[:2])

    assert first.status_code == 200, first.text
    assert first.json() == {
        "model": "churn",
        "accepted": 5,
        "replaced": 0,
        "rejected": 0,
        "counts": {},
        "errors": [],
    }
    assert again.status_code == 200
    assert (again.json()["accepted"], again.json()["replaced"]) == (0, 2)
    store = sql_served.store
    assert store.count_labels("churn", "1") == 5  # replaced, never duplicated
    assert [x.value for x in store.get_labels(preds[0]["id"])] == [preds[0]["prediction"]]
    assert sql_served.sample("inferwatch_labels_total", model="churn", outcome="accepted") == 5
    assert sql_served.sample("inferwatch_labels_total", model="churn", outcome="replaced") == 2
    assert sql_served.sample("inferwatch_label_delay_seconds_count", model="churn") == 7


def test_a_label_may_arrive_before_its_prediction_row_is_flushed(
    make_app: AppFactory, tmp_path: Path, good_rows: list[dict[str, Any]]
) -> None:
    store = SQLStore(f"sqlite:///{tmp_path}/early.db")
    store.upgrade()
    served = make_app(store=store)
    served.monitor.prediction_log.flush_interval = 3600.0  # the writer waits for a full batch
    with TestClient(served.app) as client:
        preds = predict(client, "churn", good_rows[:2])
        assert store.count_predictions() == 0  # still in the prediction log's buffer

        response = feedback(
            client, "churn", [{"prediction_id": p["id"], "label": "yes"} for p in preds]
        )

        assert response.status_code == 200, response.text
        assert store.count_labels("churn", "1") == 2
    assert store.count_predictions() == 2  # written at shutdown
    (page,) = store.labelled_columns("churn", "1")
    assert sorted(page["id"]) == sorted(p["id"] for p in preds)
    store.close()


def test_bad_items_are_reported_per_item_and_the_good_ones_kept(
    sql_client: TestClient, sql_served: Served, good_rows: list[dict[str, Any]]
) -> None:
    churn = predict(sql_client, "churn", good_rows[:3])
    spend = predict(sql_client, "spend", good_rows[:2])
    sql_served.monitor.flush()
    labels = [
        {"prediction_id": churn[0]["id"], "label": "yes"},  # accepted
        {"prediction_id": churn[1]["id"], "label": "maybe"},  # not a class
        {"prediction_id": "no-such-id", "label": "yes"},
        {"prediction_id": spend[0]["id"], "label": "yes"},  # another model's prediction
        {"prediction_id": churn[2]["id"], "label": "no"},  # twice: both rejected
        {"prediction_id": churn[2]["id"], "label": "yes"},
        {"prediction_id": churn[1]["id"] + "x", "label": True},
    ]

    response = feedback(sql_client, "churn", labels)

    assert response.status_code == 207, response.text
    body = response.json()
    assert (body["accepted"], body["replaced"], body["rejected"]) == (1, 0, 6)
    assert body["counts"] == {
        "unknown_prediction_id": 2,
        "wrong_model": 1,
        "duplicate_prediction_id": 2,
        "invalid_label": 1,
    }
    codes = {e["index"]: e["code"] for e in body["errors"]}
    assert codes == {
        1: "invalid_label",
        2: "unknown_prediction_id",
        3: "wrong_model",
        4: "duplicate_prediction_id",
        5: "duplicate_prediction_id",
        6: "unknown_prediction_id",
    }
    message = next(e["message"] for e in body["errors"] if e["index"] == 1)
    assert "'maybe'" in message and "'no'" in message and "'yes'" in message
    assert "'spend'" in next(e["message"] for e in body["errors"] if e["index"] == 3)
    assert sql_served.store.count_labels() == 1
    for outcome, n in body["counts"].items():
        assert sql_served.sample("inferwatch_labels_total", model="churn", outcome=outcome) == n


@pytest.mark.parametrize(
    ("label", "ok"),
    [(12.5, True), (12, True), ("12.5", False), (True, False), (None, False), ([1.0], False)],
)
def test_a_regressors_label_is_a_finite_number(
    sql_client: TestClient,
    sql_served: Served,
    good_rows: list[dict[str, Any]],
    label: Any,
    ok: bool,
) -> None:
    (pred,) = predict(sql_client, "spend", good_rows[:1])
    sql_served.monitor.flush()

    response = feedback(sql_client, "spend", [{"prediction_id": pred["id"], "label": label}])

    assert response.status_code == (200 if ok else 422), response.text
    if not ok:
        error = response.json()["error"]
        assert error["code"] == "no_label_stored"
        assert error["details"][0]["reason"] == "invalid_label"
        assert error["details"][0]["field"] == "labels[0].label"
    else:
        (page,) = sql_served.store.labelled_columns("spend", "1")
        assert page["label"] == [float(label)]


def test_non_finite_labels_are_refused(
    sql_client: TestClient, sql_served: Served, good_rows: list[dict[str, Any]]
) -> None:
    (pred,) = predict(sql_client, "spend", good_rows[:1])
    sql_served.monitor.flush()
    body = f'{{"labels": [{{"prediction_id": "{pred["id"]}", "label": NaN}}]}}'

    response = sql_client.post(
        "/v1/models/spend/feedback", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert "finite" in response.json()["error"]["details"][0]["message"]


def test_all_unknown_ids_is_a_404_and_unknown_model_too(sql_client: TestClient) -> None:
    response = feedback(
        sql_client,
        "churn",
        [{"prediction_id": "a", "label": "yes"}, {"prediction_id": "b", "label": "no"}],
    )
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "unknown_prediction_id"
    assert [d["field"] for d in error["details"]] == [
        "labels[0].prediction_id",
        "labels[1].prediction_id",
    ]

    response = feedback(sql_client, "nope", [{"prediction_id": "a", "label": "yes"}])
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_model"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ([], 422, "(body)"),
        ({"label": []}, 422, "label"),
        ({}, 422, "labels"),
        ({"labels": {}}, 422, "labels"),
        ({"labels": []}, 400, "labels"),
        ({"labels": [1]}, 422, "labels[0]"),
        ({"labels": [{"label": 1}]}, 422, "labels[0].prediction_id"),
        ({"labels": [{"prediction_id": "a"}]}, 422, "labels[0].label"),
        ({"labels": [{"prediction_id": 5, "label": 1}]}, 422, "labels[0].prediction_id"),
        ({"labels": [{"prediction_id": "a", "label": 1, "x": 2}]}, 422, "labels[0].x"),
    ],
)
def test_a_malformed_body_is_refused_naming_the_field(
    sql_client: TestClient, sql_served: Served, body: Any, status: int, field: str
) -> None:
    response = sql_client.post("/v1/models/churn/feedback", json=body)

    assert response.status_code == status, response.text
    assert response.json()["error"]["details"][0]["field"] == field
    assert sql_served.sample("inferwatch_requests_rejected_total", model="churn") == 1


def test_malformed_json_and_media_type_and_size(make_app: AppFactory) -> None:
    served = make_app(server={"max_labels_per_request": 2})
    with TestClient(served.app) as client:
        bad = client.post(
            "/v1/models/churn/feedback", content=b"{", headers={"content-type": "application/json"}
        )
        text = client.post(
            "/v1/models/churn/feedback", content=b"{}", headers={"content-type": "text/plain"}
        )
        big = feedback(
            client, "churn", [{"prediction_id": str(i), "label": "yes"} for i in range(3)]
        )
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "malformed_json")
    assert (text.status_code, text.json()["error"]["code"]) == (415, "unsupported_media_type")
    assert (big.status_code, big.json()["error"]["code"]) == (413, "batch_too_large")


def test_a_store_that_is_down_is_a_503_and_nothing_is_half_stored(
    sql_client: TestClient, sql_served: Served, good_rows: list[dict[str, Any]]
) -> None:
    preds = predict(sql_client, "churn", good_rows[:3])
    sql_served.monitor.flush()
    store = sql_served.store
    with store.engine.begin() as conn:  # the labels table is gone: every write fails
        conn.exec_driver_sql("ALTER TABLE labels RENAME TO labels_away")

    response = feedback(
        sql_client, "churn", [{"prediction_id": p["id"], "label": "yes"} for p in preds]
    )

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "store_unavailable"
    assert "Traceback" not in response.text
    assert sql_served.sample("inferwatch_labels_total", model="churn") == 0
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE labels_away RENAME TO labels")
    assert store.count_labels() == 0
    again = feedback(
        sql_client, "churn", [{"prediction_id": p["id"], "label": "yes"} for p in preds]
    )
    assert again.status_code == 200
    assert again.json()["accepted"] == 3


def test_the_feedback_role_is_required(make_app: AppFactory) -> None:
    served = make_app(keys=True)
    with TestClient(served.app) as client:
        none = feedback(client, "churn", [{"prediction_id": "a", "label": "yes"}])
        predict_key = feedback(
            client,
            "churn",
            [{"prediction_id": "a", "label": "yes"}],
            headers={"X-API-Key": KEYS["predict"]},
        )
        ok = feedback(
            client,
            "churn",
            [{"prediction_id": "a", "label": "yes"}],
            headers={"X-API-Key": KEYS["feedback"]},
        )
    assert none.status_code == 401
    assert predict_key.status_code == 403
    assert ok.status_code == 404  # authorised; the id is unknown


def test_openapi_documents_the_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/models/{name}/feedback"]["post"]
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["labels"]
    assert body["properties"]["labels"]["maxItems"] == 10_000
    assert {"200", "207", "404", "422", "503"} <= set(op["responses"])
