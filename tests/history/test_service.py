"""The server's sampling service on a real metrics registry and a real SQLite file, driven
by its own clock: one row set per interval, folding keeps every request, retention prunes,
and a store that is down costs only the interval (counted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from inferwatch.config import HistorySettings
from inferwatch.history import RAW, ROLLUP, model_columns
from inferwatch.metrics import Metrics
from inferwatch.server._history import HistoryService
from inferwatch.store import MemoryStore, SQLStore


@pytest.fixture
def sql(tmp_path: Path) -> SQLStore:
    store = SQLStore(f"sqlite:///{tmp_path}/h.db")
    store.upgrade()
    return store


def _service(store: SQLStore | MemoryStore) -> tuple[HistoryService, Metrics]:
    metrics = Metrics(CollectorRegistry(), process=False, resources=False)
    settings = HistorySettings(interval_seconds=30, raw_retention="1h", rollup_seconds=300,
                               rollup_retention="1d")  # fmt: skip
    return HistoryService(settings, metrics.registry, store, metrics), metrics


def test_folding_keeps_every_request_and_retention_prunes(sql: SQLStore) -> None:
    service, metrics = _service(sql)
    ok = metrics.requests.labels("m", "1", "200")
    latency = metrics.request_duration.labels("m", "1")
    t0 = 1_800_000_000.0  # a multiple of 300
    sent = 0
    for i in range(241):  # two hours at 30 s
        if i:
            ok.inc(i % 7)
            sent += i % 7
            for _ in range(i % 3):
                latency.observe(0.001 * (i % 50))
        service.cycle(t0 + 30 * i)
    now = t0 + 7200
    before = sql.query_model_history("m", since=0, until=2e9)
    assert len(before) == 240 and {r.level for r in before} == {RAW}
    assert sum(r.requests for r in before) == sent

    assert service.maintain(now)["folded"] == 120  # the first hour, 12 whole buckets
    after = sql.query_model_history("m", since=0, until=2e9)
    assert sorted({(r.level, r.seconds) for r in after}) == [(RAW, 30.0), (ROLLUP, 300.0)]
    assert sum(1 for r in after if r.level == ROLLUP) == 12
    assert sum(r.requests for r in after) == sent
    assert sum(r.latency_count for r in after) == sum(r.latency_count for r in before)
    # the same hour read at 5 minutes from raw rows and from rollups: the same figures
    _, from_raw, _ = model_columns(before, t0, t0 + 3600, 300)
    _, from_rollups, _ = model_columns(after, t0, t0 + 3600, 300)
    assert from_rollups["requests_per_second"] == pytest.approx(from_raw["requests_per_second"])
    assert from_rollups["latency_p99_seconds"] == pytest.approx(from_raw["latency_p99_seconds"])
    assert service.maintain(now) == {"folded": 0, "pruned": 0}  # nothing left to fold

    pruned = service.maintain(t0 + 86_400 + 1800)  # a day later: rollups past 1d go
    assert pruned["pruned"] == 6  # the rollups of the first 30 minutes
    assert min(r.start for r in sql.query_model_history("m", since=0, until=2e9)) == t0 + 1800
    sql.close()


def test_a_store_that_is_down_costs_the_interval_and_is_counted() -> None:
    store = MemoryStore()
    service, metrics = _service(store)
    ok = metrics.requests.labels("m", "1", "200")
    service.cycle(0.0)
    ok.inc(5)
    store.available = False
    assert service.cycle(10.0) == 0  # dropped, not buffered
    assert service.maintain(20.0) == {"folded": 0, "pruned": 0}
    store.available = True
    ok.inc(3)
    assert service.cycle(20.0) == 1
    (row,) = store.query_model_history("m", since=0, until=100)
    assert (row.start, row.requests) == (10.0, 3.0)  # the next interval, deltas from the last read
    assert service.failures == {"write": 1, "fold": 1, "prune": 1}
    failed = metrics.registry.get_sample_value(
        "inferwatch_history_operations_total", {"operation": "write", "outcome": "failed"}
    )
    assert failed == 1


def test_a_long_backlog_folds_in_bounded_batches_on_bucket_edges(sql: SQLStore) -> None:
    service, metrics = _service(sql)
    ok = metrics.requests.labels("m", "1", "200")
    t0 = 1_800_000_000.0
    for i in range(361):  # three hours at 30 s, 7 requests an interval
        if i:
            ok.inc(7)
        service.cycle(t0 + 30 * i)
    service.fold_batch = 25  # 2.5 buckets of rows a read: every batch ends on an edge
    reads: list[int] = []
    real = sql.raw_history_before

    def counted(before: float, *, limit: int | None = None) -> Any:
        got = real(before, limit=limit)
        reads.append(len(got[0]))
        return got

    sql.raw_history_before = counted  # type: ignore[method-assign]
    assert service.maintain(t0 + 3 * 3600)["folded"] == 240  # the two hours past retention
    rows = sql.query_model_history("m", since=0, until=2e9)
    rollups = [r for r in rows if r.level == ROLLUP]
    assert [r.start for r in rollups] == [t0 + 300 * k for k in range(24)]  # none split
    assert {r.requests for r in rollups} == {70.0}  # ten whole intervals each
    assert sum(r.requests for r in rows) == 7 * 360
    assert max(reads) <= 25 and len(reads) > 8
    sql.close()
