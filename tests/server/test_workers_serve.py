"""``inferwatch serve --workers 4`` as a user runs it: real processes, a SQLite file store.

Exactly N predicts over several connections, answered by more than one worker; every
scrape of ``/metrics`` then sums ``inferwatch_requests_total`` to N, with exemplars in
OpenMetrics, and the live drift window judged holds all N rows.  Labels for every
prediction, posted over several connections (so most reach a worker other than the one
that answered the prediction), give the judged performance window full coverage and the
accuracy computed here from the answers.  A worker stopped with
SIGTERM and one killed with SIGKILL are replaced: the totals never go down, and stay exact,
and the judged window still holds every row (the windows each worker saved on its slot).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from inferwatch.config import load_settings
from inferwatch.demo import make_customers, prepare_workdir, to_instances
from inferwatch.demo._data import TARGET
from inferwatch.server import build_app
from inferwatch.server._workers import ask_slot
from tests.cli.conftest import ServerProcess
from tests.server.conftest import TestClient

WORKERS = 4
SLOT_LINE = re.compile(r"worker (\d+) serves slot (\d+)")
RUNDIR_LINE = re.compile(r"saved counts are in (\S+)")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("workers")
    prepare_workdir(path, port=0, n_reference=500)
    config = yaml.safe_load((path / "inferwatch.yaml").read_text())
    config["alerting"] = {}
    # one long window judged every 2 s: after N predicts it holds N rows, on any worker
    config["drift"] = {"window_seconds": 3600, "evaluation_interval_seconds": 2}
    config["history"] = {"interval_seconds": 1}  # sampled by one worker, for the fleet
    # one long performance window, judged from the first labels
    config["performance"] = {"window_seconds": 86400, "min_labels": 30}
    (path / "inferwatch.yaml").write_text(yaml.safe_dump(config))
    return path


def slots(server: ServerProcess) -> dict[int, int]:
    """slot -> pid of the worker that took it last (from the workers' log lines)."""
    return {int(s): int(p) for p, s in SLOT_LINE.findall(server.stderr)}


def wait_for(cond, timeout: float, what: str, server: ServerProcess) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} not within {timeout} s:\n{server.output()[-4000:]}")


def total(base: str, openmetrics: bool = False) -> tuple[float, str]:
    headers = {"accept": "application/openmetrics-text"} if openmetrics else {}
    text = httpx.get(f"{base}/metrics", headers=headers, timeout=10).text
    n = sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "inferwatch_requests_total"
    )
    return n, text


def predict(
    base: str,
    instances: list[dict[str, object]],
    n: int,
    clients: int = 8,
    answers: dict[str, tuple[int, object]] | None = None,
) -> int:
    """``n`` single-row predicts from ``clients`` keep-alive connections; the 200s.
    ``answers`` gets prediction id -> (instance index, predicted class)."""

    def client(i: int) -> int:
        ok = 0
        with httpx.Client(base_url=base, timeout=30) as c:
            for j in range(i, n, clients):
                trace = f"{j + 1:032x}"
                r = c.post(
                    "/v1/models/churn/predict",
                    json={"instances": [instances[j % len(instances)]]},
                    headers={"traceparent": f"00-{trace}-{j + 1:016x}-01"},
                )
                ok += r.status_code == 200
                if answers is not None and r.status_code == 200:
                    item = r.json()["predictions"][0]
                    answers[item["id"]] = (j % len(instances), item["prediction"])
        return ok

    with cf.ThreadPoolExecutor(clients) as pool:
        return sum(pool.map(client, range(clients)))


def per_slot(rundir: Path) -> dict[int, float]:
    out = {}
    for k in range(WORKERS):
        view = ask_slot(rundir, k)
        assert view is not None, f"slot {k} does not answer"
        out[k] = sum(
            s[2]
            for f in view
            if f[0] == "inferwatch_requests"
            for s in f[4]
            if s[0].endswith("_total")
        )
    return out


