"""Alerting's tables: history, delivery attempts, silences and action records, on every Store."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from inferwatch.alerting import (
    AlertTransition,
    DeliveryAttempt,
    Matcher,
    Silence,
    Silences,
    fingerprint,
)
from inferwatch.errors import StoreError, StoreRejectedError
from inferwatch.ports import Store
from inferwatch.store import MemoryStore, SQLStore, silences_table

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def transition(
    alertname: str = "AccuracyLow",
    *,
    model: str | None = "churn",
    severity: str = "critical",
    from_state: Any = "pending",
    to_state: Any = "firing",
    at: datetime = T0,
    value: float = 0.8,
) -> AlertTransition:
    labels = {"alertname": alertname, "severity": severity}
    if model is not None:
        labels["model"] = model
    return AlertTransition(
        fingerprint(labels),
        labels,
        from_state,
        to_state,
        at,
        value,
    )


def attempt(
    receiver: str = "ops", *, at: datetime = T0, outcome: Any = "ok", n: int = 1, **kw: Any
) -> DeliveryAttempt:
    return DeliveryAttempt(
        receiver,
        '{alertname="AccuracyLow"}',
        n,
        at,
        outcome,
        2,
        **kw,
    )


def record(store: Store, **kw: object) -> int:
    fields: dict[str, object] = {
        "action": "rollback-on-accuracy", "kind": "rollback", "model": "churn", "at": T0,
        "outcome": "ok", "version": "2", "fingerprint": "abc", "detail": "2 -> 1",
        "evidence": {"labels": {"alertname": "AccuracyLow"}, "value": 0.8},
    }  # fmt: skip
    fields.update(kw)
    return store.write_action_record(**fields)  # type: ignore[arg-type]


class AlertStoreContract:
    """What any Store does with alerting's rows; subclasses provide ``store``."""

    # -- history --------------------------------------------------------------------
    def test_history_round_trips_every_field_newest_first(self, store: Store) -> None:
        rows = [
            transition(from_state="inactive", to_state="pending", at=T0),
            transition(at=T0 + MIN),
            transition("HighCPU", model=None, severity="warning", at=T0 + 2 * MIN, value=0.93),
        ]
        assert store.write_alert_transitions(rows) == 3

        got = store.query_alert_history()

        assert [(r["alertname"], r["to_state"]) for r in got] == [
            ("HighCPU", "firing"), ("AccuracyLow", "firing"), ("AccuracyLow", "pending"),
        ]  # fmt: skip
        cpu = got[0]
        assert cpu["model"] is None
        assert cpu["severity"] == "warning"
        assert cpu["labels"] == {"alertname": "HighCPU", "severity": "warning"}
        assert cpu["fingerprint"] == rows[2].fingerprint
        assert cpu["from_state"] == "pending"
        assert cpu["value"] == pytest.approx(0.93)
        assert cpu["at"] == T0 + 2 * MIN and cpu["at"].tzinfo is not None
        assert got[1]["labels"]["model"] == "churn"

    def test_history_filters_and_limits(self, store: Store) -> None:
        store.write_alert_transitions(
            [
                transition(model="churn", at=T0),
                transition(model="fraud", at=T0 + MIN),
                transition("DatasetDrift", model="churn", at=T0 + 2 * MIN),
                transition(
                    model="churn", to_state="resolved", from_state="firing", at=T0 + 3 * MIN
                ),
            ]
        )
        churn = store.query_alert_history(model="churn")
        assert [r["at"] for r in churn] == [T0 + 3 * MIN, T0 + 2 * MIN, T0]
        assert [r["model"] for r in store.query_alert_history(alertname="AccuracyLow")] == [
            "churn", "fraud", "churn",
        ]  # fmt: skip
        fp = transition(model="fraud").fingerprint
        assert [r["model"] for r in store.query_alert_history(fingerprint=fp)] == ["fraud"]
        window = store.query_alert_history(since=T0 + MIN, until=T0 + 3 * MIN)
        assert [r["at"] for r in window] == [T0 + 2 * MIN, T0 + MIN]
        assert len(store.query_alert_history(limit=2)) == 2
        with pytest.raises(ValueError, match="limit"):
            store.query_alert_history(limit=0)

    def test_one_cycles_rows_keep_their_order_at_one_time(self, store: Store) -> None:
        # a cycle's transitions share ``at``: newest first means last written first
        store.write_alert_transitions(
            [transition(from_state="inactive", to_state="pending"), transition()]
        )
        assert [r["to_state"] for r in store.query_alert_history()] == ["firing", "pending"]

    def test_naive_times_are_utc_and_offsets_are_converted(self, store: Store) -> None:
        plus2 = timezone(timedelta(hours=2))
        store.write_alert_transitions([transition(at=datetime(2026, 11, 29, 14, 0, tzinfo=plus2))])
        naive_since = datetime(2026, 11, 29, 11, 59)  # UTC, naive
        got = store.query_alert_history(since=naive_since)
        assert [r["at"] for r in got] == [T0]
        assert store.query_alert_history(since=datetime(2026, 11, 29, 12, 1)) == []

    def test_a_non_finite_value_is_stored_as_null(self, store: Store) -> None:
        store.write_alert_transitions([transition(value=math.nan)])
        assert store.query_alert_history()[0]["value"] is None

    def test_a_bad_state_refuses_the_whole_batch(self, store: Store) -> None:
        with pytest.raises(StoreRejectedError, match="state"):
            store.write_alert_transitions([transition(), transition(to_state="exploded")])
        assert store.query_alert_history() == []
        assert store.write_alert_transitions([]) == 0

    # -- delivery attempts ----------------------------------------------------------
    def test_delivery_attempts_round_trip_and_filter(self, store: Store) -> None:
        retry = T0 + 2 * MIN
        rows = [
            attempt(at=T0, outcome="error", error="connection refused", retry_at=retry),
            attempt(at=T0 + 2 * MIN, n=2),
            attempt("pager", at=T0 + MIN),
        ]
        assert store.write_delivery_attempts(rows) == 3

        got = store.query_delivery_attempts(receiver="ops")
        assert [(r["attempt"], r["outcome"]) for r in got] == [(2, "ok"), (1, "error")]
        failed = got[1]
        assert failed["error"] == "connection refused"
        assert failed["retry_at"] == retry
        assert failed["group_key"] == '{alertname="AccuracyLow"}'
        assert failed["alerts"] == 2
        assert got[0]["error"] is None and got[0]["retry_at"] is None
        assert [r["receiver"] for r in store.query_delivery_attempts(outcome="error")] == ["ops"]
        assert [r["receiver"] for r in store.query_delivery_attempts(until=T0 + 2 * MIN)] == [
            "pager", "ops",
        ]  # fmt: skip
        assert len(store.query_delivery_attempts(group_key='{alertname="AccuracyLow"}')) == 3

    def test_a_huge_error_text_is_capped(self, store: Store) -> None:
        store.write_delivery_attempts([attempt(outcome="error", error="<html>" + "x" * 50_000)])
        assert len(store.query_delivery_attempts()[0]["error"]) == 4000

    # -- silences -------------------------------------------------------------------
    def test_a_silence_round_trips_exactly(self, store: Store) -> None:
        silence = Silence(
            "s1",
            (
                Matcher("model", "=", "churn"),
                Matcher("severity", "=~", "warning|critical"),
                Matcher("team", "!=", ""),
                Matcher("alertname", "!~", "No.*"),
            ),
            T0,
            T0 + timedelta(hours=2),
            "ana@example.com",
            "deploying v3 — ünïcode",
        )
        store.save_silence(silence)

        (got,) = store.load_silences(now=T0)

        assert got == silence
        assert got.matches({"model": "churn", "severity": "critical", "team": "ml"})

    def test_expiring_early_updates_the_end_and_keeps_created_at(self, store: Store) -> None:
        silences = Silences()
        s = silences.add(["model=churn"], T0, T0 + timedelta(hours=2), "ana", "maintenance")
        store.save_silence(s)
        created = store.silence_times(s.id)  # type: ignore[attr-defined]
        assert created is not None

        expired = silences.expire(s.id, T0 + 10 * MIN)
        store.save_silence(expired)

        assert store.load_silences(now=T0 + 11 * MIN) == []
        assert store.load_silences(now=T0 + 5 * MIN) == [expired]
        assert store.load_silences(include_expired=True, now=T0 + 11 * MIN) == [expired]
        times = store.silence_times(s.id)  # type: ignore[attr-defined]
        assert times["created_at"] == created["created_at"]
        assert times["updated_at"] >= created["updated_at"]

    def test_silences_load_by_start_time_and_pending_ones_are_kept(self, store: Store) -> None:
        later = Silence("b", (Matcher("model", "=", "x"),), T0 + MIN, T0 + 9 * MIN, "bo")
        now_ = Silence("a", (Matcher("model", "=", "y"),), T0, T0 + 9 * MIN, "al")
        gone = Silence("c", (Matcher("model", "=", "z"),), T0 - 9 * MIN, T0 - MIN, "cy")
        for s in (later, now_, gone):
            store.save_silence(s)

        assert [s.id for s in store.load_silences(now=T0)] == ["a", "b"]
        assert [s.id for s in store.load_silences(now=T0, include_expired=True)] == [
            "c", "a", "b",
        ]  # fmt: skip

    def test_a_nul_in_a_comment_or_author_is_stored_as_the_replacement_char(
        self, store: Store
    ) -> None:
        silence = Silence("n", (Matcher("model", "=", "a\x00b"),), T0, T0 + MIN, "al\x00", "x\x00y")
        store.save_silence(silence)

        (got,) = store.load_silences(now=T0)

        assert (got.author, got.comment) == ("al\ufffd", "x\ufffdy")
        assert got.matchers == (Matcher("model", "=", "a\ufffdb"),)

    # -- action records -------------------------------------------------------------
    def test_action_records_round_trip_with_evidence(self, store: Store) -> None:
        first = record(store)
        second = record(store, at=T0 + MIN, outcome="skipped", detail="cooldown: 59m left",
                        version=None, evidence=None)  # fmt: skip
        assert second > first

        got = store.query_action_records(model="churn")

        assert [r["id"] for r in got] == [second, first]
        assert got[0]["outcome"] == "skipped" and got[0]["evidence"] is None
        assert got[0]["version"] is None
        ok = got[1]
        assert ok["action"] == "rollback-on-accuracy" and ok["kind"] == "rollback"
        assert ok["version"] == "2" and ok["fingerprint"] == "abc"
        assert ok["detail"] == "2 -> 1" and ok["at"] == T0
        assert ok["evidence"] == {"labels": {"alertname": "AccuracyLow"}, "value": 0.8}

    def test_action_records_filter(self, store: Store) -> None:
        record(store)
        record(store, action="retrain-on-drift", kind="retrain", at=T0 + MIN, outcome="error")
        record(store, action="scale-on-cpu", kind="scale", model=None, at=T0 + 2 * MIN)

        assert [r["kind"] for r in store.query_action_records(outcome="ok")] == [
            "scale", "rollback",
        ]  # fmt: skip
        assert [r["kind"] for r in store.query_action_records(kind="retrain")] == ["retrain"]
        assert [r["kind"] for r in store.query_action_records(action="scale-on-cpu")] == ["scale"]
        assert [r["kind"] for r in store.query_action_records(since=T0 + MIN)] == [
            "scale", "retrain",
        ]  # fmt: skip
        assert len(store.query_action_records(limit=1)) == 1

    def test_a_bad_kind_or_outcome_is_refused(self, store: Store) -> None:
        with pytest.raises(StoreRejectedError, match="kind"):
            record(store, kind="reboot")
        with pytest.raises(StoreRejectedError, match="outcome"):
            record(store, outcome="maybe")
        assert store.query_action_records() == []

    def test_non_finite_evidence_becomes_null(self, store: Store) -> None:
        record(store, evidence={"value": math.inf, "rows": [1.0, math.nan]})
        assert store.query_action_records()[0]["evidence"] == {"value": None, "rows": [1.0, None]}

    # -- retention ------------------------------------------------------------------
    def test_prune_drops_old_history_attempts_and_ended_silences(self, store: Store) -> None:
        store.write_alert_transitions([transition(at=T0), transition(at=T0 + 10 * MIN)])
        store.write_delivery_attempts([attempt(at=T0), attempt(at=T0 + 10 * MIN)])
        store.save_silence(Silence("old", (Matcher("a", "=", "b"),), T0 - MIN, T0, "al"))
        store.save_silence(Silence("new", (Matcher("a", "=", "b"),), T0, T0 + 20 * MIN, "al"))
        record(store, at=T0)

        counts = store.prune_alert_history(T0 + 5 * MIN)

        assert counts == {"alert_history": 1, "alert_notifications": 1, "silences": 1}
        assert [r["at"] for r in store.query_alert_history()] == [T0 + 10 * MIN]
        assert [r["at"] for r in store.query_delivery_attempts()] == [T0 + 10 * MIN]
        assert [s.id for s in store.load_silences(include_expired=True)] == ["new"]
        assert len(store.query_action_records()) == 1  # the audit trail stays
        assert store.prune_alert_history(T0 + 5 * MIN) == {
            "alert_history": 0, "alert_notifications": 0, "silences": 0,
        }  # fmt: skip


