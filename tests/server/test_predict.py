"""POST /v1/models/{name}/predict on real scikit-learn models: answers, storage, metrics, docs."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from inferwatch.models import ModelPrediction
from tests.server.conftest import AppFactory, Served, TestClient, Trained, instances


def predict(client: TestClient, rows: list[dict[str, Any]], model: str = "churn", **kw: Any) -> Any:
    return client.post(f"/v1/models/{model}/predict", json={"instances": rows}, **kw)


def test_good_batch_answers_one_prediction_per_instance(
    client: TestClient, served: Served, trained: Trained, good_rows: list[dict[str, Any]]
) -> None:
    r = predict(client, good_rows)

    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["model"] == "churn"
    assert body["version"] == "1"
    preds = body["predictions"]
    ids = [p["id"] for p in preds]
    assert len(ids) == len(good_rows) == len(set(ids))
    assert r.headers["x-prediction-ids"] == ",".join(ids)
    assert r.headers["x-request-id"]
    expected = trained.classifier.predict(pd.DataFrame(good_rows)).tolist()
    assert [p["prediction"] for p in preds] == expected
    for p in preds:
        assert set(p["probabilities"]) == {"no", "yes"}
        assert math.isclose(sum(p["probabilities"].values()), 1.0, rel_tol=1e-9)
        assert p["prediction"] == max(p["probabilities"], key=p["probabilities"].get)


def test_answered_predictions_are_stored_with_their_ids(
    client: TestClient, served: Served, good_rows: list[dict[str, Any]]
) -> None:
    r = predict(
        client, good_rows, headers={"traceparent": "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"}
    )
    preds = r.json()["predictions"]

    assert served.monitor.flush(5)
    assert served.store.count_predictions("churn", "1") == len(good_rows)
    for row, p in zip(good_rows, preds, strict=True):
        stored = served.store.get_prediction(p["id"])
        assert stored is not None
        assert stored.model == "churn"
        assert stored.inputs == row
        assert stored.output == p["prediction"]
        assert stored.probabilities == pytest.approx(p["probabilities"])
        assert stored.score == pytest.approx(max(p["probabilities"].values()))
        assert stored.trace_id == "ab" * 16
        assert stored.latency_seconds is not None and stored.latency_seconds > 0


def test_regressor_answers_floats_without_probabilities(
    client: TestClient, served: Served, trained: Trained, good_rows: list[dict[str, Any]]
) -> None:
    r = predict(client, good_rows, model="spend")

    assert r.status_code == 200
    preds = r.json()["predictions"]
    expected = trained.regressor.predict(pd.DataFrame(good_rows))
    assert [p["prediction"] for p in preds] == pytest.approx(expected.tolist())
    assert all("probabilities" not in p for p in preds)
    assert served.monitor.flush(5)
    stored = served.store.get_prediction(preds[0]["id"])
    assert stored is not None
    assert stored.score is None
    assert stored.output == pytest.approx(expected[0])


def test_metrics_count_requests_and_predictions_exactly(
    client: TestClient, served: Served, trained: Trained
) -> None:
    batches = [instances(trained.frame.iloc[i : i + 3]) for i in range(0, 12, 3)]
    before = served.sample("inferwatch_requests_total", model="churn", status="200")

    for rows in batches:
        assert predict(client, rows).status_code == 200

    text = client.get("/metrics").text
    from tests.server.conftest import sample

    assert sample(text, "inferwatch_requests_total", model="churn", status="200") == before + 4
    assert sample(text, "inferwatch_predictions_total", model="churn") == 12
    assert sample(text, "inferwatch_request_duration_seconds_count", model="churn") == 4
    assert sample(text, "inferwatch_model_inference_duration_seconds_count", model="churn") == 4
    assert sample(text, "inferwatch_request_instances_sum", model="churn") == 12
    assert sample(text, "inferwatch_prediction_confidence_count", model="churn") == 12
    expected = trained.classifier.predict(trained.frame.iloc[:12])
    yes = int((expected == "yes").sum())
    assert sample(text, "inferwatch_predictions_total", model="churn", predicted_class="yes") == yes
    assert sample(text, "inferwatch_requests_total", model="spend") == 0


def test_prediction_ids_header_only_for_small_batches(client: TestClient, trained: Trained) -> None:
    rows = instances(trained.frame.iloc[:101])

    small = predict(client, rows[:100])
    large = predict(client, rows)

    assert len(small.headers["x-prediction-ids"].split(",")) == 100
    assert large.status_code == 200
    assert "x-prediction-ids" not in large.headers
    assert len(large.json()["predictions"]) == 101


def test_parameters_are_accepted_and_request_id_is_echoed(
    client: TestClient, good_rows: list[dict[str, Any]]
) -> None:
    r = client.post(
        "/v1/models/churn/predict",
        json={"instances": good_rows[:1], "parameters": {}},
        headers={"x-request-id": "req-42"},
    )
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "req-42"
    bad_id = client.post(
        "/v1/models/churn/predict",
        json={"instances": good_rows[:1]},
        headers={"x-request-id": "not a safe id"},
    )
    assert bad_id.headers["x-request-id"] != "not a safe id"
    made = {client.get("/healthz").headers.get("x-request-id") for _ in range(3)}
    made |= {bad_id.headers["x-request-id"]}
    assert len(made) == 4  # a fresh one each time, UUID-shaped
    assert all(re.fullmatch(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}", m or "") for m in made)


def test_malformed_traceparent_is_not_stored(
    client: TestClient, served: Served, good_rows: list[dict[str, Any]]
) -> None:
    r = predict(client, good_rows[:1], headers={"traceparent": "garbage"})
    assert served.monitor.flush(5)
    stored = served.store.get_prediction(r.json()["predictions"][0]["id"])
    assert stored is not None
    assert stored.trace_id is None


class FlakyAdapter:
    """Raises on demand; otherwise answers 0.5 for every instance."""

    flavor = "test"

    def __init__(self) -> None:
        self.fail = True

    @property
    def classes(self) -> Sequence[str] | None:
        return None

    def predict(self, instances: Sequence[Mapping[str, Any]]) -> list[ModelPrediction]:
        if self.fail:
            raise ValueError("secret internals /srv/model.pkl line 42")
        return [ModelPrediction(0.5) for _ in instances]


def test_model_exception_is_a_500_in_our_shape_and_serving_goes_on(
    make_app: AppFactory, trained: Trained, good_rows: list[dict[str, Any]]
) -> None:
    flaky = FlakyAdapter()
    served = make_app(extra_models=[("flaky", flaky, trained.schema)])
    with TestClient(served.app) as client:
        r = predict(client, good_rows, model="flaky")

        assert r.status_code == 500
        err = r.json()["error"]
        assert err["code"] == "model_error"
        assert "flaky" in err["message"]
        assert "Traceback" not in r.text
        assert "secret internals" not in r.text
        assert served.sample("inferwatch_requests_total", model="flaky", status="500") == 1
        flaky.fail = False
        assert predict(client, good_rows, model="flaky").status_code == 200
        assert predict(client, good_rows).status_code == 200
        assert served.monitor.flush(5)
        assert served.store.count_predictions("flaky") == len(good_rows)


def test_model_listing_and_detail(client: TestClient, trained: Trained) -> None:
    listing = client.get("/v1/models").json()["models"]

    by_name = {m["name"]: m for m in listing}
    assert by_name["churn"].pop("live_since")  # when the live version took over
    assert by_name["churn"] == {
        "name": "churn",
        "version": "1",
        "flavor": "sklearn",
        "task": "classification",
        "features": list(trained.schema.names),
        "classes": ["no", "yes"],
        "versions": [{"version": "1", "flavor": "sklearn", "live": True}],
    }
    assert by_name["spend"]["task"] == "regression"
    assert "classes" not in by_name["spend"]
    detail = client.get("/v1/models/churn").json()
    assert detail["schema"] == trained.schema.to_dict()
    missing = client.get("/v1/models/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_model"


def test_openapi_describes_the_predict_body_and_errors(served: Served) -> None:
    doc = served.app.openapi()
    op = doc["paths"]["/v1/models/{name}/predict"]["post"]

    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert op["requestBody"]["required"] is True
    assert body["required"] == ["instances"]
    items = body["properties"]["instances"]["items"]
    titles = [s["title"] for s in items["oneOf"]]
    assert titles == ["churn instance", "spend instance"]
    churn = items["oneOf"][0]
    assert set(churn["properties"]) == {"age", "income", "plan"}
    assert churn["properties"]["plan"]["type"] == "string"
    assert churn["additionalProperties"] is False
    assert {"200", "400", "401", "403", "404", "413", "422", "500"} <= set(op["responses"])
    ok = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/PredictResponse")
    err = op["responses"]["422"]["content"]["application/json"]["schema"]
    assert err["$ref"].endswith("/ErrorResponse")
    assert [p["name"] for p in op["parameters"]] == ["name"]


class OddAdapter:
    """Answers what ``answer`` says: numpy values, an unencodable object, or too few rows."""

    flavor = "test"
    classes = None

    def __init__(self, answer: str) -> None:
        self.answer = answer

    def predict(self, instances: Sequence[Mapping[str, Any]]) -> list[ModelPrediction]:
        if self.answer == "numpy":
            probs: Any = {"a": np.float32(1.0)}
            return [ModelPrediction(np.int64(3), probs) for _ in instances]
        if self.answer == "object":
            return [ModelPrediction(object()) for _ in instances]
        return []


@pytest.mark.parametrize(("answer", "status"), [("numpy", 200), ("object", 500), ("short", 500)])
def test_what_a_custom_adapter_returns_is_checked(
    make_app: AppFactory,
    trained: Trained,
    good_rows: list[dict[str, Any]],
    answer: str,
    status: int,
) -> None:
    served = make_app(extra_models=[("odd", OddAdapter(answer), trained.schema)])
    with TestClient(served.app) as client:
        r = predict(client, good_rows[:2], model="odd")

        assert r.status_code == status
        assert served.monitor.flush(5)
        if status == 200:
            assert [p["prediction"] for p in r.json()["predictions"]] == [3, 3]
            assert r.json()["predictions"][0]["probabilities"] == {"a": 1.0}
            assert served.store.count_predictions("odd") == 2
        else:
            assert r.json()["error"]["code"] == "model_error"
            assert served.store.count_predictions("odd") == 0
        assert served.sample("inferwatch_requests_total", model="odd", status=str(status)) == 1


def test_openmetrics_scrape_carries_the_trace_and_prediction_id_as_an_exemplar(
    served: Served, client: TestClient, good_rows: list[dict[str, Any]]
) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    r = client.post(
        "/v1/models/churn/predict",
        json={"instances": good_rows[:1]},
        headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"},
    )
    (pred,) = r.json()["predictions"]
    assert served.monitor.flush(5)
    plain = client.get("/metrics")
    assert plain.headers["content-type"].startswith("text/plain")
    assert "# {" not in plain.text  # the Prometheus text format has no exemplars
    om = client.get("/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    buckets = [
        line
        for line in om.text.splitlines()
        if line.startswith("inferwatch_request_duration_seconds_bucket{")
        and 'model="churn"' in line
        and " # " in line
    ]
    assert len(buckets) == 1
    assert f'trace_id="{trace}"' in buckets[0] and f'prediction_id="{pred["id"]}"' in buckets[0]
    assert om.text.rstrip().endswith("# EOF")


class ProbeAdapter(FlakyAdapter):
    """Reads the in-flight gauge while it predicts."""

    def __init__(self) -> None:
        super().__init__()
        self.fail = False
        self.read: Callable[[], float] = lambda: -1.0
        self.seen: list[float] = []

    def predict(self, instances: Sequence[Mapping[str, Any]]) -> list[ModelPrediction]:
        self.seen.append(self.read())
        return super().predict(instances)


def test_inflight_requests_count_while_answering_and_return_to_zero(
    make_app: AppFactory, trained: Trained, good_rows: list[dict[str, Any]]
) -> None:
    probe = ProbeAdapter()
    served = make_app(extra_models=[("probe", probe, trained.schema)])
    probe.read = lambda: served.sample("inferwatch_inflight_requests", model="probe")
    with TestClient(served.app) as client:
        assert predict(client, good_rows, model="probe").status_code == 200
        assert client.post("/v1/models/probe/predict", json={"x": 1}).status_code == 400
        probe.fail = True
        assert predict(client, good_rows, model="probe").status_code == 500
    assert probe.seen == [1.0, 1.0]  # counted while the model ran
    assert served.sample("inferwatch_inflight_requests", model="probe") == 0  # and after
