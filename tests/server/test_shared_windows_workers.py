"""``serve --workers N`` with ``fleet.share_windows``: the workers' rows and labels reach
the judge through the store alone, so none is counted twice (the socket merges of the
drift and the performance windows are skipped)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from inferwatch.demo import make_customers, to_instances
from inferwatch.server import build_app
from inferwatch.server._workers import acquire_slot, attach_fleet
from inferwatch.shared_windows import StorePerformance, StoreWindows
from tests.server.conftest import TestClient, live_settings

WAIT_SECONDS = 20.0


def test_two_workers_sharing_windows_judge_each_row_once(
    demo_workdir: Path, tmp_path: Path
) -> None:
    settings = live_settings(demo_workdir, tmp_path)
    fleet = settings.fleet.model_copy(update={"share_windows": True, "share_interval_seconds": 0.2})
    # one performance window for the whole test too
    performance = settings.performance.model_copy(update={"window_seconds": 86_400})
    settings = settings.model_copy(update={"fleet": fleet, "performance": performance})
    rundir = tmp_path / "run"
    rundir.mkdir()
    customers = make_customers(600, np.random.default_rng(3))
    traffic, truth = to_instances(customers), customers["churned"].tolist()
    apps = []
    for _ in range(2):  # as two workers of one replica: slots 0 and 1, one store
        slot, _fd = acquire_slot(rundir, 2, wait=0)
        app = build_app(settings)
        attach_fleet(app, rundir, slot, 2)
        assert all(isinstance(t.profiler, StoreWindows) for t in app.state.evaluator.targets)
        assert isinstance(app.state.evaluator.performance, StorePerformance)
        apps.append(app)
    with TestClient(apps[0]) as judge, TestClient(apps[1]) as other:  # the first leads
        ids: list[str] = []
        for i in range(0, len(traffic), 100):
            client = judge if i < 200 else other
            r = client.post("/v1/models/churn/predict", json={"instances": traffic[i : i + 100]})
            assert r.status_code == 200, r.text
            ids += [p["id"] for p in r.json()["predictions"]]
        deadline = time.monotonic() + WAIT_SECONDS
        rows = None
        while rows != len(traffic):
            assert time.monotonic() < deadline, f"the judged window holds {rows} rows"
            time.sleep(0.1)
            rows = (judge.get("/v1/models/churn/drift").json().get("window") or {}).get("rows")
        time.sleep(1.0)  # a few more rounds: still every row once, not the sibling's twice
        window = judge.get("/v1/models/churn/drift").json()["window"]
        assert window["rows"] == len(traffic)
        # labels of 450 predictions, each half to either worker (whoever answered it)
        for start in range(0, 450, 150):
            client = judge if start % 300 == 0 else other
            items = [{"prediction_id": ids[j], "label": truth[j]}
                     for j in range(start, start + 150)]  # fmt: skip
            r = client.post("/v1/models/churn/feedback", json={"labels": items})
            assert r.status_code == 200, r.text
        deadline = time.monotonic() + WAIT_SECONDS
        state: dict[str, object] = {}
        while state.get("labelled") != 450:
            assert time.monotonic() < deadline, f"the judge holds {state}"
            time.sleep(0.1)
            state = judge.get("/v1/models/churn/performance").json()["versions"]["1"] or {}
        time.sleep(1.0)  # a few more rounds: every label once, not the sibling's twice
        state = judge.get("/v1/models/churn/performance").json()["versions"]["1"]
        assert (state["labelled"], state["predictions"]) == (450, len(traffic))


def test_a_graceful_stop_writes_the_rows_the_log_drained_last(
    demo_workdir: Path, tmp_path: Path
) -> None:
    """The last write comes after the prediction log is drained at shutdown, so a replica
    stopped gracefully leaves every row it answered for the judge."""
    from inferwatch.store import SQLStore

    settings = live_settings(demo_workdir, tmp_path)
    # no periodic write and a slow log: the rows reach the profiler only at the drain
    fleet = settings.fleet.model_copy(update={"share_windows": True, "share_interval_seconds": 300})
    store = settings.store.model_copy(update={"flush_interval_seconds": 30})
    settings = settings.model_copy(update={"fleet": fleet, "store": store})
    traffic = to_instances(make_customers(150, np.random.default_rng(4)))
    app = build_app(settings)
    with TestClient(app) as client:
        r = client.post("/v1/models/churn/predict", json={"instances": traffic})
        assert r.status_code == 200, r.text
        start = app.state.evaluator.targets[0].profiler.current("churn", "v1")[0]
    reader = SQLStore(settings.store.url)
    try:
        found = [
            row["rows"]
            for t in app.state.evaluator.targets
            for row in reader.load_window_profiles(t.model, t.version, start)
        ]
    finally:
        reader.close()
    assert sum(found) == len(traffic), found


def test_a_restarted_replica_named_by_fleet_instance_keeps_its_predecessors_rows(
    demo_workdir: Path, tmp_path: Path
) -> None:
    """A container's process restarts with the same pid: the new process must not write
    over the rows its predecessor answered (they stay counted), and the holder fits the
    store's column whatever the instance name's length."""
    from inferwatch.store import SQLStore

    settings = live_settings(demo_workdir, tmp_path)
    fleet = settings.fleet.model_copy(
        update={"share_windows": True, "share_interval_seconds": 300, "instance": "pod-" * 50}
    )
    settings = settings.model_copy(update={"fleet": fleet})
    traffic = to_instances(make_customers(100, np.random.default_rng(6)))
    holders = []
    for part in (traffic[:60], traffic[60:]):  # one process, then its restart
        app = build_app(settings)
        holders.append(app.state.window_share.holder)
        with TestClient(app) as client:
            r = client.post("/v1/models/churn/predict", json={"instances": part})
            assert r.status_code == 200, r.text
            start = app.state.evaluator.targets[0].profiler.current("churn", "1")[0]
    assert holders[0] != holders[1] and all(len(h) <= 200 for h in holders)
    reader = SQLStore(settings.store.url)
    try:
        found = sorted(r["rows"] for r in reader.load_window_profiles("churn", "1", start))
    finally:
        reader.close()
    assert found == [40, 60]