class TestSQLAlerts(AlertStoreContract):
    """On a SQLite file and on PostgreSQL (the ``store`` fixture of conftest)."""

    def test_silences_and_history_survive_a_restart(self, store: SQLStore, store_url: str) -> None:
        silence = Silence("s", (Matcher("model", "=", "churn"),), T0, T0 + MIN, "al", "c")
        store.save_silence(silence)
        store.write_alert_transitions([transition()])
        store.close()

        with SQLStore(store_url) as again:
            assert again.load_silences(now=T0) == [silence]
            assert len(again.query_alert_history()) == 1

    def test_a_stored_silence_that_is_no_longer_valid_is_left_out(
        self, store: SQLStore, caplog: pytest.LogCaptureFixture
    ) -> None:
        store.save_silence(Silence("good", (Matcher("a", "=", "b"),), T0, T0 + MIN, "al"))
        store.save_silence(Silence("bad", (Matcher("a", "=~", "b+"),), T0, T0 + MIN, "al"))
        with store.engine.begin() as conn:  # edited by hand: the regex no longer compiles
            conn.execute(
                silences_table.update()
                .where(silences_table.c.id == "bad")
                .values(matchers=[{"name": "a", "op": "=~", "value": "(b"}])
            )

        assert [s.id for s in store.load_silences(now=T0)] == ["good"]
        assert "stored silence 'bad' is not valid" in caplog.text

    def test_a_store_that_is_down_raises_store_error(self) -> None:
        down = SQLStore("postgresql+psycopg://nobody@127.0.0.1:1/none")
        with pytest.raises(StoreError, match="alert transitions"):
            down.write_alert_transitions([transition()])
        with pytest.raises(StoreError, match="silences"):
            down.load_silences()
        with pytest.raises(StoreError):
            record(down)
        down.close()


