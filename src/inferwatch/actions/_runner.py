"""``ActionRunner``: automated responses to firing alerts, with cooldowns and a record.

The alert runner hands it each cycle's transitions (``on_transitions``).  A transition
*to firing* whose labels match an action's ``when`` triggers that action for the alert's
``model`` label.  Per (action, model), a run starts a cooldown; a trigger inside it is
recorded as ``skipped`` with the time left.  Every run is recorded in the store
(:meth:`~inferwatch.ports.AlertStore.write_action_record`) with its evidence (the
alert's labels, annotations, value and start, and whatever the ``evidence`` hook adds,
such as the newest evaluation rows) and counted in ``inferwatch_actions_total``.

- **rollback** calls the injected ``rollback(model)``, which flips the live version and
  returns ``(from_version, to_version)``, or None when there is nothing to roll back to
  (recorded as skipped).  It runs on the caller's thread: a registry flip is quick.
- **retrain** runs ``command`` (no shell; the evidence as JSON on stdin and in the file
  named by ``INFERWATCH_EVIDENCE_FILE``) or POSTs the evidence to ``url``, on a worker
  thread, so the alert cycle never waits; it is killed after ``timeout`` and recorded
  when it ends.  A second run for the same model never starts while one is going.
- **scale** sets ``inferwatch_desired_replicas{model}`` to ``clamp(ceil(replicas *
  value / target))`` (the HPA's own formula) when its alert fires: above the target it
  asks for more replicas, below it for fewer, so a "CPU hot" rule scales up and a "CPU
  cold" rule with its own scale action scales down.  The hint holds between alerts (a
  resolving alert's value is its last breaching one, which says nothing about the load
  now).

A store that is down costs the record (logged), never the action or the alert cycle.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import httpx

from inferwatch._json import plain
from inferwatch.actions._config import (
    RetrainActionConfig,
    RollbackActionConfig,
    ScaleActionConfig,
)
from inferwatch.alerting import AlertEngine, AlertTransition
from inferwatch.errors import StoreError
from inferwatch.observation import Alert

if TYPE_CHECKING:
    from inferwatch.metrics import Metrics
    from inferwatch.ports import AlertStore

__all__ = ["ActionRunner", "engine_lookup", "evidence_json"]

log = logging.getLogger("inferwatch.actions")

#: what a rollback hook returns: (from_version, to_version), or None (nothing to roll back to)
RollbackHook = Callable[[str], "tuple[str, str] | None"]
#: an action record's detail and a hook's output kept in it: the tail, not a whole log
_OUTPUT_TAIL = 2000


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return plain(value)


def evidence_json(evidence: Mapping[str, Any]) -> str:
    """The evidence as the JSON a hook receives (datetimes in ISO 8601, NaN as null)."""
    return json.dumps(_jsonable(evidence), ensure_ascii=False, sort_keys=True)


def engine_lookup(engine: AlertEngine) -> Callable[[str], Alert | None]:
    """The live alert behind a fingerprint in ``engine`` (its annotations and start time
    go into the evidence)."""

    def lookup(fp: str) -> Alert | None:
        series = engine.get(fp)
        return None if series is None else series.alert()

    return lookup


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    if seconds >= 60:
        return f"{seconds / 60:.1f}m"
    return f"{seconds:.1f}s"


def _read_tail(f: Any) -> str:
    """The last part of what a process wrote to the temporary file ``f``."""
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - 4 * _OUTPUT_TAIL))
    return _tail(f.read())


def _tail(text: str | bytes | None) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.strip()
    return text if len(text) <= _OUTPUT_TAIL else "..." + text[-_OUTPUT_TAIL:]


class ActionRunner:
    """Runs the configured actions on the alert runner's transitions (see the module doc).

    ``actions``: :func:`~inferwatch.actions.load_actions`'s config models.  ``store``:
    where records go.  ``rollback``: ``model -> (from_version, to_version) | None``.
    ``evidence``: ``model -> dict`` added to every record (the lead passes the newest
    evaluation rows).  ``alerts``: ``fingerprint -> Alert | None`` for the annotations
    and start time (:func:`engine_lookup`).  ``current_replicas``: ``model -> int |
    None`` (e.g. read from Kubernetes) for the scale formula.  ``clock``: the time used
    for cooldowns and records (a fake one in tests).
    """

    def __init__(
        self,
        actions: Sequence[Any],
        store: AlertStore | None = None,
        *,
        rollback: RollbackHook | None = None,
        evidence: Callable[[str], Mapping[str, Any]] | None = None,
        alerts: Callable[[str], Alert | None] | None = None,
        current_replicas: Callable[[str], int | None] | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = _utc_now,
        max_workers: int = 2,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.actions = list(actions)
        self.store = store
        self.rollback = rollback
        self.evidence = evidence
        self.alerts = alerts
        self.current_replicas = current_replicas
        self.metrics = metrics
        self.clock = clock
        self._matchers = [(a, a.matchers) for a in self.actions]
        self._last_run: dict[tuple[str, str], datetime] = {}
        self._running: set[tuple[str, str]] = set()
        self._desired: dict[str, int] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="inferwatch-action")
        self._futures: set[Future[None]] = set()
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._closing = False
        self._client = http_client
        self.records_lost = 0  # records the store refused or could not take

    # -- the alert runner's hook -----------------------------------------------------
    def on_transitions(self, transitions: Sequence[AlertTransition]) -> None:
        """Run every action that a transition to firing matches; never raises (a failing
        action is logged and recorded as an error, and the cycle goes on)."""
        for t in transitions:
            if t.to_state != "firing":
                continue
            for action, matchers in self._matchers:
                if not all(m.matches(t.labels) for m in matchers):
                    continue
                try:
                    self._trigger(action, t)
                except Exception as exc:  # an action must not end the alert cycle
                    log.exception("action %s failed", action.name)
                    self._record(
                        action,
                        t.labels.get("model"),
                        t,
                        "error",
                        f"{type(exc).__name__}: {exc}",
                        {},
                        self.clock(),
                    )

    __call__ = on_transitions

    def _trigger(self, action: Any, t: AlertTransition) -> None:
        now = self.clock()
        model = t.labels.get("model")
        key = (action.name, model or "")
        evidence = self._evidence(action, t, model, now)
        if model is None and not isinstance(action, RetrainActionConfig):
            # a rollback or a replica hint is for one model; a retrain hook may be global
            self._record(
                action, model, t, "skipped", "skipped: the alert has no model label", evidence, now
            )
            return
        with self._lock:
            last = self._last_run.get(key)
            if last is None:
                last = self._restore_last_run(action.name, model)
            left = 0.0 if last is None else action.cooldown - (now - last).total_seconds()
            if key in self._running:
                reason = "skipped: the previous run for this model is still going"
            elif left > 0:
                reason = (
                    f"skipped: cooldown, {_duration(left)} left "
                    f"(last run {last.isoformat() if last else ''})"
                )
            else:
                reason = ""
                self._last_run[key] = now
                if isinstance(action, RetrainActionConfig):
                    self._running.add(key)
        if reason:
            self._record(action, model, t, "skipped", reason, evidence, now)
            return
        if isinstance(action, RollbackActionConfig):
            self._rollback(action, t, model, evidence, now)
        elif isinstance(action, RetrainActionConfig):
            try:
                future = self._pool.submit(self._retrain, action, t, model, evidence, now, key)
            except RuntimeError:  # closed: the worker pool takes no new run
                with self._lock:
                    self._running.discard(key)
                self._record(
                    action, model, t, "error", "not run: the action runner is closed", evidence, now
                )
                return
            with self._lock:
                self._futures.add(future)
            future.add_done_callback(self._done)
        else:
            self._scale(action, t, model, evidence, now)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._futures.discard(future)

    def _restore_last_run(self, name: str, model: str | None) -> datetime | None:
        """The newest recorded run (ok or error) of this action for this model, so a
        restart does not forget a cooldown (called once per key, under the lock)."""
        if self.store is None:
            return None
        try:
            for outcome in ("ok", "error"):
                rows = self.store.query_action_records(
                    action=name, model=model, outcome=outcome, limit=1 if model else 100
                )
                rows = [r for r in rows if r["model"] == model]  # None: no model filter
                if rows:
                    at: datetime = rows[0]["at"]
                    prev = self._last_run.get((name, model or ""))
                    if prev is None or at > prev:
                        self._last_run[(name, model or "")] = at
        except StoreError as exc:
            log.warning("cannot read the last run of action %s: %s", name, exc)
        return self._last_run.get((name, model or ""))

    # -- evidence and records --------------------------------------------------------
    def _evidence(
        self, action: Any, t: AlertTransition, model: str | None, now: datetime
    ) -> dict[str, Any]:
        alert: dict[str, Any] = {
            "fingerprint": t.fingerprint,
            "labels": dict(t.labels),
            "status": t.to_state,
            "value": t.value if math.isfinite(t.value) else None,
            "transition_at": t.at.isoformat(),
        }
        live = None
        if self.alerts is not None:
            try:
                live = self.alerts(t.fingerprint)
            except Exception:
                log.exception("cannot look up alert %s", t.fingerprint)
        alert["annotations"] = dict(live.annotations) if live is not None else {}
        alert["startsAt"] = (live.starts_at if live is not None else t.at).isoformat()
        evidence: dict[str, Any] = {
            "action": action.name,
            "kind": action.kind,
            "model": model,
            "at": now.isoformat(),
            "alert": alert,
        }
        if self.evidence is not None and model is not None:
            try:
                evidence["context"] = _jsonable(self.evidence(model))
            except Exception as exc:  # the action still runs; the record says why it lacks it
                log.exception("the evidence hook failed for %s", model)
                evidence["context_error"] = f"{type(exc).__name__}: {exc}"
        return evidence

    def _record(
        self,
        action: Any,
        model: str | None,
        t: AlertTransition,
        outcome: str,
        detail: str,
        evidence: Mapping[str, Any],
        at: datetime,
        version: str | None = None,
    ) -> None:
        if self.metrics is not None:
            self.metrics.actions.labels(action.name, action.kind, outcome).inc()
        log_fn = log.warning if outcome == "error" else log.info
        log_fn("action %s (%s) for %s: %s %s", action.name, action.kind, model, outcome, detail)
        if self.store is None:
            return
        try:
            self.store.write_action_record(
                action=action.name,
                kind=action.kind,
                model=model,
                at=at,
                outcome=outcome,
                version=version,
                fingerprint=t.fingerprint,
                detail=detail,
                evidence=_jsonable(evidence),
            )
        except StoreError as exc:
            with self._lock:
                self.records_lost += 1
            log.error("cannot record action %s: %s", action.name, exc)

    # -- the three kinds -------------------------------------------------------------
    def _rollback(
        self,
        action: RollbackActionConfig,
        t: AlertTransition,
        model: str | None,
        evidence: dict[str, Any],
        now: datetime,
    ) -> None:
        if model is None:  # checked by _trigger
            return
        if self.rollback is None:
            self._record(action, model, t, "error", "no rollback hook is configured", evidence, now)
            return
        try:
            moved = self.rollback(model)
        except Exception as exc:
            self._record(
                action,
                model,
                t,
                "error",
                f"rollback failed: {type(exc).__name__}: {exc}",
                evidence,
                now,
            )
            return
        if moved is None:
            self._record(
                action,
                model,
                t,
                "skipped",
                "skipped: no previous version to roll back to",
                evidence,
                now,
            )
            return
        old, new = moved
        evidence["rollback"] = {"from_version": old, "to_version": new}
        why = f"{t.labels.get('alertname', '')} {t.labels.get('severity', '')}".strip()
        self._record(
            action,
            model,
            t,
            "ok",
            f"rolled back {model} from {old} to {new} ({why}, value {t.value:g})",
            evidence,
            now,
            version=old,
        )

    def _retrain(
        self,
        action: RetrainActionConfig,
        t: AlertTransition,
        model: str | None,
        evidence: dict[str, Any],
        now: datetime,
        key: tuple[str, str],
    ) -> None:
        try:
            if action.command is not None:
                outcome, detail = self._run_command(action, evidence)
            else:
                outcome, detail = self._post(action, evidence)
            self._record(action, model, t, outcome, detail, evidence, now)
        except Exception as exc:
            log.exception("retrain action %s failed", action.name)
            self._record(action, model, t, "error", f"{type(exc).__name__}: {exc}", evidence, now)
        finally:
            with self._lock:
                self._running.discard(key)

    def _run_command(
        self, action: RetrainActionConfig, evidence: Mapping[str, Any]
    ) -> tuple[str, str]:
        assert action.command is not None
        payload = evidence_json(evidence)
        fd, path = tempfile.mkstemp(prefix="inferwatch-evidence-", suffix=".json")
        started = time.monotonic()
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp: mode 0600
                f.write(payload)
            env = {**os.environ, "INFERWATCH_EVIDENCE_FILE": path}
            # output to files, not pipes: a chatty job costs disk, not the server's memory
            with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
                try:
                    proc = subprocess.Popen(  # a configured argv, no shell
                        action.command,
                        stdin=subprocess.PIPE,
                        stdout=out,
                        stderr=err,
                        env=env,
                        start_new_session=True,
                    )
                except OSError as exc:
                    return "error", f"cannot start {action.command[0]!r}: {exc.strerror or exc}"
                with self._lock:
                    self._procs.add(proc)
                try:
                    proc.communicate(payload.encode("utf-8"), timeout=action.timeout)
                    timed_out = False
                except subprocess.TimeoutExpired:
                    # its own session: the whole process group goes, not only the first child
                    _kill_group(proc)
                    proc.wait()
                    timed_out = True
                finally:
                    with self._lock:
                        self._procs.discard(proc)
                stdout, stderr = _read_tail(out), _read_tail(err)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
        took = _duration(time.monotonic() - started)
        if timed_out:
            return "error", (
                f"timed out after {took} (timeout {_duration(action.timeout)}); killed. {stderr}"
            ).strip()
        if proc.returncode == 0:
            return "ok", f"exit 0 in {took}. {stdout}".strip()
        if self._closing and proc.returncode < 0:
            return "error", f"killed after {took}: inferwatch was shutting down. {stderr}".strip()
        return "error", f"exit {proc.returncode} in {took}. {stderr}".strip()

    def _post(self, action: RetrainActionConfig, evidence: Mapping[str, Any]) -> tuple[str, str]:
        assert action.url is not None
        started = time.monotonic()
        body = evidence_json(evidence).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "inferwatch"}
        try:
            if self._client is not None:
                response = self._client.post(
                    action.url, content=body, headers=headers, timeout=action.timeout
                )
            else:
                with httpx.Client(timeout=action.timeout) as client:
                    response = client.post(action.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return "error", f"POST {action.url} failed: {type(exc).__name__}: {exc}"
        took = time.monotonic() - started
        if response.is_success:
            return "ok", f"POST {action.url}: HTTP {response.status_code} in {_duration(took)}"
        return "error", (
            f"POST {action.url}: HTTP {response.status_code} in "
            f"{_duration(took)}. {_tail(response.text)}"
        ).strip()

    def _scale(
        self,
        action: ScaleActionConfig,
        t: AlertTransition,
        model: str | None,
        evidence: dict[str, Any],
        now: datetime,
    ) -> None:
        if model is None:  # checked by _trigger
            return
        if not math.isfinite(t.value):
            self._record(
                action,
                model,
                t,
                "skipped",
                f"skipped: the alert's value is {t.value}",
                evidence,
                now,
            )
            return
        current = None
        if self.current_replicas is not None:
            current = self.current_replicas(model)
        if current is None:
            current = self._desired.get(model, action.replicas or action.min_replicas)
        raw = math.ceil(current * t.value / action.target - 1e-9)
        desired = min(action.max_replicas, max(action.min_replicas, raw))
        with self._lock:
            self._desired[model] = desired
        if self.metrics is not None:
            self.metrics.desired_replicas.labels(model).set(desired)
        evidence["scale"] = {
            "current_replicas": current,
            "value": t.value,
            "target": action.target,
            "desired_replicas": desired,
            "min_replicas": action.min_replicas,
            "max_replicas": action.max_replicas,
        }
        self._record(
            action,
            model,
            t,
            "ok",
            f"desired replicas {current} -> {desired} (ceil({current} * "
            f"{t.value:g} / {action.target:g}) = {raw}, clamped to "
            f"[{action.min_replicas}, {action.max_replicas}])",
            evidence,
            now,
        )

    # -- reading and stopping --------------------------------------------------------
    def desired_replicas(self, model: str) -> int | None:
        """The last replica hint published for ``model`` (None before the first)."""
        return self._desired.get(model)

    def last_run(self, action: str, model: str | None) -> datetime | None:
        """When the action last ran (not skipped) for the model, as far as this process knows."""
        return self._last_run.get((action, model or ""))

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the retrain runs in flight; True when none is left."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                pending = list(self._futures)
            if not pending:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            futures.wait(pending, timeout=left)

    def close(self, timeout: float | None = 30.0) -> None:
        """Wait up to ``timeout`` for the runs in flight, then kill the commands still
        running (recorded as errors: a retraining job must not hold a server's shutdown
        for its whole timeout) and stop the worker threads."""
        if not self.wait(timeout):
            self._closing = True
            with self._lock:
                running = list(self._procs)
            for proc in running:
                _kill_group(proc)
            self.wait(10)
        self._pool.shutdown(wait=False, cancel_futures=True)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill ``proc`` and every process in its session (it was started in a new one)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
