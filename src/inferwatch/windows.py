"""Live windows: one mergeable profile per model, version and time window, fed in batches.

The prediction log's writer thread hands every batch it drains (hundreds of rows, off the
request path) to :meth:`WindowProfiler.add`, which splits the rows by window, turns their
``inputs`` into one numpy column per feature and folds them into that window's
:class:`~inferwatch.profile.FrameProfile`.  The live evaluator reads a copy of a window
(:meth:`WindowProfiler.current`), so it never holds the lock while it computes.

A prediction falls in the window that starts at ``floor(t / window_seconds) *
window_seconds`` (``t``: its timestamp in UTC epoch seconds), so windows are aligned on
the epoch and every replica cuts the same windows.  Memory is bounded: each model version
keeps its last ``retention`` windows counted back from the clock's current window (3 by
default: the current one, the one that just closed, one more); rows older than that, or
more than one window ahead of the clock (a skewed client clock), are counted in
:attr:`WindowProfiler.dropped` and not profiled, so a stray timestamp can neither grow the
state nor push the current window out.

Model outputs are profiled too when the profiler is told their column names (the bins
must have been fitted with them, see :func:`output_features`): ``prediction`` the
predicted class of a classifier (``PredictionRecord.output`` as a string, a categorical
column) or the predicted value of a regressor (``PredictionRecord.output`` as a number, a
numeric column: the kind the bins were fitted with decides), ``confidence`` its score
(``PredictionRecord.score``, a numeric column).  The live evaluator judges them as the
report's prediction drift.

Engine layer: numpy and the core only; the clock is handed in.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from inferwatch.observation import PredictionRecord
from inferwatch.profile import DEFAULT_MAX_UNSEEN, FrameProfile, ReferenceBins
from inferwatch.schema import Feature, Schema

__all__ = [
    "CONFIDENCE_COLUMN",
    "DEFAULT_RETENTION",
    "PREDICTION_COLUMN",
    "WindowFanout",
    "WindowProfiler",
    "WindowRouter",
    "output_features",
    "output_labels",
    "output_numbers",
    "prediction_column",
    "window_start",
]

DEFAULT_RETENTION = 3
#: the predicted-class column's name when the schema names no prediction column
PREDICTION_COLUMN = "prediction"
#: the column of a model's scores (the top class probability for classifiers)
CONFIDENCE_COLUMN = "confidence"
_OBJECT_KINDS = frozenset({"categorical", "boolean", "text", "datetime"})


def window_start(timestamp: float, window_seconds: float) -> float:
    """Start (epoch seconds) of the window of length ``window_seconds`` holding ``timestamp``."""
    return math.floor(timestamp / window_seconds) * window_seconds


def prediction_column(schema: Schema) -> str:
    """The predicted class's column: the schema's prediction column, else ``prediction``."""
    return schema.prediction.name if schema.prediction is not None else PREDICTION_COLUMN


def output_labels(values: Sequence[Any]) -> npt.NDArray[Any]:
    """Predicted classes as an object column of strings (None stays missing), the same
    way for the reference's predictions and the logged ones."""
    return np.fromiter(
        (None if v is None else str(v) for v in values), dtype=object, count=len(values)
    )


def output_numbers(values: Sequence[Any]) -> npt.NDArray[Any]:
    """Predicted values of a regressor as a float64 column (None is NaN, missing), the
    same way for the reference's predictions and the logged ones; an object column when
    a value is not a number (the profile counts those as invalid)."""
    return _numeric(list(values))


def output_features(
    schema: Schema,
    *,
    prediction: str | None,
    confidence: str | None,
    prediction_kind: Literal["categorical", "numeric"] = "categorical",
) -> tuple[Feature, ...]:
    """Features to fit the output columns' bins with (append them to the input features):
    ``prediction`` of ``prediction_kind`` (categorical: a classifier's classes; numeric:
    a regressor's values), ``confidence`` numeric; a name that is already one of the
    schema's columns (a feature or the target) is left out, so inputs are never shadowed."""
    taken = set(schema.names) | ({schema.target.name} if schema.target is not None else set())
    out = []
    if prediction is not None and prediction not in taken:
        out.append(Feature(prediction, prediction_kind, nullable=True))
    if confidence is not None and confidence not in taken:
        out.append(Feature(confidence, "numeric", nullable=True))
    return tuple(out)


