"""OpenTelemetry spans for prediction requests, exported over OTLP/HTTP when configured.

Each traced request gets a server span (``POST /v1/models/{name}/predict``; the caller's
W3C ``traceparent`` is its parent) and four children: ``validate`` (decode and schema
check), ``queue`` (waiting for the model's worker), ``infer`` (the model call, which may
serve several batched requests: ``inferwatch.batch_rows`` says how many rows it held) and
``log`` (metrics and the row queued for the store).  The server span's trace id is the one
stored with each prediction and carried by the latency exemplars, so a slow bucket in
Prometheus leads to its trace and its rows.

The spans are made after the fact on the event loop, from the times the request and the
worker recorded, rather than opened around the work: the model runs on a worker thread
for many requests at once, and a request that is not traced pays nothing but one check.
With no endpoint configured (``tracing.otlp_endpoint`` or the standard
``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``) nothing is imported or exported.  The provider
is the server's own, not the global one, so an application embedding inferwatch keeps its
own OpenTelemetry set-up.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inferwatch.config import TracingSettings

__all__ = ["RequestTimes", "Tracing", "build_tracing", "otlp_endpoint"]

_ENV_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def otlp_endpoint(settings: TracingSettings) -> str | None:
    """The traces URL: the config's, else OpenTelemetry's standard variables', else None.

    ``OTEL_EXPORTER_OTLP_ENDPOINT`` is a base URL that the exporter completes with
    ``/v1/traces``, as OpenTelemetry's specification says."""
    if settings.otlp_endpoint:
        return settings.otlp_endpoint
    if os.environ.get(_ENV_ENDPOINTS[0]):
        return os.environ[_ENV_ENDPOINTS[0]]
    base = os.environ.get(_ENV_ENDPOINTS[1])
    return base.rstrip("/") + "/v1/traces" if base else None


def _ns(perf: float) -> int:
    """A ``time.perf_counter()`` reading as wall-clock nanoseconds (for span times)."""
    return time.time_ns() - int((time.perf_counter() - perf) * 1e9)


@dataclass(slots=True)
class RequestTimes:
    """Where one request's time went, as ``time.perf_counter()`` readings."""

    start: float  # the request arrived
    validated: float = 0.0  # decoded and checked; handed to the model's worker
    started: float = 0.0  # its batch's model call began
    finished: float = 0.0  # the call returned
    logged: float = 0.0  # metrics and the store's buffer updated
    batch_rows: int = 0


class Tracing:
    """A tracer on the server's own provider, with a batching OTLP/HTTP exporter."""

    def __init__(self, provider: Any, service_name: str) -> None:
        from opentelemetry.trace import SpanKind
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider = provider
        self.tracer = provider.get_tracer("inferwatch")
        self.service_name = service_name
        self._propagator = TraceContextTextMapPropagator()
        self._server = SpanKind.SERVER

    def begin(self, route: str, headers: Mapping[str, str], start: float) -> Any:
        """The request's server span (started at ``start``, a perf_counter reading), or
        None when it is not sampled; its trace id is known at once, for the rows."""
        carrier = {"traceparent": headers.get("traceparent", "")}
        if "tracestate" in headers:
            carrier["tracestate"] = headers["tracestate"]
        span = self.tracer.start_span(
            route,
            context=self._propagator.extract(carrier),
            kind=self._server,
            start_time=_ns(start),
            attributes={"http.request.method": "POST", "http.route": route},
        )
        if not span.is_recording():
            span.end()
            return None
        return span

    @staticmethod
    def trace_id(span: Any) -> str:
        """The span's trace id as 32 hex digits (the prediction log's ``trace_id``)."""
        return f"{span.get_span_context().trace_id:032x}"

    def finish(
        self, span: Any, times: RequestTimes, status: int, attributes: Mapping[str, Any]
    ) -> None:
        """The four children from ``times``, then the server span's end."""
        from opentelemetry.trace import Status, StatusCode, set_span_in_context

        ctx = set_span_in_context(span)
        for name, a, b, extra in (
            ("validate", times.start, times.validated, None),
            ("queue", times.validated, times.started, None),
            ("infer", times.started, times.finished, {"inferwatch.batch_rows": times.batch_rows}),
            ("log", times.finished, times.logged, None),
        ):
            if b <= 0:  # never reached (the model failed before it)
                continue
            child = self.tracer.start_span(name, context=ctx, start_time=_ns(a), attributes=extra)
            child.end(end_time=_ns(max(a, b)))
        span.set_attributes({"http.response.status_code": status, **attributes})
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=_ns(time.perf_counter()))

    def shutdown(self) -> None:
        """Export what is buffered and stop the exporter (at the server's shutdown)."""
        self.provider.shutdown()


def build_tracing(settings: TracingSettings, exporter: Any = None) -> Tracing | None:
    """The server's tracing, or None when no endpoint is configured (and no ``exporter``
    is given: tests pass an in-memory one)."""
    endpoint = otlp_endpoint(settings)
    if endpoint is None and exporter is None:
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    except ImportError:
        from inferwatch.errors import ConfigError

        raise ConfigError(
            "tracing.otlp_endpoint is set but OpenTelemetry's SDK is not installed: "
            "pip install 'inferwatch[tracing]'"
        ) from None
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
    )
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=endpoint, timeout=5)  # a dead collector: 5 s
        provider.add_span_processor(BatchSpanProcessor(exporter))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider, settings.service_name)
