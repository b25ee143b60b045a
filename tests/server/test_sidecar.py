"""``POST /v1/models/{name}/log``: predictions another service made, validated, counted and
stored like served ones; a bad batch refused whole, naming the field, nothing stored."""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.server.conftest import Served, TestClient, Trained, instances, make_frame


def _records(trained: Trained, n: int, seed: int = 3) -> list[dict[str, Any]]:
    frame = make_frame(np.random.default_rng(seed), n)
    proba = trained.classifier.predict_proba(frame)
    classes = [str(c) for c in trained.classifier.classes_]
    return [
        {
            "inputs": row,
            "output": classes[int(np.argmax(p))],
            "probabilities": dict(zip(classes, map(float, p), strict=True)),
        }
        for row, p in zip(instances(frame), proba, strict=True)
    ]


def test_logged_predictions_are_counted_and_stored_like_served_ones(
    served: Served, client: TestClient, trained: Trained
) -> None:
    records = _records(trained, 40)
    records[0]["id"] = "order-17"
    records[1]["timestamp"] = "2026-11-01T08:00:00"
    r = client.post("/v1/models/churn/log", json={"records": records, "latency_seconds": 0.02})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 40 and body["ids"][0] == "order-17"
    assert served.monitor.flush(5)
    stored = served.store.get_prediction("order-17")
    assert stored is not None and stored.output == records[0]["output"]
    assert stored.score == max(records[0]["probabilities"].values())
    second = served.store.get_prediction(body["ids"][1])
    assert second is not None and second.timestamp.replace(tzinfo=None).isoformat().startswith(
        "2026-11-01T08:00:00"
    )
    assert served.store.count_predictions("churn") == 40
    counted = sum(
        served.sample("inferwatch_predictions_total", model="churn", version="1", predicted_class=c)
        for c in ("no", "yes")
    )
    assert counted == 40
    assert (
        served.sample("inferwatch_request_duration_seconds_count", model="churn", version="1") == 1
    )


def test_a_bad_batch_is_refused_whole_naming_each_field(
    served: Served, client: TestClient, trained: Trained
) -> None:
    records = _records(trained, 5)
    records[1]["output"] = "maybe"  # not a class of the model
    records[2]["inputs"] = {**records[2]["inputs"], "income": "lots"}
    records[3]["score"] = 1.5
    r = client.post("/v1/models/churn/log", json={"records": records})
    assert r.status_code == 422
    error = r.json()["error"]
    # the inputs are checked first, with predict's reason codes and the record's index
    assert error["code"] == "wrong_type"
    assert error["details"][0]["instance"] == 2
    del records[2]
    r = client.post("/v1/models/churn/log", json={"records": records})
    assert r.status_code == 422
    fields = [d["field"] for d in r.json()["error"]["details"]]
    assert fields == ["records[1].output", "records[2].score"]
    assert "maybe" in r.json()["error"]["details"][0]["message"]
    dup = _records(trained, 2)
    dup[0]["id"] = dup[1]["id"] = "same"
    r = client.post("/v1/models/churn/log", json={"records": dup})
    assert r.json()["error"]["details"][0]["field"] == "records[1].id"
    missing = client.post("/v1/models/churn/log", json={"records": [{"inputs": {}}]})
    assert missing.json()["error"]["details"][0]["field"] == "records[0].output"
    envelope = client.post("/v1/models/churn/log", json={"instances": []})
    assert envelope.status_code == 400
    assert client.post("/v1/models/nope/log", json={"records": []}).status_code == 404
    assert served.monitor.flush(5)
    assert served.store.count_predictions("churn") == 0  # nothing of a refused batch
    refused = served.sample(
        "inferwatch_requests_rejected_total", model="churn", reason="invalid_record"
    )
    assert refused == 3


def test_a_regressor_takes_finite_numbers(served: Served, client: TestClient) -> None:
    row = instances(make_frame(np.random.default_rng(1), 1))[0]
    ok = client.post("/v1/models/spend/log", json={"records": [{"inputs": row, "output": 71.5}]})
    assert ok.status_code == 200, ok.text
    bad = client.post("/v1/models/spend/log", json={"records": [{"inputs": row, "output": "x"}]})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["field"] == "records[0].output"
