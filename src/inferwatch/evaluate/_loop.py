"""The live evaluation loop: one thread judges every model version's current window.

Every ``interval`` seconds :class:`EvaluationLoop` asks each target's
:class:`~inferwatch.windows.WindowProfiler` for a copy of its current window, judges it
with the target's :class:`~inferwatch.evaluate.LiveEvaluator`, writes the judged values
as :class:`~inferwatch.observation.Evaluation` rows (the history) and hands the report's
JSON form to ``publish`` (the server's drift collector, which turns the newest report of
each model version into gauges when Prometheus scrapes).

When a window closes, it is judged once more with all of its rows (its final word in the
history).  While the new window is still too small to judge, ``publish`` keeps receiving
the closed window's final report, so the gauges neither blank out at every window
boundary nor outlive one more window: a model version that stops receiving traffic
loses its drift gauges one window later.

A failing store or evaluator is logged and the loop goes on; the thread is a daemon and
:meth:`EvaluationLoop.stop` joins it within a bounded time.  Engine layer: the store,
the publisher and the clock are handed in.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from inferwatch.errors import StoreError
from inferwatch.evaluate._live import LiveEvaluator
from inferwatch.evaluate._results import DriftReport
from inferwatch.observation import Evaluation, EvaluationStatus
from inferwatch.periodic import Periodic
from inferwatch.ports import EvaluationSink
from inferwatch.profile import FrameProfile
from inferwatch.windows import WindowProfiler

if TYPE_CHECKING:
    from inferwatch.performance_windows import PerformanceWindows

__all__ = ["EvaluationLoop", "LiveTarget", "Publisher", "evaluation_rows"]

log = logging.getLogger("inferwatch.evaluate")

Publisher = Callable[[str, str, Mapping[str, Any]], None]


@dataclass(frozen=True, slots=True)
class LiveTarget:
    """One model version under live evaluation: where its windows are, how to judge them."""

    model: str
    version: str
    profiler: WindowProfiler
    evaluator: LiveEvaluator


def _status(flag: bool) -> EvaluationStatus:
    return "critical" if flag else "ok"


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def evaluation_rows(
    report: DriftReport,
    *,
    model: str,
    version: str,
    window_start: datetime,
    window_end: datetime,
    evaluated_at: datetime,
) -> list[Evaluation]:
    """The judged values of a report as evaluation rows (none when nothing was judged).

    Per judged feature: ``drift`` (the statistic against the threshold used, ``critical``
    when drift is detected) and its quality, ``missing_share`` (against the reference's
    share plus what sampling explains) and ``out_of_range_share`` (numbers) or
    ``unseen_share`` (categories), ``critical`` when the quality limit the report was
    judged with (``FeatureQuality.limits``) is passed; then
    ``dataset_drift_share`` against ``drift_share``.
    """
    if not report.evaluated:
        return []

    def row(metric: str, value: float, flagged: bool, **fields: Any) -> Evaluation:
        return Evaluation(
            model=model,
            version=version,
            window_start=window_start,
            window_end=window_end,
            evaluated_at=evaluated_at,
            metric=metric,
            value=value,
            status=_status(flagged),
            **fields,
        )

    rows: list[Evaluation] = []
    for col in report.features:
        r = col.result
        if r is None:
            continue
        details: dict[str, Any] = {
            "p_value": r.p_value,
            "effect_size": r.effect_size,
            "mode": r.mode,
            "nominal_threshold": r.details.get("nominal_threshold", r.threshold),
            "p_value_calibrated": r.details.get("p_value_calibrated"),
        }
        rows.append(
            row("drift", r.statistic, r.drift_detected, feature=col.name, test=r.test,
                threshold=r.threshold, details=details)
        )  # fmt: skip
        q = col.quality
        if q is None:
            continue
        rows.append(
            row("missing_share", q.missing_share, "missing_increase" in q.problems,
                feature=col.name, threshold=q.limits.get("missing_share"),
                details={"missing": q.missing, "n": q.n})
        )  # fmt: skip
        extra: dict[str, Any]
        if col.kind == "numeric":
            metric, value, problem = "out_of_range_share", q.out_of_range_share, "out_of_range"
            extra = {"out_of_range": q.out_of_range, "outliers": q.outliers}
        else:
            metric, value, problem = "unseen_share", q.unseen_share, "unseen_categories"
            extra = {"unseen_categories": dict(q.unseen_categories)}
        rows.append(
            row(metric, value, problem in q.problems, feature=col.name,
                threshold=q.limits.get(metric), details=extra)
        )  # fmt: skip
    rows.append(
        row("dataset_drift_share", report.drift_share, report.dataset_drift,
            threshold=report.drift_share_threshold,
            details={"n_current": report.n_current, "n_reference": report.n_reference,
                     "drifted_features": list(report.drifted)})
    )  # fmt: skip
    return rows


class EvaluationLoop:
    """Judges each target's current window every ``interval`` seconds, in one thread.

    ``sink`` receives the evaluation rows (the store), ``publish(model, version,
    report_dict)`` the newest report of each model version, with a ``window`` entry
    (``start``, ``end`` and ``evaluated_at`` in epoch seconds, ``rows``, ``judged``).

    With ``performance`` (the live performance windows), each round also judges every
    performance window that changed since the last round (labels arrive for old windows:
    each is judged again with what it holds now), stores the stream detectors' detections
    as ``concept_drift`` rows, and hands ``publish_performance(model, version, state)``
    the newest realised and estimated values of each model version.
    """

    def __init__(
        self,
        targets: Sequence[LiveTarget],
        *,
        interval: float,
        sink: EvaluationSink | None = None,
        publish: Publisher | None = None,
        clock: Callable[[], float] = time.time,
        performance: PerformanceWindows | None = None,
        publish_performance: Publisher | None = None,
        min_labels: int = 30,
        gap_tolerance: float = 0.02,
    ) -> None:
        self.targets = tuple(targets)
        self.performance = performance
        self.publish_performance = publish_performance
        self.min_labels = min_labels
        self.gap_tolerance = gap_tolerance
        self._performance_state: dict[tuple[str, str], dict[str, Any]] = {}
        # per performance window: its last estimates (see performance_rows' memo)
        self._memos: dict[tuple[str, str, float], dict[Any, Any]] = {}
        self._judge_lock = threading.Lock()
        self.interval = interval
        self.sink = sink
        self.publish = publish
        self.clock = clock
        self._thread: Periodic | None = None
        #: read before each cycle of the thread: False skips it (a fleet replica that does
        #: not hold the evaluator lease, inferwatch.lease); None runs every cycle
        self.gate: Callable[[], bool] | None = None
        self._last: dict[tuple[str, str], tuple[float, Mapping[str, Any] | None]] = {}
        #: a closed window is judged once more this long after it closed (0: never): with
        #: windows shared through the store (inferwatch.shared_windows), the other replicas
        #: have written their last rows of it by then
        self.settle_seconds = 0.0
        self._settling: dict[tuple[str, str], list[tuple[float, float]]] = {}
        self.evaluations = 0
        self.failures = 0

    # -- one round ----------------------------------------------------------------------

    def run_once(self, model: str | None = None) -> dict[str, Any]:
        """Judge every target's current window now (what the thread does each interval);
        with ``model``, that model's versions only, every retained performance window
        included.  Returns ``{"drift": {version: report}, "performance": {version: state}}``
        for ``model`` (empty dicts otherwise)."""
        out: dict[str, Any] = {"drift": {}, "performance": {}}
        with self._judge_lock:
            for target in self.targets:
                if model is not None and target.model != model:
                    continue
                try:
                    report = self._judge(target)
                    if model is not None:
                        out["drift"][target.version] = report
                except Exception:  # one model's failure must not stop the others, or the loop
                    self.failures += 1
                    log.exception("live evaluation of %s:%s failed", target.model, target.version)
            if self.performance is not None:
                if model is not None:
                    for m, v in self.performance.keys:
                        if m == model:
                            self.performance.mark_dirty(m, v)
                try:
                    self._judge_performance()
                except Exception:
                    self.failures += 1
                    log.exception("live performance evaluation failed")
                if model is not None:
                    out["performance"] = {
                        v: self._performance_state.get((m, v), {})
                        for m, v in self.performance.keys
                        if m == model
                    }
        return out

    def _judge_performance(self) -> None:
        from inferwatch.evaluate._performance import detection_rows, performance_rows

        pw = self.performance
        assert pw is not None
        now = self.clock()
        width = pw.window_seconds
        rows: list[Evaluation] = []
        touched: set[tuple[str, str]] = set()
        # newest first, within a time budget: what is left stays dirty for the next round,
        # so a round never runs much past its interval and stop() is answered promptly
        dirty = pw.take_dirty()[::-1]
        deadline = time.monotonic() + max(self.interval * 0.5, 1.0)
        for i, (model, version, start) in enumerate(dirty):
            if i and (time.monotonic() > deadline or self._stopping):
                pw.mark_windows_dirty(dirty[i:])
                break
            setup = pw.setup(model, version)
            win = pw.window(model, version, start)
            if setup is None or win is None:
                self._memos.pop((model, version, start), None)
                continue
            found, judged = performance_rows(
                setup,
                start,
                start + width,
                win,
                evaluated_at=now,
                min_labels=self.min_labels,
                gap_tolerance=self.gap_tolerance,
                memo=self._memos.setdefault((model, version, start), {}),
            )
            rows.extend(found)
            self.evaluations += 1
            state = self._performance_state.setdefault((model, version), {})
            touched.add((model, version))
            for part in ("realised", "estimated"):
                if judged[part] is not None and start >= state.get(f"{part}_window", -math.inf):
                    state[part] = judged[part]
                    state[f"{part}_window"] = start
                    if part == "realised":
                        state["reconciliation"] = judged["reconciliation"]
                        state["segments"] = judged["segments"]
                        state["fairness"] = judged["fairness"]
            if start >= state.get("coverage_window", -math.inf):
                state["coverage_window"] = start
                state["label_coverage"] = judged["label_coverage"]
                state["labelled"] = judged["labelled"]
                state["predictions"] = judged["predictions"]
        for model, version in pw.keys:
            hits = pw.detections(model, version)
            if hits:
                state = self._performance_state.setdefault((model, version), {})
                counts = state.setdefault("detections", {})
                for d in hits:
                    counts[d.detector] = counts.get(d.detector, 0) + 1
                state["last_detection"] = {"detector": hits[-1].detector, "at": hits[-1].at}
                rows.extend(detection_rows(hits, window_seconds=width))
                touched.add((model, version))
        oldest = pw.oldest_start()
        for stale in [k for k in self._memos if k[2] < oldest]:
            del self._memos[stale]
        if rows and self.sink is not None:
            try:
                self.sink.write_evaluations(rows)
            except StoreError as exc:
                log.warning("could not store %d evaluation rows: %s", len(rows), exc)
        if self.publish_performance is not None:
            for key in touched:
                self.publish_performance(key[0], key[1], self._performance_state[key])

    def performance_state(self, model: str, version: str) -> Mapping[str, Any] | None:
        """The newest realised and estimated values of a model version (None before any)."""
        return self._performance_state.get((model, version))

    def _judge(self, target: LiveTarget) -> dict[str, Any]:
        key = (target.model, target.version)
        start, window = target.profiler.current(*key)
        width = target.profiler.window_seconds
        closed_report: Mapping[str, Any] | None = None
        last = self._last.get(key)
        if last is not None and last[0] != start:
            # the window judged last time has closed: judge it once more, in full, and
            # keep its report to show while the new window is too small to judge
            closed = target.profiler.window(*key, last[0])
            if closed is not None:
                final = self._evaluate(target, last[0], closed)
                if abs(start - width - last[0]) < width / 2:  # the window just before
                    closed_report = final
            if self.settle_seconds > 0:
                due = self.clock() + self.settle_seconds
                self._settling.setdefault(key, []).append((last[0], due))
        elif last is not None:
            closed_report = last[1]
        pending = self._settling.get(key)
        if pending:
            now = self.clock()
            for entry in [e for e in pending if e[1] <= now]:
                pending.remove(entry)
                settled = target.profiler.window(*key, entry[0])
                if settled is not None:  # its final word, with every replica's rows
                    final = self._evaluate(target, entry[0], settled)
                    if abs(start - width - entry[0]) < width / 2:
                        closed_report = final
        report = self._evaluate(target, start, window)
        judged = report["window"]["judged"]
        self._last[key] = (start, closed_report)
        if self.publish is not None:
            shown = report if judged or closed_report is None else closed_report
            self.publish(target.model, target.version, shown)
        return report

    def _evaluate(self, target: LiveTarget, start: float, window: FrameProfile) -> dict[str, Any]:
        report = target.evaluator.evaluate(window)
        end = start + target.profiler.window_seconds
        now = _dt(self.clock())
        rows = evaluation_rows(
            report, model=target.model, version=target.version,
            window_start=_dt(start), window_end=_dt(end), evaluated_at=now,
        )  # fmt: skip
        self.evaluations += 1
        if rows and self.sink is not None:
            try:
                self.sink.write_evaluations(rows)
            except StoreError as exc:
                log.warning("could not store %d evaluation rows: %s", len(rows), exc)
        out = report.to_dict()
        out["window"] = {
            "start": start,
            "end": end,
            "rows": report.n_current,
            "judged": bool(rows),
            "evaluated_at": now.timestamp(),
        }
        return out

    # -- the thread ---------------------------------------------------------------------

    def start(self) -> EvaluationLoop:
        """Start the thread (a second call does nothing)."""
        if self._thread is None and (self.targets or self.performance is not None):
            self._thread = Periodic(self._cycle, self.interval, name="inferwatch-evaluator")
            self._thread.start()
        return self

    @property
    def _stopping(self) -> bool:
        return self._thread is not None and self._thread.stopping

    def _cycle(self) -> None:
        if self.gate is None or self.gate():
            self.run_once()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the thread; False when it is still busy after ``timeout`` seconds."""
        if self._thread is None:
            return True
        if not self._thread.stop(timeout):
            log.error("the live evaluator did not stop within %ss", timeout)
            return False
        self._thread = None
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.running

    def __repr__(self) -> str:
        return f"EvaluationLoop(targets={len(self.targets)}, interval={self.interval})"
