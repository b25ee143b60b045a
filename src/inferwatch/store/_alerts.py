"""How alerting's rows become store rows and back, shared by ``SQLStore`` and ``MemoryStore``.

One place decides the columns (and refuses a bad kind or outcome before anything is
written), so both stores give back the same dicts and the same :class:`Silence`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from inferwatch.alerting import (
    RESTORE_LIMIT,
    AlertTransition,
    DeliveryAttempt,
    Matcher,
    Silence,
    StoredAlert,
)
from inferwatch.errors import StoreRejectedError
from inferwatch.store._tables import storable_text, utc

log = logging.getLogger("inferwatch.store")

__all__ = [
    "ACTION_COLUMNS",
    "ACTION_KINDS",
    "ACTION_OUTCOMES",
    "ATTEMPT_COLUMNS",
    "HISTORY_COLUMNS",
    "RESTORE_LIMIT",
    "action_row",
    "active_row_ids",
    "attempt_row",
    "check_limit",
    "history_row",
    "silence_from_row",
    "silence_row",
    "silences_from_rows",
    "stored_alerts",
]

#: the keys of a row ``query_alert_history`` returns, in this order
HISTORY_COLUMNS = (
    "id", "fingerprint", "alertname", "severity", "model", "labels", "from_state",
    "to_state", "at", "value",
)  # fmt: skip
#: the keys of a row ``query_delivery_attempts`` returns
ATTEMPT_COLUMNS = (
    "id", "receiver", "group_key", "attempt", "at", "outcome", "alerts", "error", "retry_at",
)  # fmt: skip
#: the keys of a row ``query_action_records`` returns
ACTION_COLUMNS = (
    "id", "action", "kind", "model", "version", "fingerprint", "at", "outcome", "detail",
    "evidence",
)  # fmt: skip

ACTION_KINDS = ("rollback", "retrain", "scale", "activate")
ACTION_OUTCOMES = ("ok", "error", "skipped")
_STATES = ("inactive", "pending", "firing", "resolved")
#: a history row may also record an acknowledgement of a firing alert (not a state change)
_RECORDS = (*_STATES, "acknowledged")
#: error texts and details are capped: a receiver's whole HTML error page is not history
_TEXT_LIMIT = 4000


#: the history rows per alert that restoring reads: its newest state change, the one
#: before (when it went pending: the ``for`` clock of a firing alert), and its newest
#: acknowledgement (the SQL store ranks acknowledgements apart from state changes)
RESTORE_ROWS = 2


def _active(
    rows: Iterable[Mapping[str, Any]],
) -> Iterator[tuple[str, list[Mapping[str, Any]], Mapping[str, Any] | None]]:
    """Per fingerprint whose newest state change left it pending or firing: its newest
    :data:`RESTORE_ROWS` state rows and its newest acknowledgement since that change."""
    by_fp: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_fp.setdefault(row["fingerprint"], []).append(row)
    for fp, its in by_fp.items():
        ack: Mapping[str, Any] | None = None
        states: list[Mapping[str, Any]] = []
        for row in its:
            if row["to_state"] == "acknowledged":
                if not states and ack is None:
                    ack = row
            else:
                states.append(row)
                if len(states) == RESTORE_ROWS:
                    break
        if states and states[0]["to_state"] in ("pending", "firing"):
            yield fp, states, ack


def stored_alerts(rows: Iterable[Mapping[str, Any]]) -> list[StoredAlert]:
    """The alerts whose newest state change left them pending or firing, newest first.

    ``rows``: ``alert_history`` rows (with ``id``) newest first by ``at`` then ``id``;
    for each fingerprint at least its newest two state changes and its newest
    acknowledgement (older rows are ignored).  A firing alert's ``for`` clock is the
    pending row just before its firing one; its acknowledgement counts only when it
    came after the alert fired (one from an earlier firing ended when that resolved).
    """
    out: list[StoredAlert] = []
    for fp, states, ack in _active(rows):
        top = states[0]
        at = utc(top["at"])
        since = at
        if (
            top["to_state"] == "firing"
            and top["from_state"] == "pending"
            and len(states) > 1
            and states[1]["to_state"] == "pending"
        ):
            since = utc(states[1]["at"])
        acked = ack if top["to_state"] == "firing" else None
        value = top["value"]
        out.append(
            StoredAlert(
                fingerprint=fp,
                labels={str(k): str(v) for k, v in top["labels"].items()},
                state=top["to_state"],
                since=since,
                starts_at=at,
                value=math.nan if value is None else float(value),
                annotations={str(k): str(v) for k, v in (top.get("annotations") or {}).items()},
                acknowledged_by=None if acked is None else acked["labels"].get("acknowledged_by"),
                acknowledged_at=None if acked is None else utc(acked["at"]),
            )
        )
    out.sort(key=lambda a: a.starts_at, reverse=True)
    return out


def active_row_ids(rows: Iterable[Mapping[str, Any]]) -> set[int]:
    """The ids of the rows :func:`stored_alerts` needs (same ``rows``), which a prune of
    the history keeps however old, so an alert firing for longer than the retention is
    still carried on by a new leader: per alert still pending or firing, its newest state
    change, the pending row before it (the ``for`` clock of a firing alert) and its
    newest acknowledgement.  The same rule as ``SQLStore``'s prune, row for row."""
    by_fp: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_fp.setdefault(row["fingerprint"], []).append(row)
    ids: set[int] = set()
    for its in by_fp.values():
        states = [r for r in its if r["to_state"] != "acknowledged"][:RESTORE_ROWS]
        if not states or states[0]["to_state"] not in ("pending", "firing"):
            continue
        ids.add(int(states[0]["id"]))
        if len(states) > 1 and states[1]["to_state"] == "pending":
            ids.add(int(states[1]["id"]))
        ack = next((r for r in its if r["to_state"] == "acknowledged"), None)
        if ack is not None:
            ids.add(int(ack["id"]))
    return ids


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def _text(value: str | None, limit: int = _TEXT_LIMIT) -> str | None:
    return None if value is None else storable_text(str(value))[:limit]


