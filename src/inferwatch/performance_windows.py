"""Live performance windows: one mergeable performance summary per model, version and window.

Windows are cut by **prediction time**, the way :mod:`inferwatch.windows` cuts the drift
windows (aligned on the epoch, so replicas cut the same ones), never by label time: a label
that arrives two days late still counts in the window of the prediction it judges.  Each
window keeps constant-size state whatever its traffic:

* a :class:`~inferwatch.performance.ClassificationSummary` or
  :class:`~inferwatch.performance.RegressionSummary` that sees every prediction (its
  "scored" part: what label-free estimation reads) and every labelled pair (its "labelled"
  part: confusion counts, score histograms, error sums);
* a second summary that sees only the predictions that have a label, so the estimate of
  exactly the labelled rows can be set beside their realised value (reconciliation: a gap
  outside the estimate's band says P(y|x) changed, see :mod:`inferwatch.estimate`);
* for regressors with a direct-loss estimator, the sums of the predicted losses of all
  predictions and of the labelled ones;
* one summary per value of each configured segment column (at most ``max_segment_values``
  values, the rest under ``other``) and per-group counts over the protected attribute
  (fairness).

Two threads feed it: the prediction log's writer hands every drained batch to :meth:`add`
(it is a :class:`~inferwatch.ports.WindowSink`) and the label ingestor every accepted batch
of labels to :meth:`add_labels` (a :class:`~inferwatch.ports.LabelSink`).  A label that
replaces an earlier one first takes the earlier pair out (the summaries subtract exactly),
so a repeated label never counts twice.  The per-prediction error of each new label also
goes to the model version's stream detectors (:mod:`inferwatch.concept`), in arrival order.

Memory is bounded: each model version keeps its last ``retention`` windows counted back from
the clock's current one.  Labels of older predictions are stored by the ingestor but miss
the live summaries (counted in :attr:`PerformanceWindows.late_labels`); their windows can be
recomputed from the store (:func:`inferwatch.evaluate.recompute_performance`).

Engine layer: numpy and the core only; the clock is handed in.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from inferwatch.observation import LabelledPrediction, PredictionRecord
from inferwatch.performance import (
    ClassificationSummary,
    RegressionSummary,
)
from inferwatch.windows import window_start

if TYPE_CHECKING:
    from inferwatch.concept import ErrorStreamMonitor
    from inferwatch.estimate import CBPE, DLE

__all__ = [
    "DEFAULT_PERFORMANCE_RETENTION",
    "Detection",
    "PerformanceSetup",
    "PerformanceWindows",
    "WindowPerformance",
    "class_positions",
    "prediction_scores",
    "score_matrix",
]

#: windows kept per model version: labels come late, so more than the drift windows
DEFAULT_PERFORMANCE_RETENTION = 48

Summary = ClassificationSummary | RegressionSummary


@dataclass(frozen=True, slots=True)
class Detection:
    """A stream detector fired on a model version's error stream."""

    model: str
    version: str
    detector: str
    position: int  # labelled predictions seen by the detector when it fired
    at: float  # epoch seconds (the clock when the label batch arrived)
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class PerformanceSetup:
    """What is fixed for one model version at start: task, classes, estimators, segments.

    ``features`` are the input columns a direct-loss estimator reads (in its order) and
    ``categories`` the codes of the categorical ones (value -> float code), so the live
    rows are encoded exactly as the reference was.
    """

    model: str
    version: str
    task: Literal["classification", "regression"]
    classes: tuple[str, ...] = ()
    positive: str | None = None
    segments: tuple[str, ...] = ()
    max_segment_values: int = 20
    protected: str | None = None
    #: fairness verdicts: unfair past these (differences above, the ratio below)
    fairness_difference: float = 0.1
    fairness_ratio: float = 0.8
    cbpe: CBPE | None = None
    dle: DLE | None = None
    features: tuple[str, ...] = ()
    categories: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    detector: ErrorStreamMonitor | None = None

    @property
    def positive_index(self) -> int:
        """The positive class's index (binary: the second class unless configured)."""
        if self.positive is not None and self.positive in self.classes:
            return self.classes.index(self.positive)
        return len(self.classes) - 1

    def new_summary(self) -> Summary:
        if self.task == "classification":
            return ClassificationSummary(self.classes)
        return RegressionSummary()


