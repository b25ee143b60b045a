"""Model-quality routes: the evaluation history, the live performance state, judge-now.

* ``GET /v1/models/{name}/evaluations`` (read): stored evaluation rows, newest first,
  filtered by metric, test, feature, version and window time range (drift, data quality,
  realised and estimated performance, reconciliation, fairness, concept drift: one table);
* ``GET /v1/models/{name}/performance`` (read): what the live evaluator last judged for
  each version (the newest realised and estimated values, reconciliation, segments,
  fairness, detections), the same state ``/metrics`` shows;
* ``POST /v1/models/{name}/evaluate`` (admin): judge the model's current drift window and
  every retained performance window now, store the rows, and answer them.

Store reads and the evaluation run in the thread pool: the event loop never waits on them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
from fastapi import FastAPI, Query, Response
from starlette.concurrency import run_in_threadpool

from inferwatch.errors import FieldError, StoreError
from inferwatch.server._errors import ApiError
from inferwatch.server._schemas import ERROR_RESPONSES
from inferwatch.server._served import ServedModel

if TYPE_CHECKING:
    from inferwatch.evaluate import EvaluationLoop
    from inferwatch.ports import Store

__all__ = ["add_performance_routes", "parse_time"]

MAX_EVALUATION_ROWS = 10_000


def _clean(value: Any) -> Any:
    """JSON-safe: datetimes as ISO 8601, non-finite floats as null, containers walked."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _json(data: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(_clean(data)), status, media_type="application/json")