def _numeric(values: list[Any]) -> npt.NDArray[Any]:
    """float64 with None as NaN; an object array when a value is not a number (the
    profile counts those as invalid)."""
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        return np.fromiter(values, dtype=object, count=len(values))


def _columns(
    schema: Schema,
    records: Sequence[PredictionRecord],
    prediction: str | None = None,
    confidence: str | None = None,
    numeric_prediction: bool = False,
) -> dict[str, npt.NDArray[Any]]:
    """One column per profiled feature; a feature absent from an input is None (missing).
    Plus the prediction (class labels, or numbers when ``numeric_prediction``) and the
    score under the given output column names."""
    out: dict[str, npt.NDArray[Any]] = {}
    if prediction is not None:
        outputs = [rec.output for rec in records]
        out[prediction] = output_numbers(outputs) if numeric_prediction else output_labels(outputs)
    if confidence is not None:
        out[confidence] = _numeric([rec.score for rec in records])
    n = len(records)
    for feat in schema:
        if feat.kind == "embedding":
            continue
        name = feat.name
        values = [rec.inputs.get(name) for rec in records]
        if feat.kind in _OBJECT_KINDS:
            out[name] = np.fromiter(values, dtype=object, count=n)
        else:
            out[name] = _numeric(values)
    return out


class WindowProfiler:
    """Window profiles of every model version that shares one set of reference ``bins``.

    Thread-safe: one writer thread calls :meth:`add`, any thread reads copies.

    >>> from datetime import UTC, datetime
    >>> import numpy as np
    >>> from inferwatch.profile import ReferenceBins
    >>> from inferwatch.schema import infer_schema
    >>> cols = {"x": np.arange(100.0)}
    >>> schema = infer_schema(cols)
    >>> bins = ReferenceBins(n_bins=10).fit(cols, schema)
    >>> windows = WindowProfiler(bins, schema, window_seconds=60, clock=lambda: 125.0)
    >>> ts = datetime.fromtimestamp(121, UTC)
    >>> rec = PredictionRecord("a", "m", "1", ts, {"x": 3.0}, None, None, None)
    >>> windows.add("m", "1", [rec])
    >>> start, prof = windows.current("m", "1")
    >>> start, prof.n_rows
    (120.0, 1)
    """

    def __init__(
        self,
        bins: ReferenceBins,
        schema: Schema | None = None,
        *,
        window_seconds: float = 3600.0,
        clock: Callable[[], float] = time.time,
        retention: int = DEFAULT_RETENTION,
        max_unseen: int = DEFAULT_MAX_UNSEEN,
        prediction: str | None = None,
        confidence: str | None = None,
    ) -> None:
        if not window_seconds > 0:
            raise ValueError(f"window_seconds must be > 0, got {window_seconds!r}")
        if retention < 1:
            raise ValueError(f"retention must be >= 1, got {retention!r}")
        self.bins = bins
        self.schema = schema if schema is not None else bins.schema_
        self.window_seconds = float(window_seconds)
        self.clock = clock
        self.retention = retention
        self.max_unseen = max_unseen
        # output columns are profiled only when the bins have them
        fitted = {f.name: f.kind for f in bins.schema_}
        self.prediction = prediction if prediction in fitted else None
        self.confidence = confidence if confidence in fitted else None
        # a regressor's prediction was fitted as a numeric column: profile numbers
        self._numeric_prediction = fitted.get(prediction or "") == "numeric"
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], dict[float, FrameProfile]] = {}
        self._dropped = 0

    # -- writing ------------------------------------------------------------------------

    def add(self, model: str, version: str, records: Sequence[PredictionRecord]) -> None:
        """Profile ``records`` (one model version) into the windows of their timestamps."""
        if not records:
            return
        w = self.window_seconds
        starts = [window_start(rec.timestamp.timestamp(), w) for rec in records]
        first = starts[0]
        if all(s == first for s in starts):
            groups: dict[float, Sequence[PredictionRecord]] = {first: records}
        else:
            split: dict[float, list[PredictionRecord]] = {}
            for s, rec in zip(starts, records, strict=True):
                split.setdefault(s, []).append(rec)
            groups = dict(split)
        lo, hi = self._bounds()
        kept = {s: recs for s, recs in groups.items() if lo <= s <= hi}
        batches = {
            s: _columns(
                self.schema, recs, self.prediction, self.confidence, self._numeric_prediction
            )
            for s, recs in kept.items()
        }
        with self._lock:
            self._dropped += len(records) - sum(len(r) for r in kept.values())
            windows = self._windows.setdefault((model, version), {})
            for s, columns in batches.items():
                prof = windows.get(s)
                if prof is None:
                    prof = windows[s] = FrameProfile(self.bins, max_unseen=self.max_unseen)
                prof.update(columns)
            for s in [s for s in windows if s < lo]:
                del windows[s]

    def restore(self, model: str, version: str, start: float, profile: FrameProfile) -> bool:
        """Add a saved window (a replaced worker's, on these bins) to the same window here;
        False when ``start`` is no longer retained (or too far ahead), and nothing is added."""
        lo, hi = self._bounds()
        if not lo <= start <= hi:
            return False
        with self._lock:
            windows = self._windows.setdefault((model, version), {})
            mine = windows.get(float(start))
            if mine is None:
                windows[float(start)] = profile.copy()
            else:
                mine += profile
        return True

    def _bounds(self) -> tuple[float, float]:
        """The oldest and newest window starts kept, from the clock."""
        now = window_start(self.clock(), self.window_seconds)
        return now - (self.retention - 1) * self.window_seconds, now + self.window_seconds

    # -- reading ------------------------------------------------------------------------

    def window(self, model: str, version: str, start: float) -> FrameProfile | None:
        """A copy of the window starting at ``start``, or None when it holds no rows."""
        with self._lock:
            prof = self._windows.get((model, version), {}).get(float(start))
            return None if prof is None else prof.copy()

    def current(self, model: str, version: str) -> tuple[float, FrameProfile]:
        """The clock's current window: its start and a copy of its profile (maybe empty)."""
        start = window_start(self.clock(), self.window_seconds)
        prof = self.window(model, version, start)
        return start, prof if prof is not None else self.empty()

    def empty(self) -> FrameProfile:
        """A profile with no rows on these bins (what a window without traffic holds)."""
        return FrameProfile(self.bins, max_unseen=self.max_unseen)

    def starts(self, model: str, version: str) -> list[float]:
        """Starts of the windows held for a model version, oldest first."""
        with self._lock:
            return sorted(self._windows.get((model, version), {}))

    def row_counts(self, model: str, version: str) -> dict[float, int]:
        """Each held window's row count (start -> rows), without copying the profiles: what
        a writer compares to see which windows moved (windows only grow)."""
        with self._lock:
            return {s: p.n_rows for s, p in self._windows.get((model, version), {}).items()}

    @property
    def dropped(self) -> int:
        """Rows not profiled: older than the retained windows, or too far ahead of the clock."""
        with self._lock:
            return self._dropped

    def __repr__(self) -> str:
        return (
            f"WindowProfiler(window_seconds={self.window_seconds}, retention={self.retention}, "
            f"models={len(self._windows)})"
        )


