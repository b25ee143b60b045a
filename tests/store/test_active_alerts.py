"""What a new evaluator leader reads to carry on the alerts: the alerts whose newest state
change left them pending or firing (with the ``for`` clock and the acknowledgement since
they fired), and the newest successful delivery per group; the same on memory, a SQLite
file and PostgreSQL."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from inferwatch.alerting import AlertTransition, DeliveryAttempt, fingerprint
from inferwatch.store import MemoryStore, SQLStore

T0 = datetime(2026, 11, 29, 12, tzinfo=UTC)


def _labels(name: str, model: str = "iris") -> dict[str, str]:
    return {"alertname": name, "severity": "warning", "model": model}


def _moves(name: str, *moves: tuple[str, str, float]) -> list[AlertTransition]:
    """Transitions of one alert: (from, to, minutes after T0)."""
    labels = _labels(name)
    fp = fingerprint(labels)
    out = []
    for old, new, minutes in moves:
        row_labels = dict(labels)
        if new == "acknowledged":
            row_labels |= {"acknowledged_by": f"ana-{minutes:g}", "acknowledgement_comment": ""}
        at = T0 + timedelta(minutes=minutes)
        out.append(AlertTransition(fp, row_labels, old, new, at, minutes))  # type: ignore[arg-type]
    return out


def test_active_alerts_are_the_ones_whose_newest_change_left_them_pending_or_firing(
    any_store: SQLStore | MemoryStore,
) -> None:
    rows = [
        *_moves("Fired", ("inactive", "pending", 1), ("pending", "firing", 3),
                ("firing", "acknowledged", 4), ("firing", "acknowledged", 5)),
        *_moves("Resolved", ("inactive", "firing", 1), ("firing", "resolved", 2)),
        *_moves("Pending", ("inactive", "pending", 6)),
        *_moves("WentBack", ("inactive", "pending", 1), ("pending", "inactive", 2)),
        # acknowledged in an earlier firing, resolved, firing again: not acknowledged now
        *_moves("Again", ("inactive", "firing", 1), ("firing", "acknowledged", 2),
                ("firing", "resolved", 3), ("resolved", "firing", 7)),
    ]  # fmt: skip
    rows.sort(key=lambda t: t.at)
    any_store.write_alert_transitions(rows)
    active = any_store.query_active_alerts()
    by_name = {a.labels["alertname"]: a for a in active}
    assert set(by_name) == {"Fired", "Pending", "Again"}
    assert [a.labels["alertname"] for a in active] == ["Again", "Pending", "Fired"]  # newest

    fired = by_name["Fired"]
    assert fired.state == "firing" and fired.fingerprint == fingerprint(_labels("Fired"))
    assert fired.since == T0 + timedelta(minutes=1)  # the for clock: when it went pending
    assert fired.starts_at == T0 + timedelta(minutes=3)
    assert fired.value == 3
    assert fired.labels == _labels("Fired")  # the state row's labels, not the ack's
    assert fired.acknowledged_by == "ana-5"  # the newest acknowledgement
    assert fired.acknowledged_at == T0 + timedelta(minutes=5)

    pending = by_name["Pending"]
    assert (pending.state, pending.since, pending.starts_at) == ("pending", T0 + timedelta(
        minutes=6), T0 + timedelta(minutes=6))  # fmt: skip
    assert pending.acknowledged_by is None

    again = by_name["Again"]
    assert again.state == "firing" and again.acknowledged_by is None
    assert again.since == again.starts_at == T0 + timedelta(minutes=7)

    assert [a.labels["alertname"] for a in any_store.query_active_alerts(limit=2)] == [
        "Again", "Pending"]  # fmt: skip
    with pytest.raises(ValueError, match="limit"):
        any_store.query_active_alerts(limit=0)


def test_a_value_stored_as_null_comes_back_as_nan(any_store: SQLStore | MemoryStore) -> None:
    labels = _labels("NotFinite")
    any_store.write_alert_transitions(
        [AlertTransition(fingerprint(labels), labels, "inactive", "firing", T0, math.inf)]
    )
    (alert,) = any_store.query_active_alerts()
    assert math.isnan(alert.value)


def test_last_deliveries_are_the_newest_successful_one_per_group(
    any_store: SQLStore | MemoryStore,
) -> None:
    def attempt(receiver: str, key: str, minutes: float, outcome: str) -> DeliveryAttempt:
        return DeliveryAttempt(receiver, key, 1, T0 + timedelta(minutes=minutes), outcome, 1)  # type: ignore[arg-type]

    any_store.write_delivery_attempts([
        attempt("hook", "{a}", 1, "ok"),
        attempt("hook", "{a}", 5, "ok"),
        attempt("hook", "{a}", 9, "error"),  # a failure tells nobody anything
        attempt("pager", "{a}", 2, "ok"),
        attempt("hook", "{b}", 3, "error"),
    ])  # fmt: skip
    assert any_store.query_last_deliveries() == {
        ("hook", "{a}"): T0 + timedelta(minutes=5),
        ("pager", "{a}"): T0 + timedelta(minutes=2),
    }
    assert any_store.query_last_deliveries(since=T0 + timedelta(minutes=3)) == {
        ("hook", "{a}"): T0 + timedelta(minutes=5)
    }
    assert list(any_store.query_last_deliveries(limit=1)) == [("hook", "{a}")]


def test_annotations_are_kept_with_the_state_change(any_store: SQLStore | MemoryStore) -> None:
    labels = _labels("Annotated")
    fp = fingerprint(labels)
    notes = {"summary": "accuracy of iris is 0.5", "description": "nul \x00 replaced"}
    any_store.write_alert_transitions([
        AlertTransition(fp, labels, "inactive", "firing", T0, 0.5, notes),
        AlertTransition(fp, labels | {"acknowledged_by": "ana", "acknowledgement_comment": ""},
                        "firing", "acknowledged", T0 + timedelta(minutes=1), 0.5),
    ])  # fmt: skip
    (alert,) = any_store.query_active_alerts()
    # U+0000, which PostgreSQL refuses, becomes U+FFFD as in every stored text
    assert alert.annotations == {"summary": notes["summary"], "description": "nul \ufffd replaced"}
    assert alert.acknowledged_by == "ana"


def test_the_annotations_column_comes_with_0010_and_older_rows_read_without(
    tmp_path: Path,
) -> None:
    from alembic import command

    from inferwatch.store._alerts import history_row
    from inferwatch.store._sql import _alembic_config
    from inferwatch.store._tables import alert_history_table

    store = SQLStore(f"sqlite:///{tmp_path}/old.db")
    config = _alembic_config()
    try:
        with store.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0009")
            # a row as 0009 wrote it: the table's columns less the new one
            columns = [c._copy() for c in alert_history_table.columns if c.name != "annotations"]
            old = sa.Table("alert_history", sa.MetaData(), *columns)
            row = history_row(AlertTransition("f", _labels("Old"), "inactive", "firing", T0, 1))
            del row["annotations"]
            conn.execute(old.insert(), [row])
        assert "annotations" not in {
            c["name"] for c in sa.inspect(store.engine).get_columns("alert_history")
        }
        store.upgrade()
        assert store.current_revision() == "0010"
        (alert,) = store.query_active_alerts()
        assert alert.labels["alertname"] == "Old" and alert.annotations == {}
        with store.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0009")
        assert len(store.query_alert_history()) == 1  # the rows stay, the column goes
    finally:
        store.close()


def test_a_prune_keeps_what_a_new_leader_needs_however_old(
    any_store: SQLStore | MemoryStore,
) -> None:
    """An alert firing longer than the retention is still carried on after the hourly
    prune, with the delivery that told it; everything else old goes."""
    any_store.write_alert_transitions(sorted([
        *_moves("LongFiring", ("inactive", "pending", 0), ("pending", "firing", 1),
                ("firing", "acknowledged", 2)),
        *_moves("LongGone", ("inactive", "firing", 0), ("firing", "resolved", 1)),
        *_moves("Flapping", ("inactive", "firing", 0), ("firing", "resolved", 1),
                ("resolved", "firing", 2)),
    ], key=lambda t: t.at))  # fmt: skip
    old = T0 + timedelta(minutes=3)
    any_store.write_delivery_attempts([
        DeliveryAttempt("hook", "{a}", 1, T0, "ok", 1),
        DeliveryAttempt("hook", "{a}", 1, T0 + timedelta(minutes=1), "ok", 1),
        DeliveryAttempt("hook", "{a}", 1, T0 + timedelta(minutes=2), "error", 1),
        DeliveryAttempt("hook", "{b}", 1, T0 + timedelta(minutes=5), "ok", 1),
    ])  # fmt: skip
    before = any_store.query_active_alerts()
    deleted = any_store.prune_alert_history(old)
    assert any_store.query_active_alerts() == before
    assert {a.labels["alertname"] for a in before} == {"LongFiring", "Flapping"}
    kept = {(r["alertname"], r["to_state"]) for r in any_store.query_alert_history()}
    # the for clock (pending), the start (firing) and the acknowledgement of the one;
    # only the newest change of the other (fired again with no for: nothing before counts)
    assert kept == {("LongFiring", "pending"), ("LongFiring", "firing"),
                    ("LongFiring", "acknowledged"), ("Flapping", "firing")}  # fmt: skip
    assert deleted["alert_history"] == 8 - len(kept)
    assert any_store.query_last_deliveries() == {
        ("hook", "{a}"): T0 + timedelta(minutes=1),
        ("hook", "{b}"): T0 + timedelta(minutes=5),
    }
    assert deleted["alert_notifications"] == 2  # the older ok and the error of {a}