def check_limit(limit: int) -> None:
    """A query's ``limit`` must be a positive int (0 would silently return nothing)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")


def history_row(t: AlertTransition) -> dict[str, Any]:
    """The ``alert_history`` row of one state change (without ``id``)."""
    if t.from_state not in _STATES or t.to_state not in _RECORDS:
        raise StoreRejectedError(
            f"alert state must be one of {', '.join(_STATES)}, "
            f"not {t.from_state!r} -> {t.to_state!r}"
        )
    labels = {str(k): str(v) for k, v in t.labels.items()}
    model = labels.get("model")
    return {
        "fingerprint": t.fingerprint,
        "alertname": storable_text(labels.get("alertname", "")),
        "severity": storable_text(labels.get("severity", "")),
        "model": None if model is None else storable_text(model),
        "labels": labels,
        "from_state": t.from_state,
        "to_state": t.to_state,
        "at": utc(t.at),
        "value": _finite(t.value),
        "annotations": (
            {storable_text(str(k)): storable_text(str(v)) for k, v in t.annotations.items()}
            if t.annotations
            else None
        ),
    }


def attempt_row(a: DeliveryAttempt) -> dict[str, Any]:
    """The ``alert_notifications`` row of one delivery attempt (without ``id``)."""
    if a.outcome not in ("ok", "error"):
        raise StoreRejectedError(f"delivery outcome must be ok or error, not {a.outcome!r}")
    return {
        "receiver": a.receiver,
        "group_key": storable_text(a.group_key),
        "attempt": int(a.attempt),
        "at": utc(a.at),
        "outcome": a.outcome,
        "alerts": int(a.alerts),
        "error": _text(a.error),
        "retry_at": None if a.retry_at is None else utc(a.retry_at),
    }


def silence_row(s: Silence) -> dict[str, Any]:
    """The ``silences`` columns a save writes (the store adds created_at/updated_at)."""
    return {
        "id": s.id,
        "matchers": [{"name": m.name, "op": m.op, "value": m.value} for m in s.matchers],
        "starts_at": utc(s.starts_at),
        "ends_at": utc(s.ends_at),
        # text columns: PostgreSQL refuses U+0000 (the one change a round trip can show)
        "created_by": storable_text(s.author),
        "comment": storable_text(s.comment),
    }


def silences_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[Silence]:
    """The silences of stored rows; a row that no longer makes a valid silence (edited
    by hand: a bad regex, no matcher) is left out and logged, so one bad row does not
    cost a restart every other silence."""
    out = []
    for row in rows:
        try:
            out.append(silence_from_row(row))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("stored silence %r is not valid, left out: %s", row.get("id"), exc)
    return out


def silence_from_row(row: Mapping[str, Any]) -> Silence:
    """The :class:`Silence` a stored row describes (the exact one that was saved)."""
    return Silence(
        id=row["id"],
        matchers=tuple(Matcher(m["name"], m["op"], m["value"]) for m in row["matchers"]),
        starts_at=utc(row["starts_at"]),
        ends_at=utc(row["ends_at"]),
        author=row["created_by"],
        comment=row["comment"],
    )


def action_row(
    *,
    action: str,
    kind: str,
    model: str | None,
    at: datetime,
    outcome: str,
    version: str | None,
    fingerprint: str | None,
    detail: str,
    evidence: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The ``action_records`` row of one action run (without ``id``); a kind or outcome
    outside the fixed sets is refused before anything is written."""
    if kind not in ACTION_KINDS:
        raise StoreRejectedError(f"action kind must be one of {', '.join(ACTION_KINDS)}, "
                                 f"not {kind!r}")  # fmt: skip
    if outcome not in ACTION_OUTCOMES:
        raise StoreRejectedError(
            f"action outcome must be one of {', '.join(ACTION_OUTCOMES)}, not {outcome!r}"
        )
    return {
        "action": action,
        "kind": kind,
        "model": model,
        "version": version,
        "fingerprint": fingerprint,
        "at": utc(at),
        "outcome": outcome,
        "detail": _text(detail) or "",
        "evidence": None if evidence is None else dict(evidence),
    }