class TestMemoryAlerts(AlertStoreContract):
    @pytest.fixture
    def store(self) -> MemoryStore:
        memory = MemoryStore()
        memory.upgrade()
        return memory

    def test_an_unavailable_store_refuses(self, store: MemoryStore) -> None:
        store.available = False
        with pytest.raises(StoreError, match="unavailable"):
            store.write_alert_transitions([transition()])
        with pytest.raises(StoreError, match="unavailable"):
            store.save_silence(Silence("s", (Matcher("a", "=", "b"),), T0, T0 + MIN, "al"))
        with pytest.raises(StoreError, match="unavailable"):
            record(store)


def test_the_queries_use_their_indexes(tmp_path: Path) -> None:
    # SQLite's plan is deterministic; PostgreSQL's depends on table statistics
    with SQLStore(f"sqlite:///{tmp_path}/plan.db") as store:
        store.upgrade()
        with store.engine.connect() as conn:
            plans = {
                sql: " ".join(
                    str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")
                )
                for sql in (
                    "SELECT * FROM alert_history WHERE model = 'a' ORDER BY at DESC",
                    "SELECT * FROM alert_history WHERE alertname = 'a' ORDER BY at DESC",
                    "SELECT * FROM alert_history WHERE fingerprint = 'a' ORDER BY at DESC",
                    "SELECT * FROM alert_notifications WHERE receiver = 'a' ORDER BY at DESC",
                    "SELECT * FROM action_records WHERE action = 'a' AND model = 'm' "
                    "ORDER BY at DESC",
                    "DELETE FROM alert_history WHERE at < '2026-01-01'",
                    "DELETE FROM silences WHERE ends_at < '2026-01-01'",
                )
            }
    for sql, plan in plans.items():
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (sql, plan)
