"""The history tables on SQLite and PostgreSQL (and the in-memory store): rows round-trip,
the range read is by model, version and time, a fold replaces raw rows by rollups in one
transaction keeping every amount, and pruning goes by level and time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from inferwatch.history import RAW, ROLLUP, ModelRow, ResourceRow, fold_models, fold_resources
from inferwatch.observation import Evaluation
from inferwatch.store import MemoryStore, SQLStore


def _row(model: str, version: str, start: float, requests: float, level: int = RAW) -> ModelRow:
    return ModelRow(
        model, version, level, start, 10.0, requests=requests, errors=1.0,
        latency_count=requests, latency_sum=requests * 0.01,
        latency_buckets={"0.01": requests - 1, "0.1": requests, "+Inf": requests},
        latency_p50=0.005, latency_p95=0.0095, latency_p99=float("nan"),
        confidence_sum=requests * 0.9, confidence_count=requests,
        classes={"malignant": requests - 2, "benign": 2.0},
    )  # fmt: skip


def test_rows_round_trip_and_the_range_read_filters(any_store: SQLStore | MemoryStore) -> None:
    rows = [_row("m", v, 1000.0 + 10 * i, 5.0 + i) for i in range(6) for v in ("1", "2")]
    rows.append(_row("other", "1", 1000.0, 99.0))
    res = [ResourceRow(RAW, 1000.0 + 10 * i, 10.0, {"host_cpu_ratio": 0.1 * i}) for i in range(6)]
    assert any_store.write_history(rows, res) == len(rows) + len(res)

    got = any_store.query_model_history("m", since=1010.0, until=1040.0)
    assert [(r.start, r.version) for r in got] == [(s, v) for s in (1010.0, 1020.0, 1030.0)
                                                   for v in ("1", "2")]  # fmt: skip
    one = any_store.query_model_history("m", version="2", since=0, until=1e10)
    assert [r.requests for r in one] == [5.0 + i for i in range(6)]
    assert one[0] == ModelRow(
        "m",
        "2",
        RAW,
        1000.0,
        10.0,
        5.0,
        1.0,
        5.0,
        0.05,
        {"0.01": 4.0, "0.1": 5.0, "+Inf": 5.0},
        0.005,
        0.0095,
        None,
        4.5,
        5.0,
        {"malignant": 3.0, "benign": 2.0},
    )  # fmt: skip  (NaN stored as NULL)
    got_res = any_store.query_resource_history(since=1020.0, until=1e10)
    assert [r.values["host_cpu_ratio"] for r in got_res] == pytest.approx([0.2, 0.3, 0.4, 0.5])


def test_a_fold_replaces_raw_rows_by_rollups_keeping_the_amounts(
    any_store: SQLStore | MemoryStore,
) -> None:
    rows = [_row("m", "1", 900.0 + 10 * i, 3.0 + i) for i in range(60)]  # 900 .. 1490
    res = [ResourceRow(RAW, 900.0 + 10 * i, 10.0, {"host_cpu_ratio": i}) for i in range(60)]
    any_store.write_history(rows, res)
    total = sum(r.requests for r in rows)

    raw_m, raw_r = any_store.raw_history_before(1200.0)
    assert len(raw_m) == 30 and len(raw_r) == 30
    deleted = any_store.fold_history(
        1200.0, fold_models(raw_m, 300.0), fold_resources(raw_r, 300.0)
    )

    assert deleted == 60
    after = any_store.query_model_history("m", since=0, until=1e10)
    assert sum(r.requests for r in after) == pytest.approx(total)
    rollups = [r for r in after if r.level == ROLLUP]
    assert [(r.start, r.seconds) for r in rollups] == [(900.0, 300.0)]
    assert rollups[0].latency_buckets["+Inf"] == sum(r.requests for r in rows[:30])
    assert rollups[0].latency_p99 is not None
    assert any_store.raw_history_before(1200.0) == ([], [])
    cpu = [r for r in any_store.query_resource_history(since=0, until=1e10) if r.level == ROLLUP]
    assert cpu[0].values["host_cpu_ratio"] == pytest.approx(sum(range(30)) / 30)

    assert any_store.prune_history(ROLLUP, 1000.0) == 2  # the model's and the resources'
    assert [r.level for r in any_store.query_model_history("m", since=0, until=1e10)] == [RAW] * 30
    assert any_store.prune_history(RAW, 1300.0) == 20


def test_drift_windows_read_the_last_judgement_of_each_window(
    any_store: SQLStore | MemoryStore,
) -> None:
    t0 = datetime(2026, 11, 29, tzinfo=UTC)
    hour = timedelta(hours=1)
    rows = []
    for w in range(3):  # three hourly windows, each judged at 10 and 50 minutes
        start = t0 + w * hour
        for k, minute in enumerate((10, 50)):
            at = start + timedelta(minutes=minute)
            for j, feature in enumerate(("age", "income")):
                score = 0.1 * (w + 1) + k + j
                rows.append(Evaluation("m", "1", start, start + hour, at, "drift", score,
                                       "critical" if score > 1.5 else "ok", feature, "psi",
                                       1.5))  # fmt: skip
            rows.append(Evaluation("m", "1", start, start + hour, at, "dataset_drift_share",
                                   0.5 * k, "ok", threshold=0.5))  # fmt: skip
            rows.append(Evaluation("m", "1", start, start + hour, at, "missing_share", 0.0,
                                   "ok", "age"))  # fmt: skip
    rows.append(Evaluation("m", "2", t0, t0 + hour, t0, "dataset_drift_share", 1.0, "ok"))
    any_store.write_evaluations(rows)

    got = any_store.drift_windows("m", "1", since=t0 + 30 * timedelta(minutes=1),
                                  until=t0 + 2 * hour)  # fmt: skip

    assert [(r["window_start"], r["metric"], r["feature"]) for r in got] == [
        (t0 + w * hour, m, f)
        for w in (0, 1)  # overlapping [t0 + 30m, t0 + 2h)
        for m, f in (("drift", "age"), ("drift", "income"), ("dataset_drift_share", None))
    ]
    assert {r["evaluated_at"].minute for r in got} == {50}  # the last judgement only
    assert [r["value"] for r in got if r["feature"] == "income"] == pytest.approx([2.1, 2.2])
    newest = any_store.drift_windows("m", "1", since=t0, until=t0 + 3 * hour, limit=1)
    assert {r["window_start"] for r in newest} == {t0 + 2 * hour}


def test_a_fold_of_rows_another_replica_folded_writes_nothing(
    any_store: SQLStore | MemoryStore,
) -> None:
    rows = [_row("m", "1", 900.0 + 10 * i, 3.0) for i in range(30)]
    any_store.write_history(rows, [])
    mine, _ = any_store.raw_history_before(1200.0)  # replica A reads ...
    theirs, _ = any_store.raw_history_before(1200.0)  # ... and so does replica B
    assert any_store.fold_history(1200.0, fold_models(theirs, 300.0), [],
                                  expected=len(theirs)) == 30  # fmt: skip
    assert any_store.fold_history(1200.0, fold_models(mine, 300.0), [],
                                  expected=len(mine)) == 0  # fmt: skip
    after = any_store.query_model_history("m", since=0, until=1e10)
    assert [(r.level, r.requests) for r in after] == [(ROLLUP, 90.0)]  # one rollup, not two
