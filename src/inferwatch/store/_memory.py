"""``MemoryStore``: the Store in a dict, for engine and server tests (as httpx's MockTransport).

It keeps what a database would give back, not the objects it was handed: JSON
values go through the same encoder as ``SQLStore`` (numpy becomes plain numbers,
NaN becomes None, tuples become lists) and timestamps come back in UTC.  Writes are
all or nothing, like a transaction.  Set ``available = False`` to make it behave
like a database that is down: writes raise ``StoreError`` and ``ping()`` is False.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from inferwatch.alerting import AlertTransition, DeliveryAttempt, Silence, StoredAlert
from inferwatch.errors import StoreError, StoreRejectedError
from inferwatch.history import RAW, ModelRow, ResourceRow
from inferwatch.observation import (
    DRIFT_METRICS,
    Evaluation,
    Label,
    LabelledPrediction,
    PredictionRecord,
)
from inferwatch.store._alerts import (
    ACTION_COLUMNS,
    ATTEMPT_COLUMNS,
    HISTORY_COLUMNS,
    RESTORE_LIMIT,
    action_row,
    active_row_ids,
    attempt_row,
    check_limit,
    history_row,
    silence_row,
    silences_from_rows,
    stored_alerts,
)
from inferwatch.store._history import model_from_row, model_row, resource_from_row, resource_row
from inferwatch.store._lease import MemoryLeases
from inferwatch.store._sql import (
    EVALUATION_COLUMNS,
    LABELLED_COLUMNS,
    evaluation_row,
    head_revision,
    quarantine_row,
)
from inferwatch.store._tables import json_roundtrip, utc
from inferwatch.store._windows import MemoryWindowProfiles

__all__ = ["MemoryStore"]


def _stored(record: PredictionRecord) -> PredictionRecord:
    return replace(
        record,
        timestamp=utc(record.timestamp),
        inputs=json_roundtrip(record.inputs),
        output=json_roundtrip(record.output),
        probabilities=json_roundtrip(record.probabilities),
        score=None if record.score is None else float(record.score),
        latency_seconds=None if record.latency_seconds is None else float(record.latency_seconds),
    )


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)


class MemoryStore(MemoryLeases, MemoryWindowProfiles):
    """A thread-safe, in-memory :class:`~inferwatch.ports.Store`; nothing survives the process."""

    def __init__(self, *, available: bool = True) -> None:
        self.available = available
        self._lock = threading.Lock()
        self._predictions: dict[str, PredictionRecord] = {}
        # one label per prediction: prediction_id -> the row's columns (as _sql's upsert)
        self._labels: dict[str, dict[str, Any]] = {}
        self._models: dict[tuple[str, str], dict[str, Any]] = {}
        self._references: dict[tuple[str, str], dict[str, Any]] = {}
        self._evaluations: list[dict[str, Any]] = []
        self._quarantine: list[dict[str, Any]] = []
        self._revision: str | None = None
        self._alert_history: list[dict[str, Any]] = []
        self._attempts: list[dict[str, Any]] = []
        self._silences: dict[str, dict[str, Any]] = {}
        self._actions: list[dict[str, Any]] = []
        self._next_id = 0  # one sequence for the alerting tables' ids
        self._history_models: list[dict[str, Any]] = []
        self._history_resources: list[dict[str, Any]] = []
        self._leases: dict[str, dict[str, Any]] = {}
        self._lease_lock = threading.Lock()
        self._window_profiles: dict[tuple[str, str, float, str], dict[str, Any]] = {}
        self._window_performance: dict[tuple[str, str, float, str], dict[str, Any]] = {}
        self._window_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryStore(predictions={len(self._predictions)}, available={self.available})"

    def _check(self, action: str) -> None:
        if not self.available:
            raise StoreError(f"{action} failed: the store is unavailable")

    # -- schema -------------------------------------------------------------------

    def upgrade(self) -> None:
        self._check("migrating the store")
        self._revision = head_revision()

    def current_revision(self) -> str | None:
        return self._revision

    def head_revision(self) -> str:
        return head_revision()

    def ping(self) -> bool:
        return self.available

    def close(self) -> None:
        pass

    # -- writes -------------------------------------------------------------------

    def write_predictions(self, records: Sequence[PredictionRecord]) -> int:
        self._check(f"writing {len(records)} predictions")
        try:
            rows = [_stored(record) for record in records]
        except (TypeError, ValueError) as exc:
            raise StoreRejectedError(f"writing {len(records)} predictions failed: {exc}") from exc
        with self._lock:
            ids = [row.id for row in rows]
            # idempotent as SQLStore's: a row stored already with the same values is a
            # re-send (counted, not added); the same id with other values is a clash
            clash = len(set(ids)) != len(ids) or any(
                self._predictions.get(row.id, row) != row for row in rows
            )
            if clash:
                raise StoreRejectedError(
                    f"writing {len(rows)} predictions failed: duplicate prediction id"
                )
            self._predictions.update((row.id, row) for row in rows)
        return len(rows)

    def quarantine_predictions(self, records: Sequence[PredictionRecord], reason: str) -> int:
        self._check(f"quarantining {len(records)} predictions")
        now = datetime.now(UTC)
        with self._lock:
            first = len(self._quarantine) + 1
            for i, record in enumerate(records):
                row = {"id": first + i, "quarantined_at": now, **quarantine_row(record, reason)}
                self._quarantine.append(row)
        return len(records)

    def quarantined(
        self, model: str | None = None, version: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        with self._lock:
            rows = [
                dict(row)
                for row in self._quarantine
                if (model is None or row["model"] == model)
                and (version is None or row["version"] == version)
            ]
        return rows[:limit]

    def write_labels(self, labels: Sequence[Label]) -> int:
        self._check(f"writing {len(labels)} labels")
        try:
            rows = [
                Label(label.prediction_id, json_roundtrip(label.value), utc(label.timestamp))
                for label in labels
            ]
        except (TypeError, ValueError) as exc:
            raise StoreError(f"writing {len(labels)} labels failed: {exc}") from exc
        newest = {row.prediction_id: row for row in rows}
        with self._lock:
            for row in newest.values():
                self._labels[row.prediction_id] = {
                    "value": row.value, "ts": row.timestamp, "model": None, "version": None,
                    "prediction_ts": None, "received_at": row.timestamp,
                }  # fmt: skip
        return len(newest)

    def upsert_labels(self, labelled: Sequence[LabelledPrediction]) -> dict[str, Any]:
        self._check(f"writing {len(labelled)} labels")
        ids = [item.prediction.id for item in labelled]
        if len(set(ids)) != len(ids):
            raise ValueError("upsert_labels: a prediction id appears twice in one call")
        try:
            rows = {
                item.prediction.id: {
                    "value": json_roundtrip(item.label),
                    "ts": utc(item.received_at),
                    "model": item.prediction.model,
                    "version": item.prediction.version,
                    "prediction_ts": utc(item.prediction.timestamp),
                    "received_at": utc(item.received_at),
                    "output": json_roundtrip(item.prediction.output),
                    "score": _float_or_none(item.prediction.score),
                    "probabilities": json_roundtrip(item.prediction.probabilities),
                }
                for item in labelled
            }
        except (TypeError, ValueError) as exc:
            raise StoreError(f"writing {len(labelled)} labels failed: {exc}") from exc
        with self._lock:
            previous = {pid: self._labels[pid]["value"] for pid in rows if pid in self._labels}
            self._labels.update(rows)
        return previous

    def find_predictions(self, ids: Sequence[str]) -> dict[str, PredictionRecord]:
        self._check("reading predictions")
        with self._lock:
            return {pid: self._predictions[pid] for pid in ids if pid in self._predictions}

    def count_labels(
        self,
        model: str | None = None,
        version: str | None = None,
        *,
        received_since: datetime | None = None,
    ) -> int:
        self._check("counting labels")
        lo = None if received_since is None else utc(received_since)
        with self._lock:
            rows = list(self._labels.values())
        return sum(
            1
            for row in rows
            if (model is None or row["model"] == model)
            and (version is None or row["version"] == version)
            and (lo is None or row["received_at"] >= lo)
        )

    def labelled_columns(
        self,
        model: str,
        version: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int = 100_000,
        columns: Sequence[str] = LABELLED_COLUMNS,
    ) -> Iterator[dict[str, list[Any]]]:
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size!r}")
        if not columns or any(c not in LABELLED_COLUMNS for c in columns):
            raise ValueError(f"columns must be some of {LABELLED_COLUMNS}, got {columns!r}")
        self._check("reading labelled predictions")
        lo = None if since is None else utc(since)
        hi = None if until is None else utc(until)
        with self._lock:
            joined = sorted(
                (
                    (row["prediction_ts"], pid, row)
                    for pid, row in self._labels.items()
                    if row["model"] == model
                    and row["version"] == version
                    and (lo is None or row["prediction_ts"] >= lo)
                    and (hi is None or row["prediction_ts"] < hi)
                ),
                key=lambda item: (item[0], item[1]),
            )
        for start in range(0, len(joined), page_size):
            page = joined[start : start + page_size]
            full = {
                "id": [pid for _, pid, _ in page],
                "ts": [ts.timestamp() for ts, _, _ in page],
                "output": [row["output"] for _, _, row in page],
                "score": [row["score"] for _, _, row in page],
                "probabilities": [row["probabilities"] for _, _, row in page],
                "label": [row["value"] for _, _, row in page],
            }
            yield {name: full[name] for name in dict.fromkeys(columns)}

    def write_evaluations(self, rows: Sequence[Evaluation]) -> int:
        self._check(f"writing {len(rows)} evaluations")
        try:
            values = [evaluation_row(row) for row in rows]
            for value in values:
                value["details"] = json_roundtrip(value["details"])
                for key in ("window_start", "window_end", "evaluated_at"):
                    value[key] = utc(value[key])
        except (TypeError, ValueError) as exc:
            raise StoreError(f"writing {len(rows)} evaluations failed: {exc}") from exc
        with self._lock:
            first = len(self._evaluations) + 1
            for i, value in enumerate(values):
                self._evaluations.append({"id": first + i, **value})
        return len(values)

    def register_model(
        self, name: str, version: str, *, flavor: str, uri: str | None = None
    ) -> None:
        self._check(f"registering model {name}:{version}")
        with self._lock:
            row = self._models.setdefault(
                (name, version),
                {"name": name, "version": version, "created_at": datetime.now(UTC)},
            )
            row.update(flavor=flavor, uri=uri)

    def register_reference(
        self,
        model: str,
        version: str,
        *,
        uri: str | None,
        n_rows: int,
        schema: Mapping[str, Any],
    ) -> None:
        self._check(f"registering the reference of {model}:{version}")
        row = {
            "model": model,
            "version": version,
            "uri": uri,
            "n_rows": int(n_rows),
            "schema": json_roundtrip(schema),
            "created_at": datetime.now(UTC),
        }
        with self._lock:
            self._references[(model, version)] = row

    # -- reads --------------------------------------------------------------------

    def _select(
        self,
        model: str | None,
        version: str | None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[PredictionRecord]:
        self._check("reading predictions")
        with self._lock:
            rows = list(self._predictions.values())
        lo = None if since is None else utc(since)
        hi = None if until is None else utc(until)
        return [
            row
            for row in rows
            if (model is None or row.model == model)
            and (version is None or row.version == version)
            and (lo is None or row.timestamp >= lo)
            and (hi is None or row.timestamp < hi)
        ]

    def count_predictions(
        self,
        model: str | None = None,
        version: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        return len(self._select(model, version, since, until))

    def get_prediction(self, prediction_id: str) -> PredictionRecord | None:
        self._check("reading a prediction")
        with self._lock:
            return self._predictions.get(prediction_id)

    def iter_predictions(
        self,
        model: str | None = None,
        version: str | None = None,
        limit: int | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int = 1000,
    ) -> Iterator[PredictionRecord]:
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size!r}")
        rows = self._select(model, version, since, until)
        rows.sort(key=lambda row: (row.timestamp, row.id))
        return iter(rows if limit is None else rows[:limit])

    def drift_windows(
        self, model: str, version: str, *, since: datetime, until: datetime, limit: int = 500
    ) -> list[dict[str, Any]]:
        self._check("reading drift windows")
        lo, hi = utc(since), utc(until)
        with self._lock:
            rows = [
                dict(r) for r in self._evaluations
                if r["model"] == model and r["version"] == version
                and r["metric"] in ("drift", "dataset_drift_share")
                and r["window_start"] < hi and r["window_end"] > lo
            ]  # fmt: skip
        last: dict[datetime, datetime] = {}
        for r in rows:
            if r["metric"] == "dataset_drift_share":
                got = last.get(r["window_start"])
                if got is None or r["evaluated_at"] > got:
                    last[r["window_start"]] = r["evaluated_at"]
        keep = set(sorted(last)[-limit:])
        out = [r for r in rows if r["window_start"] in keep
               and r["evaluated_at"] == last[r["window_start"]]]  # fmt: skip
        out.sort(key=lambda r: (r["window_start"], r["id"]))
        return out

    def query_evaluations(
        self,
        model: str,
        *,
        version: str | None = None,
        metric: str | None = None,
        test: str | None = None,
        feature: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        self._check("reading evaluations")
        lo = None if since is None else utc(since)
        hi = None if until is None else utc(until)
        wanted = {"version": version, "metric": metric, "test": test, "feature": feature}
        with self._lock:
            rows = [
                r
                for r in self._evaluations
                if r["model"] == model
                and all(v is None or r[k] == v for k, v in wanted.items())
                and (lo is None or r["window_start"] >= lo)
                and (hi is None or r["window_start"] < hi)
            ]
        rows.sort(key=lambda r: (r["evaluated_at"], r["id"]), reverse=True)
        return [{key: row[key] for key in EVALUATION_COLUMNS} for row in rows[:limit]]

    def latest_evaluations(self, model: str, version: str) -> list[dict[str, Any]]:
        self._check("reading evaluations")
        with self._lock:
            mine = [
                r
                for r in self._evaluations
                if r["model"] == model and r["version"] == version and r["metric"] in DRIFT_METRICS
            ]
        if not mine:
            return []
        head = max(mine, key=lambda r: (r["evaluated_at"], r["id"]))
        newest = (head["evaluated_at"], head["window_start"])
        return [
            {key: row[key] for key in EVALUATION_COLUMNS}
            for row in mine
            if (row["evaluated_at"], row["window_start"]) == newest
        ]

    def get_labels(self, prediction_id: str) -> list[Label]:
        self._check("reading labels")
        with self._lock:
            row = self._labels.get(prediction_id)
        return [] if row is None else [Label(prediction_id, row["value"], row["ts"])]

    def list_models(self) -> list[dict[str, Any]]:
        self._check("listing models")
        with self._lock:
            return [dict(self._models[key]) for key in sorted(self._models)]

    def get_reference(self, model: str, version: str) -> dict[str, Any] | None:
        self._check("reading a reference")
        with self._lock:
            row = self._references.get((model, version))
        return None if row is None else dict(row)

    # -- alerting -----------------------------------------------------------------

    def _append(self, table: list[dict[str, Any]], rows: list[dict[str, Any]]) -> int:
        """Append rows with ids that keep counting after a prune (as a sequence does);
        the last id given."""
        with self._lock:
            for row in rows:
                self._next_id += 1
                table.append({"id": self._next_id, **row})
            return self._next_id

    @staticmethod
    def _newest(
        table: list[dict[str, Any]],
        columns: Sequence[str],
        equal: Mapping[str, str | None],
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        check_limit(limit)
        lo = None if since is None else utc(since)
        hi = None if until is None else utc(until)
        rows = [
            r
            for r in table
            if all(v is None or r[k] == v for k, v in equal.items())
            and (lo is None or r["at"] >= lo)
            and (hi is None or r["at"] < hi)
        ]
        rows.sort(key=lambda r: (r["at"], r["id"]), reverse=True)
        return [{key: json_roundtrip(row[key]) if isinstance(row[key], dict | list) else row[key]
                 for key in columns} for row in rows[:limit]]  # fmt: skip

    def write_alert_transitions(self, rows: Sequence[AlertTransition]) -> int:
        self._check(f"writing {len(rows)} alert transitions")
        values = [history_row(row) for row in rows]
        self._append(self._alert_history, values)
        return len(values)

    def query_alert_history(
        self,
        *,
        model: str | None = None,
        alertname: str | None = None,
        fingerprint: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        self._check("reading the alert history")
        equal = {"model": model, "alertname": alertname, "fingerprint": fingerprint}
        with self._lock:
            table = list(self._alert_history)
        return self._newest(table, HISTORY_COLUMNS, equal, since, until, limit)

    def write_delivery_attempts(self, rows: Sequence[DeliveryAttempt]) -> int:
        self._check(f"writing {len(rows)} delivery attempts")
        values = [attempt_row(row) for row in rows]
        self._append(self._attempts, values)
        return len(values)

    def query_delivery_attempts(
        self,
        *,
        receiver: str | None = None,
        group_key: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        self._check("reading delivery attempts")
        equal = {"receiver": receiver, "group_key": group_key, "outcome": outcome}
        with self._lock:
            table = list(self._attempts)
        return self._newest(table, ATTEMPT_COLUMNS, equal, since, until, limit)

    def query_active_alerts(self, *, limit: int = RESTORE_LIMIT) -> list[StoredAlert]:
        check_limit(limit)
        self._check("reading the active alerts")
        with self._lock:
            rows = sorted(self._alert_history, key=lambda r: (r["at"], r["id"]), reverse=True)
        return stored_alerts(rows)[:limit]

    def query_last_deliveries(
        self, *, since: datetime | None = None, limit: int = RESTORE_LIMIT
    ) -> dict[tuple[str, str], datetime]:
        check_limit(limit)
        self._check("reading the last deliveries")
        lo = None if since is None else utc(since)
        newest: dict[tuple[str, str], datetime] = {}
        with self._lock:
            for r in self._attempts:
                if r["outcome"] != "ok" or (lo is not None and r["at"] < lo):
                    continue
                gid = (r["receiver"], r["group_key"])
                if gid not in newest or r["at"] > newest[gid]:
                    newest[gid] = r["at"]
        top = sorted(newest.items(), key=lambda item: item[1], reverse=True)[:limit]
        return dict(top)

    def save_silence(self, silence: Silence) -> None:
        self._check(f"saving silence {silence.id}")
        now = datetime.now(UTC)
        row = silence_row(silence)
        row["matchers"] = json_roundtrip(row["matchers"])
        with self._lock:
            old = self._silences.get(silence.id)
            created = now if old is None else old["created_at"]
            self._silences[silence.id] = {**row, "created_at": created, "updated_at": now}

    def load_silences(
        self, *, include_expired: bool = False, now: datetime | None = None
    ) -> list[Silence]:
        self._check("reading silences")
        at = datetime.now(UTC) if now is None else utc(now)
        with self._lock:
            rows = [r for r in self._silences.values() if include_expired or r["ends_at"] > at]
        rows.sort(key=lambda r: (r["starts_at"], r["id"]))
        return silences_from_rows(rows)

    def silence_times(self, silence_id: str) -> dict[str, datetime] | None:
        self._check("reading a silence")
        with self._lock:
            row = self._silences.get(silence_id)
        return None if row is None else {k: row[k] for k in ("created_at", "updated_at")}

    def write_action_record(
        self,
        *,
        action: str,
        kind: str,
        model: str | None,
        at: datetime,
        outcome: str,
        version: str | None = None,
        fingerprint: str | None = None,
        detail: str = "",
        evidence: Mapping[str, Any] | None = None,
    ) -> int:
        self._check(f"recording action {action}")
        row = action_row(
            action=action, kind=kind, model=model, at=at, outcome=outcome, version=version,
            fingerprint=fingerprint, detail=detail, evidence=evidence,
        )  # fmt: skip
        try:
            row["evidence"] = json_roundtrip(row["evidence"])
        except (TypeError, ValueError) as exc:
            raise StoreRejectedError(f"recording action {action} failed: {exc}") from exc
        return self._append(self._actions, [row])

    def query_action_records(
        self,
        *,
        action: str | None = None,
        kind: str | None = None,
        model: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        self._check("reading action records")
        equal = {"action": action, "kind": kind, "model": model, "outcome": outcome}
        with self._lock:
            table = list(self._actions)
        return self._newest(table, ACTION_COLUMNS, equal, since, until, limit)

    def prune_alert_history(self, before: datetime) -> dict[str, int]:
        self._check("pruning the alert history")
        cut = utc(before)
        with self._lock:
            counts = {
                "alert_history": len(self._alert_history),
                "alert_notifications": len(self._attempts),
                "silences": len(self._silences),
            }
            # kept however old: the rows a new leader carries the active alerts on with,
            # and each group's newest successful delivery (as SQLStore keeps them)
            newest = sorted(self._alert_history, key=lambda r: (r["at"], r["id"]), reverse=True)
            carried = active_row_ids(newest)
            told: dict[tuple[str, str], int] = {}
            for r in self._attempts:
                if r["outcome"] == "ok":
                    gid = (r["receiver"], r["group_key"])
                    told[gid] = max(told.get(gid, 0), r["id"])
            kept = set(told.values())
            self._alert_history[:] = [
                r for r in self._alert_history if r["at"] >= cut or r["id"] in carried
            ]
            self._attempts[:] = [r for r in self._attempts if r["at"] >= cut or r["id"] in kept]
            self._silences = {k: r for k, r in self._silences.items() if r["ends_at"] >= cut}
            counts["alert_history"] -= len(self._alert_history)
            counts["alert_notifications"] -= len(self._attempts)
            counts["silences"] -= len(self._silences)
        return counts

    # -- history (inferwatch.history) ---------------------------------------------

    def write_history(self, models: Sequence[ModelRow], resources: Sequence[ResourceRow]) -> int:
        self._check("writing the history")
        m = [model_row(r) for r in models]
        r = [resource_row(x) for x in resources]
        with self._lock:
            self._history_models.extend(m)
            self._history_resources.extend(r)
        return len(m) + len(r)

    def query_model_history(
        self, model: str, *, version: str | None = None, since: float, until: float
    ) -> list[ModelRow]:
        self._check("reading the model history")
        with self._lock:
            rows = [
                r for r in self._history_models
                if r["model"] == model and (version is None or r["version"] == version)
                and since <= r["start"] < until
            ]  # fmt: skip
        rows.sort(key=lambda r: r["start"])  # stable: insertion order among equal starts
        return [model_from_row(r) for r in rows]

    def query_resource_history(self, *, since: float, until: float) -> list[ResourceRow]:
        self._check("reading the resource history")
        with self._lock:
            rows = [r for r in self._history_resources if since <= r["start"] < until]
        rows.sort(key=lambda r: r["start"])
        return [resource_from_row(r) for r in rows]

    def raw_history_before(
        self, before: float, *, limit: int | None = None
    ) -> tuple[list[ModelRow], list[ResourceRow]]:
        self._check("reading the raw history")
        with self._lock:
            m = [r for r in self._history_models if r["level"] == RAW and r["start"] < before]
            r = [x for x in self._history_resources if x["level"] == RAW and x["start"] < before]
        m.sort(key=lambda x: x["start"])
        r.sort(key=lambda x: x["start"])
        m, r = m[:limit], r[:limit]
        return [model_from_row(x) for x in m], [resource_from_row(x) for x in r]

    def fold_history(
        self,
        before: float,
        models: Sequence[ModelRow],
        resources: Sequence[ResourceRow],
        *,
        expected: int | None = None,
    ) -> int:
        self._check("folding the history")
        with self._lock:
            raw = sum(
                1 for table in (self._history_models, self._history_resources) for r in table
                if r["level"] == RAW and r["start"] < before
            )  # fmt: skip
            if expected is not None and raw != expected:
                return 0
            n = len(self._history_models) + len(self._history_resources)
            self._history_models[:] = [
                r for r in self._history_models if not (r["level"] == RAW and r["start"] < before)
            ]
            self._history_resources[:] = [
                r for r in self._history_resources
                if not (r["level"] == RAW and r["start"] < before)
            ]  # fmt: skip
            n -= len(self._history_models) + len(self._history_resources)
            self._history_models.extend(model_row(x) for x in models)
            self._history_resources.extend(resource_row(x) for x in resources)
        return n

    def prune_history(self, level: int, before: float) -> int:
        self._check("pruning the history")
        with self._lock:
            n = len(self._history_models) + len(self._history_resources)
            self._history_models[:] = [
                r for r in self._history_models if not (r["level"] == level and r["start"] < before)
            ]
            self._history_resources[:] = [
                r for r in self._history_resources
                if not (r["level"] == level and r["start"] < before)
            ]  # fmt: skip
            return n - len(self._history_models) - len(self._history_resources)
