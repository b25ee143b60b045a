"""Running a served model on validated rows: the one place the server calls a model.

Every route that predicts (V1, the Open Inference Protocol) calls :func:`infer`, so the way
a model is run (on which thread, gathered into which batch, under which timeout) is decided
here once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inferwatch.ports import Prediction
from inferwatch.server._batching import ModelCallError, Overloaded
from inferwatch.server._errors import ApiError
from inferwatch.server._served import ServedModel
from inferwatch.tracing import RequestTimes

__all__ = ["infer"]


async def infer(
    served: ServedModel, rows: list[dict[str, Any]], times: RequestTimes | None = None
) -> Sequence[Prediction]:
    """The model's predictions for ``rows``, one per row, in order, from its worker thread
    (``times``, when given, gets when its model call began and ended).

    Raises :class:`ApiError`: 500 ``model_error`` when the model raises or answers with the
    wrong number of predictions (logged with its traceback; the client sees no trace), 504
    ``model_timeout`` past ``models[].timeout_seconds``, 503 ``overloaded`` when the
    model's queue is full.
    """
    try:
        return await served.worker.predict(rows, times)
    except ModelCallError as exc:
        raise ApiError(
            500,
            "model_error",
            f"model {served.name!r} failed to predict ({exc}); the server log has the details",
        ) from None
    except TimeoutError:
        raise ApiError(
            504,
            "model_timeout",
            f"model {served.name!r} did not answer within "
            f"{served.worker.settings.timeout:g} s (models[].timeout_seconds)",
        ) from None
    except Overloaded as exc:
        raise ApiError(
            503,
            "overloaded",
            f"model {served.name!r} is overloaded: {exc}; retry later",
            headers={"retry-after": "1"},
        ) from None