def parse_time(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 time (naive means UTC) or epoch seconds; a 422 naming ``name`` otherwise."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise ApiError(
                422,
                "invalid_query",
                f"{name} must be a finite time",
                [FieldError("invalid_query", name, f"{name} is not a valid time")],
            )
        return datetime.fromtimestamp(number, UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            422,
            "invalid_query",
            f"{name} must be an ISO 8601 time or epoch seconds, got {value[:40]!r}",
            [FieldError("invalid_query", name, "expected ISO 8601 or epoch seconds")],
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def add_performance_routes(
    app: FastAPI,
    models: Mapping[str, ServedModel],
    store: Store,
    evaluator: EvaluationLoop | None,
) -> None:
    """The three routes of the module docstring."""

    def served_model(name: str) -> ServedModel:
        served = models.get(name)
        if served is None:
            raise ApiError(404, "unknown_model", f"no model named {name!r}")
        return served

    async def evaluations(
        name: str,
        metric: str | None = Query(None, max_length=100, description="e.g. accuracy, drift"),
        test: str | None = Query(None, max_length=100, description="realised, cbpe, dle, ks…"),
        feature: str | None = Query(None, max_length=300, description="feature or segment"),
        version: str | None = Query(None, max_length=100),
        since: str | None = Query(None, description="window start >= (ISO 8601 or epoch s)"),
        until: str | None = Query(None, description="window start < (ISO 8601 or epoch s)"),
        limit: int = Query(1000, ge=1, le=MAX_EVALUATION_ROWS),
    ) -> Response:
        served = served_model(name)
        start, end = parse_time(since, "since"), parse_time(until, "until")
        if start is not None and end is not None and end <= start:
            raise ApiError(
                422,
                "invalid_query",
                "until must be after since",
                [FieldError("invalid_query", "until", "until must be after since")],
            )
        try:
            rows = await run_in_threadpool(
                store.query_evaluations,
                served.name,
                version=version,
                metric=metric,
                test=test,
                feature=feature,
                since=start,
                until=end,
                limit=limit,
            )
        except StoreError as exc:
            raise ApiError(503, "store_unavailable", f"could not read evaluations: {exc}") from None
        return _json({"model": served.name, "count": len(rows), "evaluations": rows})

    async def performance(name: str) -> Response:
        served = served_model(name)
        versions: dict[str, Any] = {}
        if evaluator is not None and evaluator.performance is not None:
            for m, v in evaluator.performance.keys:
                if m == served.name:
                    versions[v] = evaluator.performance_state(m, v)
        if not versions:
            return _json(
                {
                    "model": served.name,
                    "status": "not_tracked",
                    "message": (
                        f"model {served.name!r} has no performance tracking: its reference "
                        "needs the target column (models[].target) and performance.enabled"
                    ),
                    "versions": {},
                }
            )
        judged = any(state for state in versions.values())
        return _json(
            {
                "model": served.name,
                "status": "judged" if judged else "not_judged",
                "message": None if judged else "no window judged yet",
                "versions": versions,
            }
        )

    async def evaluate(name: str) -> Response:
        served = served_model(name)
        if evaluator is None:  # nothing to judge is an answer, not an error
            return _json(
                {
                    "model": served.name,
                    "message": f"model {served.name!r} has no live evaluation: configure "
                    "models[].reference (and its target for performance)",
                    "drift": {},
                    "performance": {},
                }
            )
        result = await run_in_threadpool(evaluator.run_once, served.name)
        return _json({"model": served.name, "message": None, **result})

    async def compare(
        name: str,
        other: str = Query(..., alias="with", description="the model to compare with (B)"),
        metric: str = Query("accuracy", description="accuracy, precision, recall; mae, mean_error"),
        since: str | None = Query(None, description="windows starting at or after this time"),
        confidence: float = Query(0.95, gt=0.5, lt=1.0),
    ) -> Response:
        a, b = served_model(name), served_model(other)
        start = parse_time(since, "since")
        pw = None if evaluator is None else evaluator.performance
        tracked = set() if pw is None else set(pw.keys)
        for m in (a, b):
            if (m.name, m.version) not in tracked:  # as /performance: an answer, not an error
                return _json(
                    {
                        "status": "not_tracked",
                        "message": f"model {m.name!r} has no performance tracking (its "
                        "reference needs the target column)",
                        "metric": metric,
                    }
                )
        assert pw is not None
        stamp = None if start is None else start.timestamp()
        sa, sb = pw.merged(a.name, a.version, stamp), pw.merged(b.name, b.version, stamp)
        assert sa is not None
        assert sb is not None
        from inferwatch.performance import compare_summaries

        try:
            result = compare_summaries(sa, sb, metric, confidence=confidence)
        except ValueError as exc:
            raise ApiError(
                422,
                "invalid_query",
                str(exc),
                [FieldError("invalid_query", "metric", str(exc))],
            ) from None
        fields = asdict(result)
        body = {
            "status": "compared",
            "metric": metric,
            "a": {"model": a.name, "version": a.version, "labelled": sa.n_labelled,
                  "value": fields.pop("a"), "n": fields.pop("n_a")},
            "b": {"model": b.name, "version": b.version, "labelled": sb.n_labelled,
                  "value": fields.pop("b"), "n": fields.pop("n_b")},
            **fields,
            "significant": result.significant,
        }  # fmt: skip
        return _json(body)

    errors: dict[int | str, dict[str, Any]] = {k: ERROR_RESPONSES[k] for k in (401, 403, 404)}
    app.add_api_route(
        "/v1/models/{name}/compare",
        compare,
        methods=["GET"],
        name="compare_versions",
        summary="Is another model version better than this one? A significance test",
        description=(
            "Merges each model's retained performance windows (labels joined by "
            "prediction id) and tests the difference of one metric, b - a: a "
            "two-proportion z-test or Fisher's exact test for rates, Welch's t-test for "
            "errors. For A/B group members, shadows, or any two served models."
        ),
        tags=["performance"],
        responses={**errors, 422: ERROR_RESPONSES[422]},
    )
    app.add_api_route(
        "/v1/models/{name}/evaluations",
        evaluations,
        methods=["GET"],
        name="list_evaluations",
        summary="Stored evaluation rows of a model, newest first",
        description=(
            "Drift, data quality, realised and estimated performance (test: realised, cbpe, "
            "dle), estimate_gap (reconciliation), fairness, concept_drift: one row per "
            "window, metric and feature or segment. Filter by metric, test, feature, "
            "version and window start (since <= start < until)."
        ),
        tags=["performance"],
        responses={
            **errors,
            422: {
                **ERROR_RESPONSES[422],
                "description": "A query parameter is invalid; details name it.",
            },
        },
    )
    app.add_api_route(
        "/v1/models/{name}/performance",
        performance,
        methods=["GET"],
        name="get_performance",
        summary="The newest realised and estimated performance of each version",
        description=(
            "Per version: realised metrics of the newest window with enough labels, the "
            "estimate of the newest window with its band, reconciliation (realised minus "
            "the estimate of the same labelled rows; concept_drift_suspected when outside "
            "the band), label coverage, segments, fairness and stream detections."
        ),
        tags=["performance"],
        responses=errors,
    )
    app.add_api_route(
        "/v1/models/{name}/evaluate",
        evaluate,
        methods=["POST"],
        name="evaluate_now",
        summary="Judge the model's current windows now",
        description=(
            "Runs the live evaluator for this model at once: its current drift window and "
            "every retained performance window; stores and returns the results."
        ),
        tags=["performance"],
        responses=errors,
    )
