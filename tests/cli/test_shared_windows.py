"""Two replicas on one PostgreSQL with ``fleet.share_windows``: traffic split between them,
the lease holder's judged window counts every row (its own and the other's, read back from
the store), and each replica wrote its own share.  The same for the performance (label)
windows: labels sent to both replicas (some to the one that did not answer the
prediction), the leader's realised performance counts every labelled row, while each
replica's own stored state (what it would judge without sharing) holds its own."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
import yaml

from inferwatch.demo import make_customers, prepare_workdir, to_instances
from inferwatch.store import SQLStore
from tests.cli.conftest import ServerProcess

pytestmark = pytest.mark.integration

LEADER = re.compile(r"^inferwatch_evaluator_leader (\S+)$", re.MULTILINE)
WAIT_SECONDS = 20.0


def _leads(server: ServerProcess) -> bool:
    found = LEADER.search(httpx.get(f"{server.base}/metrics", timeout=5).text)
    assert found is not None, "inferwatch_evaluator_leader is not exported"
    return float(found.group(1)) == 1.0


def _drift(server: ServerProcess) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{server.base}/v1/models/churn/drift", timeout=5).json()
    return body


def _performance(server: ServerProcess) -> dict[str, Any]:
    body = httpx.get(f"{server.base}/v1/models/churn/performance", timeout=5).json()
    state: dict[str, Any] = body["versions"]["1"] or {}
    return state


def test_the_leader_judges_the_rows_every_replica_answered(
    tmp_path: Path, postgres_db_url: str
) -> None:
    # the whole test must fall in one day-long window: never start it just before 00:00 UTC
    to_midnight = 86_400 - time.time() % 86_400
    if to_midnight < 120:
        time.sleep(to_midnight + 1)
    prepare_workdir(tmp_path, port=0, n_reference=500)
    config = tmp_path / "inferwatch.yaml"
    data = yaml.safe_load(config.read_text())
    data["store"] = {"url": postgres_db_url, "flush_interval_seconds": 0.05}
    # one window for the whole test (windows start at 00:00 UTC; see the wait above)
    data["drift"] = {"evaluation_interval_seconds": 0.2, "window_seconds": 86_400}
    data["performance"] = {"window_seconds": 86_400, "min_labels": 30}
    config.write_text(yaml.safe_dump(data))
    SQLStore(postgres_db_url).upgrade()  # migrated once, before two processes race to do it
    env = {"INFERWATCH_FLEET__SHARE_WINDOWS": "true",
           "INFERWATCH_FLEET__SHARE_INTERVAL_SECONDS": "0.3"}  # fmt: skip
    replicas = [ServerProcess(["serve", "-c", str(config)], tmp_path, env=env) for _ in range(2)]
    try:
        for r in replicas:
            r.wait_ready()
        leads = [_leads(r) for r in replicas]
        assert sorted(leads) == [False, True], leads
        leader = replicas[leads.index(True)]
        follower = replicas[1 - leads.index(True)]
        customers = make_customers(600, np.random.default_rng(5))
        traffic, truth = to_instances(customers), customers["churned"].tolist()
        # the follower answers two thirds, the leader one third
        answered: list[tuple[ServerProcess, list[str]]] = []
        for i in range(0, len(traffic), 100):
            to = leader if i % 300 == 0 else follower
            resp = httpx.post(f"{to.base}/v1/models/churn/predict",
                           json={"instances": traffic[i : i + 100]}, timeout=30)  # fmt: skip
            assert resp.status_code == 200, resp.text
            answered.append((to, [p["id"] for p in resp.json()["predictions"]]))
        deadline = time.monotonic() + WAIT_SECONDS
        body = _drift(leader)
        while (body.get("window") or {}).get("rows") != len(traffic):
            assert time.monotonic() < deadline, f"the leader judged {body.get('window')}"
            time.sleep(0.1)
            body = _drift(leader)
        assert body["status"] == "judged"
        # each replica wrote its own share of the window: 200 and 400 rows
        engine = sa.create_engine(postgres_db_url)
        try:
            with engine.connect() as conn:
                shares = conn.execute(sa.text("SELECT holder, rows FROM window_profiles")).all()
        finally:
            engine.dispose()  # (a later connect opens the pool again)
        assert sorted(n for _, n in shares) == [200, 400], shares
        assert len({h for h, _ in shares}) == 2

        # labels: 80 of each batch of 100; those of the first 20 rows of a batch go to the
        # replica that did not answer them (the prediction is read from the store)
        sent = {id(leader): 0, id(follower): 0}
        for n, (by, ids) in enumerate(answered):
            other = follower if by is leader else leader
            for to, rows in ((other, range(0, 20)), (by, range(20, 80))):
                items = [{"prediction_id": ids[j], "label": truth[100 * n + j]} for j in rows]
                resp = httpx.post(f"{to.base}/v1/models/churn/feedback",
                                  json={"labels": items}, timeout=30)  # fmt: skip
                assert resp.status_code == 200, resp.text
                sent[id(to)] += len(items)
        labelled = 80 * len(answered)
        deadline = time.monotonic() + WAIT_SECONDS
        state = _performance(leader)
        while state.get("labelled") != labelled:
            assert time.monotonic() < deadline, f"the leader judged {state}"
            time.sleep(0.1)
            state = _performance(leader)
        assert state["predictions"] == len(traffic)
        assert state["realised"] is not None  # judged on all 480 labels, not on a share
        # without sharing, each replica would judge its own state: the one it stored (the
        # leader judges its own from memory, so its stored row may be a share round behind)
        leader_took, follower_took = sent[id(leader)], sent[id(follower)]
        want = sorted([(200, leader_took), (400, follower_took)])
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            with engine.connect() as conn:
                query = sa.text("SELECT holder, state FROM window_performance")
                found = conn.execute(query).all()
            own = sorted(
                (s["summary"]["n_predictions"], s["labelled"]["n_predictions"])
                for s in (json.loads(text) for _, text in found)
            )
            if own == want or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        engine.dispose()
        assert own == want, own
        assert (
            "inferwatch_window_share_errors_total 0.0"
            in httpx.get(f"{leader.base}/metrics", timeout=5).text
        )
    finally:
        for r in replicas:
            r.stop(10)
