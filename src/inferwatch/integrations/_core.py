"""What every integration does around a model call: validate, time, predict, log, count.

The FastAPI route, the Flask extension and the plain decorator differ only in how a batch
arrives and how the answer leaves; this module holds the rest once, framework-free (no
FastAPI, Flask or Starlette import), so the three record a prediction exactly as
``inferwatch serve`` does:

- the monitor's validator (``Monitor.validate``: the server's schema check, refusals
  counted in ``inferwatch_requests_rejected_total``/``..._validation_errors_total``);
- the model's time in ``inferwatch_model_inference_duration_seconds`` and the whole
  call's in ``inferwatch_request_duration_seconds`` (through ``Monitor.log``);
- every answer in ``inferwatch_requests_total{status}``: 200, the refusal's 4xx, and
  500 for a model that raised or answered with the wrong number of predictions, which
  is what the server counts for a model error;
- ``inferwatch_inflight_requests`` around the whole call;
- the rows, outputs, probabilities and trace id in the prediction log.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from inferwatch._wire import encode_predictions, json_encoder
from inferwatch._wire import is_json_media_type as is_json_media_type  # re-exported
from inferwatch._wire import status_for as status_for  # re-exported
from inferwatch.errors import FieldError, ModelError, ValidationError, echo
from inferwatch.models import ModelPrediction, to_python
from inferwatch.ports import ModelAdapter, Prediction

if TYPE_CHECKING:
    from inferwatch.metrics import ModelMetrics
    from inferwatch.monitor import Monitor

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "MAX_ID_HEADER",
    "Answer",
    "Endpoint",
    "Model",
    "Refused",
    "Watch",
    "status_for",
]

log = logging.getLogger("inferwatch.integrations")

#: the largest request body a route reads, as the server's ``server.max_body_bytes``
DEFAULT_MAX_BODY_BYTES = 1_048_576
#: ``X-Prediction-Ids`` is sent for batches up to this size, as by the server
MAX_ID_HEADER = 100


class Watch:
    """The watched model version of a monitor, and the counting around one call of it."""

    def __init__(self, monitor: Monitor) -> None:
        watched = monitor.watched
        if watched is None:
            raise ValueError(
                "the integrations validate with the monitor's schema: build it with "
                "Monitor.from_reference or Monitor.from_schema, not Monitor(store)"
            )
        self.monitor = monitor
        self.name = watched.model
        self.version = watched.version
        self.names: tuple[str, ...] = watched.schema.names
        for_model = getattr(monitor.metrics, "for_model", None)
        self.counts: ModelMetrics | None = (
            for_model(self.name, self.version) if for_model is not None else None
        )

    @contextmanager
    def inflight(self) -> Iterator[None]:
        """``inferwatch_inflight_requests`` counts the call while it runs."""
        gauge = self.counts.inflight if self.counts is not None else None
        if gauge is not None:
            gauge.inc()
        try:
            yield
        finally:
            if gauge is not None:
                gauge.dec()

    def validate(self, instances: Any, start: float) -> list[dict[str, Any]]:
        """The validated rows; a refusal is counted (reason, fields and request status)."""
        try:
            return self.monitor.validate(instances)
        except ValidationError as exc:
            self.request(status_for(exc.code), start)
            raise

    def refuse(self, exc: ValidationError, start: float) -> int:
        """Count a refusal the validator did not see (the body itself); its HTTP status."""
        reject = getattr(self.monitor.metrics, "reject", None)
        if reject is not None:
            reject(self.name, exc.code)
        status = status_for(exc.code)
        self.request(status, start)
        return status

    def request(self, status: int, start: float | None) -> None:
        """Count an answer in ``inferwatch_requests_total`` (with its duration when
        ``start`` is given; a 200's duration is the latency ``Monitor.log`` observes)."""
        if self.counts is not None:
            self.counts.request(status, None if start is None else time.perf_counter() - start)

    def log(
        self,
        rows: Sequence[Mapping[str, Any]],
        predictions: Sequence[Prediction],
        start: float,
        inference_seconds: float,
        trace_id: str | None = None,
        *,
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Log a predicted batch, count it as a 200, return the prediction ids
        (``ids``, or new ones)."""
        ids = self.monitor.log(
            self.name,
            self.version,
            rows,
            [p.value for p in predictions],
            ids=ids,
            scores=[p.score for p in predictions],
            probabilities=[p.probabilities for p in predictions],
            latency_seconds=time.perf_counter() - start,
            inference_seconds=inference_seconds,
            trace_id=trace_id,
        )
        self.request(200, None)
        return ids


class Model:
    """The user's model as one call: a batch of validated rows in, predictions out.

    ``model`` is an inferwatch ``ModelAdapter`` (used as is), an object with ``predict``
    such as a scikit-learn estimator (behind the server's scikit-learn adapter: a DataFrame
    of the schema's columns, ``predict_proba`` when it has one), or a function of a batch.
    A function's return is read by :meth:`predictions`: one output per instance, or, with
    ``classes``, one row of probabilities per instance (columns in ``classes``' order).
    """

    def __init__(self, model: Any, names: Sequence[str], *, classes: Sequence[Any] | None) -> None:
        self.adapter: ModelAdapter | None = None
        self.function: Callable[..., Any] | None = None
        if isinstance(model, ModelAdapter):
            self.adapter = model
        elif not inspect.isroutine(model) and callable(getattr(model, "predict", None)):
            from inferwatch.models import SklearnAdapter

            self.adapter = SklearnAdapter(model, feature_names=names)
        elif callable(model):
            self.function = model
        else:
            raise TypeError(
                "model must be a function of a batch, an object with predict() (a "
                f"scikit-learn estimator) or an inferwatch ModelAdapter, not {type(model).__name__}"
            )
        if classes is not None and self.adapter is not None:
            raise TypeError("classes= is for a function returning probabilities, not an estimator")
        self.classes: list[Any] | None = None if classes is None else list(to_python(classes))
        if self.classes is not None and not self.classes:
            raise ValueError("classes= must name at least one class")
        self.is_async = self.function is not None and inspect.iscoroutinefunction(self.function)
        self.__name__ = getattr(model, "__name__", type(model).__name__)

    def call(self, batch: Any) -> Any:
        """What the model returns for ``batch`` (a function's own return, or predictions)."""
        if self.adapter is not None:
            return self.adapter.predict(batch)
        assert self.function is not None
        return self.function(batch)

    def predictions(self, returned: Any, n: int) -> list[Prediction]:
        """The model's return as ``n`` predictions; ModelError when it is not that."""
        if self.adapter is not None:
            preds = list(returned)
            if len(preds) != n:
                raise ModelError(f"{len(preds)} predictions for {n} instances")
            return preds
        if self.classes is not None:
            return self._from_proba(returned, n)
        if isinstance(returned, str | bytes | Mapping) or not hasattr(returned, "__len__"):
            raise ModelError(
                f"the model returned a {type(returned).__name__}; expected one output per "
                "instance (a list, array or Series)"
            )
        values = returned.tolist() if hasattr(returned, "tolist") else list(returned)
        if len(values) != n:
            raise ModelError(f"{len(values)} predictions for {n} instances")
        return [ModelPrediction(to_python(v)) for v in values]

    def _from_proba(self, returned: Any, n: int) -> list[Prediction]:
        assert self.classes is not None
        try:
            proba = np.asarray(returned, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"the model's probabilities are not numbers: {exc}") from None
        k = len(self.classes)
        if proba.shape != (n, k):
            raise ModelError(
                f"the model returned probabilities of shape {proba.shape}; expected ({n}, {k}): "
                "one row per instance, one column per class"
            )
        keys = [str(c) for c in self.classes]
        top: list[int] = proba.argmax(axis=1).tolist()
        rows: list[list[float]] = proba.tolist()
        return [
            ModelPrediction(self.classes[j], dict(zip(keys, row, strict=True)), row[j])
            for j, row in zip(top, rows, strict=True)
        ]


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer, framework-free: the route turns it into its own response."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Refused(Exception):
    """A request refused before the model ran (already counted): answer it as is."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


_encoder = json_encoder


def error_body(
    code: str, message: str, details: Sequence[FieldError | Mapping[str, Any]] = ()
) -> bytes:
    """The server's JSON error: ``{"error": {"code", "message", "details"}}``."""
    shown = [d.to_dict() if isinstance(d, FieldError) else dict(d) for d in details]
    return _encoder.encode({"error": {"code": code, "message": message, "details": shown}})


class Endpoint:
    """One predict route: a JSON body in, the server's V1 answer out.

    The body is a list of instances or ``{"instances": [...]}`` (the server's envelope).
    The answer is the server's: ``{"model", "version", "predictions": [{"id",
    "prediction", "probabilities"?}]}`` with ``X-Prediction-Ids``; a refusal is the
    server's JSON error with its 4xx, a model that fails a JSON 500 ``model_error``
    without a trace (the traceback goes to the ``inferwatch.integrations`` logger).
    """

    def __init__(
        self,
        monitor: Monitor,
        model: Any,
        *,
        classes: Sequence[Any] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be >= 1, got {max_body_bytes!r}")
        self.watch = Watch(monitor)
        self.model = Model(model, self.watch.names, classes=classes)
        self.max_body_bytes = max_body_bytes

    def too_large(self) -> ValidationError:
        return ValidationError(
            "body_too_large", f"the request body is larger than {self.max_body_bytes} bytes"
        )

    def refused(self, exc: ValidationError, start: float) -> Refused:
        """A body-level refusal (size, media type), counted."""
        status = self.watch.refuse(exc, start)
        return Refused(Answer(status, error_body(exc.code, exc.message, exc.errors)))

    def rows(self, body: bytes, content_type: str | None, start: float) -> list[dict[str, Any]]:
        """The validated rows of a request body; raises :class:`Refused` (counted)."""
        try:
            if not is_json_media_type(content_type):
                got = "no Content-Type" if not content_type else f"{echo(content_type)!r}"
                raise ValidationError(
                    "unsupported_media_type",
                    f"the body must be JSON sent as Content-Type: application/json (got {got})",
                )
            if len(body) > self.max_body_bytes:
                raise self.too_large()
            instances = _instances(_decode(body))
        except ValidationError as exc:
            raise self.refused(exc, start) from None
        try:
            return self.watch.validate(instances, start)
        except ValidationError as exc:
            answer = Answer(status_for(exc.code), error_body(exc.code, exc.message, exc.errors))
            raise Refused(answer) from None

    def answer(self, rows: list[dict[str, Any]], start: float, trace_id: str | None) -> Answer:
        """Run a sync model on ``rows``, log and count: the answer (200 or 500)."""
        t0 = time.perf_counter()
        try:
            returned = self.model.call(rows)
        except Exception as exc:
            return self.failed(exc, start)
        return self.finish(rows, returned, start, time.perf_counter() - t0, trace_id)

    def finish(
        self,
        rows: list[dict[str, Any]],
        returned: Any,
        start: float,
        inference_seconds: float,
        trace_id: str | None,
    ) -> Answer:
        """Read the model's return, encode the answer, log and count it."""
        try:
            predictions = self.model.predictions(returned, len(rows))
            ids = [_new_id() for _ in rows]
            body = _encode(self.watch, ids, predictions)
        except Exception as exc:
            return self.failed(exc, start)
        self.watch.log(rows, predictions, start, inference_seconds, trace_id, ids=ids)
        headers = {"x-prediction-ids": ",".join(ids)} if len(ids) <= MAX_ID_HEADER else {}
        return Answer(200, body, headers)

    def failed(self, exc: BaseException, start: float) -> Answer:
        """A model that raised (or answered unusably): logged here, a JSON 500 there."""
        w = self.watch
        log.error("model %s version %s failed to predict", w.name, w.version, exc_info=exc)
        w.request(500, start)
        return Answer(
            500,
            error_body(
                "model_error",
                f"model {w.name!r} failed to predict ({type(exc).__name__}); "
                "the server log has the details",
            ),
        )


def _new_id() -> str:
    from inferwatch.monitor import new_prediction_id

    return new_prediction_id()


def _encode(watch: Watch, ids: list[str], predictions: Sequence[Prediction]) -> bytes:
    return encode_predictions(watch.name, watch.version, ids, predictions)


def _decode(body: bytes) -> Any:
    """JSON → Python, as the server decodes: msgspec, then the standard library so that
    ``NaN`` reaches the validator (a ``non_finite`` error naming the field)."""
    try:
        return msgspec.json.decode(body)
    except (msgspec.MsgspecError, ValueError, RecursionError):
        pass
    try:
        payload = json.loads(body)
    except RecursionError:
        raise ValidationError(
            "malformed_json", "the body is not valid JSON: nested too deeply"
        ) from None
    except ValueError as exc:
        raise ValidationError("malformed_json", f"the body is not valid JSON: {exc}") from None
    try:  # a lone surrogate escape ("\ud800") has no UTF-8 form: nor would the answer
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            "invalid_unicode",
            "the body holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape), "
            "which is not Unicode text",
        ) from None
    return payload


def _instances(payload: Any) -> Any:
    """The instances of a body: a JSON list, or the server's ``{"instances": [...]}``."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict) and "instances" in payload:
        return payload["instances"]
    raise ValidationError(
        "invalid_body",
        'the body must be a JSON list of instances or {"instances": [{...}, ...]}',
        (FieldError("wrong_type", "(body)", "expected a list of objects"),),
    )
