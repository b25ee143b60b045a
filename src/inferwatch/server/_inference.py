"""Running a served model on validated rows: the one place the server calls a model.

Every route that predicts (V1, the Open Inference Protocol) calls :func:`infer`, so the way
a model is run (on which thread, gathered into which batch, under which timeout) is decided
here once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from inferwatch.ports import Prediction
from inferwatch.server._errors import ApiError
from inferwatch.server._served import ServedModel

__all__ = ["infer"]

log = logging.getLogger("inferwatch.server")


async def infer(served: ServedModel, rows: list[dict[str, Any]]) -> Sequence[Prediction]:
    """The model's predictions for ``rows``, one per row, in order.

    Raises :class:`ApiError` 500 ``model_error`` when the model raises or answers with the
    wrong number of predictions (logged with its traceback; the client sees no trace).
    """
    t0 = time.perf_counter()
    try:
        predictions = served.adapter.predict(rows)
        if len(predictions) != len(rows):
            raise RuntimeError(f"{len(predictions)} predictions for {len(rows)} instances")
    except Exception as exc:
        log.exception("model %s version %s failed to predict", served.name, served.version)
        raise ApiError(
            500,
            "model_error",
            f"model {served.name!r} failed to predict ({type(exc).__name__}); "
            "the server log has the details",
        ) from None
    served.metrics.inference.observe(time.perf_counter() - t0)
    return predictions
