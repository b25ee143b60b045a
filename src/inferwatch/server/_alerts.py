"""Alert routes: the alerts in state, their history, delivery attempts, and silences.

``GET /v1/alerts`` answers from the engine's memory (what is pending, firing or recently
resolved now, with what mutes it); ``GET /v1/alerts/history`` and
``GET /v1/alerts/notifications`` read the store (every state change and every delivery
attempt, kept across restarts).  Silences follow Alertmanager's model (matchers, start,
end, author, comment); creating and expiring one needs the ``admin`` role.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import msgspec
from fastapi import FastAPI, Query, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from inferwatch.alerting import ActiveAlert, Silence
from inferwatch.errors import FieldError, StoreError
from inferwatch.rules import parse_duration
from inferwatch.server._alerting import AlertingService
from inferwatch.server._errors import ApiError
from inferwatch.server._performance import parse_time
from inferwatch.server._schemas import ERROR_RESPONSES

__all__ = ["SilenceRequest", "add_alert_routes"]

#: the longest silence the API accepts (a forgotten silence hides alerts for ever)
MAX_SILENCE = timedelta(days=90)


class SilenceRequest(BaseModel):
    """``POST /v1/silences``: mute alerts whose labels match every matcher."""

    matchers: list[str] = Field(
        min_length=1,
        max_length=20,
        description="Label matchers, all of which must hold: model=iris, severity!=warning, "
        'alertname=~"Drift.*".',
    )
    created_by: str = Field(min_length=1, max_length=200, description="Who silences.")
    comment: str = Field("", max_length=2000, description="Why.")
    duration: str | None = Field(
        None, description="How long from starts_at (2h, 30m, 1d); or give ends_at."
    )
    starts_at: datetime | None = Field(None, description="Default: now.")
    ends_at: datetime | None = Field(None, description="Default: starts_at + duration.")

    model_config = {"extra": "forbid"}


class SilenceOut(BaseModel):
    id: str
    matchers: list[str]
    starts_at: str
    ends_at: str
    created_by: str
    comment: str
    state: Literal["pending", "active", "expired"]


class SilenceList(BaseModel):
    silences: list[SilenceOut]


class AlertOut(BaseModel):
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: Literal["pending", "firing", "resolved"]
    starts_at: str
    ends_at: str | None
    value: float | None
    inhibited: bool = Field(description="Muted by a firing critical of the same rule.")
    silenced_by: list[str] = Field(description="Ids of the active silences that mute it.")
    acknowledged_by: str | None = Field(
        None, description="Who acknowledged it while it fires (no repeat notifications)."
    )
    acknowledged_at: str | None = None


class AcknowledgeRequest(BaseModel):
    """``POST /v1/alerts/{fingerprint}/acknowledge``: someone is on it."""

    author: str = Field(min_length=1, max_length=200, description="Who acknowledges.")
    comment: str = Field("", max_length=2000, description="Why, or what is being done.")

    model_config = {"extra": "forbid"}


class AlertList(BaseModel):
    alerts: list[AlertOut]
    receivers: list[str]


class RowList(BaseModel):
    count: int
    rows: list[dict[str, Any]]


def _json(data: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(data), status, media_type="application/json")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def silence_dict(s: Silence, now: datetime) -> dict[str, Any]:
    return {
        "id": s.id,
        "matchers": [str(m) for m in s.matchers],
        "starts_at": s.starts_at.isoformat(),
        "ends_at": s.ends_at.isoformat(),
        "created_by": s.author,
        "comment": s.comment,
        "state": s.state(now),
    }


def alert_dict(a: ActiveAlert) -> dict[str, Any]:
    alert = a.alert
    value = alert.value
    return {
        "fingerprint": a.fingerprint,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "state": alert.status,
        "starts_at": alert.starts_at.isoformat(),
        "ends_at": _iso(alert.ends_at),
        # NaN and infinities are not JSON
        "value": value if value is not None and abs(value) < float("inf") else None,
        "inhibited": a.inhibited,
        "silenced_by": list(a.silenced_by),
        "acknowledged_by": a.acknowledged_by,
        "acknowledged_at": _iso(a.acknowledged_at),
    }


def _bad(field: str, message: str) -> ApiError:
    return ApiError(
        422, "invalid_silence", message, [FieldError("invalid_silence", field, message)]
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def add_alert_routes(
    app: FastAPI, alerting: AlertingService | None, store: Any, clock: Callable[[], datetime]
) -> None:
    """The routes of the module docstring; without a service the lists are empty and
    silences answer 409 ``alerting_off`` (the history routes still read the store)."""
    errors: dict[int | str, dict[str, Any]] = {k: ERROR_RESPONSES[k] for k in (401, 403)}

    def service() -> AlertingService:
        if alerting is None:
            raise ApiError(
                409,
                "alerting_off",
                "the built-in alert engine is not running (alerting.enabled is false or "
                "no rules are configured)",
            )
        return alerting

    async def list_alerts(
        state: Literal["pending", "firing", "resolved"] | None = Query(None),
        model: str | None = Query(None, max_length=100),
        severity: Literal["warning", "critical"] | None = Query(None),
        muted: bool | None = Query(None, description="only muted (true) or unmuted (false)"),
    ) -> Response:
        if alerting is None:
            return _json({"alerts": [], "receivers": []})
        try:  # a follower replica reads what the leader stored
            held = await run_in_threadpool(alerting.alerts_view)
        except Exception as exc:
            raise ApiError(503, "store_unavailable", f"could not read the alerts: {exc}") from None
        out = []
        for a in held:
            labels = a.alert.labels
            if state is not None and a.alert.status != state:
                continue
            if model is not None and labels.get("model") != model:
                continue
            if severity is not None and labels.get("severity") != severity:
                continue
            if muted is not None and a.muted != muted:
                continue
            out.append(alert_dict(a))
        return _json({"alerts": out, "receivers": alerting.receivers})

    def window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
        start, end = parse_time(since, "since"), parse_time(until, "until")
        if start is not None and end is not None and end <= start:
            raise ApiError(
                422,
                "invalid_query",
                "until must be after since",
                [FieldError("invalid_query", "until", "until must be after since")],
            )
        return start, end

    async def read(fn: Callable[..., list[dict[str, Any]]], **kwargs: Any) -> Response:
        try:
            rows = await run_in_threadpool(fn, **kwargs)
        except StoreError as exc:
            raise ApiError(503, "store_unavailable", f"could not read the store: {exc}") from None
        return _json({"count": len(rows), "rows": rows})

    async def history(
        model: str | None = Query(None, max_length=100),
        alertname: str | None = Query(None, max_length=200),
        fingerprint: str | None = Query(None, max_length=64),
        since: str | None = Query(None, description="at >= (ISO 8601 or epoch s)"),
        until: str | None = Query(None, description="at < (ISO 8601 or epoch s)"),
        limit: int = Query(100, ge=1, le=10_000),
    ) -> Response:
        start, end = window(since, until)
        return await read(
            store.query_alert_history,
            model=model,
            alertname=alertname,
            fingerprint=fingerprint,
            since=start,
            until=end,
            limit=limit,
        )

    async def notifications(
        receiver: str | None = Query(None, max_length=200),
        outcome: Literal["ok", "error"] | None = Query(None),
        since: str | None = Query(None, description="at >= (ISO 8601 or epoch s)"),
        until: str | None = Query(None, description="at < (ISO 8601 or epoch s)"),
        limit: int = Query(100, ge=1, le=10_000),
    ) -> Response:
        start, end = window(since, until)
        return await read(
            store.query_delivery_attempts,
            receiver=receiver,
            outcome=outcome,
            since=start,
            until=end,
            limit=limit,
        )

    async def actions(
        model: str | None = Query(None, max_length=100),
        kind: Literal["rollback", "retrain", "scale", "activate"] | None = Query(None),
        outcome: Literal["ok", "error", "skipped"] | None = Query(None),
        since: str | None = Query(None, description="at >= (ISO 8601 or epoch s)"),
        until: str | None = Query(None, description="at < (ISO 8601 or epoch s)"),
        limit: int = Query(100, ge=1, le=10_000),
    ) -> Response:
        start, end = window(since, until)
        return await read(
            store.query_action_records,
            model=model,
            kind=kind,
            outcome=outcome,
            since=start,
            until=end,
            limit=limit,
        )

    async def list_silences(
        state: Literal["pending", "active", "expired"] | None = Query(None),
    ) -> Response:
        if alerting is None:
            return _json({"silences": []})
        now = clock()
        return _json(
            {"silences": [silence_dict(s, now) for s in alerting.silences.list(now, state)]}
        )

    async def create_silence(body: SilenceRequest) -> Response:
        svc = service()
        now = clock()
        starts = _aware(body.starts_at) if body.starts_at is not None else now
        if body.ends_at is not None and body.duration is not None:
            raise _bad("duration", "give duration or ends_at, not both")
        if body.ends_at is not None:
            ends = _aware(body.ends_at)
        elif body.duration is not None:
            try:
                ends = starts + timedelta(seconds=parse_duration(body.duration))
            except ValueError as exc:
                raise _bad("duration", str(exc)) from None
        else:
            raise _bad("duration", "give duration (e.g. 2h) or ends_at")
        if ends <= starts:
            raise _bad("ends_at", "a silence must end after it starts")
        if ends <= now:
            raise _bad("ends_at", "the silence would already be over")
        if ends - starts > MAX_SILENCE:
            raise _bad("duration", f"at most {MAX_SILENCE.days} days")
        try:
            silence = await run_in_threadpool(
                svc.add_silence,
                body.matchers,
                starts_at=starts,
                ends_at=ends,
                author=body.created_by,
                comment=body.comment,
            )
        except StoreError as exc:
            raise ApiError(503, "store_unavailable", str(exc)) from None
        except ValueError as exc:
            raise _bad("matchers", str(exc)) from None
        return _json(silence_dict(silence, now), 201)

    async def expire_silence(silence_id: str) -> Response:
        svc = service()
        try:
            silence = await run_in_threadpool(svc.expire_silence, silence_id)
        except KeyError:
            raise ApiError(404, "unknown_silence", f"no silence {silence_id!r}") from None
        except StoreError as exc:
            raise ApiError(503, "store_unavailable", str(exc)) from None
        return _json(silence_dict(silence, clock()))

    async def acknowledge(fingerprint: str, body: AcknowledgeRequest) -> Response:
        svc = service()
        if not svc.leads:
            raise ApiError(
                409,
                "not_leader",
                "alerts are acknowledged on the replica that runs the alert engine (the "
                "holder of the evaluator lease: inferwatch_evaluator_leader 1); this one "
                "only lists what it stored",
            )
        try:
            await run_in_threadpool(svc.acknowledge, fingerprint, body.author, body.comment)
        except KeyError:
            raise ApiError(404, "unknown_alert", f"no alert {fingerprint!r}") from None
        except ValueError as exc:
            raise ApiError(409, "not_firing", str(exc)) from None
        got = next((a for a in svc.engine.alerts() if a.fingerprint == fingerprint), None)
        if got is None:  # resolved and dropped in between
            raise ApiError(409, "not_firing", f"alert {fingerprint} is no longer held")
        return _json(alert_dict(got))

    def route(path: str, fn: Any, method: str, name: str, summary: str, **kw: Any) -> None:
        app.add_api_route(
            path, fn, methods=[method], name=name, summary=summary, tags=["alerts"], **kw
        )

    route("/v1/alerts", list_alerts, "GET", "list_alerts",
          "Alerts pending, firing or recently resolved, with what mutes them",
          response_model=AlertList, responses=errors)  # fmt: skip
    route("/v1/alerts/history", history, "GET", "alert_history",
          "Every alert state change, newest first (from the store)",
          response_model=RowList, responses=errors)  # fmt: skip
    route("/v1/alerts/notifications", notifications, "GET", "alert_notifications",
          "Every delivery attempt to a receiver, newest first (from the store)",
          response_model=RowList, responses=errors)  # fmt: skip
    route("/v1/actions", actions, "GET", "list_actions",
          "Every automated action taken or skipped, with its evidence (from the store)",
          response_model=RowList, responses=errors)  # fmt: skip
    route("/v1/alerts/{fingerprint}/acknowledge", acknowledge, "POST", "acknowledge_alert",
          "Acknowledge a firing alert: no repeat notifications until it resolves",
          response_model=AlertOut,
          responses={**errors, 404: ERROR_RESPONSES[404], 409: ERROR_RESPONSES[409],
                     422: ERROR_RESPONSES[422]})  # fmt: skip
    route("/v1/silences", list_silences, "GET", "list_silences", "Silences",
          response_model=SilenceList, responses=errors)  # fmt: skip
    route("/v1/silences", create_silence, "POST", "create_silence",
          "Mute the alerts matching every matcher for a time",
          response_model=SilenceOut, status_code=201,
          responses={**errors, 409: ERROR_RESPONSES[409], 422: ERROR_RESPONSES[422]})  # fmt: skip
    route("/v1/silences/{silence_id}", expire_silence, "DELETE", "expire_silence",
          "End a silence now", response_model=SilenceOut,
          responses={**errors, 404: ERROR_RESPONSES[404]})  # fmt: skip
