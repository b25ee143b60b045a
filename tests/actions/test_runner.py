"""ActionRunner: real transitions from the engine, a real store, real subprocesses and a
real HTTP server on loopback; cooldowns driven by a fake clock."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from inferwatch.actions import ActionRunner, engine_lookup, load_actions
from inferwatch.alerting import (
    AlertEngine,
    AlertRunner,
    AlertTransition,
    Dispatcher,
    RuleOutcome,
    fingerprint,
)
from inferwatch.metrics import Metrics
from inferwatch.observation import Alert
from inferwatch.store import MemoryStore, SQLStore

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

# writes what it was given (stdin, the evidence file, argv) to the path in argv[1]
RECORDER = """
import json, os, sys
stdin = sys.stdin.read()
with open(os.environ["INFERWATCH_EVIDENCE_FILE"], encoding="utf-8") as f:
    from_file = f.read()
mode = oct(os.stat(os.environ["INFERWATCH_EVIDENCE_FILE"]).st_mode & 0o777)
with open(sys.argv[1], "w", encoding="utf-8") as f:
    json.dump({"stdin": stdin, "file": from_file, "mode": mode, "argv": sys.argv[1:],
               "evidence_file": os.environ["INFERWATCH_EVIDENCE_FILE"]}, f)
print("retrained", sys.argv[2] if len(sys.argv) > 2 else "")
"""


class FakeClock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def firing(
    alertname: str = "AccuracyLow",
    *,
    model: str | None = "churn",
    severity: str = "critical",
    value: float = 0.8,
    at: datetime = T0,
) -> AlertTransition:
    labels = {"alertname": alertname, "severity": severity}
    if model is not None:
        labels["model"] = model
    return AlertTransition(fingerprint(labels), labels, "pending", "firing", at, value)


def actions(*entries: dict[str, Any]) -> list[Any]:
    problems, configs = load_actions(list(entries))
    assert problems == []
    return configs


ROLLBACK = {
    "name": "rollback-on-accuracy", "kind": "rollback",
    "when": ["alertname=AccuracyLow", "severity=critical"], "cooldown": "1h",
}  # fmt: skip


@dataclass
class Registry:
    """A toy model registry: versions in order, the live one, and its rollback."""

    versions: list[str] = field(default_factory=lambda: ["1", "2"])
    live: str = "2"
    calls: int = 0

    def rollback(self, model: str) -> tuple[str, str] | None:
        self.calls += 1
        i = self.versions.index(self.live)
        if i == 0:
            return None
        old, self.live = self.live, self.versions[i - 1]
        return old, self.live


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLStore]:
    sql = SQLStore(f"sqlite:///{tmp_path}/actions.db")
    sql.upgrade()
    yield sql
    sql.close()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry(), process=False)


def count(metrics: Metrics, action: str, kind: str, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "inferwatch_actions_total", {"action": action, "kind": kind, "outcome": outcome}
    )
    return value or 0.0


# -- rollback and cooldowns -------------------------------------------------------------
def test_rollback_runs_once_then_the_cooldown_skips_with_the_reason(
    store: SQLStore, metrics: Metrics
) -> None:
    clock, registry = FakeClock(), Registry()
    runner = ActionRunner(
        actions(ROLLBACK), store, rollback=registry.rollback, metrics=metrics, clock=clock
    )

    runner.on_transitions([firing(value=0.81)])
    clock.advance(30 * 60)
    runner.on_transitions([firing(at=clock.now)])

    assert registry.live == "1" and registry.calls == 1
    skipped, ok = store.query_action_records(model="churn")
    assert ok["outcome"] == "ok" and ok["version"] == "2" and ok["kind"] == "rollback"
    assert "from 2 to 1" in ok["detail"] and "AccuracyLow critical" in ok["detail"]
    assert ok["evidence"]["rollback"] == {"from_version": "2", "to_version": "1"}
    assert ok["evidence"]["alert"]["labels"]["alertname"] == "AccuracyLow"
    assert ok["evidence"]["alert"]["value"] == pytest.approx(0.81)
    assert ok["fingerprint"] == firing().fingerprint
    assert skipped["outcome"] == "skipped"
    assert "cooldown, 30.0m left" in skipped["detail"]
    assert count(metrics, "rollback-on-accuracy", "rollback", "ok") == 1
    assert count(metrics, "rollback-on-accuracy", "rollback", "skipped") == 1

    clock.advance(30 * 60)  # the hour is over: it may run again (nothing left to roll back to)
    runner.on_transitions([firing(at=clock.now)])
    assert registry.calls == 2
    newest = store.query_action_records(limit=1)[0]
    assert newest["outcome"] == "skipped" and "no previous version" in newest["detail"]


def test_the_cooldown_is_per_model(store: SQLStore) -> None:
    calls: list[str] = []

    def rollback(model: str) -> tuple[str, str]:
        calls.append(model)
        return "2", "1"

    runner = ActionRunner(actions(ROLLBACK), store, rollback=rollback, clock=FakeClock())

    runner.on_transitions([firing(model="churn"), firing(model="fraud")])

    assert calls == ["churn", "fraud"]
    assert {r["model"] for r in store.query_action_records(outcome="ok")} == {"churn", "fraud"}


def test_a_restart_keeps_the_cooldown(store: SQLStore) -> None:
    clock, registry = FakeClock(), Registry(versions=["1", "2", "3"], live="3")
    ActionRunner(actions(ROLLBACK), store, rollback=registry.rollback, clock=clock)([firing()])
    clock.advance(600)

    again = ActionRunner(actions(ROLLBACK), store, rollback=registry.rollback, clock=clock)
    again.on_transitions([firing(at=clock.now)])

    assert registry.live == "2" and registry.calls == 1
    assert "cooldown, 50.0m left" in store.query_action_records(limit=1)[0]["detail"]


def test_only_matching_transitions_to_firing_trigger(store: SQLStore) -> None:
    registry = Registry()
    runner = ActionRunner(actions(ROLLBACK), store, rollback=registry.rollback, clock=FakeClock())
    labels = {"alertname": "AccuracyLow", "severity": "critical", "model": "churn"}
    fp = fingerprint(labels)

    runner.on_transitions(
        [
            firing(severity="warning"),
            firing("DatasetDrift"),
            AlertTransition(fp, labels, "inactive", "pending", T0, 0.8),
            AlertTransition(fp, labels, "firing", "resolved", T0, 0.8),
        ]
    )

    assert registry.calls == 0
    assert store.query_action_records() == []


def test_a_failing_rollback_is_recorded_as_an_error_and_starts_the_cooldown(
    store: SQLStore, metrics: Metrics
) -> None:
    def broken(model: str) -> tuple[str, str]:
        raise RuntimeError("registry locked")

    clock = FakeClock()
    runner = ActionRunner(actions(ROLLBACK), store, rollback=broken, metrics=metrics, clock=clock)
    runner.on_transitions([firing()])
    runner.on_transitions([firing(model=None)])  # no model label: nothing to roll back

    nomodel, error = store.query_action_records()
    assert error["outcome"] == "error"
    assert error["detail"] == "rollback failed: RuntimeError: registry locked"
    assert nomodel["outcome"] == "skipped" and "no model label" in nomodel["detail"]
    assert count(metrics, "rollback-on-accuracy", "rollback", "error") == 1
    clock.advance(60)
    runner.on_transitions([firing(at=clock.now)])
    assert store.query_action_records(limit=1)[0]["outcome"] == "skipped"


def test_evidence_carries_annotations_start_and_the_callers_context(store: SQLStore) -> None:
    clock = FakeClock()
    engine = AlertEngine(clock)
    registry = Registry()
    runner = ActionRunner(
        actions(ROLLBACK),
        store,
        rollback=registry.rollback,
        alerts=engine_lookup(engine),
        evidence=lambda model: {
            "evaluations": [{"metric": "accuracy", "value": 0.81, "evaluated_at": T0}]
        },
        clock=clock,
    )
    outcome = RuleOutcome(
        "AccuracyLow", {"model": "churn"}, "critical", 0.81, for_seconds=60,
        annotations={"summary": "accuracy of churn is 0.81"},
    )  # fmt: skip
    runner.on_transitions(engine.evaluate([outcome], clock.now))  # pending: nothing
    clock.advance(60)
    runner.on_transitions(engine.evaluate([outcome], clock.now))  # firing (and its warning)

    (row,) = store.query_action_records()
    alert = row["evidence"]["alert"]
    assert alert["annotations"] == {"summary": "accuracy of churn is 0.81"}
    assert alert["startsAt"] == (T0 + timedelta(seconds=60)).isoformat()
    assert row["evidence"]["context"] == {
        "evaluations": [{"metric": "accuracy", "value": 0.81, "evaluated_at": T0.isoformat()}]
    }


def test_a_failing_evidence_hook_does_not_stop_the_action(store: SQLStore) -> None:
    registry = Registry()

    def broken(model: str) -> dict[str, Any]:
        raise LookupError("no evaluations yet")

    runner = ActionRunner(
        actions(ROLLBACK), store, rollback=registry.rollback, evidence=broken, clock=FakeClock()
    )
    runner.on_transitions([firing()])

    (row,) = store.query_action_records()
    assert row["outcome"] == "ok"
    assert row["evidence"]["context_error"] == "LookupError: no evaluations yet"


def test_a_store_that_is_down_costs_the_record_not_the_action(metrics: Metrics) -> None:
    registry, down = Registry(), MemoryStore(available=False)
    runner = ActionRunner(
        actions(ROLLBACK), down, rollback=registry.rollback, metrics=metrics, clock=FakeClock()
    )

    runner.on_transitions([firing()])  # does not raise

    assert registry.live == "1"
    assert runner.records_lost == 1
    assert count(metrics, "rollback-on-accuracy", "rollback", "ok") == 1


class Sent:
    def __init__(self) -> None:
        self.groups: list[str] = []

    def send(self, receiver: str, group_key: str, alerts: Sequence[Alert]) -> None:
        self.groups.append(group_key)


def test_the_alert_runner_drives_it(store: SQLStore) -> None:
    clock, registry = FakeClock(), Registry()
    engine = AlertEngine(clock)
    actions_runner = ActionRunner(actions(ROLLBACK), store, rollback=registry.rollback, clock=clock)
    outcome = RuleOutcome("AccuracyLow", {"model": "churn"}, "critical", 0.8, for_seconds=0)
    runner = AlertRunner(
        engine,
        Dispatcher(engine, Sent()),
        lambda: [outcome],
        on_transitions=actions_runner.on_transitions,
    )

    runner.run_once()

    assert registry.live == "1"
    assert [r["outcome"] for r in store.query_action_records()] == ["ok"]


# -- retrain: a command ----------------------------------------------------------------
def retrain_entry(command: list[str], **kw: Any) -> dict[str, Any]:
    return {"name": "retrain-on-drift", "kind": "retrain", "when": ["alertname=DatasetDrift"],
            "command": command, "cooldown": "6h", **kw}  # fmt: skip


def test_retrain_runs_the_command_with_the_evidence_on_stdin_and_in_a_file(
    store: SQLStore, tmp_path: Path, metrics: Metrics
) -> None:
    script = tmp_path / "retrain.py"
    script.write_text(RECORDER)
    out = tmp_path / "got.json"
    runner = ActionRunner(
        actions(retrain_entry([sys.executable, str(script), str(out), "churn-v3"])),
        store,
        evidence=lambda model: {"drift_share": 0.6},
        metrics=metrics,
        clock=FakeClock(),
    )

    runner.on_transitions([firing("DatasetDrift", value=0.6)])
    assert runner.wait(30)

    got = json.loads(out.read_text())
    evidence = json.loads(got["stdin"])
    assert got["file"] == got["stdin"]
    assert got["mode"] == "0o600"
    assert evidence["alert"]["labels"]["alertname"] == "DatasetDrift"
    assert evidence["alert"]["value"] == pytest.approx(0.6)
    assert evidence["context"] == {"drift_share": 0.6}
    assert evidence["model"] == "churn" and evidence["kind"] == "retrain"
    assert not Path(got["evidence_file"]).exists()  # removed after the run
    (row,) = store.query_action_records()
    assert row["outcome"] == "ok" and row["kind"] == "retrain"
    assert row["detail"].startswith("exit 0 in ") and "retrained churn-v3" in row["detail"]
    assert row["evidence"]["context"] == {"drift_share": 0.6}
    assert count(metrics, "retrain-on-drift", "retrain", "ok") == 1
    runner.close()


def test_retrain_runs_off_the_callers_thread(store: SQLStore, tmp_path: Path) -> None:
    runner = ActionRunner(
        actions(retrain_entry([sys.executable, "-c", "import time; time.sleep(1.5)"], cooldown=0)),
        store,
        clock=FakeClock(),
    )
    started = time.monotonic()
    runner.on_transitions([firing("DatasetDrift")])
    returned = time.monotonic() - started
    runner.on_transitions([firing("DatasetDrift")])  # no cooldown, but one is running

    assert returned < 1.0
    assert store.query_action_records()[0]["detail"] == (
        "skipped: the previous run for this model is still going"
    )
    assert runner.wait(30)
    assert [r["outcome"] for r in store.query_action_records()] == ["ok", "skipped"]
    runner.close()


def test_a_failing_command_is_recorded_with_its_exit_status_and_stderr(store: SQLStore) -> None:
    code = "import sys; print('no GPU left', file=sys.stderr); sys.exit(3)"
    runner = ActionRunner(
        actions(retrain_entry([sys.executable, "-c", code])), store, clock=FakeClock()
    )
    runner.on_transitions([firing("DatasetDrift")])
    assert runner.wait(30)

    (row,) = store.query_action_records()
    assert row["outcome"] == "error"
    assert row["detail"].startswith("exit 3 in ") and row["detail"].endswith("no GPU left")


def test_a_missing_program_is_an_error_record(store: SQLStore, tmp_path: Path) -> None:
    runner = ActionRunner(
        actions(retrain_entry([str(tmp_path / "nope")])), store, clock=FakeClock()
    )
    runner.on_transitions([firing("DatasetDrift")])
    assert runner.wait(30)
    assert store.query_action_records()[0]["detail"].startswith("cannot start")


def test_a_command_past_its_timeout_is_killed_with_its_children(
    store: SQLStore, tmp_path: Path
) -> None:
    pidfile = tmp_path / "child.pid"
    # the hook starts a grandchild that would outlive a kill of the hook alone
    code = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(60)\n"
    )
    runner = ActionRunner(
        actions(retrain_entry([sys.executable, "-c", code], timeout=2)), store, clock=FakeClock()
    )
    started = time.monotonic()
    runner.on_transitions([firing("DatasetDrift")])
    assert runner.wait(30)

    assert time.monotonic() - started < 10
    (row,) = store.query_action_records()
    assert row["outcome"] == "error" and row["detail"].startswith("timed out after")
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (killed, not yet reaped by init) is gone for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


# -- retrain: a webhook ----------------------------------------------------------------
@dataclass
class Hook:
    url: str
    bodies: list[bytes] = field(default_factory=list)
    status: int = 202


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            state.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            self.send_response(state.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"no")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/retrain"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def webhook_entry(url: str) -> dict[str, Any]:
    return {"name": "retrain-hook", "kind": "retrain", "when": ["alertname=DatasetDrift"],
            "url": url, "timeout": "5s", "cooldown": "6h"}  # fmt: skip


def test_the_webhook_gets_the_evidence_as_json(store: SQLStore, hook: Hook) -> None:
    runner = ActionRunner(
        actions(webhook_entry(hook.url)), store, evidence=lambda m: {"rows": 5000},
        clock=FakeClock(),
    )  # fmt: skip
    runner.on_transitions([firing("DatasetDrift", value=0.55)])
    assert runner.wait(30)

    (body,) = hook.bodies
    evidence = json.loads(body)
    assert evidence["alert"]["value"] == pytest.approx(0.55)
    assert evidence["context"] == {"rows": 5000}
    (row,) = store.query_action_records()
    assert row["outcome"] == "ok" and row["detail"].startswith(f"POST {hook.url}: HTTP 202")


def test_a_webhook_that_fails_or_is_down_is_an_error_record(store: SQLStore, hook: Hook) -> None:
    hook.status = 500
    clock = FakeClock()
    runner = ActionRunner(actions(webhook_entry(hook.url)), store, clock=clock)
    runner.on_transitions([firing("DatasetDrift")])
    assert runner.wait(30)
    assert store.query_action_records()[0]["detail"].startswith(f"POST {hook.url}: HTTP 500")

    down = ActionRunner(actions(webhook_entry("http://127.0.0.1:1/x")), store, clock=clock)
    down.on_transitions([firing("DatasetDrift", model="fraud")])
    assert down.wait(30)
    row = store.query_action_records(model="fraud")[0]
    assert row["outcome"] == "error" and "ConnectError" in row["detail"]


# -- scale -----------------------------------------------------------------------------
SCALE = {
    "name": "scale-on-cpu", "kind": "scale", "when": ["alertname=~HighCPU|LowCPU"],
    "target": 0.7, "min_replicas": 1, "max_replicas": 10, "replicas": 2, "cooldown": "5m",
}  # fmt: skip


def desired(metrics: Metrics, model: str) -> float | None:
    return metrics.registry.get_sample_value("inferwatch_desired_replicas", {"model": model})


def test_scale_publishes_the_hpa_formula_clamped(store: SQLStore, metrics: Metrics) -> None:
    clock = FakeClock()
    runner = ActionRunner(actions(SCALE), store, metrics=metrics, clock=clock)

    runner.on_transitions([firing("HighCPU", value=1.3, severity="warning")])
    assert desired(metrics, "churn") == 4  # ceil(2 * 1.3 / 0.7) = ceil(3.71)
    row = store.query_action_records()[0]
    assert row["evidence"]["scale"]["desired_replicas"] == 4
    assert "ceil(2 * 1.3 / 0.7) = 4" in row["detail"]

    clock.advance(60)  # inside the cooldown: held
    runner.on_transitions([firing("HighCPU", value=9.0, at=clock.now)])
    assert desired(metrics, "churn") == 4

    clock.advance(300)  # from the 4 it published: ceil(4 * 9 / 0.7) = 52, clamped to 10
    runner.on_transitions([firing("HighCPU", value=9.0, at=clock.now)])
    assert desired(metrics, "churn") == 10 == runner.desired_replicas("churn")

    clock.advance(300)  # a "CPU cold" alert scales down: ceil(10 * 0.05 / 0.7) = 1
    runner.on_transitions([firing("LowCPU", value=0.05, at=clock.now)])
    assert desired(metrics, "churn") == 1
    assert [r["outcome"] for r in store.query_action_records()] == ["ok", "ok", "skipped", "ok"]


def test_scale_uses_the_current_replicas_hook(metrics: Metrics) -> None:
    runner = ActionRunner(
        actions(SCALE), None, metrics=metrics, current_replicas=lambda m: 6, clock=FakeClock()
    )
    runner.on_transitions([firing("HighCPU", value=0.35)])
    assert desired(metrics, "churn") == 3  # ceil(6 * 0.35 / 0.7)


def test_close_kills_a_command_still_running_and_a_closed_runner_runs_nothing(
    store: SQLStore,
) -> None:
    runner = ActionRunner(
        actions(retrain_entry([sys.executable, "-c", "import time; time.sleep(60)"])),
        store,
        clock=FakeClock(),
    )
    runner.on_transitions([firing("DatasetDrift")])
    time.sleep(0.5)  # started

    started = time.monotonic()
    runner.close(timeout=0.5)

    assert time.monotonic() - started < 10
    (row,) = store.query_action_records()
    assert row["outcome"] == "error" and "shutting down" in row["detail"]
    runner.on_transitions([firing("DatasetDrift", model="fraud")])
    assert store.query_action_records(model="fraud")[0]["detail"] == (
        "not run: the action runner is closed"
    )


def test_a_chatty_command_keeps_only_the_tail_of_its_output(store: SQLStore) -> None:
    code = "import sys\nfor i in range(200000): print('line', i)\nprint('done')"
    runner = ActionRunner(
        actions(retrain_entry([sys.executable, "-c", code])), store, clock=FakeClock()
    )
    runner.on_transitions([firing("DatasetDrift")])
    assert runner.wait(60)

    (row,) = store.query_action_records()
    assert row["outcome"] == "ok" and row["detail"].endswith("line 199999\ndone")
    assert len(row["detail"]) < 2100
