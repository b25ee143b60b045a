"""``monitored``: any predict function (or estimator) validated, timed and logged per call."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

from inferwatch.integrations._core import Model, Watch

if TYPE_CHECKING:
    from inferwatch.monitor import Monitor

__all__ = ["Monitored", "monitored"]


class Monitored:
    """A model whose every call is validated, timed, logged and counted by a monitor.

    Call it as you would call the model, with one of:

    - a list of dicts: the model gets the validated rows (a list of dicts) and the call
      returns what it returned;
    - a pandas DataFrame: the model gets a DataFrame of the validated rows (the schema's
      columns, in order, with the caller's index) and the call returns what it returned;
    - one dict: validated as a batch of one, the model gets a list of one row, and the call
      returns the first item of what it returned.

    A function must return one output per instance (a list, array or Series); with
    ``classes`` it returns probabilities, one row per instance and one column per class
    (``predict_proba``'s shape): the caller gets them as returned, and the log records the
    top class as the prediction, its probability as the score, and every class's. An
    estimator (anything with ``predict``) is run as the server runs it, through the
    scikit-learn adapter, and the call returns its predictions as a list.

    Each call: :class:`~inferwatch.errors.ValidationError` for a bad instance (counted in
    ``inferwatch_requests_rejected_total`` and ``inferwatch_requests_total`` with the
    server's 4xx status for it, the model not run); an exception from the model is counted
    as a 500 and re-raised unchanged (a return of the wrong length as
    :class:`~inferwatch.errors.ModelError`); otherwise the batch is logged with its
    latency and the model's own time, and counted as a 200. :meth:`with_ids` also returns
    the prediction ids, for :meth:`Monitor.log_labels` later.
    """

    def __init__(self, monitor: Monitor, model: Any, *, classes: Sequence[Any] | None = None):
        self.watch = Watch(monitor)
        self.model = Model(model, self.watch.names, classes=classes)
        if self.model.is_async:
            raise TypeError(
                "monitored() wraps a synchronous function; for an async one use the FastAPI "
                "integration (inferwatch.integrations.fastapi) or Monitor.log"
            )
        functools.update_wrapper(self, model, updated=())  # its name and docstring

    def __call__(self, instances: Any, *, trace_id: str | None = None) -> Any:
        return self.with_ids(instances, trace_id=trace_id)[0]

    def with_ids(self, instances: Any, *, trace_id: str | None = None) -> tuple[Any, list[str]]:
        """``(what the call returns, the prediction ids in instance order)``;
        ``trace_id`` (a W3C trace id) is stored with the rows."""
        start = time.perf_counter()
        watch = self.watch
        with watch.inflight():
            frame = _is_frame(instances)
            one = isinstance(instances, Mapping)
            if frame:
                batch: Any = instances.to_dict("records")
            elif one:
                batch = [instances]
            else:
                batch = instances
            rows = watch.validate(batch, start)
            t0 = time.perf_counter()
            try:
                as_frame = frame and self.model.adapter is None  # an adapter takes rows
                arg = _frame_of(rows, instances.index) if as_frame else rows
                returned = self.model.call(arg)
                inference = time.perf_counter() - t0
                predictions = self.model.predictions(returned, len(rows))
            except BaseException:
                watch.request(500, start)
                raise
            ids = watch.log(rows, predictions, start, inference, trace_id)
        if self.model.adapter is not None:
            returned = [p.value for p in predictions]
        if one:
            returned = _first(returned)
        return returned, ids


@overload
def monitored(
    monitor: Monitor, model: None = None, *, classes: Sequence[Any] | None = None
) -> Callable[[Callable[..., Any]], Monitored]: ...
@overload
def monitored(
    monitor: Monitor, model: Any, *, classes: Sequence[Any] | None = None
) -> Monitored: ...
def monitored(
    monitor: Monitor, model: Any = None, *, classes: Sequence[Any] | None = None
) -> Monitored | Callable[[Callable[..., Any]], Monitored]:
    """Watch a model's calls with ``monitor`` (built by ``Monitor.from_reference`` or
    ``from_schema``: its schema validates, its model name and version label the log).

    As a decorator, ``@monitored(monitor)`` on ``def predict(rows): ...``; or directly,
    ``predict = monitored(monitor, estimator)``. See :class:`Monitored` for the shapes a
    call takes and what it returns.
    """
    if model is None:
        return lambda fn: Monitored(monitor, fn, classes=classes)
    return Monitored(monitor, model, classes=classes)


def _is_frame(value: Any) -> bool:
    return hasattr(value, "to_dict") and hasattr(value, "columns") and hasattr(value, "index")


def _frame_of(rows: list[dict[str, Any]], index: Any) -> Any:
    import pandas as pd

    return pd.DataFrame(rows, columns=list(rows[0]), index=index)


def _first(returned: Any) -> Any:
    iloc = getattr(returned, "iloc", None)  # a Series: by position, not by label
    return iloc[0] if iloc is not None else returned[0]