class WindowRouter:
    """Sends each model version's rows to its own :class:`WindowProfiler` (models have
    their own reference bins); rows of a model version without one are ignored."""

    def __init__(self, profilers: Mapping[tuple[str, str], WindowProfiler]) -> None:
        self.profilers = dict(profilers)

    def add(self, model: str, version: str, records: Sequence[PredictionRecord]) -> None:
        profiler = self.profilers.get((model, version))
        if profiler is not None:
            profiler.add(model, version, records)

    def __getitem__(self, key: tuple[str, str]) -> WindowProfiler:
        return self.profilers[key]

    def __repr__(self) -> str:
        return f"WindowRouter({sorted(self.profilers)!r})"


class WindowFanout:
    """Hands every batch to several window sinks (the drift profiles and the performance
    windows), so the prediction log's writer keeps one ``WindowSink``.  A sink that raises
    does not keep the batch from the others; the first error is raised after all ran (the
    writer counts it)."""

    def __init__(self, sinks: Sequence[Any]) -> None:
        self.sinks = tuple(sinks)

    def add(self, model: str, version: str, records: Sequence[PredictionRecord]) -> None:
        error: Exception | None = None
        for sink in self.sinks:
            try:
                sink.add(model, version, records)
            except Exception as exc:
                error = error or exc
        if error is not None:
            raise error

    def __repr__(self) -> str:
        return f"WindowFanout({', '.join(type(s).__name__ for s in self.sinks)})"
