"""``serve --workers N``: a worker's windows outlive it, on its slot.

Counts survive a worker (``SlotMetrics`` checkpoints them); its part of the drift and
performance windows lived only in its memory, so a SIGKILLed or OOM-killed worker took a
share of the current windows with it until they ended.  :class:`SlotWindows` writes the
worker's windows to ``RUNDIR/slot-K.windows`` when they changed (every
``CHECKPOINT_SECONDS``, and once more after the drain), and the worker that next takes slot
``K`` adds them to its own at start (:meth:`SlotWindows.restore`): one file per slot, so
churn leaves nothing more to read.  While slot ``K`` has no live worker (between a death
and its replacement, or after a rolling restart moved the worker to another slot), the
judging worker reads the file in its place (:class:`SavedWindows`): a window part is
either a live worker's answer or its slot's file, never both.

The loss on SIGKILL is what changed since the last checkpoint (at most one second).
Written by hand: the states are our own profiles and performance windows, already
serialisable (``to_dict``); what is new is only when to write them and who reads them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inferwatch.periodic import Periodic
from inferwatch.server._slots import _plain, _write_atomic

if TYPE_CHECKING:
    from inferwatch.performance import ClassificationSummary, RegressionSummary
    from inferwatch.performance_windows import PerformanceWindows
    from inferwatch.windows import WindowProfiler

__all__ = ["SavedWindows", "SlotWindows", "windows_path"]

log = logging.getLogger("inferwatch.server")

_Key = tuple[str, str, float]


def windows_path(rundir: Path, slot: int) -> Path:
    return rundir / f"slot-{slot}.windows"


class SlotWindows:
    """Saves one worker's windows to its slot and restores a predecessor's.

    ``profilers``: (model, version) -> this worker's own ``WindowProfiler``;
    ``performance``: its own ``PerformanceWindows`` (None without labels).
    """

    def __init__(
        self,
        rundir: Path,
        slot: int,
        profilers: Mapping[tuple[str, str], WindowProfiler],
        performance: PerformanceWindows | None,
        *,
        interval_seconds: float = 1.0,
    ) -> None:
        self.path = windows_path(rundir, slot)
        self.slot = slot
        self.profilers = dict(profilers)
        self.performance = performance
        self.interval_seconds = interval_seconds
        self._saved: tuple[dict[_Key, int], dict[_Key, int]] | None = None
        #: window -> (its mark when serialised, its JSON entry): unchanged ones are reused
        self._drift_json: dict[_Key, tuple[int, str]] = {}
        self._performance_json: dict[_Key, tuple[int, str]] = {}
        self._thread: Periodic | None = None

    def restore(self) -> int:
        """Add the windows saved on this slot (a predecessor's) to this worker's; return
        how many windows were added.  A malformed file or part is logged and left out."""
        saved = SavedWindows.read(self.path)
        if saved is None:
            return 0
        from inferwatch.performance_windows import WindowPerformance
        from inferwatch.profile import FrameProfile

        added = 0
        for (model, version, start), data in saved.drift.items():
            profiler = self.profilers.get((model, version))
            if profiler is None:
                continue
            try:
                prof = FrameProfile.from_dict(data, bins=profiler.bins)
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("worker slot %d: a saved window of %s:%s is left out: %s",
                            self.slot, model, version, exc)  # fmt: skip
                continue
            added += profiler.restore(model, version, start, prof)
        pw = self.performance
        for (model, version, start), data in saved.performance.items():
            setup = None if pw is None else pw.setup(model, version)
            if pw is None or setup is None:
                continue
            try:
                win = WindowPerformance.from_dict(data, setup)
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("worker slot %d: a saved performance window of %s:%s is left "
                            "out: %s", self.slot, model, version, exc)  # fmt: skip
                continue
            added += pw.restore(model, version, start, win)
        if added:
            log.info("worker slot %d: went on from %d saved windows", self.slot, added)
        return added

    def _marks(self) -> tuple[dict[_Key, int], dict[_Key, int]]:
        """Row counts of the drift windows, change counters of the performance ones."""
        drift = {
            (m, v, s): n
            for (m, v), p in self.profilers.items()
            for s, n in p.row_counts(m, v).items()
        }
        perf: dict[_Key, int] = {}
        pw = self.performance
        if pw is not None:
            for m, v in pw.keys:
                perf.update({(m, v, s): c for s, c in pw.changes(m, v).items()})
        return drift, perf

    def checkpoint(self) -> bool:
        """Write every window when any changed since the last write; True when written.
        Only the windows that changed are serialised again (usually just the current one):
        the others' JSON is kept from the last write."""
        drift_marks, perf_marks = marks = self._marks()
        if marks == self._saved:
            return False
        drift = self._serialised(self._drift_json, drift_marks, self._drift_state)
        perf = self._serialised(self._performance_json, perf_marks, self._performance_state)
        body = f'{{"drift": [{",".join(drift)}], "performance": [{",".join(perf)}]}}'
        _write_atomic(self.path, body.encode())
        self._saved = marks
        return True

    @staticmethod
    def _serialised(
        cache: dict[_Key, tuple[int, str]],
        marks: Mapping[_Key, int],
        state: Callable[[str, str, float], dict[str, Any] | None],
    ) -> list[str]:
        """``[model, version, start, state]`` as JSON for each window in ``marks``, from
        ``cache`` where its mark has not moved; windows gone from ``marks`` leave the cache."""
        for key in [k for k in cache if k not in marks]:
            del cache[key]
        out = []
        for key in sorted(marks):
            hit = cache.get(key)
            if hit is None or hit[0] != marks[key]:
                data = state(*key)
                if data is None:
                    continue
                hit = cache[key] = (marks[key], json.dumps([*key, data], default=_plain))
            out.append(hit[1])
        return out

    def _drift_state(self, model: str, version: str, start: float) -> dict[str, Any] | None:
        prof = self.profilers[(model, version)].window(model, version, start)
        return None if prof is None or not prof.n_rows else prof.to_dict(include_bins=False)

    def _performance_state(self, model: str, version: str, start: float) -> dict[str, Any] | None:
        assert self.performance is not None
        win = self.performance.window(model, version, start)
        return None if win is None else win.to_dict()

    def start(self) -> None:
        # a failed write (a full disk) is logged by Periodic and tried again next round
        self._thread = Periodic(self.checkpoint, self.interval_seconds,
                                name=f"inferwatch-slot-{self.slot}-windows")  # fmt: skip
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop(5.0)
        try:
            self.checkpoint()  # after the drain: every row this worker profiled
        except OSError as exc:
            log.warning("worker slot %d: the last window checkpoint failed: %s", self.slot, exc)


class SavedWindows:
    """The windows saved on a slot whose worker is gone, answering as its socket would."""

    def __init__(self, drift: dict[_Key, Any], performance: dict[_Key, Any]) -> None:
        self.drift = drift
        self.performance = performance

    @classmethod
    def read(cls, path: Path) -> SavedWindows | None:
        """The file's windows; None when there is none or it does not parse (logged)."""
        try:
            data = json.loads(path.read_text())
            return cls(*(cls._parts(data[k]) for k in ("drift", "performance")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.warning("the saved windows %s are left out: %s", path.name, exc)
            return None

    @staticmethod
    def _parts(rows: Any) -> dict[_Key, Any]:
        return {(str(m), str(v), float(s)): state for m, v, s, state in rows}

    def window(self, model: str, version: str, start: float) -> Any:
        return self.drift.get((model, version, float(start)))

    def performance_answer(self, op: str, model: str, version: str, arg: Any) -> Any:
        """What ``SlotServer._performance`` answers for ``op``: a window's state, the
        starts, or the merged summary from ``arg`` on; nothing changes in a dead worker, so
        ``dirty`` and ``detections`` are empty."""
        mine = {s: d for (m, v, s), d in self.performance.items() if (m, v) == (model, version)}
        if op == "window":
            return mine.get(float(arg))
        if op == "starts":
            return sorted(mine)
        if op == "merged":
            return self._merged(mine, None if arg is None else float(arg))
        return []

    @staticmethod
    def _merged(windows: Mapping[float, Any], since: float | None) -> Any:
        from inferwatch.performance import ClassificationSummary, RegressionSummary

        out: ClassificationSummary | RegressionSummary | None = None
        for start, state in sorted(windows.items()):
            if since is not None and start < since:
                continue
            summary = state["summary"]
            kind = (
                ClassificationSummary
                if summary.get("kind") == "classification"
                else RegressionSummary
            )
            part = kind.from_dict(summary)
            if out is None:
                out = part
            else:
                out += part  # type: ignore[operator]
        return None if out is None else out.to_dict()
