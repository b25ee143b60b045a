"""A stalled store does not slow predictions: PostgreSQL's backends are SIGSTOPped while
requests keep coming, and every row arrives once they are SIGCONTed."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator

import pytest

from inferwatch.store import SQLStore
from tests.server.conftest import AppFactory, TestClient

pytestmark = pytest.mark.integration

GOOD = {"age": 41, "income": 52_000.5, "plan": "basic"}
# the README's figure is from INFERWATCH_STALL_SECONDS=10; 3 s keeps the suite short
STALL_SECONDS = float(os.environ.get("INFERWATCH_STALL_SECONDS", "3"))


def _backends(url: str) -> list[int]:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(r[0]) for r in rows]


def _count(url: str) -> int:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM predictions").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def frozen() -> Iterator[list[int]]:
    """Pids to SIGCONT whatever happens (a test that fails must not leave them stopped)."""
    stopped: list[int] = []
    yield stopped
    for pid in stopped:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def test_predictions_keep_their_pace_while_postgres_is_frozen(
    make_app: AppFactory, postgres_db_url: str, frozen: list[int]
) -> None:
    store = SQLStore(postgres_db_url)
    store.upgrade()
    served = make_app(store=store)
    with TestClient(served.app) as client:

        def predict() -> float:
            t0 = time.perf_counter()
            r = client.post("/v1/models/churn/predict", json={"instances": [GOOD]})
            assert r.status_code == 200, r.text
            return time.perf_counter() - t0

        before = sorted(predict() for _ in range(20))
        assert served.monitor.prediction_log.flush(10)
        pids = _backends(postgres_db_url)
        assert pids, "the store holds no connection to freeze"
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
            frozen.append(pid)
        during = []
        deadline = time.monotonic() + STALL_SECONDS
        while time.monotonic() < deadline:
            during.append(predict())
        stats = served.monitor.prediction_log.stats
        assert stats.queued > 0  # the writer is stuck in the frozen store...
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
        frozen.clear()
        assert served.monitor.prediction_log.flush(30)
    during.sort()
    median_before, median_during = before[len(before) // 2], during[len(during) // 2]
    # ...and the requests did not notice: same median, no request held by the store
    assert median_during < max(3 * median_before, 0.02), (median_before, median_during)
    assert during[-1] < 0.5, during[-5:]
    print(
        f"{len(during)} predictions in {STALL_SECONDS:g} s frozen: median "
        f"{median_during * 1e3:.1f} ms (before: {median_before * 1e3:.1f} ms), "
        f"max {during[-1] * 1e3:.1f} ms"
    )
    assert _count(postgres_db_url) == 20 + len(during)  # every row, once
    assert served.monitor.prediction_log.stats.dropped == 0


def _cluster(url: str) -> list[int]:
    """The postmaster and every process it started (the whole frozen server)."""
    backend = _backends(url)[0]
    with open(f"/proc/{backend}/stat") as f:
        postmaster = int(f.read().rsplit(")", 1)[1].split()[1])
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if ppid == postmaster:
                children.append(int(entry))
    return [postmaster, *children]


def test_readyz_answers_within_a_second_while_postgres_is_frozen(
    make_app: AppFactory, postgres_db_url: str, frozen: list[int]
) -> None:
    """The whole server SIGSTOPped (postmaster and backends: the kernel still accepts and
    acknowledges, nothing answers): /readyz says not ready within a second, every time,
    and ready again once the server runs."""
    store = SQLStore(postgres_db_url)
    store.upgrade()
    served = make_app(store=store)
    with TestClient(served.app) as client:
        assert client.get("/readyz").status_code == 200
        for pid in _cluster(postgres_db_url):
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:  # a short-lived worker (autovacuum) that just exited
                continue
            frozen.append(pid)
        took = []
        for _ in range(3):
            t0 = time.perf_counter()
            r = client.get("/readyz")
            took.append(time.perf_counter() - t0)
            assert r.status_code == 503
            assert r.json()["checks"] == {"models": True, "store": False}
            v2 = client.get("/v2/health/ready")
            assert v2.status_code == 503
        assert max(took) < 1.5, took
        assert client.post("/v1/models/churn/predict", json={"instances": [GOOD]}).is_success
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):  # a worker that was exiting
                os.kill(pid, signal.SIGCONT)
        frozen.clear()
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "not ready again after the store resumed"
            time.sleep(0.2)
