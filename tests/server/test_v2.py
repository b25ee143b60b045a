"""The Open Inference Protocol (V2) routes: tritonclient's HTTP client in JSON mode and plain
JSON against a real uvicorn server, answers equal to V1's, logged and counted like V1."""

from __future__ import annotations

import contextlib
import io
import math
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
import uvicorn
from fastapi import FastAPI
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from tritonclient.utils import InferenceServerException

from inferwatch.config import ModelSettings, Settings, StoreSettings, load_settings
from inferwatch.io import save_schema
from inferwatch.models import ModelPrediction, SklearnAdapter
from inferwatch.schema import Schema, infer_schema
from inferwatch.server import build_app
from inferwatch.store import MemoryStore, SQLStore
from tests.server.conftest import (
    KEYS,
    AppFactory,
    Served,
    TestClient,
    Trained,
    _preprocess,
    sample,
)

GOOD = {"age": 41, "income": 52_000.5, "plan": "basic"}


@dataclass
class Dataset:
    name: str
    frame: pd.DataFrame
    model: Any
    schema: Schema


def _dataset(name: str, loader: Any) -> Dataset:
    bunch = loader(as_frame=True)
    frame = bunch.data
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(frame, bunch.target)
    columns = {c: frame[c].to_numpy() for c in frame.columns}
    schema = infer_schema({**columns, "target": bunch.target.to_numpy()}, target="target")
    return Dataset(name, frame, model, schema)


@pytest.fixture(scope="module")
def iris() -> Dataset:
    """load_iris: 4 numeric features, integer classes 0, 1, 2."""
    return _dataset("iris", load_iris)


@pytest.fixture(scope="module")
def cancer() -> Dataset:
    """load_breast_cancer: 30 numeric features, classes 0 and 1."""
    return _dataset("cancer", load_breast_cancer)


def extra(*datasets: Dataset) -> list[tuple[str, Any, Schema]]:
    return [(d.name, SklearnAdapter(d.model, d.schema.names), d.schema) for d in datasets]


def rows_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): float(v) for k, v in row.items()} for row in frame.to_dict("records")]


class LiveServer:
    """The app under uvicorn on 127.0.0.1, port 0, in a thread (loop as serve picks it)."""

    def __init__(
        self, served: Served | FastAPI, loop: str = "auto", config: uvicorn.Config | None = None
    ) -> None:
        app = served if isinstance(served, FastAPI) else served.app
        if config is None:
            config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", loop=loop)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return f"127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        assert not self.thread.is_alive(), "uvicorn did not stop"

    def connection_sockets(self) -> list[Any]:
        return [p.transport.get_extra_info("socket") for p in self.server.server_state.connections]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/v2.db"
    store = SQLStore(url)
    store.upgrade()
    store.close()
    return url


@pytest.fixture
def live(
    make_app: AppFactory, db_url: str, iris: Dataset, cancer: Dataset
) -> Iterator[tuple[Served, LiveServer, str]]:
    served = make_app(store=SQLStore(db_url), extra_models=extra(iris, cancer))
    server = LiveServer(served)
    address = server.start()
    try:
        yield served, server, address
    finally:
        if server.thread.is_alive():
            server.stop()


def per_feature_inputs(frame: pd.DataFrame) -> list[triton.InferInput]:
    """One FP64 tensor per feature, named after it (MLServer's pandas-codec convention)."""
    inputs = []
    for column in frame.columns:
        tensor = triton.InferInput(str(column), [len(frame), 1], "FP64")
        tensor.set_data_from_numpy(
            frame[column].to_numpy(np.float64).reshape(-1, 1), binary_data=False
        )
        inputs.append(tensor)
    return inputs


def table_input(frame: pd.DataFrame) -> list[triton.InferInput]:
    tensor = triton.InferInput("input-0", list(frame.shape), "FP64")
    tensor.set_data_from_numpy(frame.to_numpy(np.float64), binary_data=False)
    return [tensor]


def json_outputs(*names: str) -> list[triton.InferRequestedOutput]:
    return [triton.InferRequestedOutput(n, binary_data=False) for n in names]


