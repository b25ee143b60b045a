"""``serve --workers N``: the judging worker's windows hold every worker's traffic.

:class:`FleetWindows` (drift profiles) and :class:`FleetPerformance` (performance windows)
wrap the judging worker's own windows: before a window is judged, each sibling's part of
it is asked over its slot socket (``server._slots``) and merged
(``shared_windows.add_parts``); writing goes to the wrapped windows.  A slot where no
worker answers is read from the windows its last worker saved (``server._slot_windows``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from inferwatch.performance_windows import PerformanceWindows
from inferwatch.server._slot_windows import SavedWindows, windows_path
from inferwatch.server._slots import ask_json

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
        #: slot -> (the saved file's mtime and size, its windows): parsed once per change
        self._saved_cache: dict[int, tuple[tuple[int, int], SavedWindows | None]] = {}

    @property
    def inner(self) -> W:
        return self._inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _others(self) -> Iterator[int]:
        """The other slots (2N: a rolling restart runs a new worker beside the old)."""
        return (k for k in range(2 * self._workers) if k != self._slot)

    def _ask(
        self, slot: int, kind: bytes, request: Any, saved: Callable[[SavedWindows], Any]
    ) -> Any:
        """Slot ``slot``'s answer; where no worker answers, ``saved`` of its saved windows
        (None when it has none): a part is either the live worker's or its file, not both."""
        answered, got = ask_json(self._rundir, slot, kind, request)
        if answered:
            return got
        windows = self._saved_windows(slot)
        return None if windows is None else saved(windows)

    def _saved_windows(self, slot: int) -> SavedWindows | None:
        """The windows saved on a slot, parsed again only when the file changed."""
        path = windows_path(self._rundir, slot)
        try:
            stat = path.stat()
        except OSError:
            return None
        mark = (stat.st_mtime_ns, stat.st_size)
        hit = self._saved_cache.get(slot)
        if hit is not None and hit[0] == mark:
            return hit[1]
        windows = SavedWindows.read(path)
        self._saved_cache[slot] = (mark, windows)
        return windows


class FleetWindows(_SiblingWindows[Any]):
    """A worker's ``WindowProfiler`` whose windows hold every worker's traffic.

    The evaluator reads windows through it: :meth:`window` adds to this worker's own
    profile the same window of each sibling, asked over its socket and merged with the
    profile merge (``FrameProfile +=``), so drift is judged on all the traffic, as one
    process would judge it.  Writing (the monitor's ``add``) goes to the wrapped profiler.
    A slot where no worker answers is read from the windows saved there; a part whose
    bins differ is left out (logged).
    """

    def window(self, model: str, version: str, start: float) -> Any:
        from inferwatch.profile import FrameProfile
        from inferwatch.shared_windows import add_parts

        parts = (
            (f"slot {k}", data)
            for k in self._others()
            if isinstance(
                data := self._ask(
                    k, b"w", [model, version, start], lambda w: w.window(model, version, start)
                ),
                dict,
            )
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
    (``WindowPerformance.settle``).  A slot where no worker answers is read from the
    windows saved there (its stream detections are not saved).  Each worker's stream
    detectors see the error stream of the labels it received.
    """

    def _siblings(self, op: str, model: str, version: str, arg: Any = None) -> Iterator[Any]:
        for k in self._others():
            answer = self._ask(
                k, b"p", [op, model, version, arg],
                lambda w: w.performance_answer(op, model, version, arg),
            )  # fmt: skip
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