@pytest.mark.slow
def test_four_workers_sum_exactly_through_sigterm_and_sigkill(
    workdir: Path, tmp_path: Path
) -> None:
    server = ServerProcess(
        [
            "serve",
            "-c",
            str(workdir / "inferwatch.yaml"),
            "--store",
            f"sqlite:///{tmp_path / 'p.db'}",
            "--workers",
            str(WORKERS),
        ],
        cwd=workdir,
        timeout=120,
    )
    try:
        wait_for(lambda: len(slots(server)) == WORKERS, 180, "4 workers", server)
        server.wait_ready(120)
        rundir = Path(RUNDIR_LINE.search(server.stderr).group(1))  # type: ignore[union-attr]
        customers = make_customers(64, np.random.default_rng(3), drift=0.8)
        instances = to_instances(customers)
        truth = [str(v) for v in customers[TARGET]]
        n = 300
        answers: dict[str, tuple[int, object]] = {}
        assert predict(server.base, instances, n, answers=answers) == n
        assert len(answers) == n
        answered = per_slot(rundir)
        assert sum(answered.values()) == n
        assert sum(1 for v in answered.values() if v > 0) > 1, answered  # several workers
        for _ in range(5):  # any worker may take the scrape: each sums every worker
            assert total(server.base)[0] == n
        got, text = total(server.base, openmetrics=True)
        assert got == n
        assert re.search(r'_bucket\{.*\} \d+(\.0)? # \{.*trace_id="[0-9a-f]{32}"', text)
        assert "inferwatch_workers 4" in text
        assert "inferwatch_evaluator_leader 1" in text  # one worker judges and alerts

        # the judging worker's window holds every worker's rows (merged profiles), not
        # the quarter it answered itself
        def window_rows() -> float:
            text = httpx.get(f"{server.base}/metrics", timeout=10).text
            return sum(
                s.value
                for f in text_string_to_metric_families(text)
                for s in f.samples
                if s.name == "inferwatch_drift_window_rows"
            )

        wait_for(lambda: window_rows() == n, 60, f"a judged window of {n} rows", server)

        # labels of every prediction, 10 requests on fresh connections: most reach a
        # worker that did not answer the prediction; the judged window merges every
        # worker's predictions and labels, so coverage is 1 and accuracy is all 300's
        ids = sorted(answers)
        left = set(ids)
        deadline = time.monotonic() + 30
        while left and time.monotonic() < deadline:  # a label may outrun its row's flush
            for part in np.array_split(np.array(sorted(left)), 10):
                body = {"labels": [{"prediction_id": i, "label": truth[answers[i][0]]}
                                   for i in part.tolist()]}  # fmt: skip
                r = httpx.post(f"{server.base}/v1/models/churn/feedback", json=body, timeout=30)
                if r.status_code in (200, 207):  # 207: the rejected ones are listed
                    refused = {e["prediction_id"] for e in r.json()["errors"]}
                    left -= set(part.tolist()) - refused
            if left:
                time.sleep(0.5)
        assert not left, f"{len(left)} labels not accepted"
        expected = float(np.mean([str(answers[i][1]) == truth[answers[i][0]] for i in ids]))

        def performance() -> dict[str, float]:
            text = httpx.get(f"{server.base}/metrics", timeout=10).text
            out = {}
            for f in text_string_to_metric_families(text):
                for s in f.samples:
                    if s.name == "inferwatch_model_performance":
                        out[s.labels["metric"]] = s.value
                    elif s.name == "inferwatch_label_coverage_ratio":
                        out["coverage"] = s.value
            return out

        wait_for(lambda: performance().get("coverage") == 1.0, 60, "labels of every worker",
                 server)  # fmt: skip
        assert performance()["accuracy"] == pytest.approx(expected, abs=1e-12)

        # drift on 4 workers flags what one process flags on the same traffic: the same
        # 300 predicts through one in-process server (its own store), judged at once
        single = yaml.safe_load((workdir / "inferwatch.yaml").read_text())
        single["store"] = {"url": f"sqlite:///{tmp_path / 'single.db'}"}
        (workdir / "single.yaml").write_text(yaml.safe_dump(single))
        with TestClient(build_app(load_settings(workdir / "single.yaml"))) as one:
            for j in range(n):
                body = {"instances": [instances[j % len(instances)]]}
                assert one.post("/v1/models/churn/predict", json=body).status_code == 200
            deadline = time.monotonic() + 20
            while True:  # the prediction log's flush feeds the window
                assert one.post("/v1/models/churn/evaluate").status_code == 200
                alone = one.get("/v1/models/churn/drift").json()
                if (alone.get("window") or {}).get("rows") == n or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        fleet = httpx.get(f"{server.base}/v1/models/churn/drift", timeout=30).json()
        assert alone["window"]["rows"] == fleet["window"]["rows"] == n
        assert fleet["report"]["dataset_drift"] is True  # the traffic is drifted
        assert fleet["report"]["drifted_features"] == alone["report"]["drifted_features"]
        for mine, theirs in zip(
            fleet["report"]["features"], alone["report"]["features"], strict=True
        ):
            assert mine["name"] == theirs["name"]
            assert mine["drift_detected"] == theirs["drift_detected"], mine["name"]
            assert mine["statistic"] == pytest.approx(theirs["statistic"], rel=1e-9, abs=1e-12)

        # the routes about the judge's state answer the same on every worker (forwarded to
        # the leading one): 12 fresh connections, so several workers take them
        for _ in range(12):
            with httpx.Client(base_url=server.base, timeout=30) as c:
                drift = c.get("/v1/models/churn/drift").json()
                assert drift["status"] == "judged", drift
                assert drift["window"]["rows"] == n, drift["window"]
                perf = c.get("/v1/models/churn/performance").json()
                (state,) = perf["versions"].values()
                assert state["labelled"] == n, state
                assert state["realised"]["accuracy"] == pytest.approx(expected, abs=1e-12)

        def judged_since(t: float) -> dict[str, Any]:
            """The judged drift window, once the judge has judged it again after ``t``."""
            got: dict[str, Any] = {}

            def again() -> bool:
                got.update(httpx.get(f"{server.base}/v1/models/churn/drift", timeout=30).json())
                return got.get("status") == "judged" and got["window"]["evaluated_at"] > t

            wait_for(again, 60, "a drift judgement after the restart", server)
            return got

        # SIGTERM: the worker drains, saves its counts and windows and is replaced on its slot
        before = slots(server)
        os.kill(before[1], signal.SIGTERM)
        seen = [total(server.base)[0]]
        wait_for(lambda: slots(server)[1] != before[1], 120, "slot 1's replacement", server)
        server.wait_ready(60)
        for _ in range(5):
            seen.append(total(server.base)[0])
        assert seen == [n] * len(seen)  # exact throughout
        # its share of the window went on in its successor (or its file, until it was up)
        assert judged_since(time.time())["window"]["rows"] == n

        # SIGKILL after a checkpoint: more predicts, a scrape (every worker saves what it
        # shows), then the kill: nothing shown is lost, nothing goes down
        m = 100
        assert predict(server.base, instances, m) == m
        assert total(server.base)[0] == n + m

        def saved_rows() -> int:  # the window rows every slot saved (at most 1 s behind)
            return sum(
                state["n_rows"]
                for path in Path(rundir).glob("slot-*.windows")
                for *_, state in json.loads(path.read_text())["drift"]
            )

        wait_for(lambda: saved_rows() == n + m, 30, "the windows saved on every slot", server)
        pids = slots(server)
        os.kill(pids[2], signal.SIGKILL)
        seen = []
        deadline = time.monotonic() + 120
        while slots(server)[2] == pids[2] and time.monotonic() < deadline:
            seen.append(total(server.base)[0])
            time.sleep(0.3)
        assert slots(server)[2] != pids[2], "slot 2 was not replaced"
        server.wait_ready(60)
        wait_for(lambda: ask_slot(rundir, 2) is not None, 60, "slot 2's socket", server)
        seen.append(total(server.base)[0])
        assert seen == sorted(seen) and seen[-1] == n + m, seen
        # the killed worker's share of the window was saved before the kill: judged still
        assert judged_since(time.time())["window"]["rows"] == n + m
        assert total(server.base, openmetrics=True)[1].count("inferwatch_workers 4") == 1

        # the history is one worker's (slot 0), sampling the fleet: the others write nothing
        def history_writes(k: int) -> float:
            view = ask_slot(rundir, k) or []
            return sum(
                s[2]
                for f in view
                if f[0] == "inferwatch_history_operations"
                for s in f[4]
                if s[0].endswith("_total") and s[1].get("operation") == "write"
            )

        assert history_writes(0) > 0
        assert [history_writes(k) for k in (1, 2, 3)] == [0, 0, 0]
    finally:
        rc = server.stop(90)
    assert rc == 0, server.output()[-3000:]
    assert not Path(rundir).exists()  # the run directory goes with the server