def v1_predict(base: str, name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    r = httpx.post(f"http://{base}/v1/models/{name}/predict", json={"instances": rows})
    assert r.status_code == 200, r.text
    predictions: list[dict[str, Any]] = r.json()["predictions"]
    return predictions


# -- tritonclient (JSON mode) against a real server ---------------------------------------


@pytest.mark.parametrize("layout", ["per_feature", "table"])
def test_tritonclient_gets_v1s_predictions_logged_and_counted(
    live: tuple[Served, LiveServer, str],
    db_url: str,
    iris: Dataset,
    cancer: Dataset,
    layout: str,
) -> None:
    _, server, base = live
    client = triton.InferenceServerClient(base)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("iris") and client.is_model_ready("cancer", "1")
    answered: list[str] = []
    for data in (iris, cancer):
        frame = data.frame.sample(25, random_state=3)
        inputs = per_feature_inputs(frame) if layout == "per_feature" else table_input(frame)
        result = client.infer(
            data.name,
            inputs,
            outputs=json_outputs("predict", "predict_proba"),
            request_id="req-7",
        )
        response = result.get_response()
        assert response["model_name"] == data.name and response["id"] == "req-7"
        predict = result.as_numpy("predict")
        proba = result.as_numpy("predict_proba")
        target = data.schema.target
        assert target is not None and target.classes is not None
        assert predict.shape == (25, 1) and proba.shape == (25, len(target.classes))
        v1 = v1_predict(base, data.name, rows_of(frame))
        assert predict.ravel().tolist() == [p["prediction"] for p in v1]
        classes = response["outputs"][1]["parameters"]["classes"]
        expected = [[p["probabilities"][c] for c in classes] for p in v1]
        np.testing.assert_allclose(proba, expected, rtol=1e-12)
        # the model's own answer, unrounded, through neither protocol
        np.testing.assert_allclose(proba, data.model.predict_proba(frame), rtol=1e-12)
        ids = response["parameters"]["prediction_ids"]
        assert len(set(ids)) == 25
        answered += ids
    metrics = httpx.get(f"http://{base}/metrics").text
    server.stop()

    for data in (iris, cancer):
        assert sample(metrics, "inferwatch_requests_total", model=data.name, status="200") == 2
        assert sample(metrics, "inferwatch_predictions_total", model=data.name) == 50
    store = SQLStore(db_url)
    try:
        assert store.count_predictions("iris", "1") == 50
        for pid in answered:
            stored = store.get_prediction(pid)
            assert stored is not None and stored.version == "1"
            assert stored.model in ("iris", "cancer")
            assert set(stored.inputs) == set(
                iris.schema.names if stored.model == "iris" else cancer.schema.names
            )
    finally:
        store.close()


def test_tritonclient_mixed_types_and_metadata(live: tuple[Served, LiveServer, str]) -> None:
    _, _, base = live
    client = triton.InferenceServerClient(base)
    meta = client.get_model_metadata("churn")
    assert [(t["name"], t["datatype"]) for t in meta["inputs"]] == [
        ("age", "FP64"),
        ("income", "FP64"),
        ("plan", "BYTES"),
    ]
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]
    assert meta["versions"] == ["1"] and meta["platform"] == "sklearn"
    assert client.get_model_metadata("iris", "1")["outputs"][0]["datatype"] == "INT64"
    rows = [GOOD, {**GOOD, "plan": "pro", "income": 90_000.0}, {**GOOD, "age": 70}]
    inputs = []
    for name, datatype in (("age", "INT64"), ("income", "FP64"), ("plan", "BYTES")):
        tensor = triton.InferInput(name, [3], datatype)
        values = np.array([r[name] for r in rows], dtype=object if datatype == "BYTES" else None)
        tensor.set_data_from_numpy(values, binary_data=False)
        inputs.append(tensor)
    result = client.infer("churn", inputs, outputs=json_outputs("predict"))
    assert [o["name"] for o in result.get_response()["outputs"]] == ["predict"]
    v1 = v1_predict(base, "churn", rows)
    got = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("predict").ravel()]
    assert got == [p["prediction"] for p in v1]


