"""``serve --workers N``: the judging worker's windows hold every worker's traffic.

:class:`FleetWindows` (drift profiles) and :class:`FleetPerformance` (performance windows)
wrap the judging worker's own windows: before a window is judged, each sibling's part of
it is asked over its slot socket (``server._slots``) and merged
(``shared_windows.add_parts``); writing goes to the wrapped windows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from inferwatch.performance_windows import PerformanceWindows
from inferwatch.server._slots import ask_performance, ask_window

if TYPE_CHECKING:
    from inferwatch.performance import ClassificationSummary, RegressionSummary
    from inferwatch.performance_windows import Detection, WindowPerformance

__all__ = ["FleetPerformance", "FleetWindows"]

log = logging.getLogger("inferwatch.server")


W = TypeVar("W")


class _SiblingWindows(Generic[W]):
    """What both wrappers share: this worker's own windows (every attribute not overridden
    is theirs), and where its siblings answer (the run directory, every other slot)."""

    def __init__(self, inner: W, rundir: Path, slot: int, workers: int) -> None:
        self._inner = inner
        self._rundir = rundir
        self._slot = slot
        self._workers = workers

    @property
    def inner(self) -> W:
        return self._inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _others(self) -> Iterator[int]:
        """The other slots (2N: a rolling restart runs a new worker beside the old)."""
        return (k for k in range(2 * self._workers) if k != self._slot)


class FleetWindows(_SiblingWindows[Any]):
    """A worker's ``WindowProfiler`` whose windows hold every worker's traffic.

    The evaluator reads windows through it: :meth:`window` adds to this worker's own
    profile the same window of each sibling, asked over its socket and merged with the
    profile merge (``FrameProfile +=``), so drift is judged on all the traffic, as one
    process would judge it.  Writing (the monitor's ``add``) goes to the wrapped profiler.
    A sibling that does not answer, or whose bins differ, is left out (logged); a dead
    worker's windows go with it (profiles are not saved like counts).
    """

    def window(self, model: str, version: str, start: float) -> Any:
        from inferwatch.profile import FrameProfile
        from inferwatch.shared_windows import add_parts

        parts = (
            (f"slot {k}", data)
            for k in self._others()
            if (data := ask_window(self._rundir, k, model, version, start)) is not None
        )
        return add_parts(
            self._inner.window(model, version, start),
            parts,
            lambda data: FrameProfile.from_dict(data, bins=self._inner.bins),
            what=f"worker slot {self._slot}: window {model}:{version}@{start}",
        )

    def current(self, model: str, version: str) -> tuple[float, Any]:
        from inferwatch.windows import window_start

        start = window_start(self._inner.clock(), self._inner.window_seconds)
        prof = self.window(model, version, start)
        return start, prof if prof is not None else self._inner.empty()


class FleetPerformance(_SiblingWindows[PerformanceWindows]):
    """A worker's ``PerformanceWindows`` whose windows hold every worker's predictions and
    labels, as :class:`FleetWindows` does for drift.

    Each worker folds the predictions it answers and the labels it receives into its own
    windows (a label joins its prediction through the store, whichever worker answered
    it).  Every part of a window is a sum (``WindowPerformance +=``), so the judge's window
    is its own plus each sibling's, asked over the sockets: what one process fed every
    prediction and label would hold.  ``take_dirty`` and ``detections`` take the
    siblings' too, so a window whose labels reached another worker is judged.  Writing
    goes to the wrapped windows.  A label whose prediction (or first label) another worker
    counted cannot come out where it lands: it is owed there and settled in the merge
    (``WindowPerformance.settle``).  Left out: a sibling that does not answer (judged again
    when it changes) and a dead worker's windows (not saved).  Each worker's stream
    detectors see the error stream of the labels it received.
    """

    def _siblings(self, op: str, model: str, version: str, arg: Any = None) -> Iterator[Any]:
        for k in self._others():
            answer = ask_performance(self._rundir, k, op, model, version, arg)
            if answer is not None:
                yield answer

    def window(self, model: str, version: str, start: float) -> WindowPerformance | None:
        from inferwatch.performance_windows import WindowPerformance
        from inferwatch.shared_windows import add_parts

        own = self._inner.window(model, version, start)
        setup = self._inner.setup(model, version)
        if setup is None:
            return own
        return add_parts(
            own,
            (("a sibling", data) for data in self._siblings("window", model, version, start)),
            lambda data: WindowPerformance.from_dict(data, setup),
            what=f"worker slot {self._slot}: performance window {model}:{version}@{start}",
        )

    def current(self, model: str, version: str) -> tuple[float, WindowPerformance]:
        from inferwatch.performance_windows import WindowPerformance
        from inferwatch.windows import window_start

        start = window_start(self._inner.clock(), self._inner.window_seconds)
        win = self.window(model, version, start)
        if win is None:
            setup = self._inner.setup(model, version)
            assert setup is not None
            win = WindowPerformance(setup)
        return start, win

    def starts(self, model: str, version: str) -> list[float]:
        found = set(self._inner.starts(model, version))
        for theirs in self._siblings("starts", model, version):
            found.update(float(s) for s in theirs)
        return sorted(found)

    def take_dirty(self) -> list[tuple[str, str, float]]:
        found = set(self._inner.take_dirty())
        for theirs in self._siblings("dirty", "", ""):
            found.update((str(m), str(v), float(s)) for m, v, s in theirs)
        return sorted(found, key=lambda k: (k[2], k[0], k[1]))

    def mark_dirty(self, model: str, version: str) -> None:
        self._inner.mark_windows_dirty((model, version, s) for s in self.starts(model, version))

    def detections(self, model: str, version: str) -> list[Detection]:
        from inferwatch.performance_windows import Detection

        found = self._inner.detections(model, version)
        for theirs in self._siblings("detections", model, version):
            found.extend(Detection(**d) for d in theirs)
        return sorted(found, key=lambda d: d.at)

    def merged(
        self, model: str, version: str, since: float | None = None
    ) -> ClassificationSummary | RegressionSummary | None:
        from inferwatch.performance import ClassificationSummary, RegressionSummary

        out = self._inner.merged(model, version, since)
        if out is None:
            return None
        kind = type(out)
        for data in self._siblings("merged", model, version, since):
            try:
                theirs = kind.from_dict(data)
                out += theirs  # type: ignore[operator]
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("worker slot %d: a sibling's performance summary is left out: %s",
                            self._slot, exc)  # fmt: skip
        assert isinstance(out, ClassificationSummary | RegressionSummary)
        return out
