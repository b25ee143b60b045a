"""Every store call is bounded in time (issue 16, scope 4): the database's own timeouts on
pooled connections, and the prediction log's bound on its side for a server that answers
nothing at all (the whole PostgreSQL cluster SIGSTOPped)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from inferwatch.monitor import Monitor
from inferwatch.store import SQLStore
from tests.server.test_store_stall import _cluster


@pytest.fixture
def frozen() -> Iterator[list[int]]:
    """Pids to SIGCONT whatever happens (a test that fails must not leave them stopped)."""
    stopped: list[int] = []
    yield stopped
    for pid in stopped:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def _freeze(url: str, frozen: list[int]) -> None:
    for pid in _cluster(url):
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:  # a short-lived worker that just exited
            continue
        frozen.append(pid)


def _thaw(frozen: list[int]) -> None:
    for pid in frozen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    frozen.clear()


def test_sqlite_waits_for_a_lock_at_most_the_statement_timeout(tmp_path: Path) -> None:
    store = SQLStore(f"sqlite:///{tmp_path}/t.db", statement_timeout=0.4)
    store.upgrade()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 400
    blocker = SQLStore(f"sqlite:///{tmp_path}/t.db")
    with blocker.engine.connect() as hold:
        hold.exec_driver_sql("BEGIN IMMEDIATE")  # another writer holds the lock
        started = time.monotonic()
        with pytest.raises(Exception, match="locked"):
            store.register_model("m", "1", flavor="sklearn")
        assert time.monotonic() - started < 2.0
        hold.exec_driver_sql("ROLLBACK")


@pytest.mark.integration
def test_postgres_pooled_connections_carry_the_statement_timeout(postgres_db_url: str) -> None:
    store = SQLStore(postgres_db_url, statement_timeout=2.5)
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "2500ms"
        assert conn.execute(sa.text("SHOW lock_timeout")).scalar() == "2500ms"
        started = time.monotonic()
        with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
            conn.execute(sa.text("SELECT pg_sleep(10)"))
        assert time.monotonic() - started < 5
    store.close()


@pytest.mark.integration
def test_the_writer_returns_from_a_frozen_postgres_within_the_bound(
    postgres_db_url: str, frozen: list[int], tmp_path: Path
) -> None:
    """Without the bound the writer sits in the frozen call for as long as the freeze
    lasts (the kernel still acknowledges TCP: no socket or statement timeout fires)."""
    store = SQLStore(postgres_db_url, statement_timeout=1.0)
    store.upgrade()
    monitor = Monitor(
        store, flush_interval=0.05, call_timeout=2.0, spill_path=tmp_path / "spill.bin"
    )
    ids = monitor.log("churn", "1", [{"x": 1.0}] * 20, ["yes"] * 20)
    assert monitor.flush(10)
    _freeze(postgres_db_url, frozen)
    started = time.monotonic()
    ids += monitor.log("churn", "1", [{"x": 2.0}] * 50, ["no"] * 50)
    while monitor.stats.spilled < 50 and time.monotonic() - started < 15:
        time.sleep(0.05)
    waited = time.monotonic() - started
    assert monitor.stats.spilled == 50, monitor.stats
    assert waited < 2.0 + 1.5, waited  # the bound, plus a flush interval and slack
    ids += monitor.log("churn", "1", [{"x": 3.0}] * 30, ["no"] * 30)  # still frozen
    time.sleep(0.5)
    assert monitor.stats.spilled == 80 and monitor.stats.written == 20

    _thaw(frozen)
    assert monitor.flush(30)
    assert monitor.close(10)
    assert store.count_predictions() == 100  # every row once: the late commit and the replay
    assert set(store.find_predictions(ids)) == set(ids)
    store.close()