def test_tritonclient_errors_read_as_messages(
    live: tuple[Served, LiveServer, str], iris: Dataset
) -> None:
    _, _, base = live
    client = triton.InferenceServerClient(base)
    frame = iris.frame.head(3)
    binary = triton.InferInput("input-0", list(frame.shape), "FP64")
    binary.set_data_from_numpy(frame.to_numpy(np.float64))  # binary_data=True, the default
    with pytest.raises(InferenceServerException) as caught:
        client.infer("iris", [binary], outputs=json_outputs("predict"))
    assert caught.value.status() == "400"
    assert "binary_data=False" in str(caught.value)
    with pytest.raises(InferenceServerException) as caught:  # outputs default to binary
        client.infer("iris", table_input(frame))
    assert "binary" in str(caught.value) and "InferRequestedOutput" in str(caught.value)
    with pytest.raises(InferenceServerException) as caught:
        client.infer("nope", table_input(frame), outputs=json_outputs("predict"))
    assert str(caught.value).startswith("[404] no model named 'nope'")
    with pytest.raises(InferenceServerException) as caught:
        client.infer("iris", table_input(frame), model_version="9", outputs=json_outputs("predict"))
    assert "serves version '1', not '9'" in str(caught.value)


def test_guard_refusals_are_readable_by_tritonclient(make_app: AppFactory) -> None:
    served = make_app(keys=True)
    server = LiveServer(served)
    base = server.start()
    try:
        client = triton.InferenceServerClient(base)
        assert client.is_server_live()  # health stays open
        with pytest.raises(InferenceServerException) as caught:
            client.get_model_metadata("churn")
        assert str(caught.value).startswith("[401] missing API key")
        keyed = client.get_model_metadata("churn", headers={"x-api-key": KEYS["read"]})
        assert keyed["name"] == "churn"
    finally:
        server.stop()


# -- TCP_NODELAY: Nagle's algorithm and the client's delayed ACK ---------------------------


def _loops() -> list[str]:
    loops = ["asyncio", "serve"]  # serve: inferwatch serve's own uvicorn settings
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return loops
    return [*loops, "uvloop"]


def _sequential_infers(
    client: triton.InferenceServerClient, frame: pd.DataFrame, n: int
) -> list[float]:
    """The seconds each of ``n`` sequential infers took."""
    inputs, outputs = table_input(frame), json_outputs("predict")
    client.infer("iris", inputs, outputs=outputs)  # connect
    took = []
    for _ in range(n):
        t0 = time.perf_counter()
        client.infer("iris", inputs, outputs=outputs)
        took.append(time.perf_counter() - t0)
    return took


@pytest.mark.parametrize("loop", _loops())
def test_nagle_is_off_on_answers(make_app: AppFactory, iris: Dataset, loop: str) -> None:
    """A response goes out as two writes (head, then body).  With Nagle's algorithm on, the
    body waits for the ACK of the head, which the client delays by 40 ms: tritonclient saw
    44 ms a request.  The event loop (asyncio and uvloop alike) sets TCP_NODELAY on every
    accepted connection; this pins it, and shows what the option is worth.  The fastest
    request is compared (a loaded machine slows some, none beats the delayed ACK)."""
    served = make_app(store=MemoryStore(), extra_models=extra(iris))
    config = quiet = None
    if loop == "serve":  # the connection guard's protocol on the loop serve picks
        from inferwatch.cli._serve import _uvicorn_config

        settings = served.settings.server.model_copy(update={"port": 0})
        config, _, quiet = _uvicorn_config(served.app, settings, "WARNING")
    server = LiveServer(served, loop=loop, config=config)
    base = server.start()
    try:
        client = triton.InferenceServerClient(base)
        fast = _sequential_infers(client, iris.frame.head(2), 20)
        (sock,) = server.connection_sockets()
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert sum(fast) < 20 * 0.040, f"20 infers took {sum(fast) * 1000:.0f} ms"
        assert min(fast) < 0.020, f"the fastest infer took {min(fast) * 1000:.1f} ms"
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)  # what it saves
        slow = _sequential_infers(client, iris.frame.head(2), 5)
        assert min(slow) > 0.030, f"with Nagle on, the fastest took {min(slow) * 1000:.1f} ms"
    finally:
        server.stop()
        if quiet is not None:  # its log filter would sit before the next server's
            quiet.detach()


# -- plain JSON (curl-style) ---------------------------------------------------------------


def churn_inputs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    n = len(rows)
    return [
        {"name": "age", "shape": [n], "datatype": "INT64", "data": [r["age"] for r in rows]},
        {
            "name": "income",
            "shape": [n, 1],
            "datatype": "FP64",
            "data": [[r["income"]] for r in rows],
        },
        {"name": "plan", "shape": [n], "datatype": "BYTES", "data": [r["plan"] for r in rows]},
    ]


@pytest.fixture
def v2(make_app: AppFactory, iris: Dataset) -> Iterator[tuple[Served, TestClient]]:
    served = make_app(extra_models=extra(iris))
    with TestClient(served.app) as client:
        yield served, client


