"""The server's own history and the dashboard's JSON API (docs: /work/briefs/i15/api.md,
the README's "History" section).

:class:`HistoryService` is a daemon thread started and stopped by the app's lifespan: every
``history.interval_seconds`` it reads the app's registry (as a scrape would:
:func:`inferwatch.metrics.registry_samples`), turns the read into rows
(:class:`inferwatch.history.Sampler`) and writes them in one batch; every
``rollup_seconds`` it folds raw rows older than ``raw_retention`` into rollups and prunes
rollups older than ``rollup_retention``.

Why a thread of its own: a store that is down or slow must cost nothing but history.  A
prediction never waits on it (the sampler only reads the registry, under the metric
locks a scrape takes), the event loop never runs it, and a failed write drops that
interval's rows (counted in ``inferwatch_history_operations_total{outcome="failed"}``):
the next interval goes on with fresh deltas, nothing is buffered, so memory stays at one
interval's rows whatever the store does.

Routes (role ``read``; store reads in the thread pool):

* ``GET /v1/overview``: every served model's headline;
* ``GET /v1/models/{name}/history``: traffic, errors, latency quantiles, confidence and
  class shares on a regular grid;
* ``GET /v1/history/resources``: host, process and GPU resources;
* ``GET /v1/models/{name}/drift/history``: the drift heatmap (feature x window);
* ``GET /v1/models/{name}/features/{feature}/distribution``: one feature's newest judged
  distribution over the reference's.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

import msgspec
from fastapi import FastAPI, Query, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from inferwatch.errors import FieldError, StoreError
from inferwatch.history import (
    MAX_POINTS,
    ROLLUP,
    SAMPLE_NAMES,
    Sampler,
    choose_step,
    fold_models,
    fold_resources,
    model_columns,
    resource_columns,
    summarise,
)
from inferwatch.metrics import registry_samples
from inferwatch.periodic import Periodic
from inferwatch.server._errors import ApiError
from inferwatch.server._schemas import ERROR_RESPONSES

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from inferwatch.config import HistorySettings
    from inferwatch.evaluate import EvaluationLoop
    from inferwatch.metrics import Metrics
    from inferwatch.ports import Store
    from inferwatch.server._alerting import AlertingService
    from inferwatch.server._served import ServedModel

__all__ = ["HistoryService", "add_history_routes"]

log = logging.getLogger("inferwatch.server")

#: the longest range a read may span (a year and a day: the rollups' horizon is 30 days
#: by default; a longer range is almost surely a wrong unit, e.g. milliseconds)
MAX_RANGE_SECONDS: Final = 366 * 86_400.0
#: the overview's headline covers this much history (the alert rules' usual window)
OVERVIEW_SECONDS: Final = 300.0
#: the drift heatmap shows at most this many windows (the newest)
MAX_WINDOWS: Final = 500

#: performance headline per task: the metric shown and whether higher is better
_HEADLINE: Final = {
    "classification": (("accuracy", True), ("roc_auc", True), ("f1", True)),
    "regression": (("rmse", False), ("mae", False), ("r2", True)),
}


class HistoryService:
    """The sampling thread (module docstring).  ``cycle(now)`` and ``maintain(now)`` are
    what the thread runs, callable directly (tests drive them with their own clock)."""

    def __init__(
        self,
        settings: HistorySettings,
        registry: CollectorRegistry,
        store: Store,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.store = store
        self.clock = clock
        self.sampler = Sampler()
        self._ops = None if metrics is None else metrics.history_operations
        self._thread: Periodic | None = None
        self._maintained: float | None = None
        #: the most raw rows of one table a fold reads at once
        self.fold_batch = 20_000
        #: failed operations by name (also in the metric)
        self.failures: dict[str, int] = {}

    def _count(self, operation: str, ok: bool) -> None:
        if not ok:
            self.failures[operation] = self.failures.get(operation, 0) + 1
        if self._ops is not None:
            self._ops.labels(operation, "ok" if ok else "failed").inc()

    def cycle(self, now: float | None = None) -> int:
        """Read the registry and write one interval's rows; the number written (0 when the
        write failed: the rows are dropped, see the module docstring)."""
        now = self.clock() if now is None else now
        models, resources = self.sampler.step(now, registry_samples(self.registry, SAMPLE_NAMES))
        if not models and resources is None:
            return 0
        try:
            written = self.store.write_history(models, [resources] if resources else [])
        except Exception as exc:  # StoreError, or anything a broken store raises
            self._count("write", False)
            log.warning(
                "history: could not write %d rows, interval dropped: %s",
                len(models) + (resources is not None),
                exc,
            )
            return 0
        self._count("write", True)
        return written

    def maintain(self, now: float | None = None) -> dict[str, int]:
        """Fold raw rows older than ``raw_retention`` into rollups (whole rollup buckets
        only: the cutoff is a multiple of ``rollup_seconds``) and prune rollups older
        than ``rollup_retention``; the rows folded and pruned."""
        now = self.clock() if now is None else now
        s = self.settings
        out = {"folded": 0, "pruned": 0}
        cutoff = math.floor((now - s.raw_retention) / s.rollup_seconds) * s.rollup_seconds
        try:
            out["folded"] = self._fold(cutoff)
            self._count("fold", True)
        except Exception as exc:
            self._count("fold", False)
            log.warning("history: could not fold raw rows into rollups: %s", exc)
        try:
            out["pruned"] = self.store.prune_history(ROLLUP, now - s.rollup_retention)
            self._count("prune", True)
        except Exception as exc:
            self._count("prune", False)
            log.warning("history: could not prune old rollups: %s", exc)
        self._maintained = now
        return out

    def _fold(self, cutoff: float) -> int:
        """Fold the raw rows before ``cutoff`` a bounded batch at a time: at most
        :attr:`fold_batch` rows of each table are read at once (a long-idle server, or a
        shorter ``raw_retention`` than before, has days of rows to fold), each batch
        ending on a rollup bucket boundary so no bucket is split between two folds."""
        rollup, folded, limit = self.settings.rollup_seconds, 0, self.fold_batch
        while True:
            raw_m, raw_r = self.store.raw_history_before(cutoff, limit=limit)
            if not raw_m and not raw_r:
                return folded
            end = cutoff
            full = [rows for rows in (raw_m, raw_r) if len(rows) >= limit]
            if full:  # more to come: stop before the newest (maybe partial) bucket read
                end = min(math.floor(rows[-1].start / rollup) * rollup for rows in full)
                if end <= min(rows[0].start for rows in full):  # one bucket over the batch
                    end = math.floor(min(rows[0].start for rows in full) / rollup) * rollup
                    end += rollup  # fold it whole, read unbounded (rare: huge fleets)
                    raw_m, raw_r = self.store.raw_history_before(end)
            ms = [r for r in raw_m if r.start < end]
            rs = [r for r in raw_r if r.start < end]
            folded += self.store.fold_history(
                end, fold_models(ms, rollup), fold_resources(rs, rollup),
                expected=len(ms) + len(rs),
            )  # fmt: skip
            if end >= cutoff:
                return folded

    def _round(self) -> None:
        try:
            self.cycle()
            now = self.clock()
            if self._maintained is None or now - self._maintained >= min(
                self.settings.rollup_seconds, 3600.0
            ):
                self.maintain(now)
        except Exception:  # never let the thread die: history is best effort
            log.exception("history: sampling cycle failed")

    def start(self) -> None:
        """Sample now and every ``interval_seconds`` after, at a fixed rate (a slow store
        skips the missed ticks rather than bursting)."""
        if self._thread is not None:
            return
        self._thread = Periodic(self._round, self.settings.interval_seconds,
                                name="inferwatch-history", first_now=True,
                                fixed_rate=True)  # fmt: skip
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._thread.stop(timeout)
            self._thread = None


# -- response models (OpenAPI) -------------------------------------------------------

Series = list[float | None]


class PerformanceHeadline(BaseModel):
    metric: str | None
    realised: float | None
    estimated: float | None
    higher_is_better: bool


class ModelOverview(BaseModel):
    name: str
    version: str
    task: str | None
    health: Literal["ok", "warning", "critical"]
    health_reasons: list[str]
    requests_per_second: float | None
    error_ratio: float | None
    latency_p99_seconds: float | None = Field(description="Over the last 5 minutes of history.")
    dataset_drift_share: float | None
    performance: PerformanceHeadline
    alerts_firing: dict[str, int]


class OverviewResponse(BaseModel):
    generated_at: float
    models: list[ModelOverview]


class ModelHistoryResponse(BaseModel):
    model: str
    version: str | None = Field(description="null: every version summed.")
    from_: float = Field(alias="from")
    to: float
    step_seconds: float
    t: list[float] = Field(description="Bucket start times (Unix seconds), ascending.")
    series: dict[str, Series] = Field(
        description="requests_per_second, errors_per_second, error_ratio, "
        "latency_p50/p95/p99_seconds, confidence_mean; each as long as t; null: no data."
    )
    classes: dict[str, Series] = Field(description="Share of predictions per class.")


class ResourceHistoryResponse(BaseModel):
    from_: float = Field(alias="from")
    to: float
    step_seconds: float
    t: list[float]
    series: dict[str, Series]
    gpus: dict[str, dict[str, Series]]


class DriftCell(BaseModel):
    score: float | None
    threshold: float | None
    test: str | None
    drift: bool


class DriftWindow(BaseModel):
    start: float
    end: float


class DriftHistoryResponse(BaseModel):
    model: str
    version: str | None
    windows: list[DriftWindow]
    features: list[str]
    cells: list[list[DriftCell | None]] = Field(description="cells[i][j]: feature i, window j.")
    dataset_drift_share: list[float | None]


class DistributionResponse(BaseModel):
    feature: str
    kind: Literal["numeric", "categorical"]
    edges: list[float] | None
    categories: list[str] | None
    reference: list[float]
    current: list[float]
    window: DriftWindow
    test: str | None
    score: float | None
    threshold: float | None
    drift: bool


# -- routes --------------------------------------------------------------------------


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _json(data: Any) -> Response:
    return Response(msgspec.json.encode(_finite(data)), media_type="application/json")


def _bad(name: str, message: str) -> ApiError:
    return ApiError(422, "invalid_query", message, [FieldError("invalid_query", name, message)])


def _range(start: float | None, end: float | None, now: float) -> tuple[float, float]:
    """``from``/``to`` with their defaults (the last hour), checked."""
    for name, v in (("from", start), ("to", end)):
        if v is not None and not math.isfinite(v):
            raise _bad(name, f"{name} must be a finite time (Unix seconds)")
    end = now if end is None else end
    start = end - 3600.0 if start is None else start
    if start >= end:
        raise _bad("from", f"from ({start:g}) must be before to ({end:g})")
    if end - start > MAX_RANGE_SECONDS:
        raise _bad(
            "from",
            f"the range spans {end - start:g} s; at most "
            f"{MAX_RANGE_SECONDS:g} s (366 days) may be read at once",
        )
    return start, end


def _step(step: float | None, span: float, settings: HistorySettings) -> float:
    """The step asked for (never below the sampling interval), or the default one."""
    if step is None:
        return choose_step(span, settings.interval_seconds, settings.rollup_seconds)
    if not math.isfinite(step) or step <= 0:
        raise _bad("step", "step must be a positive number of seconds")
    step = max(step, settings.interval_seconds)
    if span / step > MAX_POINTS:
        raise _bad(
            "step",
            f"{span:g} s at a {step:g} s step is {math.ceil(span / step)} "
            f"points; at most {MAX_POINTS} (raise step or shorten the range)",
        )
    return step


def _headline(task: str | None, state: Mapping[str, Any] | None) -> dict[str, Any]:
    """The overview's performance entry from the evaluator's performance state."""
    options = _HEADLINE.get(task or "", _HEADLINE["classification"])
    realised = (state or {}).get("realised") or {}
    estimated = (state or {}).get("estimated") or {}
    for metric, higher in options:
        if metric in realised or metric in estimated:
            est = estimated.get(metric)
            return {
                "metric": metric,
                "realised": realised.get(metric),
                "estimated": est.get("value") if isinstance(est, Mapping) else est,
                "higher_is_better": higher,
            }
    metric, higher = options[0]
    return {"metric": metric, "realised": None, "estimated": None, "higher_is_better": higher}


def add_history_routes(
    app: FastAPI,
    models: Mapping[str, ServedModel],
    store: Store,
    settings: HistorySettings,
    *,
    report: Callable[[str, str], Mapping[str, Any] | None] = lambda model, version: None,
    evaluator: EvaluationLoop | None = None,
    alerting: AlertingService | None = None,
    clock: Callable[[], float] = time.time,
) -> None:
    """The routes of the module docstring.  ``report(model, version)`` is the newest
    published drift report (``LiveDriftCollector.report``)."""

    def served_model(name: str) -> ServedModel:
        served = models.get(name)
        if served is None:
            raise ApiError(404, "unknown_model", f"no model named {name!r}")
        return served

    async def read(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await run_in_threadpool(fn, *args, **kwargs)
        except StoreError as exc:
            raise ApiError(503, "store_unavailable", f"could not read the store: {exc}") from None

    # rows that start up to one rollup before the range may reach into it
    reach = settings.rollup_seconds

    async def history(
        name: str,
        start: float | None = Query(None, alias="from", description="Unix seconds; now-3600"),
        end: float | None = Query(None, alias="to", description="Unix seconds; now"),
        step: float | None = Query(None, description="seconds per point; default: <= 600"),
        version: str | None = Query(None, max_length=100, description="absent: all summed"),
    ) -> Response:
        served = served_model(name)
        t0, t1 = _range(start, end, clock())
        dt = _step(step, t1 - t0, settings)
        rows = await read(
            store.query_model_history, served.name, version=version, since=t0 - reach, until=t1
        )
        t, series, classes = model_columns(rows, t0, t1, dt)
        return _json(
            {
                "model": served.name,
                "version": version,
                "from": t0,
                "to": t1,
                "step_seconds": dt,
                "t": t,
                "series": series,
                "classes": classes,
            }
        )

    async def resources(
        start: float | None = Query(None, alias="from", description="Unix seconds; now-3600"),
        end: float | None = Query(None, alias="to", description="Unix seconds; now"),
        step: float | None = Query(None, description="seconds per point; default: <= 600"),
    ) -> Response:
        t0, t1 = _range(start, end, clock())
        dt = _step(step, t1 - t0, settings)
        rows = await read(store.query_resource_history, since=t0 - reach, until=t1)
        t, series, gpus = resource_columns(rows, t0, t1, dt)
        return _json(
            {"from": t0, "to": t1, "step_seconds": dt, "t": t, "series": series, "gpus": gpus}
        )

    def firing_by_model() -> dict[str, list[tuple[str, str]]]:
        """(alertname, severity) of each model's firing alerts (a follower replica reads
        what the leader stored: run off the event loop)."""
        if alerting is None:
            return {}
        try:
            held = alerting.alerts_view()
        except Exception as exc:
            log.warning("overview: could not read the alerts: %s", exc)
            return {}
        out: dict[str, list[tuple[str, str]]] = {}
        for a in held:
            labels = a.alert.labels
            if a.alert.status == "firing" and "model" in labels:
                out.setdefault(labels["model"], []).append(
                    (labels.get("alertname", "?"), labels.get("severity", "warning"))
                )
        return {m: sorted(v) for m, v in out.items()}

    async def overview() -> Response:
        now = clock()
        out = []
        firing = await run_in_threadpool(firing_by_model)
        for served in list(models.values()):
            rows = await read(
                store.query_model_history,
                served.name,
                version=served.version,
                since=now - OVERVIEW_SECONDS - reach,
                until=now,
            )
            recent = [r for r in rows if r.start + r.seconds > now - OVERVIEW_SECONDS]
            head = summarise(recent)
            published = report(served.name, served.version)
            window = (published or {}).get("window") or {}
            share = published.get("drift_share") if published and window.get("judged") else None
            drifted = bool(published and window.get("judged") and published.get("dataset_drift"))
            alerts = firing.get(served.name, [])
            counts = {"critical": 0, "warning": 0}
            for _, severity in alerts:
                counts[severity if severity in counts else "warning"] += 1
            reasons = [f"{n} {sev}" for n, sev in alerts]
            health = "critical" if counts["critical"] else "warning" if counts["warning"] else "ok"
            if alerting is None and drifted:
                health = "warning"
                reasons.append(f"dataset drift: {share:.0%} of features drifted")
            state = evaluator.performance_state(served.name, served.version) if evaluator else None
            out.append(
                {
                    "name": served.name,
                    "version": served.version,
                    "task": served.task,
                    "health": health,
                    "health_reasons": reasons,
                    **head,
                    "dataset_drift_share": share,
                    "performance": _headline(served.task, state),
                    "alerts_firing": counts,
                }
            )
        return _json({"generated_at": now, "models": out})

    async def drift_history(
        name: str,
        start: float | None = Query(None, alias="from", description="Unix seconds; now-3600"),
        end: float | None = Query(None, alias="to", description="Unix seconds; now"),
        version: str | None = Query(None, max_length=100, description="absent: the live one"),
    ) -> Response:
        from datetime import UTC, datetime

        served = served_model(name)
        t0, t1 = _range(start, end, clock())
        v = version if version is not None else served.version
        rows = await read(
            store.drift_windows,
            served.name,
            v,
            since=datetime.fromtimestamp(t0, UTC),
            until=datetime.fromtimestamp(t1, UTC),
            limit=MAX_WINDOWS,
        )
        starts: dict[float, float] = {}
        features: dict[str, None] = {}
        cells: dict[tuple[str, float], dict[str, Any]] = {}
        shares: dict[float, float | None] = {}
        for r in rows:
            ws = r["window_start"].timestamp()
            starts[ws] = r["window_end"].timestamp()
            if r["metric"] == "dataset_drift_share":
                shares[ws] = r["value"]
                continue
            features.setdefault(r["feature"], None)
            cells[(r["feature"], ws)] = {
                "score": r["value"],
                "threshold": r["threshold"],
                "test": r["test"],
                "drift": r["status"] != "ok",
            }
        order = sorted(starts)
        names = list(features)
        return _json(
            {
                "model": served.name,
                "version": v,
                "windows": [{"start": s, "end": starts[s]} for s in order],
                "features": names,
                "cells": [[cells.get((f, s)) for s in order] for f in names],
                "dataset_drift_share": [shares.get(s) for s in order],
            }
        )

    async def distribution(
        name: str,
        feature: str,
        version: str | None = Query(None, max_length=100, description="absent: the live one"),
    ) -> Response:
        served = served_model(name)
        v = version if version is not None else served.version
        published = report(served.name, v)
        window = (published or {}).get("window") or {}
        if not published or not window.get("judged"):
            raise ApiError(
                404,
                "not_judged",
                f"model {served.name!r} version {v!r} has no "
                "judged drift window yet (GET /v1/models/{name}/drift says why)",
            )
        columns = list(published.get("features") or ())
        if published.get("prediction_drift"):
            columns.append(published["prediction_drift"])
        col = next((c for c in columns if c.get("name") == feature), None)
        if col is None:
            raise ApiError(
                404, "unknown_feature", f"model {served.name!r} has no judged feature {feature!r}"
            )
        d = col.get("distribution") or {}
        if not d.get("reference"):
            raise ApiError(
                404,
                "no_distribution",
                f"feature {feature!r} has no distribution "
                f"in the newest window: {col.get('error') or 'not judged'}",
            )
        numeric = d.get("type") == "histogram"
        return _json(
            {
                "feature": feature,
                "kind": "numeric" if numeric else "categorical",
                "edges": d.get("edges") if numeric else None,
                "categories": None if numeric else d.get("categories"),
                "reference": d.get("reference"),
                "current": d.get("current"),
                "window": {"start": window.get("start"), "end": window.get("end")},
                "test": col.get("test"),
                "score": col.get("statistic"),
                "threshold": col.get("threshold"),
                "drift": bool(col.get("drift_detected")),
            }
        )

    e404: dict[int | str, dict[str, Any]] = {k: ERROR_RESPONSES[k] for k in (401, 403, 404)}
    e422: dict[int | str, dict[str, Any]] = {
        422: {
            **ERROR_RESPONSES[422],
            "description": "A query parameter is invalid (from after "
            "to, a range or step giving too many points); details name it.",
        },
        503: {**ERROR_RESPONSES[404], "description": "The store could not be read."},
    }
    routes: list[tuple[str, Callable[..., Any], str, str, type[BaseModel], dict[Any, Any]]] = [
        (
            "/v1/overview",
            overview,
            "get_overview",
            "Every served model's health, traffic, latency, drift, performance and alerts",
            OverviewResponse,
            {k: ERROR_RESPONSES[k] for k in (401, 403)},
        ),
        (
            "/v1/models/{name}/history",
            history,
            "get_model_history",
            "Traffic, errors, latency quantiles, confidence and classes over time",
            ModelHistoryResponse,
            {**e404, **e422},
        ),
        (
            "/v1/history/resources",
            resources,
            "get_resource_history",
            "Host, process and GPU resources over time",
            ResourceHistoryResponse,
            {**{k: ERROR_RESPONSES[k] for k in (401, 403)}, **e422},
        ),
        (
            "/v1/models/{name}/drift/history",
            drift_history,
            "get_drift_history",
            "Drift per feature and window (a heatmap), from the stored evaluations",
            DriftHistoryResponse,
            {**e404, **e422},
        ),
        (
            "/v1/models/{name}/features/{feature}/distribution",
            distribution,
            "get_feature_distribution",
            "A feature's newest judged distribution beside the reference's",
            DistributionResponse,
            e404,
        ),
    ]
    for path, endpoint, route_name, summary, model, responses in routes:
        app.add_api_route(
            path,
            endpoint,
            methods=["GET"],
            name=route_name,
            summary=summary,
            description=(
                "Part of the dashboard's API (README: History). Times are Unix seconds; "
                "from/to default to the last hour; gaps are null."
            ),
            tags=["history"],
            response_model=model,
            responses=responses,
        )
