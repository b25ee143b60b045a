"""OpenTelemetry spans of prediction requests: in memory, and exported over real OTLP/HTTP
to a receiver on 127.0.0.1 that decodes the protobuf the exporter sends."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics

from inferwatch.config import TracingSettings, load_settings
from inferwatch.demo import make_customers, to_instances
from inferwatch.tracing import build_tracing, otlp_endpoint
from tests.server.conftest import AppFactory, TestClient

GOOD = {"age": 41, "income": 52_000.5, "plan": "basic"}
PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{PARENT_TRACE}-00f067aa0ba902b7-01"


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def _times(span: ReadableSpan) -> tuple[int, int]:
    assert span.start_time is not None and span.end_time is not None
    return span.start_time, span.end_time


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def _rows(served: Any) -> list[Any]:
    served.monitor.prediction_log.flush(5.0)
    return list(served.store._predictions.values())


def test_a_request_is_a_server_span_with_four_children_under_the_callers_trace(
    make_app: AppFactory, exporter: InMemorySpanExporter
) -> None:
    tracing = build_tracing(TracingSettings(), exporter=exporter)
    served = make_app(tracing=tracing)
    with TestClient(served.app) as client:
        r = client.post(
            "/v1/models/churn/predict",
            json={"instances": [GOOD, GOOD]},
            headers={"traceparent": TRACEPARENT},
        )
        assert r.status_code == 200
    spans = {s.name: s for s in exporter.get_finished_spans()}
    server = spans["POST /v1/models/{name}/predict"]
    assert server.kind == SpanKind.SERVER
    assert f"{server.context.trace_id:032x}" == PARENT_TRACE
    assert server.parent is not None and f"{server.parent.span_id:016x}" == "00f067aa0ba902b7"
    assert _attrs(server)["inferwatch.model"] == "churn"
    assert _attrs(server)["inferwatch.rows"] == 2
    assert _attrs(server)["http.response.status_code"] == 200
    children = [spans[n] for n in ("validate", "queue", "infer", "log")]
    for child in children:
        assert child.parent is not None and child.parent.span_id == server.context.span_id
        assert _times(server)[0] <= _times(child)[0] <= _times(child)[1] <= _times(server)[1]
    # one after the other, in the order the request went through them
    for before, after in itertools.pairwise(children):
        assert _times(before)[1] <= _times(after)[0] + 1_000  # ns rounding
    assert _attrs(spans["infer"])["inferwatch.batch_rows"] == 2
    rows = _rows(served)
    assert {row.trace_id for row in rows} == {PARENT_TRACE}
    exposition = openmetrics(served.metrics.registry).decode()  # type: ignore[no-untyped-call]
    assert f'trace_id="{PARENT_TRACE}"' in exposition


def test_an_untraced_caller_gets_a_new_trace_stored_with_its_rows(
    make_app: AppFactory, exporter: InMemorySpanExporter
) -> None:
    served = make_app(tracing=build_tracing(TracingSettings(), exporter=exporter))
    with TestClient(served.app) as client:
        assert client.post("/v1/models/churn/predict", json={"instances": [GOOD]}).is_success
    (server,) = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert server.parent is None
    (row,) = _rows(served)
    assert row.trace_id == f"{server.context.trace_id:032x}"


def test_a_failing_model_marks_the_span_as_an_error(
    make_app: AppFactory, exporter: InMemorySpanExporter
) -> None:
    class Broken:
        flavor, classes = "python", None

        def predict(self, instances: Any) -> Any:
            raise RuntimeError("broken")

    served = make_app(
        tracing=build_tracing(TracingSettings(), exporter=exporter),
        extra_models=[("broken", Broken(), make_app().models["churn"].schema)],
    )
    with TestClient(served.app) as client:
        r = client.post("/v1/models/broken/predict", json={"instances": [GOOD]})
        assert r.status_code == 500
    (server,) = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert server.status.status_code == StatusCode.ERROR
    assert _attrs(server)["http.response.status_code"] == 500
    assert "log" not in {s.name for s in exporter.get_finished_spans()}
    # the error counter and the latency bucket carry the failed request's trace
    trace = f"{server.context.trace_id:032x}"
    text = openmetrics(served.metrics.registry).decode()  # type: ignore[no-untyped-call]
    failed = [
        line
        for line in text.splitlines()
        if line.startswith("inferwatch_requests_total{") and 'status="500"' in line
    ]
    assert len(failed) == 1 and f'trace_id="{trace}"' in failed[0], failed
    assert "request_id=" in failed[0]


def test_sampling_follows_the_ratio_and_the_callers_flag(
    make_app: AppFactory, exporter: InMemorySpanExporter
) -> None:
    served = make_app(tracing=build_tracing(TracingSettings(sample_ratio=0), exporter=exporter))
    with TestClient(served.app) as client:
        client.post("/v1/models/churn/predict", json={"instances": [GOOD]})
        assert exporter.get_finished_spans() == ()  # none sampled, no trace id stored
        sampled = {"traceparent": TRACEPARENT}  # ...unless the caller sampled it
        client.post("/v1/models/churn/predict", json={"instances": [GOOD]}, headers=sampled)
    assert {s.context.trace_id for s in exporter.get_finished_spans()} == {int(PARENT_TRACE, 16)}
    assert sorted(str(r.trace_id) for r in _rows(served)) == [PARENT_TRACE, "None"]


def test_nothing_is_traced_unless_an_endpoint_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert build_tracing(TracingSettings()) is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")
    assert otlp_endpoint(TracingSettings()) == "http://127.0.0.1:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9/t")
    assert otlp_endpoint(TracingSettings()) == "http://127.0.0.1:9/t"
    configured = TracingSettings(otlp_endpoint="http://127.0.0.1:1/v1/traces")
    assert otlp_endpoint(configured) == "http://127.0.0.1:1/v1/traces"


class _Receiver(BaseHTTPRequestHandler):
    received: list[ExportTraceServiceRequest]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.received.append(request)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def otlp_receiver() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    received: list[ExportTraceServiceRequest] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", received
    server.shutdown()
    server.server_close()


def test_serve_exports_spans_over_otlp_http(
    otlp_receiver: tuple[str, list[ExportTraceServiceRequest]], demo_workdir: Path
) -> None:
    """``tracing.otlp_endpoint`` in the demo's config: the spans reach a real OTLP/HTTP
    endpoint by shutdown, with the service name and the stored trace id."""
    from inferwatch.server import build_app

    url, received = otlp_receiver
    settings = load_settings(
        demo_workdir / "inferwatch.yaml",
        {
            "tracing": {"otlp_endpoint": url, "service_name": "churn-api"},
            "store": {"url": "memory://"},
        },
    )
    app = build_app(settings)
    name = settings.models[0].name
    instance = to_instances(make_customers(1, np.random.default_rng(3)))[0]
    with TestClient(app) as client:
        r = client.post(
            f"/v1/models/{name}/predict",
            json={"instances": [instance]},
            headers={"traceparent": TRACEPARENT},
        )
        assert r.status_code == 200, r.text
    spans = [
        (rs, span)
        for request in received
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]
    names = {span.name for _, span in spans}
    assert {"POST /v1/models/{name}/predict", "validate", "queue", "infer", "log"} <= names
    assert {span.trace_id.hex() for _, span in spans} == {PARENT_TRACE}
    service = {
        a.value.string_value
        for rs, _ in spans
        for a in rs.resource.attributes
        if a.key == "service.name"
    }
    assert service == {"churn-api"}
