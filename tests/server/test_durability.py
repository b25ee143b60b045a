"""Issue 16's acceptance, on a real ``inferwatch serve`` process under load:

(a) PostgreSQL frozen (the whole cluster SIGSTOPped) for 12 s, and PostgreSQL shut down
    (``pg_ctl stop``) for 12 s and started again: every predict is answered 200, and
    after a graceful stop every answered prediction is in PostgreSQL exactly once (the
    rows went to the spill file and were replayed);
(b) SIGKILL under load on SQLite, then a restart: the database is intact and the rows
    lost are only those answered in the last flush interval before the kill.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pytest

from inferwatch.demo import make_customers, prepare_workdir, to_instances
from tests._postgres import _run as _run_pg
from tests._postgres import find_pg_bin, postgres_cluster
from tests.cli.conftest import ServerProcess
from tests.server.conftest import sample
from tests.store.test_timeouts import _freeze, _thaw, frozen

pytestmark = pytest.mark.integration
__all__ = ["frozen"]  # the fixture, imported for the tests below

#: how long PostgreSQL stays frozen; the issue's figure (shorter for a quick local run)
OUTAGE_SECONDS = float(os.environ.get("INFERWATCH_OUTAGE_SECONDS", "12"))
FLUSH_SECONDS = 0.2


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("durable")
    prepare_workdir(path, port=0, n_reference=1000)
    return path


class Load:
    """Threads posting predicts; every answer's status, ids and time are kept."""

    def __init__(self, base: str, threads: int = 4) -> None:
        self.base = base
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answered: list[tuple[float, str]] = []  # (monotonic time of the answer, id)
        self.statuses: dict[int, int] = {}
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self.stop.is_set():
                body = {"instances": to_instances(make_customers(int(rng.integers(1, 5)), rng))}
                try:
                    resp = client.post("/v1/models/churn/predict", json=body)
                except httpx.HTTPError as exc:
                    with self.lock:
                        self.errors.append(repr(exc))
                    return  # the server is going away (or was killed)
                now = time.monotonic()
                with self.lock:
                    self.statuses[resp.status_code] = self.statuses.get(resp.status_code, 0) + 1
                    if resp.status_code == 200:
                        self.answered += [(now, p["id"]) for p in resp.json()["predictions"]]

    def ids(self) -> list[str]:
        with self.lock:
            return [pid for _, pid in self.answered]

    def count(self) -> int:
        with self.lock:
            return len(self.answered)

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)


def _serve(workdir: Path, tmp_path: Path, url: str, **store: str) -> ServerProcess:
    env = {
        "INFERWATCH_STORE__FLUSH_INTERVAL_SECONDS": str(FLUSH_SECONDS),
        "INFERWATCH_STORE__SPILL_PATH": str(tmp_path / "spill.bin"),
        **{f"INFERWATCH_STORE__{k.upper()}": v for k, v in store.items()},
    }
    args = ["serve", "-c", str(workdir / "inferwatch.yaml"), "--store", url]
    return ServerProcess(args, cwd=tmp_path, env=env)


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(10)


def test_postgres_frozen_12s_under_load_loses_and_doubles_nothing(
    workdir: Path, tmp_path: Path, postgres_db_url: str, frozen: list[int],
    servers: list[ServerProcess],
) -> None:  # fmt: skip
    # a buffer that holds the traffic of one store-call bound (0.5 + 1 s) but far less
    # than the outage's: only the spill file keeps the rows (without it, a third is lost)
    server = _serve(
        workdir, tmp_path, postgres_db_url, statement_timeout_seconds="0.5", queue_size="1000"
    )
    servers.append(server)
    server.wait_ready()
    load = Load(server.base)
    time.sleep(1.5)
    before = load.count()
    _freeze(postgres_db_url, frozen)
    time.sleep(OUTAGE_SECONDS)
    during = load.count() - before
    metrics = httpx.get(f"{server.base}/metrics", timeout=10).text
    _thaw(frozen)
    time.sleep(2.0)  # traffic after the outage too, while the spill file is replayed
    load.join()
    rc = server.stop(timeout=90)  # graceful: SIGTERM drains the buffer and the spill file

    assert rc == 0, server.output()
    assert load.errors == [], load.errors[:3]
    assert set(load.statuses) == {200}, load.statuses  # every predict answered 200
    assert during > 50, "the load did not go on during the outage"
    spilled = sample(metrics, "inferwatch_prediction_log_spilled_rows_total")
    assert spilled > 0  # the rows did go through the spill file
    assert sample(metrics, "inferwatch_prediction_log_spill_bytes") > 0
    ids = load.ids()
    dsn = postgres_db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        stored = [r[0] for r in conn.execute("SELECT id FROM predictions WHERE model = 'churn'")]
    assert len(stored) == len(set(stored)) == len(ids) == len(set(ids))  # exactly once
    assert set(stored) == set(ids)
    assert (tmp_path / "spill.bin").stat().st_size == 0  # replayed in full, truncated
    print(
        f"{len(ids)} predictions answered 200 ({during} during {OUTAGE_SECONDS:g} s frozen, "
        f"{spilled:.0f} rows spilled and replayed), all in PostgreSQL once"
    )


