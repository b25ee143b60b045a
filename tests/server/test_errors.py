"""Every bad input gets the right 4xx in one JSON shape, is counted, stores nothing, and the
server keeps serving; unexpected errors are a generic 500 with no stack trace."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.server.conftest import AppFactory, Served, TestClient

GOOD = {"age": 41, "income": 52_000.5, "plan": "basic"}
JSON = {"content-type": "application/json"}


def body(*rows: dict[str, Any], **extra: Any) -> bytes:
    return json.dumps({"instances": list(rows), **extra}).encode()


def raw(text: str) -> bytes:
    """A body with a raw JSON token (NaN, Infinity ...) in ``income``."""
    return b'{"instances": [{"age": 41, "income": ' + text.encode() + b', "plan": "basic"}]}'


@dataclass(frozen=True)
class Bad:
    id: str
    content: bytes
    status: int
    code: str
    field: str | None = None
    model: str = "churn"


CASES = [
    Bad("malformed_json", b'{"instances": [{"age": 41,', 400, "malformed_json"),
    Bad("not_utf8", b'{"instances": [{"plan": "\xff\xfe"}]}', 400, "malformed_json"),
    Bad("empty_body", b"", 400, "malformed_json"),
    Bad("missing_feature", body({"age": 41, "plan": "basic"}), 422, "missing_feature", "income"),
    Bad("wrong_type", body({**GOOD, "age": "forty-one"}), 422, "wrong_type", "age"),
    Bad("bool_for_number", body({**GOOD, "income": True}), 422, "wrong_type", "income"),
    Bad("unknown_feature", body({**GOOD, "colour": "teal"}), 422, "unknown_feature", "colour"),
    Bad("nan_token", raw("NaN"), 422, "non_finite", "income"),
    Bad("infinity_token", raw("Infinity"), 422, "non_finite", "income"),
    Bad("minus_infinity_token", raw("-Infinity"), 422, "non_finite", "income"),
    Bad("overflow_1e999", raw("1e999"), 422, "non_finite", "income"),
    Bad("null", raw("null"), 422, "null_not_allowed", "income"),
    Bad("instance_not_object", body(1), 422, "wrong_type", "instances[0]"),  # type: ignore[arg-type]
    Bad("empty_batch", body(), 400, "empty_batch", "instances"),
    Bad("batch_too_large", body(*[GOOD] * 6), 413, "batch_too_large", "instances"),
    Bad("body_too_large", body({**GOOD, "plan": "x" * 2000}), 413, "body_too_large"),
    Bad("unknown_model", body(GOOD), 404, "unknown_model", model="nope"),
    Bad("body_not_object", b"[1, 2]", 400, "invalid_body", "(body)"),
    Bad("body_is_string", b'"instances"', 400, "invalid_body", "(body)"),
    Bad("no_instances", b'{"inputs": []}', 400, "invalid_body", "instances"),
    Bad("instances_not_list", b'{"instances": {"age": 41}}', 400, "invalid_body", "instances"),
    Bad("unknown_top_level_key", body(GOOD, extra=1), 400, "invalid_body", "extra"),
    Bad("parameters_not_object", body(GOOD, parameters=[1]), 400, "invalid_body", "parameters"),
    # a lone surrogate (as a JSON escape) has no UTF-8: it broke the store and the answer
    Bad(
        "lone_surrogate_in_a_value",
        rb'{"instances": [{"age": 41, "income": 1.0, "plan": "b\ud800"}]}',
        400,
        "invalid_unicode",
        "plan",
    ),
    Bad(
        "lone_surrogate_in_a_feature_name",
        rb'{"instances": [{"age": 41, "income": 1.0, "plan": "basic", "x\udc00": 1}]}',
        400,
        "invalid_unicode",
        "x\\udc00",
    ),
    Bad(
        "lone_surrogate_in_a_top_level_key",
        rb'{"instances": [], "\ud800": 1}',
        400,
        "invalid_unicode",
        "\\ud800",
    ),
    Bad(  # a surrogate encoded as raw UTF-8 bytes (CESU-8): the stdlib decodes it as one
        "lone_surrogate_as_raw_bytes",
        b'{"instances": [{"age": 41, "income": 1.0, "plan": "b\xed\xa0\x80"}]}',
        400,
        "invalid_unicode",
        "plan",
    ),
    # an integer no float can hold: OverflowError in the model
    Bad("integer_of_400_digits", raw("1" * 400), 422, "non_finite", "income"),
    Bad("negative_integer_of_400_digits", raw("-" + "9" * 400), 422, "non_finite", "income"),
]

LIMITS = {"max_batch_size": 5, "max_body_bytes": 1024}


@pytest.fixture
def limited(make_app: AppFactory) -> Served:
    return make_app(server=LIMITS)


@pytest.fixture
def lclient(limited: Served) -> Iterator[TestClient]:
    with TestClient(limited.app) as c:
        yield c


def assert_error_shape(payload: Any, code: str) -> dict[str, Any]:
    assert set(payload) == {"error"}
    err = payload["error"]
    assert set(err) == {"code", "message", "details"}
    assert err["code"] == code
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["details"], list)
    for d in err["details"]:
        assert set(d) == {"reason", "field", "instance", "kind", "message"}
    return err  # type: ignore[no-any-return]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_counted_and_not_stored(
    case: Bad, limited: Served, lclient: TestClient
) -> None:
    label = case.model if case.model in limited.models else "unknown"
    before = limited.sample("inferwatch_requests_rejected_total", model=label, reason=case.code)

    r = lclient.post(
        f"/v1/models/{case.model}/predict",
        content=case.content,
        headers={"content-type": "application/json"},
    )

    assert r.status_code == case.status, r.text
    err = assert_error_shape(r.json(), case.code)
    assert "Traceback" not in r.text
    assert r.headers["x-request-id"]
    if case.field is not None:
        assert case.field in [d["field"] for d in err["details"]]
    after = limited.sample("inferwatch_requests_rejected_total", model=label, reason=case.code)
    assert after == before + 1
    if label != "unknown":
        status = str(case.status)
        assert limited.sample("inferwatch_requests_total", model=label, status=status) == 1
    assert limited.monitor.flush(5)
    assert limited.store.count_predictions() == 0


def test_field_errors_name_every_field_and_instance(lclient: TestClient, limited: Served) -> None:
    rows = [GOOD, {"age": "x", "plan": 3.5}, {**GOOD, "extra": 1}]
    r = lclient.post("/v1/models/churn/predict", content=body(*rows), headers=JSON)

    assert r.status_code == 422
    details = {(d["instance"], d["field"], d["reason"]) for d in r.json()["error"]["details"]}
    assert details == {
        (1, "age", "wrong_type"),
        (1, "income", "missing_feature"),
        (1, "plan", "wrong_type"),
        (2, "extra", "unknown_feature"),
    }
    text = limited.metrics_text()
    from tests.server.conftest import sample

    errors = "inferwatch_validation_errors_total"
    assert sample(text, errors, model="churn", reason="wrong_type", kind="numeric") == 1
    assert sample(text, errors, model="churn", reason="wrong_type", kind="categorical") == 1
    assert sample(text, errors, model="churn", reason="missing_feature") == 1
    assert sample(text, errors, model="churn", reason="unknown_feature") == 1


def test_deeply_nested_json_is_malformed_not_a_crash(client: TestClient) -> None:
    for content in (b"[" * 200_000, b'{"instances": ' + b"[" * 200_000):
        r = client.post("/v1/models/churn/predict", content=content, headers=JSON)
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "malformed_json"


def test_chunked_body_over_the_limit_is_refused(lclient: TestClient, limited: Served) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"instances": [{"age": 41, "income": 1.0, "plan": "'
        for _ in range(40):
            yield b"x" * 100
        yield b'"}]}'

    r = lclient.post("/v1/models/churn/predict", content=chunks(), headers=JSON)

    assert r.status_code == 413
    assert r.json()["error"]["code"] == "body_too_large"


def test_after_every_bad_input_a_good_request_still_succeeds(
    lclient: TestClient, limited: Served
) -> None:
    for case in CASES:
        r = lclient.post(f"/v1/models/{case.model}/predict", content=case.content, headers=JSON)
        assert r.status_code == case.status

    ok = lclient.post("/v1/models/churn/predict", content=body(GOOD), headers=JSON)

    assert ok.status_code == 200
    assert limited.monitor.flush(5)
    assert limited.store.count_predictions() == 1
    assert limited.sample("inferwatch_requests_rejected_total") == len(CASES)


def test_unknown_route_and_method_answer_in_our_shape(client: TestClient) -> None:
    missing = client.get("/v3/nothing")  # /v2 answers in the Open Inference Protocol shape
    assert missing.status_code == 404
    assert_error_shape(missing.json(), "not_found")
    wrong_method = client.get("/v1/models/churn/predict")
    assert wrong_method.status_code == 405
    assert_error_shape(wrong_method.json(), "method_not_allowed")
    assert "POST" in wrong_method.headers["allow"]


class ExplodingAdapter:
    flavor = "test"

    @property
    def classes(self) -> None:
        raise RuntimeError("internal detail that must not leak")

    def predict(self, instances: Any) -> list[Any]:
        return []


def test_unexpected_error_is_a_generic_500_and_is_logged(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    served = make_app()
    # break the listing after start-up: describe() reads the adapter's classes
    exploding = ExplodingAdapter()
    with TestClient(served.app, raise_server_exceptions=False) as client:
        object.__setattr__(served.models["spend"], "adapter", exploding)
        with caplog.at_level(logging.ERROR, logger="inferwatch.server"):
            r = client.get("/v1/models")

        assert r.status_code == 500
        assert_error_shape(r.json(), "internal_error")
        assert "internal detail" not in r.text
        assert "Traceback" not in r.text
        assert r.headers["x-request-id"]
        assert "internal detail that must not leak" in caplog.text
        assert client.get("/healthz").status_code == 200


def test_a_failure_after_the_model_is_a_counted_500(served: Served) -> None:
    with TestClient(served.app, raise_server_exceptions=False) as client:
        served.monitor.close()  # the log refuses rows: an error no route expects
        r = client.post("/v1/models/churn/predict", content=body(GOOD), headers=JSON)

        assert r.status_code == 500
        assert_error_shape(r.json(), "internal_error")
        assert served.sample("inferwatch_requests_total", model="churn", status="500") == 1


def test_request_validation_errors_use_our_shape(served: Served) -> None:
    from fastapi.exceptions import RequestValidationError
    from starlette.requests import Request
    from starlette.responses import Response

    handler = served.app.exception_handlers[RequestValidationError]
    exc = RequestValidationError(
        [{"type": "int_parsing", "loc": ("query", "n"), "msg": "not an int", "input": "x"}]
    )
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    response: Response = asyncio.run(handler(request, exc))  # type: ignore[arg-type]

    assert response.status_code == 422
    err = assert_error_shape(json.loads(bytes(response.body)), "invalid_request")
    assert err["details"][0]["field"] == "query.n"


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
        "application/json-seq",
    ],
)
def test_a_body_that_is_not_declared_json_is_refused_with_415(
    content_type: str | None, limited: Served, lclient: TestClient
) -> None:
    # a web page can post text/plain and forms cross-origin without a preflight:
    # accepting them let any open page pollute a loopback server's store and drift
    headers = {} if content_type is None else {"content-type": content_type}

    r = lclient.post("/v1/models/churn/predict", content=body(GOOD), headers=headers)

    assert r.status_code == 415, r.text
    err = assert_error_shape(r.json(), "unsupported_media_type")
    assert "application/json" in err["message"]
    reason = "unsupported_media_type"
    assert limited.sample("inferwatch_requests_rejected_total", model="churn", reason=reason) == 1
    assert limited.sample("inferwatch_requests_total", model="churn", status="415") == 1
    assert limited.monitor.flush(5)
    assert limited.store.count_predictions() == 0


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.api+json",
        "application/merge-patch+json; charset=utf-8",
    ],
)
def test_json_media_types_are_accepted(content_type: str, lclient: TestClient) -> None:
    r = lclient.post(
        "/v1/models/churn/predict", content=body(GOOD), headers={"content-type": content_type}
    )

    assert r.status_code == 200, r.text


def test_a_huge_unknown_feature_name_is_echoed_truncated(make_app: AppFactory) -> None:
    served = make_app()
    name = "n" * 500_000
    with TestClient(served.app) as client:
        r = client.post("/v1/models/churn/predict", content=body({**GOOD, name: 1}), headers=JSON)

    assert r.status_code == 422
    assert len(r.content) < 2_000, len(r.content)
    detail = r.json()["error"]["details"][0]
    assert detail["reason"] == "unknown_feature"
    assert detail["field"].startswith("n" * 50)
    assert "500000 characters" in detail["field"]


def test_a_huge_unknown_model_name_is_echoed_truncated(client: TestClient) -> None:
    r = client.post("/v1/models/" + "m" * 20_000 + "/predict", content=body(GOOD), headers=JSON)

    assert r.status_code == 404
    assert len(r.content) < 2_000


def test_a_lone_surrogate_deep_in_a_nested_value_is_a_400_not_a_crash(client: TestClient) -> None:
    for depth in (10, 500, 980):
        content = (
            b'{"instances": [{"age": 41, "income": 1.0, "plan": '
            + b"[" * depth + b'"\\ud800"' + b"]" * depth + b"}]}"
        )  # fmt: skip
        r = client.post("/v1/models/churn/predict", content=content, headers=JSON)

        assert r.status_code == 400, (depth, r.text)
        # past the decoder's own depth limit the body is refused as nested too deeply
        expected = {"invalid_unicode"} if depth <= 500 else {"invalid_unicode", "malformed_json"}
        assert r.json()["error"]["code"] in expected


def test_a_huge_unknown_path_is_echoed_truncated(client: TestClient) -> None:
    r = client.get("/v3/" + "p" * 30_000)

    assert r.status_code == 404
    assert len(r.content) < 1_000
    assert "30004 characters" in r.json()["error"]["message"]
