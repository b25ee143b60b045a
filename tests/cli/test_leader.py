"""Two replicas on one PostgreSQL: exactly one holds the evaluator lease, and after it is
killed with SIGKILL the other takes it within the time to live and one renewal round."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import httpx
import pytest

from inferwatch.demo import prepare_workdir
from inferwatch.store import SQLStore
from tests.cli.conftest import ServerProcess

pytestmark = pytest.mark.integration

TTL = 2.0
LEADER = re.compile(r"^inferwatch_evaluator_leader (\S+)$", re.MULTILINE)


def _leads(server: ServerProcess) -> bool:
    found = LEADER.search(httpx.get(f"{server.base}/metrics", timeout=5).text)
    assert found is not None, "inferwatch_evaluator_leader is not exported"
    return float(found.group(1)) == 1.0


def test_one_replica_leads_and_the_lease_moves_after_a_sigkill(
    tmp_path: Path, postgres_db_url: str
) -> None:
    prepare_workdir(tmp_path, port=0, n_reference=500)
    SQLStore(postgres_db_url).upgrade()  # migrated once, before two processes race to do it
    env = {"INFERWATCH_FLEET__LEASE_TTL_SECONDS": str(TTL)}
    argv = ["serve", "-c", str(tmp_path / "inferwatch.yaml"), "--store", postgres_db_url]
    replicas = [ServerProcess(argv, tmp_path, env=env) for _ in range(2)]
    try:
        for r in replicas:
            r.wait_ready()
        leads = [_leads(r) for r in replicas]
        assert sorted(leads) == [False, True], leads
        leader, follower = (replicas[0], replicas[1]) if leads[0] else (replicas[1], replicas[0])
        holder = SQLStore(postgres_db_url).query_lease("evaluator")
        assert holder is not None and f":{leader.proc.pid}:" in holder["holder"]

        leader.proc.send_signal(signal.SIGKILL)
        leader.proc.wait(10)
        killed = time.monotonic()
        while not _leads(follower) and time.monotonic() - killed < 20:
            time.sleep(0.1)
        took = time.monotonic() - killed
        assert _leads(follower), follower.output()
        # the stated bound: time to live + one renewal round (a third of it), plus slack
        assert took < TTL * 4 / 3 + 1.5, took
        holder = SQLStore(postgres_db_url).query_lease("evaluator")
        assert holder is not None and f":{follower.proc.pid}:" in holder["holder"]

        # a graceful stop releases the lease (no row held by the stopped process)
        assert follower.stop() == 0
        row = SQLStore(postgres_db_url).query_lease("evaluator")
        assert row is not None and row["expires_at"].year == 1970
    finally:
        for r in replicas:
            r.stop(10)
