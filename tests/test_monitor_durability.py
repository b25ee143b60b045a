"""The prediction log through store outages: bounded calls, the spill file, strict mode.

Real components: a ``MemoryStore`` switched off and on, a store whose writes hang (what a
frozen database does to its client), SQLite files; the PostgreSQL versions are in
tests/server/test_durability*.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry

from inferwatch.metrics import Metrics
from inferwatch.monitor import Monitor, default_spill_path
from inferwatch.observation import PredictionRecord
from inferwatch.store import MemoryStore, SQLStore


class HangingStore(MemoryStore):
    """A store whose writes block while ``frozen`` is set, then go through: a frozen
    database (SIGSTOP) seen from its client, with no socket error ever."""

    def __init__(self) -> None:
        super().__init__()
        self.frozen = threading.Event()
        self.thawed = threading.Event()

    def write_predictions(self, records: Sequence[PredictionRecord]) -> int:
        if self.frozen.is_set():
            self.thawed.wait()
        return super().write_predictions(records)


def log_rows(monitor: Monitor, n: int, *, per_call: int = 10) -> list[str]:
    ids: list[str] = []
    for start in range(0, n, per_call):
        k = min(per_call, n - start)
        ids += monitor.log(
            "churn", "1", [{"x": float(start + i)} for i in range(k)], ["yes"] * k, block=False
        )
    return ids


def test_a_down_store_spills_and_the_rows_are_replayed_exactly_once(tmp_path: Path) -> None:
    store = MemoryStore(available=False)
    registry = CollectorRegistry()
    monitor = Monitor(
        store, metrics=Metrics(registry, process=False), flush_interval=0.02,
        spill_path=tmp_path / "spill.bin", retry_seconds=60,
    )  # fmt: skip
    ids = log_rows(monitor, 300)
    deadline = time.monotonic() + 10
    while monitor.stats.spilled < 300 and time.monotonic() < deadline:
        time.sleep(0.02)
    stats = monitor.stats
    # no 60 s of retries holding the writer: every row is in the spill file
    assert (stats.spilled, stats.spill_pending, stats.queued, stats.failed) == (300, 300, 0, 0)
    assert (registry.get_sample_value("inferwatch_prediction_log_spill_bytes") or 0) > 0
    assert registry.get_sample_value("inferwatch_prediction_log_spilled_rows_total") == 300
    more = log_rows(monitor, 50)  # rows after the outage began follow the spilled ones

    store.available = True
    assert monitor.flush(10)

    assert store.count_predictions() == 350
    assert set(store.find_predictions(ids + more)) == set(ids + more)
    stats = monitor.stats
    assert (stats.written, stats.replayed, stats.spill_pending) == (350, 350, 0)
    assert registry.get_sample_value("inferwatch_prediction_log_spill_bytes") == 0
    assert registry.get_sample_value("inferwatch_prediction_log_replayed_rows_total") == 350
    assert (tmp_path / "spill.bin").stat().st_size == 0
    assert monitor.close(5)


def test_a_hanging_store_call_returns_within_the_bound(tmp_path: Path) -> None:
    store = HangingStore()
    monitor = Monitor(
        store, flush_interval=0.02, call_timeout=0.5, spill_path=tmp_path / "spill.bin"
    )
    log_rows(monitor, 20)
    assert monitor.flush(5)
    store.frozen.set()
    started = time.monotonic()
    ids = log_rows(monitor, 40)
    while monitor.stats.spilled < 40 and time.monotonic() - started < 10:
        time.sleep(0.02)
    waited = time.monotonic() - started

    # without the bound the writer would sit in the frozen call for as long as it lasts
    assert monitor.stats.spilled == 40, monitor.stats
    assert waited < 2.0
    log_rows(monitor, 30)  # the replay's tries fail at once while the first call hangs
    time.sleep(0.3)
    assert monitor.stats.spilled == 70

    store.frozen.clear()
    store.thawed.set()  # the hung call goes through (commits) late: no duplicate follows
    assert monitor.flush(10)
    assert store.count_predictions() == 90
    assert set(store.find_predictions(ids)) == set(ids)
    assert monitor.close(5)


def test_without_a_spill_file_a_hanging_store_still_lets_the_writer_give_up() -> None:
    store = HangingStore()
    store.frozen.set()
    monitor = Monitor(store, flush_interval=0.02, call_timeout=0.3, retry_seconds=1.0)
    log_rows(monitor, 10)
    started = time.monotonic()
    assert monitor.flush(10)  # written or failed: failed, within the retry budget
    assert time.monotonic() - started < 4
    assert monitor.stats.failed == 10
    store.thawed.set()
    monitor.close(5)


def test_rows_left_in_the_spill_file_are_replayed_by_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "spill.bin"
    down = MemoryStore(available=False)
    first = Monitor(down, flush_interval=0.02, spill_path=path)
    ids = log_rows(first, 120)

    assert first.close(timeout=0.5) is False  # the drain timeout passed with the store down
    assert first.stats.spill_pending == 120 and path.stat().st_size > 0

    up = MemoryStore()
    second = Monitor(up, flush_interval=0.02, spill_path=path)  # replays at once
    assert second.flush(10)
    assert set(up.find_predictions(ids)) == set(ids) and up.count_predictions() == 120
    assert second.stats.replayed == 120
    assert second.close(5)
    assert path.stat().st_size == 0


def test_a_full_spill_file_loses_and_counts(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    store = MemoryStore(available=False)
    monitor = Monitor(
        store, metrics=Metrics(registry, process=False), flush_interval=0.02,
        spill_path=tmp_path / "spill.bin", spill_max_bytes=3000, batch_size=10,
    )  # fmt: skip
    log_rows(monitor, 200)
    deadline = time.monotonic() + 10
    while monitor.stats.spilled + monitor.stats.failed < 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    stats = monitor.stats
    assert 0 < stats.spilled < 200
    assert stats.failed == 200 - stats.spilled
    assert (
        registry.get_sample_value("inferwatch_prediction_log_rows_total", {"outcome": "failed"})
        == stats.failed
    )
    assert (tmp_path / "spill.bin").stat().st_size <= 3000
    store.available = True
    assert monitor.flush(10)
    assert store.count_predictions() == stats.spilled
    monitor.close(5)


def test_a_replay_after_a_crash_mid_replay_stores_each_row_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/p.db"
    store = SQLStore(url)
    store.upgrade()
    path = tmp_path / "spill.bin"
    down = MemoryStore(available=False)
    first = Monitor(down, flush_interval=0.02, spill_path=path)
    ids = log_rows(first, 100)
    first.close(timeout=0.3)
    # half of it reached the store before the crash (the replay had not truncated yet)
    from inferwatch.spill import SpillFile

    spill = SpillFile(path, max_bytes=1 << 30)
    records, _, _ = spill.read(50)
    store.write_predictions(records)
    spill.close()

    second = Monitor(store, flush_interval=0.02, spill_path=path)
    assert second.flush(10)
    assert second.close(5)
    assert store.count_predictions() == 100
    assert set(store.find_predictions(ids)) == set(ids)
    store.close()


def test_strict_answers_after_the_commit_and_false_when_the_store_is_down() -> None:
    store = MemoryStore()
    monitor = Monitor(store, durability="strict", flush_interval=5.0)
    answers: list[bool] = []
    done = threading.Event()

    def stored(ok: bool) -> None:
        answers.append(ok)
        done.set()

    started = time.monotonic()
    [pid] = monitor.log("churn", "1", [{"x": 1.0}], ["yes"], on_stored=stored)
    assert done.wait(2)
    assert time.monotonic() - started < 1.0  # not the 5 s flush interval: written at once
    assert answers == [True] and store.get_prediction(pid) is not None

    store.available = False
    done.clear()
    [lost] = monitor.log("churn", "1", [{"x": 2.0}], ["yes"], on_stored=stored)
    assert done.wait(5)
    assert answers == [True, False]
    assert monitor.stats.failed == 1 and monitor.stats.spilled == 0  # never spilled
    store.available = True
    assert store.get_prediction(lost) is None  # nothing claimed that is not stored
    monitor.close(5)


def test_default_spill_path_sits_beside_a_sqlite_file() -> None:
    assert default_spill_path("sqlite:///data/p.db") == Path("data/p.db.spill")
    assert default_spill_path("sqlite:////var/lib/p.db") == Path("/var/lib/p.db.spill")
    assert default_spill_path("postgresql+psycopg://u@h/db") == Path("inferwatch-spill.bin")
    assert default_spill_path("memory://") is None
    assert default_spill_path("sqlite://") is None


class CountingProfiler:
    def __init__(self) -> None:
        self.rows = 0

    def add(self, model: str, version: str, records: Sequence[PredictionRecord]) -> None:
        self.rows += len(records)


def test_sample_rate_stores_a_share_and_profiles_everything() -> None:
    registry = CollectorRegistry()
    store, profiler = MemoryStore(), CountingProfiler()
    monitor = Monitor(
        store, metrics=Metrics(registry, process=False), flush_interval=0.02,
        sample_rate=0.25, profiler=profiler, queue_size=10_000,
    )  # fmt: skip
    ids = log_rows(monitor, 4000, per_call=100)
    assert monitor.flush(10)

    stored = store.count_predictions()
    assert 850 <= stored <= 1150  # 1,000 expected; binomial sd about 27
    stats = monitor.stats
    assert (stats.written, stats.sampled) == (stored, 4000 - stored)
    assert profiler.rows == 4000  # the windows see every prediction
    sampled = registry.get_sample_value(
        "inferwatch_prediction_log_rows_total", {"outcome": "sampled"}
    )
    assert sampled == 4000 - stored
    monitor.close(5)

    # the choice follows the id: another replica (or a re-send) keeps the same rows
    again = MemoryStore()
    other = Monitor(again, flush_interval=0.02, sample_rate=0.25)
    records = list(store.find_predictions(ids).values())
    other.log("churn", "1", [r.inputs for r in records], ["yes"] * len(records),
              ids=[r.id for r in records])  # fmt: skip
    assert other.flush(10)
    assert again.count_predictions() == stored
    other.close(5)