class WindowPerformance:
    """The performance state of one window (see the module docstring); copied to be read."""

    __slots__ = (
        "changes",
        "fairness",
        "fairness_debt",
        "label_debt",
        "labelled",
        "labelled_losses",
        "losses",
        "segments",
        "summary",
    )

    def __init__(self, setup: PerformanceSetup) -> None:
        from inferwatch.fairness import GroupCounts, SegmentIndex

        self.summary: Summary = setup.new_summary()
        self.labelled: Summary = setup.new_summary()
        # n, sum of predicted |error|, sum of predicted error^2 (direct loss estimation)
        self.losses = np.zeros(3)
        self.labelled_losses = np.zeros(3)
        # segment column -> value -> summary (values bounded by the setup's SegmentIndex)
        self.segments: dict[str, dict[str, Summary]] = {c: {} for c in setup.segments}
        self.fairness = (
            GroupCounts(SegmentIndex(setup.max_segment_values))
            if setup.protected is not None and setup.task == "classification"
            else None
        )
        #: fairness rows this process could not take out (counted by another worker or
        #: replica): taken out once the processes' states are merged (``settle``)
        self.fairness_debt: GroupCounts | None = None
        #: replaced labelled pairs this process could not take out (the first label went
        #: to another worker or replica), by part: "summary", "labelled" or a segment's
        #: key; taken out once the processes' states are merged (``settle``)
        self.label_debt: dict[str, Summary] = {}
        #: batches folded in by this process (a change mark for sharing, never merged)
        self.changes = 0

    def copy(self) -> WindowPerformance:
        out = WindowPerformance.__new__(WindowPerformance)
        out.changes = self.changes
        out.summary = self.summary.copy()
        out.labelled = self.labelled.copy()
        out.losses = self.losses.copy()
        out.labelled_losses = self.labelled_losses.copy()
        out.segments = {c: {v: s.copy() for v, s in d.items()} for c, d in self.segments.items()}
        out.fairness = None if self.fairness is None else self.fairness.copy()
        out.fairness_debt = None if self.fairness_debt is None else self.fairness_debt.copy()
        out.label_debt = {k: d.copy() for k, d in self.label_debt.items()}
        return out

    def _part(self, key: str) -> Summary | None:
        if key == "summary":
            return self.summary
        if key == "labelled":
            return self.labelled
        _, column, value = key.split("\x00", 2)
        return self.segments.get(column, {}).get(value)

    def settle(self) -> None:
        """Take the debts out of the counts and summaries as far as they hold them."""
        if self.fairness is not None and self.fairness_debt is not None:
            rest = self.fairness.settle(self.fairness_debt)
            self.fairness_debt = rest if rest.n else None
        for key, debt in list(self.label_debt.items()):
            part = self._part(key)
            if part is not None and part.try_subtract(debt):  # type: ignore[arg-type]
                del self.label_debt[key]

    # -- merging and sharing: workers and replicas each hold part of a window's traffic --

    def __iadd__(self, other: WindowPerformance) -> WindowPerformance:
        """Add another process's state of the same window (same setup): every part is a sum,
        so the result is what one process fed both streams would hold.  Segment values
        are matched by name (each process names its own first ``max_segment_values``)."""
        if not isinstance(other, WindowPerformance):
            return NotImplemented
        self.summary += other.summary  # type: ignore[operator]
        self.labelled += other.labelled  # type: ignore[operator]
        self.losses = self.losses + other.losses
        self.labelled_losses = self.labelled_losses + other.labelled_losses
        for column, theirs in other.segments.items():
            mine = self.segments.setdefault(column, {})
            for value, seg in theirs.items():
                if value in mine:
                    mine[value] += seg  # type: ignore[operator]
                else:
                    mine[value] = seg.copy()
        if other.fairness is not None:
            if self.fairness is None:
                self.fairness = other.fairness.copy()
            else:
                self.fairness += other.fairness
        if other.fairness_debt is not None:
            if self.fairness_debt is None:
                self.fairness_debt = other.fairness_debt.copy()
            else:
                self.fairness_debt += other.fairness_debt
        for key, debt in other.label_debt.items():
            if key in self.label_debt:
                self.label_debt[key] += debt  # type: ignore[operator]
            else:
                self.label_debt[key] = debt.copy()
        self.settle()
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (the summaries' own ``to_dict``): what a worker answers its
        judging sibling and a replica writes to the store."""
        return {
            "kind": "window_performance",
            "summary": self.summary.to_dict(),
            "labelled": self.labelled.to_dict(),
            "losses": self.losses.tolist(),
            "labelled_losses": self.labelled_losses.tolist(),
            "segments": {
                c: {v: s.to_dict() for v, s in d.items()} for c, d in self.segments.items()
            },
            "fairness": None if self.fairness is None else self.fairness.to_dict(),
            "fairness_debt": None if self.fairness_debt is None else self.fairness_debt.to_dict(),
            "label_debt": {k: d.to_dict() for k, d in self.label_debt.items()},
            "changes": self.changes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], setup: PerformanceSetup) -> WindowPerformance:
        """The state written by :meth:`to_dict`, checked against ``setup`` (a summary of
        other classes or another task raises ``ValueError``, as does a malformed dict)."""
        from inferwatch.fairness import GroupCounts

        if not isinstance(data, Mapping) or data.get("kind") != "window_performance":
            raise ValueError("not a window performance state")
        kind: type[ClassificationSummary] | type[RegressionSummary] = (
            ClassificationSummary if setup.task == "classification" else RegressionSummary
        )

        def summary(value: Any) -> Summary:
            if not isinstance(value, Mapping):
                raise ValueError("window performance: a summary must be a mapping")
            out = kind.from_dict(value)
            if isinstance(out, ClassificationSummary) and tuple(out.classes) != tuple(
                setup.classes
            ):
                raise ValueError(
                    f"window performance: classes {list(out.classes)} are not {list(setup.classes)}"
                )
            return out

        out = cls(setup)
        out.summary = summary(data.get("summary"))
        out.labelled = summary(data.get("labelled"))
        for name in ("losses", "labelled_losses"):
            arr = np.asarray(data.get(name), dtype=np.float64)
            if arr.shape != (3,):
                raise ValueError(f"window performance: {name!r} must be 3 numbers")
            setattr(out, name, arr)
        segments = data.get("segments")
        if not isinstance(segments, Mapping):
            raise ValueError("window performance: 'segments' must be a mapping")
        for column, values in segments.items():
            if column not in out.segments or not isinstance(values, Mapping):
                continue  # a segment this setup does not track
            out.segments[column] = {str(v): summary(s) for v, s in values.items()}
        fairness = data.get("fairness")
        if fairness is not None and out.fairness is not None:
            if not isinstance(fairness, Mapping):
                raise ValueError("window performance: 'fairness' must be a mapping")
            out.fairness = GroupCounts.from_dict(fairness)
        debt = data.get("fairness_debt")
        if debt is not None and out.fairness is not None:
            if not isinstance(debt, Mapping):
                raise ValueError("window performance: 'fairness_debt' must be a mapping")
            out.fairness_debt = GroupCounts.from_dict(debt)
        label_debt = data.get("label_debt") or {}
        if not isinstance(label_debt, Mapping):
            raise ValueError("window performance: 'label_debt' must be a mapping")
        out.label_debt = {str(k): summary(d) for k, d in label_debt.items()}
        changes = data.get("changes", 0)
        out.changes = int(changes) if isinstance(changes, int) else 0
        return out


def prediction_scores(
    records: Sequence[PredictionRecord], classes: Sequence[str], y_pred: npt.NDArray[np.intp]
) -> npt.NDArray[np.float64] | None:
    """The class probabilities of ``records`` as an (n, k) matrix (see :func:`score_matrix`)."""
    return score_matrix(
        [r.probabilities for r in records], [r.score for r in records], y_pred, classes
    )


def score_matrix(
    probs: Sequence[Mapping[Any, Any] | None],
    scores: Sequence[float | None],
    y_pred: npt.NDArray[np.intp],
    classes: Sequence[str],
) -> npt.NDArray[np.float64] | None:
    """Class probabilities (one mapping per row, or None) as an (n, k) matrix in ``classes``
    order: the one conversion for logged predictions, the scored reference and the store.

    A row with probabilities gives its row (a class it does not name has 0); a binary
    classifier's row with only a score (the top class's probability) gives the score to
    its predicted class and the rest to the other; a row with neither is NaN (skipped by
    the score histograms).  None when no row has any score.  Vectorised per class: one
    pass over the rows for each class.
    """
    k, n = len(classes), len(probs)
    has_probs = np.fromiter((p is not None for p in probs), dtype=bool, count=n)
    has_score = np.fromiter((s is not None for s in scores), dtype=bool, count=n)
    if not has_probs.any() and not has_score.any():
        return None
    out = np.full((n, k), np.nan)
    if has_probs.any():
        # keys as the adapters log them (strings); a mapping with other keys is read slowly
        plain = all(p is None or all(type(key) is str for key in p) for p in probs[:1])
        for j, c in enumerate(classes):
            if plain:
                col = np.fromiter(
                    (np.nan if p is None else (p.get(c) or 0.0) for p in probs),
                    dtype=np.float64,
                    count=n,
                )
            else:
                col = np.fromiter(
                    (
                        np.nan
                        if p is None
                        else float(next((v for key, v in p.items() if str(key) == c), 0.0) or 0.0)
                        for p in probs
                    ),
                    dtype=np.float64,
                    count=n,
                )
            out[:, j] = col
    if k == 2:
        only = ~has_probs & has_score & (y_pred >= 0)
        if only.any():
            rows = np.flatnonzero(only)
            top = np.array([float(scores[int(i)] or 0.0) for i in rows])
            out[rows, y_pred[rows]] = top
            out[rows, 1 - y_pred[rows]] = 1.0 - top
    return out


def class_positions(lookup: Mapping[str, int], values: Sequence[Any]) -> npt.NDArray[np.intp]:
    """Class indices of ``values`` (-1: not a class); strings are looked up directly and
    anything else (an int class of a scikit-learn model) as its string."""
    out = np.fromiter((lookup.get(v, -1) for v in values), dtype=np.intp, count=len(values))
    miss = np.flatnonzero(out < 0)
    for i in miss:
        v = values[int(i)]
        if v is not None and not isinstance(v, str):
            out[i] = lookup.get(str(v), -1)
    return out


def _group(value: Any) -> str | None:
    return None if value is None else str(value)


def _take(arrays: Mapping[str, Any], rows: npt.NDArray[np.intp]) -> dict[str, Any]:
    """The rows ``rows`` of every per-row array (lists too); None stays None."""
    out: dict[str, Any] = {}
    for key, value in arrays.items():
        if value is None:
            out[key] = None
        elif isinstance(value, np.ndarray):
            out[key] = value[rows] if len(rows) != len(value) else value
        else:
            out[key] = [value[i] for i in rows] if len(rows) != len(value) else value
    return out


def _segment_key(column: str, value: str) -> str:
    return f"segment\x00{column}\x00{value}"


def _add_labels(
    summary: Summary,
    y_true: npt.NDArray[Any],
    y_pred: npt.NDArray[Any],
    scores: npt.NDArray[np.float64] | None,
    *,
    sign: int = 1,
) -> None:
    if isinstance(summary, ClassificationSummary):
        summary.add_labels(y_true, y_pred, scores, sign=sign)
    else:
        summary.add_labels(y_true, y_pred, sign=sign)


def _loss_sums(
    abs_loss: npt.NDArray[np.float64], sq_loss: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    ok = np.isfinite(abs_loss)
    return np.array([float(ok.sum()), float(abs_loss[ok].sum()), float(sq_loss[ok].sum())])


def _floats(values: Iterable[Any]) -> npt.NDArray[np.float64]:
    out = []
    for v in values:
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            out.append(math.nan)
    return np.asarray(out, dtype=np.float64)


class _Target:
    """One model version's windows, segment indexes and detectors (under the owner's lock)."""

    __slots__ = ("detections", "lookup", "segment_index", "setup", "windows")

    def __init__(self, setup: PerformanceSetup) -> None:
        from inferwatch.fairness import SegmentIndex

        self.setup = setup
        self.lookup = {c: i for i, c in enumerate(setup.classes)}
        self.windows: dict[float, WindowPerformance] = {}
        self.segment_index = {c: SegmentIndex(setup.max_segment_values) for c in setup.segments}
        self.detections: list[Detection] = []


class PerformanceWindows:
    """Performance windows of the model versions in ``setups`` (thread-safe).

    >>> from datetime import UTC, datetime
    >>> setup = PerformanceSetup("m", "1", "classification", classes=("no", "yes"))
    >>> pw = PerformanceWindows([setup], window_seconds=60, clock=lambda: 125.0)
    >>> ts = datetime.fromtimestamp(121, UTC)
    >>> rec = PredictionRecord("a", "m", "1", ts, {}, "yes", 0.9, None)
    >>> pw.add("m", "1", [rec])
    >>> pw.add_labels("m", "1", [LabelledPrediction(rec, "yes", ts)])
    >>> start, win = pw.current("m", "1")
    >>> start, win.summary.n_predictions, win.summary.metrics()["accuracy"]
    (120.0, 1, 1.0)
    """

    def __init__(
        self,
        setups: Sequence[PerformanceSetup],
        *,
        window_seconds: float = 3600.0,
        retention: int = DEFAULT_PERFORMANCE_RETENTION,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not window_seconds > 0:
            raise ValueError(f"window_seconds must be > 0, got {window_seconds!r}")
        if retention < 1:
            raise ValueError(f"retention must be >= 1, got {retention!r}")
        self.window_seconds = float(window_seconds)
        self.retention = retention
        self.clock = clock
        self._lock = threading.Lock()
        self._targets = {(s.model, s.version): _Target(s) for s in setups}
        self.late_labels = 0
        self.dropped = 0
        self.unmatched_removals = 0
        #: fairness removals kept as a debt, to settle once merged (see ``_add_pairs``)
        self.deferred_removals = 0
        # windows changed since the evaluator last looked: (model, version, start)
        self._dirty: set[tuple[str, str, float]] = set()

    # -- reading ------------------------------------------------------------------------

    @property
    def keys(self) -> list[tuple[str, str]]:
        return list(self._targets)

    def setup(self, model: str, version: str) -> PerformanceSetup | None:
        target = self._targets.get((model, version))
        return None if target is None else target.setup

    def starts(self, model: str, version: str) -> list[float]:
        """Start times of the retained windows that hold anything, oldest first."""
        with self._lock:
            target = self._targets.get((model, version))
            return [] if target is None else sorted(target.windows)

    def changes(self, model: str, version: str) -> dict[float, int]:
        """Each retained window's change counter (start -> ``WindowPerformance.changes``),
        without copying the windows: what a writer compares to see which ones moved."""
        with self._lock:
            target = self._targets.get((model, version))
            if target is None:
                return {}
            return {s: w.changes for s, w in target.windows.items()}

    def window(self, model: str, version: str, start: float) -> WindowPerformance | None:
        """A copy of one window's state (None when it holds nothing or is not retained)."""
        with self._lock:
            target = self._targets.get((model, version))
            win = None if target is None else target.windows.get(start)
            return None if win is None else win.copy()

    def merged(
        self, model: str, version: str, since: float | None = None
    ) -> ClassificationSummary | RegressionSummary | None:
        """The summaries of a version's retained windows (those starting at ``since`` or
        later) merged into one: what version comparisons run on.  None when the model
        version is not tracked."""
        with self._lock:
            target = self._targets.get((model, version))
            if target is None:
                return None
            out = target.setup.new_summary()
            for start, win in target.windows.items():
                if since is None or start >= since:
                    out += win.summary  # type: ignore[operator]
            return out

    def current(self, model: str, version: str) -> tuple[float, WindowPerformance]:
        """The clock's current window (its start and a copy; empty when nothing came yet)."""
        start = window_start(self.clock(), self.window_seconds)
        win = self.window(model, version, start)
        if win is None:
            target = self._targets[(model, version)]
            win = WindowPerformance(target.setup)
        return start, win

    def restore(self, model: str, version: str, start: float, win: WindowPerformance) -> bool:
        """Add a saved window state (a replaced worker's) to the same window here, marked for
        judging; False when the model version is not tracked here or ``start`` is no longer
        retained (nothing is added)."""
        target = self._targets.get((model, version))
        oldest, ahead = self._bounds()
        if target is None or not oldest <= start < ahead:
            return False
        with self._lock:
            mine = target.windows.get(start)
            if mine is None:
                mine = target.windows[start] = win.copy()
            else:
                mine += win
            mine.changes += 1
            self._dirty.add((model, version, start))
        return True

    def take_dirty(self) -> list[tuple[str, str, float]]:
        """The windows that changed since the last call (oldest first), forgotten as dirty."""
        with self._lock:
            out, self._dirty = self._dirty, set()
        return sorted(out, key=lambda k: (k[2], k[0], k[1]))

    def mark_windows_dirty(self, windows: Iterable[tuple[str, str, float]]) -> None:
        """Have the evaluator judge these windows (model, version, start) next round."""
        with self._lock:
            self._dirty.update(windows)

    def oldest_start(self) -> float:
        """Start of the oldest window still retained (older ones are dropped)."""
        return self._bounds()[0]

    def mark_dirty(self, model: str, version: str) -> None:
        """Have the evaluator judge every retained window of a model version again."""
        with self._lock:
            target = self._targets.get((model, version))
            if target is not None:
                self._dirty.update((model, version, s) for s in target.windows)

    def detections(self, model: str, version: str) -> list[Detection]:
        """Take the stream detections since the last call (the evaluator stores them)."""
        with self._lock:
            target = self._targets.get((model, version))
            if target is None:
                return []
            out, target.detections = target.detections, []
            return out

    # -- feeding ------------------------------------------------------------------------
    #
    # Both feeds turn the whole batch into arrays first (one pass per field, outside the
    # lock), split it by window with numpy, and fold each window's slice under the lock:
    # the per-item Python work is a handful of attribute reads, everything else is numpy.

    def _bounds(self) -> tuple[float, float]:
        now = window_start(self.clock(), self.window_seconds)
        return now - (self.retention - 1) * self.window_seconds, now + self.window_seconds

    def _by_window(self, records: Sequence[PredictionRecord]) -> dict[float, npt.NDArray[np.intp]]:
        """Row indices by window start (of each record's prediction time)."""
        width = self.window_seconds
        n = len(records)
        stamps = np.fromiter((r.timestamp.timestamp() for r in records), np.float64, count=n)
        starts = np.floor(stamps / width) * width
        first = starts[0]
        if (starts == first).all():  # the usual batch: one window
            return {float(first): np.arange(n)}
        uniq, inverse = np.unique(starts, return_inverse=True)
        return {float(u): np.flatnonzero(inverse == i) for i, u in enumerate(uniq)}

    def _window(self, target: _Target, start: float) -> WindowPerformance:
        win = target.windows.get(start)
        if win is None:
            win = target.windows[start] = WindowPerformance(target.setup)
            oldest, _ = self._bounds()
            for old in [s for s in target.windows if s < oldest]:
                del target.windows[old]
        return win

    def add(self, model: str, version: str, records: Sequence[PredictionRecord]) -> None:
        """Fold logged predictions (all of one model version) into their windows."""
        target = self._targets.get((model, version))
        if target is None or not records:
            return
        oldest, ahead = self._bounds()
        groups = self._by_window(records)
        kept = {s: rows for s, rows in groups.items() if oldest <= s < ahead}
        self.dropped += sum(len(rows) for s, rows in groups.items() if s not in kept)
        if not kept:
            return
        arrays = self._prediction_arrays(target, records)
        with self._lock:
            for start, rows in kept.items():
                win = self._window(target, start)
                self._observe(target, win, _take(arrays, rows))
                win.changes += 1
                self._dirty.add((model, version, start))

    def _prediction_arrays(
        self, target: _Target, records: Sequence[PredictionRecord]
    ) -> dict[str, Any]:
        """Per-row arrays of a batch of predictions (computed outside the lock)."""
        setup = target.setup
        out: dict[str, Any] = {}
        if setup.task == "classification":
            y_pred = class_positions(target.lookup, [r.output for r in records])
            out["y_pred"] = y_pred
            out["scores"] = prediction_scores(records, setup.classes, y_pred)
        else:
            out["y_pred"] = _floats(r.output for r in records)
            if setup.dle is not None:
                out["abs_loss"], out["sq_loss"] = self._predicted_losses(
                    setup, records, out["y_pred"]
                )
        for column in target.segment_index:
            out[f"segment:{column}"] = [r.inputs.get(column) for r in records]
        if setup.protected is not None and setup.task == "classification":
            out["group"] = np.array(
                [_group(r.inputs.get(setup.protected)) for r in records], dtype=object
            )
        return out

    def _predicted_losses(
        self,
        setup: PerformanceSetup,
        batch: Sequence[PredictionRecord],
        y_pred: npt.NDArray[np.float64],
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Per-row predicted |error| and error² of the direct-loss estimator (NaN where
        the prediction is not a number)."""
        assert setup.dle is not None
        n = len(batch)
        x = np.full((n, len(setup.features)), np.nan)
        for j, name in enumerate(setup.features):
            codes = setup.categories.get(name)
            for i, r in enumerate(batch):
                v = r.inputs.get(name)
                if v is None:
                    continue
                if codes is not None:
                    x[i, j] = codes.get(str(v), np.nan)
                else:
                    try:
                        x[i, j] = float(v)
                    except (TypeError, ValueError):
                        continue
        abs_loss, sq_loss = np.full(n, np.nan), np.full(n, np.nan)
        ok = np.isfinite(y_pred)
        if ok.any():
            a, q = setup.dle.predict_losses(x[ok], y_pred[ok])
            abs_loss[ok], sq_loss[ok] = a, q
        return abs_loss, sq_loss

    def _segments(
        self, target: _Target, win: WindowPerformance, arrays: Mapping[str, Any]
    ) -> list[tuple[str, Summary, npt.NDArray[np.bool_]]]:
        """Each segment summary of the window (its debt key, the summary) with the rows of
        the batch it gets."""
        out = []
        for column, index in target.segment_index.items():
            slots = index.indices(arrays[f"segment:{column}"])
            by_value = win.segments[column]
            for slot in np.unique(slots):
                name = index.names[int(slot)]
                seg = by_value.get(name)
                if seg is None:
                    seg = by_value[name] = target.setup.new_summary()
                out.append((_segment_key(column, name), seg, slots == slot))
        return out

    def _observe(self, target: _Target, win: WindowPerformance, arrays: Mapping[str, Any]) -> None:
        setup = target.setup
        y_pred = arrays["y_pred"]
        if isinstance(win.summary, ClassificationSummary):
            scores = arrays["scores"]
            win.summary.observe(y_pred, scores)
            for _, seg, pick in self._segments(target, win, arrays):
                assert isinstance(seg, ClassificationSummary)
                seg.observe(y_pred[pick], None if scores is None else scores[pick])
            if win.fairness is not None and "group" in arrays:
                known = y_pred >= 0
                if known.any():
                    win.fairness.add(
                        arrays["group"][known], y_pred[known] == setup.positive_index, None
                    )
        else:
            win.summary.observe(y_pred)
            if "abs_loss" in arrays:
                win.losses += _loss_sums(arrays["abs_loss"], arrays["sq_loss"])
            for _, seg, pick in self._segments(target, win, arrays):
                assert isinstance(seg, RegressionSummary)
                seg.observe(y_pred[pick])

    def add_labels(self, model: str, version: str, labelled: Sequence[LabelledPrediction]) -> None:
        """Fold accepted labels (all of one model version) into their predictions' windows."""
        target = self._targets.get((model, version))
        if target is None or not labelled:
            return
        setup = target.setup
        records = [lp.prediction for lp in labelled]
        oldest, ahead = self._bounds()
        groups = self._by_window(records)
        kept = {s: rows for s, rows in groups.items() if oldest <= s < ahead}
        self.late_labels += sum(len(rows) for s, rows in groups.items() if s not in kept)
        arrays = self._prediction_arrays(target, records)
        n = len(labelled)
        previous = [lp.previous for lp in labelled]
        replaced = np.fromiter((p is not None for p in previous), dtype=bool, count=n)
        arrays["replaced"] = replaced
        if setup.task == "classification":
            arrays["y_true"] = class_positions(target.lookup, [lp.label for lp in labelled])
            arrays["y_prev"] = (
                class_positions(target.lookup, previous)
                if replaced.any()
                else np.full(n, -1, np.intp)
            )
            ok = ~replaced & (arrays["y_true"] >= 0) & (arrays["y_pred"] >= 0)
            errors = (arrays["y_true"][ok] != arrays["y_pred"][ok]).astype(np.float64)
        else:
            arrays["y_true"] = _floats(lp.label for lp in labelled)
            arrays["y_prev"] = _floats(previous) if replaced.any() else np.full(n, np.nan)
            err = np.abs(arrays["y_true"] - arrays["y_pred"])[~replaced]
            errors = err[np.isfinite(err)]
        with self._lock:
            for start, rows in kept.items():
                win = self._window(target, start)
                self._add_pairs(target, win, _take(arrays, rows))
                win.changes += 1
                self._dirty.add((model, version, start))
            if setup.detector is not None and errors.size:
                self._detect(target, errors)

    def _add_pairs(
        self, target: _Target, win: WindowPerformance, arrays: Mapping[str, Any]
    ) -> None:
        setup = target.setup
        y_pred, y_true, y_prev = arrays["y_pred"], arrays["y_true"], arrays["y_prev"]
        replaced: npt.NDArray[np.bool_] = arrays["replaced"]
        scores = arrays.get("scores")
        first = ~replaced

        def pairs(key: str, summary: Summary, pick: npt.NDArray[np.bool_] | None) -> None:
            old = replaced if pick is None else pick & replaced
            if old.any():
                s_old = None if scores is None else scores[old]
                try:
                    _add_labels(summary, y_prev[old], y_pred[old], s_old, sign=-1)
                except ValueError:
                    # the replaced pair was counted by another worker or replica (or before
                    # a restart): owed, and taken out once the states are merged (settle)
                    debt = win.label_debt.get(key)
                    if debt is None:
                        debt = win.label_debt[key] = setup.new_summary()
                    _add_labels(debt, y_prev[old], y_pred[old], s_old)
                    self.unmatched_removals += 1
            if pick is None:
                yt, yp, sc = y_true, y_pred, scores
            else:
                yt, yp = y_true[pick], y_pred[pick]
                sc = None if scores is None else scores[pick]
            if isinstance(summary, ClassificationSummary):
                summary.add_labels(yt, yp, sc)
            else:
                summary.add_labels(yt, yp)

        pairs("summary", win.summary, None)
        # the labelled-rows view: a prediction is observed once, at its first label
        if isinstance(win.labelled, ClassificationSummary):
            win.labelled.observe(y_pred[first], None if scores is None else scores[first])
        else:
            win.labelled.observe(y_pred[first])
            if "abs_loss" in arrays:
                win.labelled_losses += _loss_sums(
                    arrays["abs_loss"][first], arrays["sq_loss"][first]
                )
        pairs("labelled", win.labelled, None)
        for key, seg, pick in self._segments(target, win, arrays):
            pairs(key, seg, pick)
        if win.fairness is not None and "group" in arrays:
            # a row was counted unlabelled (or with its earlier label): take it out as it
            # was counted, then count it with its new label
            groups = arrays["group"]
            pos = setup.positive_index
            ok = (y_true >= 0) & (y_pred >= 0)
            again = ok & replaced & (y_prev >= 0)
            fresh = ok & ~replaced
            from inferwatch.fairness import GroupCounts, SegmentIndex

            for rows, was in ((again, y_prev[again] == pos), (fresh, None)):
                if not rows.any():
                    continue
                try:
                    win.fairness.add(groups[rows], y_pred[rows] == pos, was, sign=-1)
                except ValueError:
                    # counted by another worker or replica (or before a restart): owed, and
                    # taken out when the processes' states are merged (WindowPerformance.settle)
                    if win.fairness_debt is None:
                        win.fairness_debt = GroupCounts(SegmentIndex(setup.max_segment_values))
                    win.fairness_debt.add(groups[rows], y_pred[rows] == pos, was)
                    self.deferred_removals += 1
            keep = again | fresh
            if keep.any():
                win.fairness.add(groups[keep], y_pred[keep] == pos, y_true[keep] == pos)

    def _detect(self, target: _Target, errors: npt.NDArray[np.float64]) -> None:
        assert target.setup.detector is not None
        now = self.clock()
        for hit in target.setup.detector.update_many(errors):
            target.detections.append(
                Detection(
                    target.setup.model,
                    target.setup.version,
                    hit.detector,
                    int(hit.index),
                    now,
                    {"mean_before": hit.mean_before, "mean_after": hit.mean_after},
                )
            )

    def __repr__(self) -> str:
        return (
            f"PerformanceWindows(models={len(self._targets)}, "
            f"window_seconds={self.window_seconds}, retention={self.retention})"
        )