def test_sigkill_under_load_keeps_the_store_intact_and_loses_at_most_a_flush_interval(
    workdir: Path, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    db = tmp_path / "killed.db"
    url = f"sqlite:///{db}"
    server = _serve(workdir, tmp_path, url)
    servers.append(server)
    server.wait_ready()
    load = Load(server.base)
    time.sleep(3.0)
    server.proc.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    server.proc.wait(10)
    load.join()
    answered = list(load.answered)
    assert len(answered) > 100, "the load did not get going"

    with sqlite3.connect(db) as conn:  # before any restart: the file as the kill left it
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    again = _serve(workdir, tmp_path, url)  # restarts on the same store (and spill file)
    servers.append(again)
    again.wait_ready()
    assert again.stop(timeout=60) == 0, again.output()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = {r[0] for r in conn.execute("SELECT id FROM predictions")}
    lost = [(t, pid) for t, pid in answered if pid not in stored]
    # the bound the README states: what one flush interval holds, plus the batch being
    # written; measured as time before the kill (slack for a loaded 2-core machine)
    oldest = max((killed_at - t for t, _ in lost), default=0.0)
    assert oldest <= FLUSH_SECONDS + 1.0, (len(lost), oldest)
    recent = sum(1 for t, _ in answered if killed_at - t <= FLUSH_SECONDS + 1.0)
    assert len(lost) <= recent
    print(
        f"SIGKILL after {len(answered)} answered predictions: {len(lost)} lost "
        f"({100 * len(lost) / len(answered):.1f}%), the oldest answered {oldest:.2f} s "
        f"before the kill; flush interval {FLUSH_SECONDS} s; integrity_check ok"
    )


def test_postgres_down_12s_under_load_loses_and_doubles_nothing(
    workdir: Path, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    """The other outage: PostgreSQL shut down (``pg_ctl stop -m fast``: connections
    refused, pooled ones broken) for 12 s, then started again on the same port.  On a
    cluster of its own, so the session's cluster stays up for the other tests."""
    bin_dir = find_pg_bin()
    assert bin_dir is not None, "PostgreSQL's server binaries are not installed"
    with postgres_cluster(bin_dir) as url:
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True) as conn:
            data = Path(str(conn.execute("SHOW data_directory").fetchone()[0]))  # type: ignore[index]
            sockets = str(conn.execute("SHOW unix_socket_directories").fetchone()[0])  # type: ignore[index]
        port = url.rsplit(":", 1)[1].split("/")[0]
        pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data)]
        server = _serve(workdir, tmp_path, url, statement_timeout_seconds="0.5", queue_size="1000")
        servers.append(server)
        server.wait_ready()
        load = Load(server.base)
        time.sleep(1.5)
        before = load.count()
        _run_pg([*pg_ctl, "-m", "fast", "-w", "stop"], data.parent)
        time.sleep(OUTAGE_SECONDS)
        during = load.count() - before
        metrics = httpx.get(f"{server.base}/metrics", timeout=10).text
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -F"
        log_file = str(data.parent / "server.log")
        _run_pg([*pg_ctl, "-o", options, "-l", log_file, "-w", "-t", "30", "start"], data.parent)
        time.sleep(2.0)  # traffic after the outage too, while the spill file is replayed
        load.join()
        rc = server.stop(timeout=90)

        assert rc == 0, server.output()
        assert load.errors == [], load.errors[:3]
        assert set(load.statuses) == {200}, load.statuses
        assert during > 50, "the load did not go on during the outage"
        assert sample(metrics, "inferwatch_prediction_log_spilled_rows_total") > 0
        ids = load.ids()
        with psycopg.connect(dsn, autocommit=True) as conn:
            stored = [r[0] for r in conn.execute("SELECT id FROM predictions")]
        assert len(stored) == len(set(stored)) == len(ids) == len(set(ids))  # exactly once
        assert set(stored) == set(ids)
        assert (tmp_path / "spill.bin").stat().st_size == 0