def test_plain_json_matches_v1_with_ids_and_the_order_asked(
    v2: tuple[Served, TestClient], good_rows: list[dict[str, Any]]
) -> None:
    served, client = v2
    r = client.post(
        "/v2/models/churn/versions/1/infer",
        json={
            "id": "abc",
            "parameters": {"content_type": "pd"},
            "inputs": churn_inputs(good_rows),
            "outputs": [
                {"name": "predict_proba"},
                {"name": "predict", "parameters": {"binary_data": False}},
            ],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["model_name"], body["model_version"], body["id"]) == ("churn", "1", "abc")
    assert [o["name"] for o in body["outputs"]] == ["predict_proba", "predict"]
    proba, predict = body["outputs"]
    ids = body["parameters"]["prediction_ids"]
    assert r.headers["x-prediction-ids"].split(",") == ids
    v1 = client.post("/v1/models/churn/predict", json={"instances": good_rows}).json()
    assert predict == {
        "name": "predict",
        "datatype": "BYTES",
        "shape": [5, 1],
        "data": [p["prediction"] for p in v1["predictions"]],
    }
    assert proba["shape"] == [5, 2] and proba["parameters"]["classes"] == ["no", "yes"]
    assert proba["data"] == [
        p["probabilities"][c] for p in v1["predictions"] for c in ("no", "yes")
    ]
    served.monitor.flush()
    stored = served.store.get_prediction(ids[0])
    assert stored is not None and (stored.model, stored.version) == ("churn", "1")
    assert dict(stored.inputs) == good_rows[0]


def test_nested_and_flat_table_data_give_the_same_answer(
    v2: tuple[Served, TestClient], iris: Dataset
) -> None:
    _, client = v2
    frame = iris.frame.head(4)
    matrix = frame.to_numpy().tolist()
    answers = []
    for data in (matrix, [v for row in matrix for v in row]):
        r = client.post(
            "/v2/models/iris/infer",
            json={"inputs": [{"name": "x", "shape": [4, 4], "datatype": "FP32", "data": data}]},
        )
        assert r.status_code == 200, r.text
        answers.append(r.json()["outputs"])
    assert answers[0] == answers[1]
    assert answers[0][0]["datatype"] == "INT64"
    assert answers[0][0]["data"] == iris.model.predict(frame).tolist()


def test_regressor_answers_predict_only(
    v2: tuple[Served, TestClient], good_rows: list[dict[str, Any]]
) -> None:
    _, client = v2
    r = client.post("/v2/models/spend/infer", json={"inputs": churn_inputs(good_rows)})
    assert r.status_code == 200, r.text
    (out,) = r.json()["outputs"]
    v1 = client.post("/v1/models/spend/predict", json={"instances": good_rows}).json()
    assert out["datatype"] == "FP64" and out["data"] == [p["prediction"] for p in v1["predictions"]]
    asked = client.post(
        "/v2/models/spend/infer",
        json={"inputs": churn_inputs(good_rows), "outputs": [{"name": "predict_proba"}]},
    )
    assert asked.status_code == 400 and "no output 'predict_proba'" in asked.json()["error"]


def test_health_metadata_and_readiness(make_app: AppFactory) -> None:
    served = make_app(store=MemoryStore(available=False))
    with TestClient(served.app) as client:
        assert client.get("/v2/health/live").json() == {"live": True}
        ready = client.get("/v2/health/ready")
        assert (ready.status_code, ready.json()) == (503, {"ready": False})  # the store is down
        assert client.get("/v2/models/churn/ready").json() == {"name": "churn", "ready": True}
        assert client.get("/v2").json()["name"] == "inferwatch"
        meta = client.get("/v2/models/spend/versions/1").json()
        assert meta["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1, 1]}]
        for path in ("/v2/models/nope", "/v2/models/nope/ready", "/v2/models/churn/versions/2"):
            r = client.get(path)
            assert r.status_code == 404, path
            assert isinstance(r.json()["error"], str) and r.json()["code"].startswith("unknown_")
    with TestClient(make_app().app) as client:
        assert client.get("/v2/health/ready").json() == {"ready": True}
    not_started = TestClient(make_app().app)  # no lifespan: not accepting yet
    assert not_started.get("/v2/health/ready").status_code == 503
    assert not_started.get("/v2/models/churn/ready").status_code == 503


def _tensor(name: str, shape: list[int], datatype: str, data: Any) -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


_AGE = _tensor("age", [1], "INT64", [41])
_INCOME = _tensor("income", [1], "FP64", [52_000.5])
_PLAN = _tensor("plan", [1], "BYTES", ["basic"])

#: (what is wrong, body, expected code, a piece of the message naming the tensor/field)
BAD_BODIES: list[tuple[str, Any, str, str]] = [
    ("not an object", [1, 2], "invalid_body", "JSON object"),
    ("no inputs", {"inputs": []}, "invalid_body", "'inputs'"),
    ("unknown key", {"inputs": [_AGE], "instances": []}, "invalid_body", "'instances'"),
    (
        "shape vs data",
        {"inputs": [_tensor("age", [2], "INT64", [41]), _INCOME, _PLAN]},
        "invalid_tensor",
        "inputs[0] ('age'): shape [2] holds 2",
    ),
    (
        "bad shape",
        {"inputs": [_tensor("age", [1, 2], "INT64", [41, 42]), _INCOME, _PLAN]},
        "invalid_tensor",
        "[n] or [n, 1]",
    ),
    (
        "negative size",
        {"inputs": [_tensor("age", [-1], "INT64", [41]), _INCOME, _PLAN]},
        "invalid_tensor",
        "'shape'",
    ),
    (
        "nested wrong",
        {"inputs": [_tensor("age", [1, 1], "INT64", [[41, 42]]), _INCOME, _PLAN]},
        "invalid_tensor",
        "nested",
    ),
    (
        "wrong datatype",
        {"inputs": [_AGE, _INCOME, _tensor("plan", [1], "FP64", [1.0])]},
        "wrong_type",
        "datatype FP64 does not fit feature 'plan'",
    ),
    (
        "element type",
        {"inputs": [_tensor("age", [1], "INT64", ["41"]), _INCOME, _PLAN]},
        "wrong_type",
        "inputs[0] ('age'): datatype INT64 but data[0] is str",
    ),
    (
        "a boolean for a number",
        {"inputs": [_tensor("age", [1], "FP64", [True]), _INCOME, _PLAN]},
        "wrong_type",
        "inputs[0] ('age'): datatype FP64 but data[0] is bool True",
    ),
    (
        "negative unsigned",
        {"inputs": [_tensor("age", [1], "UINT8", [-4]), _INCOME, _PLAN]},
        "wrong_type",
        "datatype UINT8 but data[0] is int -4",
    ),
    (
        "unknown datatype",
        {"inputs": [_tensor("age", [1], "FLOAT", [41]), _INCOME, _PLAN]},
        "invalid_tensor",
        "unknown datatype 'FLOAT'",
    ),
    ("missing feature", {"inputs": [_AGE, _INCOME]}, "missing_feature", "feature(s) 'plan'"),
    (
        "unknown tensor",
        {"inputs": [_AGE, _INCOME, _PLAN, _tensor("zip", [1], "BYTES", ["x"])]},
        "unknown_feature",
        "no feature named 'zip'",
    ),
    (
        "lengths",
        {"inputs": [_tensor("age", [2], "INT64", [41, 42]), _INCOME, _PLAN]},
        "invalid_tensor",
        "holds 1 rows but inputs[0] ('age') holds 2",
    ),
    (
        "duplicate",
        {"inputs": [_AGE, _AGE, _INCOME, _PLAN]},
        "invalid_tensor",
        "a second tensor named 'age'",
    ),
    (
        "table of mixed kinds",
        {"inputs": [_tensor("x", [1, 3], "FP64", [1, 2, 3])]},
        "invalid_tensor",
        "every feature is numeric",
    ),
    (
        "unknown output",
        {"inputs": [_AGE, _INCOME, _PLAN], "outputs": [{"name": "score"}]},
        "unknown_output",
        "no output 'score'",
    ),
    (
        "binary output",
        {
            "inputs": [_AGE, _INCOME, _PLAN],
            "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
        },
        "binary_data_unsupported",
        "binary_data=False",
    ),
    (
        "binary outputs",
        {"inputs": [_AGE, _INCOME, _PLAN], "parameters": {"binary_data_output": True}},
        "binary_data_unsupported",
        "binary_data=False",
    ),
    (
        "binary input",
        {"inputs": [{**_AGE, "parameters": {"binary_data_size": 8}}, _INCOME, _PLAN]},
        "binary_data_unsupported",
        "inputs[0] ('age') is sent as binary",
    ),
    (
        "shared memory",
        {"inputs": [{**_AGE, "parameters": {"shared_memory_region": "r"}}, _INCOME, _PLAN]},
        "binary_data_unsupported",
        "shared-memory",
    ),
    (
        "classification",
        {
            "inputs": [_AGE, _INCOME, _PLAN],
            "outputs": [{"name": "predict", "parameters": {"classification": 2}}],
        },
        "invalid_tensor",
        "classification extension",
    ),
    (
        "null not allowed",
        {"inputs": [_AGE, _tensor("income", [1], "FP64", [None]), _PLAN]},
        "null_not_allowed",
        "'income'",
    ),
    ("id not a string", {"id": 7, "inputs": [_AGE, _INCOME, _PLAN]}, "invalid_body", "'id'"),
]


@pytest.mark.parametrize(
    ("case", "body", "code", "names"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES]
)
def test_bad_requests_get_a_400_naming_the_tensor_counted_and_nothing_logged(
    v2: tuple[Served, TestClient], case: str, body: Any, code: str, names: str
) -> None:
    served, client = v2
    r = client.post("/v2/models/churn/infer", json=body)
    assert r.status_code == 400, f"{case}: {r.text}"
    answer = r.json()
    assert answer["code"] == code, case
    assert isinstance(answer["error"], str) and names in answer["error"], answer["error"]
    assert sample(served.metrics_text(), "inferwatch_requests_rejected_total", model="churn") == 1
    assert (
        sample(served.metrics_text(), "inferwatch_requests_total", model="churn", status="400") == 1
    )
    served.monitor.flush()
    assert served.store.count_predictions("churn", "1") == 0


def test_non_finite_value_is_named_by_the_validator(v2: tuple[Served, TestClient]) -> None:
    served, client = v2
    r = client.post(
        "/v2/models/churn/infer",
        content=b'{"inputs": [{"name": "age", "shape": [1], "datatype": "FP64", "data": [NaN]},'
        b' {"name": "income", "shape": [1], "datatype": "FP64", "data": [1.0]},'
        b' {"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["pro"]}]}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["code"] == "non_finite" and r.json()["details"][0]["field"] == "age"
    text = served.metrics_text()
    assert (
        sample(text, "inferwatch_requests_rejected_total", model="churn", reason="non_finite") == 1
    )


def test_transport_level_refusals(v2: tuple[Served, TestClient]) -> None:
    served, client = v2
    body = {"inputs": [_AGE, _INCOME, _PLAN]}
    raw = httpx.Request("POST", "http://x", json=body).read()
    # tritonclient sends no Content-Type: taken as JSON
    plain = client.post("/v2/models/churn/infer", content=raw)
    assert "content-type" not in plain.request.headers
    assert plain.status_code == 200, plain.text
    cases = [
        ({"content-type": "text/plain"}, 415, "unsupported_media_type"),
        ({"origin": "https://evil.example"}, 415, "unsupported_media_type"),  # a browser's
        (
            {"content-type": "application/json", "inference-header-content-length": "10"},
            400,
            "binary_data_unsupported",
        ),
    ]
    for headers, status, code in cases:
        r = client.post("/v2/models/churn/infer", content=raw, headers=headers)
        assert (r.status_code, r.json()["code"]) == (status, code), headers
    bad_json = client.post(
        "/v2/models/churn/infer", content=b"{", headers={"content-type": "application/json"}
    )
    assert (bad_json.status_code, bad_json.json()["code"]) == (400, "malformed_json")
    unknown = client.post("/v2/models/nope/infer", json=body)
    assert unknown.status_code == 404 and "serving: churn" in unknown.json()["error"]
    text = served.metrics_text()
    assert sample(text, "inferwatch_requests_rejected_total", model="churn") == 4
    assert sample(text, "inferwatch_requests_rejected_total", model="unknown") == 1


def test_v1_errors_keep_their_shape(v2: tuple[Served, TestClient]) -> None:
    _, client = v2
    r = client.post("/v1/models/nope/predict", json={"instances": [GOOD]})
    assert r.json()["error"]["code"] == "unknown_model"
    assert client.get("/v2/no/such/route").json()["code"] == "not_found"


def test_openapi_lists_the_v2_routes(v2: tuple[Served, TestClient]) -> None:
    _, client = v2
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{name}",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
    ):
        assert path in paths, path
    body = paths["/v2/models/{name}/infer"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["required"] == ["inputs"]


def test_float_rows_are_numbers_not_nan(v2: tuple[Served, TestClient], iris: Dataset) -> None:
    """The 2-D table's columns go to the features in the schema's order."""
    served, client = v2
    frame = iris.frame.head(3)
    r = client.post(
        "/v2/models/iris/infer",
        json={
            "inputs": [
                {
                    "name": "t",
                    "shape": [3, 4],
                    "datatype": "FP64",
                    "data": frame.to_numpy().ravel().tolist(),
                }
            ]
        },
    )
    ids = r.json()["parameters"]["prediction_ids"]
    served.monitor.flush()
    stored = served.store.get_prediction(ids[2])
    assert stored is not None
    assert all(not math.isnan(v) for v in stored.inputs.values())
    assert dict(stored.inputs) == rows_of(frame)[2]


README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_tritonclient_example_runs_against_the_demo_model(
    demo_workdir: Path, tmp_path: Path
) -> None:
    (code,) = re.findall(
        r"```python\n(# example: triton_client.py\n.*?)```", README.read_text(), re.S
    )
    db = tmp_path / "demo.db"
    settings = load_settings(
        demo_workdir / "inferwatch.yaml", {"store": {"url": f"sqlite:///{db}"}}
    )
    server = LiveServer(build_app(settings))
    base = server.start()
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(code.replace("127.0.0.1:8000", base), str(README), "exec"), {})
    finally:
        server.stop()
    assert re.search(r"\[\[\S+\]\] \[\[[0-9.e-]+ [0-9.e-]+\]\]", printed.getvalue()), (
        printed.getvalue()
    )
    store = SQLStore(f"sqlite:///{db}")
    try:
        assert store.count_predictions("churn") == 1
    finally:
        store.close()


# -- versions, A/B groups and shadows, built from settings as serve builds them ------------


@pytest.fixture
def version_files(trained: Trained, tmp_path: Path) -> dict[str, Path]:
    """The churn classifier and a weaker one (other answers on some rows), as files."""
    weak = Pipeline([("prep", _preprocess()), ("model", LogisticRegression(C=0.002))])
    y = trained.classifier.predict(trained.frame)
    flipped = np.where(np.random.default_rng(3).random(y.size) < 0.25, "yes", y)
    weak.fit(trained.frame, flipped)
    out = {"schema": save_schema(trained.schema, tmp_path / "schema.yaml")}
    for name, model in (("strong", trained.classifier), ("weak", weak)):
        out[name] = tmp_path / f"{name}.joblib"
        joblib.dump(model, out[name])
    out["db"] = tmp_path / "versions.db"
    return out


def _settings(files: dict[str, Path], *models: dict[str, Any]) -> Settings:
    return Settings(
        store=StoreSettings(url=f"sqlite:///{files['db']}", flush_interval_seconds=0.02),
        models=[ModelSettings.model_validate({"schema": files["schema"], **m}) for m in models],
    )


def _infer(client: TestClient, path: str, rows: list[dict[str, Any]]) -> Any:
    return client.post(path, json={"inputs": churn_inputs(rows)})


def test_versions_address_the_live_one_and_follow_a_rollback(
    version_files: dict[str, Path], good_rows: list[dict[str, Any]]
) -> None:
    app = build_app(
        _settings(
            version_files,
            {
                "name": "churn",
                "version": "2",
                "path": version_files["strong"],
                "previous": [{"version": "1", "path": version_files["weak"]}],
            },
        )
    )
    with TestClient(app) as client:
        assert client.get("/v2/models/churn").json()["versions"] == ["2", "1"]
        assert client.get("/v2/models/churn/versions/1").status_code == 200
        assert client.get("/v2/models/churn/versions/1/ready").status_code == 404
        old = _infer(client, "/v2/models/churn/versions/1/infer", good_rows)
        assert old.status_code == 404
        assert "version '1' is loaded but not live" in old.json()["error"]
        live = _infer(client, "/v2/models/churn/versions/2/infer", good_rows)
        assert live.json()["model_version"] == "2"
        assert client.post("/v1/models/churn/rollback").status_code == 200
        rolled = _infer(client, "/v2/models/churn/versions/1/infer", good_rows)
        assert rolled.status_code == 200 and rolled.json()["model_version"] == "1"
        assert _infer(client, "/v2/models/churn/infer", good_rows).json()["model_version"] == "1"
        text = client.get("/metrics").text
    assert sample(text, "inferwatch_requests_rejected_total", model="churn") == 1
    store = SQLStore(f"sqlite:///{version_files['db']}")
    try:
        assert store.count_predictions("churn", "2") == 5
        assert store.count_predictions("churn", "1") == 10
    finally:
        store.close()


def test_an_ab_group_answers_through_a_member_and_shadows_score_v2_rows(
    version_files: dict[str, Path], good_rows: list[dict[str, Any]]
) -> None:
    app = build_app(
        _settings(
            version_files,
            {"name": "a", "path": version_files["strong"], "ab_group": "g", "traffic_share": 50},
            {"name": "b", "path": version_files["weak"], "ab_group": "g", "traffic_share": 50},
            {"name": "c", "path": version_files["weak"], "shadow_of": "a"},
        )
    )
    seen = {"a": 0, "b": 0}
    with TestClient(app) as client:
        for _ in range(20):
            r = _infer(client, "/v2/models/g/infer", good_rows[:1])
            assert r.status_code == 200, r.text
            assert r.headers["x-model-name"] == r.json()["model_name"]
            seen[r.json()["model_name"]] += 1
        meta = client.get("/v2/models/g").json()
        assert meta["name"] == "g" and meta["parameters"]["members"] == ["a", "b"]
        assert client.get("/v2/models/g/ready").json()["ready"] is True
        assert _infer(client, "/v2/models/g/versions/1/infer", good_rows).status_code == 404
        refused = client.post("/v2/models/g/infer", json={"inputs": churn_inputs(good_rows)[:2]})
        assert refused.status_code == 400
        assert _infer(client, "/v2/models/a/infer", good_rows).status_code == 200
        text = client.get("/metrics").text
    assert seen["a"] > 0 and seen["b"] > 0, seen
    refusals = sum(sample(text, "inferwatch_requests_rejected_total", model=m) for m in "ab")
    assert refusals == 1
    assert sample(text, "inferwatch_requests_rejected_total", model="g") == 0
    store = SQLStore(f"sqlite:///{version_files['db']}")
    try:
        assert store.count_predictions("b", "1") == seen["b"]
        assert store.count_predictions("a", "1") == seen["a"] + 5
        # the shadow scored every row its primary answered, V2's included
        assert store.count_predictions("c", "1") == seen["a"] + 5
    finally:
        store.close()


class _Labels:
    """A classifier that names its classes but gives no probabilities (or raises)."""

    flavor = "python"
    classes = ("no", "yes")

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def predict(self, instances: Any) -> list[ModelPrediction]:
        if self.fail:
            raise RuntimeError("internal detail that must not leak")
        return [ModelPrediction("yes") for _ in instances]


def test_model_failures_and_missing_probabilities(
    make_app: AppFactory, trained: Trained, good_rows: list[dict[str, Any]]
) -> None:
    served = make_app(
        extra_models=[
            ("labels", _Labels(), trained.schema),
            ("broken", _Labels(True), trained.schema),
        ]
    )
    with TestClient(served.app) as client:
        r = _infer(client, "/v2/models/labels/infer", good_rows)
        assert [o["name"] for o in r.json()["outputs"]] == ["predict"]  # what it can give
        asked = client.post(
            "/v2/models/labels/infer",
            json={"inputs": churn_inputs(good_rows), "outputs": [{"name": "predict_proba"}]},
        )
        assert asked.status_code == 400 and asked.json()["code"] == "unknown_output"
        assert "gave no probabilities" in asked.json()["error"]
        broken = _infer(client, "/v2/models/broken/infer", good_rows)
        assert broken.status_code == 500 and broken.json()["code"] == "model_error"
        assert "internal detail" not in broken.text
        assert _infer(client, "/v2/models/churn/infer", good_rows).status_code == 200
        text = client.get("/metrics").text
    assert sample(text, "inferwatch_requests_total", model="labels", status="400") == 1
    assert sample(text, "inferwatch_requests_rejected_total", model="labels") == 1
    assert sample(text, "inferwatch_requests_total", model="broken", status="500") == 1
    served.monitor.flush()
    assert served.store.count_predictions("labels", "1") == 5  # the refused batch: none
    assert served.store.count_predictions("broken", "1") == 0
