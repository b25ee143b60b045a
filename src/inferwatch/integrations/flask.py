"""Flask: the ``Inferwatch`` extension, monitored predict routes and ``/metrics``.

::

    inferwatch = Inferwatch(app, monitor)           # GET /metrics, monitor closed at exit
    inferwatch.add_predict_route(model)             # POST /predict

    @inferwatch.predict_route("/score")             # or around your own function
    def score(rows: list[dict]) -> list: ...

Flask's extension pattern: ``Inferwatch(monitor=monitor)`` then ``init_app(app)`` works
too, and routes added before ``init_app`` are registered there.  The routes answer as
the server's V1 route does (see :class:`~inferwatch.integrations._core.Endpoint`):
validated with the monitor's schema, the model timed, the batch logged with the W3C
``traceparent`` trace id, every answer counted.

The monitor is closed by ``atexit`` (``close_at_exit``): Flask has no application
shutdown hook, and its teardown callbacks run after every request or app context, not
once when the process ends; a WSGI server's worker that exits normally runs ``atexit``
handlers, so the buffered rows are written.  Call :meth:`Inferwatch.close` to close
earlier (closing twice is harmless).
"""

from __future__ import annotations

import atexit
import inspect
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request

from inferwatch._traceparent import trace_id
from inferwatch.integrations._core import DEFAULT_MAX_BODY_BYTES, Answer, Endpoint, Refused

if TYPE_CHECKING:
    from inferwatch.monitor import Monitor

__all__ = ["Inferwatch"]

_JSON = "application/json"


class Inferwatch:
    """Monitor a Flask app's predict routes with ``monitor``; serve its metrics.

    ``metrics_path`` (None: none) answers Prometheus scrapes (OpenMetrics when the
    scraper asks for it); ``close_at_exit`` closes the monitor when the process exits.
    """

    def __init__(
        self,
        app: Flask | None = None,
        monitor: Monitor | None = None,
        *,
        metrics_path: str | None = "/metrics",
        close_at_exit: bool = True,
    ) -> None:
        if monitor is None:
            raise TypeError("Inferwatch needs monitor=: a Monitor.from_reference/from_schema")
        self.monitor = monitor
        self.metrics_path = metrics_path
        self._routes: list[tuple[str, str, Callable[[], Response]]] = []
        self._apps: list[Flask] = []
        if close_at_exit:
            atexit.register(self.close)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register ``/metrics`` and the predict routes on ``app``."""
        app.extensions["inferwatch"] = self
        if self.metrics_path is not None:
            app.add_url_rule(
                self.metrics_path, "inferwatch_metrics", self._metrics, methods=["GET"]
            )
        for path, endpoint, view in self._routes:
            app.add_url_rule(path, endpoint, view, methods=["POST"])
        self._apps.append(app)

    def add_predict_route(
        self,
        model: Any,
        path: str = "/predict",
        *,
        classes: Sequence[Any] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        endpoint: str | None = None,
    ) -> Endpoint:
        """Serve ``model`` at ``POST path``: a scikit-learn estimator (anything with
        ``predict``), an inferwatch ``ModelAdapter``, or a function of the validated rows
        (a list of dicts) returning one output per row (with ``classes``: probabilities,
        one column per class).  ``endpoint`` is Flask's endpoint name."""
        ep = Endpoint(self.monitor, model, classes=classes, max_body_bytes=max_body_bytes)
        if ep.model.is_async:
            raise TypeError("a Flask predict route takes a synchronous model function")

        def view() -> Response:
            return _answer(ep)

        name = endpoint or f"inferwatch_predict_{getattr(model, '__name__', ep.watch.name)}"
        view.__name__ = name
        self._routes.append((path, name, view))
        for app in self._apps:
            app.add_url_rule(path, name, view, methods=["POST"])
        return ep

    def predict_route(
        self,
        path: str = "/predict",
        *,
        classes: Sequence[Any] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """:meth:`add_predict_route` as a decorator of the model function (returned
        unchanged, so it can still be called directly)."""

        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            if inspect.iscoroutinefunction(function):
                raise TypeError("a Flask predict route takes a synchronous model function")
            self.add_predict_route(function, path, classes=classes, max_body_bytes=max_body_bytes)
            return function

        return register

    def close(self, timeout: float | None = 30.0) -> bool:
        """Close the monitor: the buffered rows written, the drift thread stopped."""
        return self.monitor.close(timeout)

    def _metrics(self) -> Response:
        body, content_type = self.monitor.render_metrics(request.headers.get("Accept"))
        return Response(body, content_type=content_type)


def _answer(endpoint: Endpoint) -> Response:
    start = time.perf_counter()
    with endpoint.watch.inflight():
        try:
            rows = endpoint.rows(_read_body(endpoint, start), request.content_type, start)
        except Refused as refused:
            return _response(refused.answer)
        trace = trace_id(request.headers.get("traceparent"))
        return _response(endpoint.answer(rows, start, trace))


def _read_body(endpoint: Endpoint, start: float) -> bytes:
    """The body, refused (413, counted) past the limit: before reading when it says so."""
    limit = endpoint.max_body_bytes
    declared = request.content_length
    if declared is not None and declared > limit:
        raise endpoint.refused(endpoint.too_large(), start)
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise endpoint.refused(endpoint.too_large(), start)
    return body


def _response(answer: Answer) -> Response:
    return Response(answer.body, answer.status, headers=answer.headers, mimetype=_JSON)
