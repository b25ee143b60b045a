"""Live windows shared through the store: the judging replica sees every replica's rows.

Engine layer.  Replicas that share one store (``fleet.share_windows``) each profile only
the predictions they answer, while one of them, the evaluator lease's holder
(``inferwatch.lease``), judges.  :class:`WindowShare` writes this process's open and
recently closed window profiles to the store every ``interval_seconds`` on its own thread
(only the windows whose row count changed; one upsert per round); a store that does not
answer is logged and counted (``on_error``), never raised into the request path, and the
next round writes the windows again.  :class:`StoreWindows` wraps the judging process's
:class:`~inferwatch.windows.WindowProfiler`: a window is its own profile plus every other
holder's stored profile of the same window (``FrameProfile +=``, the same merge as one
process fed all the rows).  A stored profile built on other reference bins (a replica on
another reference) or another ``max_unseen`` is left out and logged.

Freshness: a holder's row of a window is the newest it wrote, at most one interval old
while it lives; a dead holder's last row stays and is counted (those rows were answered).
No age limit is applied beyond that: a window start names the time it covers, so a row can
never belong to another window.  Rows of windows older than the oldest one kept are pruned
by every writer.

A closed window is judged at the first round after it closes (as a single process does)
and again ``settle_seconds`` later, when every replica has had a flush interval to write
its last rows of it (:class:`~inferwatch.evaluate.EvaluationLoop`'s ``settle_seconds``);
that second judgment is the window's final word in the history.

Performance (label) windows are shared the same way, in the same round of the same
thread: :class:`WindowShare` also writes this process's
:class:`~inferwatch.performance_windows.PerformanceWindows` states
(``WindowPerformance.to_dict()``, only the windows whose change counter moved since the
last write), and :class:`StorePerformance` wraps the judge's ``PerformanceWindows``: a
window is its own state plus every other holder's stored one (``WindowPerformance +=``),
and a window is judged again whenever some holder's stored change counter differs from
the one the judge saw last (a label that reached another replica, however late), with no
clock compared across replicas.  A label may reach another replica than the one that
answered its prediction (the prediction is read from the store): the summaries are sums,
so the prediction counted by one holder and its label by another still add up to the
pair.  The stream detectors (Page-Hinkley, ADWIN on the error stream) stay per replica:
each sees the labels that reached it, in its own arrival order, and only the judge's
detections are stored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from inferwatch.performance import ClassificationSummary, RegressionSummary
from inferwatch.performance_windows import PerformanceWindows, WindowPerformance
from inferwatch.periodic import Periodic
from inferwatch.ports import WindowPerformanceStore, WindowProfileStore
from inferwatch.profile import FrameProfile
from inferwatch.windows import WindowProfiler, window_start

__all__ = ["SharedWindowStore", "StorePerformance", "StoreWindows", "WindowShare", "add_parts"]

log = logging.getLogger("inferwatch.shared_windows")


T = TypeVar("T")


def add_parts(
    own: T | None,
    parts: Iterable[tuple[str, Any]],
    parse: Callable[[Any], T],
    *,
    what: str,
    left_out: Callable[[], None] | None = None,
) -> T | None:
    """``own`` plus each other process's part of the same window (``parts``: who holds it,
    and its serialised form, parsed by ``parse``), merged with ``+=`` (profiles and
    performance states are sums).  A part that does not parse (other bins, other classes,
    a malformed row) is left out and logged with ``what`` and its holder: one process on
    another reference must not stop the others being judged."""
    merged = own
    for holder, data in parts:
        try:
            theirs = parse(data)
        except (ValueError, TypeError, KeyError) as exc:
            if left_out is not None:
                left_out()
            log.warning("%s: the part of %s is left out: %s", what, holder, exc)
            continue
        if merged is None:
            merged = theirs
        else:
            merged += theirs  # type: ignore[operator]
    return merged


class SharedWindowStore(WindowProfileStore, WindowPerformanceStore, Protocol):
    """What :class:`WindowShare` writes to: window profiles and performance states."""


W = TypeVar("W")
S = TypeVar("S")


class _StoreRead(Generic[W, S]):
    """What both store-reading wrappers share: the wrapped windows (every attribute not
    overridden is theirs), the store, this process's holder id, and the count of reads
    the store did not answer (each also handed to ``on_error``: the share-error metric)."""

    def __init__(
        self, inner: W, store: S, holder: str, *, on_error: Callable[[], None] | None = None
    ) -> None:
        self._inner = inner
        self._store = store
        self.holder = holder
        self._on_error = on_error
        self.errors = 0

    @property
    def inner(self) -> W:
        return self._inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _failed(self, what: str, exc: Exception) -> None:
        self.errors += 1
        if self._on_error is not None:
            self._on_error()
        log.warning("%s: the other replicas' parts could not be read, using this "
                    "replica's alone: %s", what, exc)  # fmt: skip


class StoreWindows(_StoreRead[WindowProfiler, WindowProfileStore]):
    """A ``WindowProfiler`` whose windows add the other holders' stored profiles.

    Reading only: writing (the monitor's ``add``) goes to the wrapped profiler, and every
    other attribute is the wrapped profiler's.
    """

    def window(self, model: str, version: str, start: float) -> FrameProfile | None:
        """This process's profile of the window plus the other holders' stored ones."""
        merged = self._inner.window(model, version, start)
        try:
            found = self._store.load_window_profiles(
                model, version, start, exclude_holder=self.holder
            )
        except Exception as exc:
            self._failed(f"window {model}:{version}@{start}", exc)
            return merged
        return add_parts(
            merged,
            ((row.get("holder", "?"), row["profile"]) for row in found),
            lambda data: FrameProfile.from_dict(data, bins=self._inner.bins),
            what=f"window {model}:{version}@{start}",
        )

    def current(self, model: str, version: str) -> tuple[float, FrameProfile]:
        start = window_start(self._inner.clock(), self._inner.window_seconds)
        prof = self.window(model, version, start)
        return start, prof if prof is not None else self._inner.empty()


class StorePerformance(_StoreRead[PerformanceWindows, WindowPerformanceStore]):
    """A ``PerformanceWindows`` whose windows add the other holders' stored states.

    Reading only: the feeds (``add``, ``add_labels``) go to the wrapped windows, and every
    other attribute is theirs, :meth:`PerformanceWindows.detections` included (this
    replica's stream detectors only, see the module docstring).  What the evaluation loop
    and the performance routes read is merged: :meth:`window`, :meth:`current`,
    :meth:`starts`, :meth:`merged`; :meth:`take_dirty` adds the windows another holder
    changed since this judge last listed them.
    """

    def __init__(
        self,
        inner: PerformanceWindows,
        store: WindowPerformanceStore,
        holder: str,
        *,
        on_error: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(inner, store, holder, on_error=on_error)
        #: stored states that did not fit this replica's setup (left out, logged)
        self.left_out = 0
        # (model, version, start, holder) -> the holder's change counter last listed
        self._seen: dict[tuple[str, str, float, str], int] = {}
        self._lock = threading.Lock()

    def _listed(self) -> list[dict[str, Any]] | None:
        """The other holders' stored rows of the retained windows (None: the store failed)."""
        try:
            return self._store.list_window_performance(
                self._inner.oldest_start(), exclude_holder=self.holder
            )
        except Exception as exc:
            self._failed("listing the performance windows", exc)
            return None

    def window(self, model: str, version: str, start: float) -> WindowPerformance | None:
        """This process's state of the window plus the other holders' stored ones (a
        copy; None when nobody holds anything of it)."""
        merged = self._inner.window(model, version, start)
        setup = self._inner.setup(model, version)
        if setup is None:
            return merged
        try:
            found = self._store.load_window_performance(
                model, version, start, exclude_holder=self.holder
            )
        except Exception as exc:
            self._failed(f"window {model}:{version}@{start}", exc)
            with self._lock:  # judge it again once the store answers
                for key in [k for k in self._seen if k[:3] == (model, version, start)]:
                    del self._seen[key]
            return merged

        def left_out() -> None:
            self.left_out += 1

        return add_parts(
            merged,
            ((row.get("holder", "?"), row["state"]) for row in found),
            lambda data: WindowPerformance.from_dict(data, setup),
            what=f"performance window {model}:{version}@{start}",
            left_out=left_out,
        )

    def current(self, model: str, version: str) -> tuple[float, WindowPerformance]:
        """The clock's current window, merged (empty when nothing came yet)."""
        setup = self._inner.setup(model, version)
        if setup is None:
            raise KeyError((model, version))
        start = window_start(self._inner.clock(), self._inner.window_seconds)
        win = self.window(model, version, start)
        return start, win if win is not None else WindowPerformance(setup)

    def starts(self, model: str, version: str) -> list[float]:
        """Start times of the retained windows this process or another holder holds."""
        own = set(self._inner.starts(model, version))
        listed = self._listed() or []
        own.update(
            r["window_start"] for r in listed if (r["model"], r["version"]) == (model, version)
        )
        return sorted(own)

    def take_dirty(self) -> list[tuple[str, str, float]]:
        """The windows this process changed, and those whose stored change counter of
        another holder differs from the one seen last (oldest first).  A store that does
        not answer leaves this process's own (the others' are seen at the next call)."""
        dirty = set(self._inner.take_dirty())
        listed = self._listed()
        if listed is not None:
            tracked = set(self._inner.keys)
            with self._lock:
                seen: dict[tuple[str, str, float, str], int] = {}
                for r in listed:
                    if (r["model"], r["version"]) not in tracked:
                        continue
                    key = (r["model"], r["version"], r["window_start"], r["holder"])
                    seen[key] = r["changes"]
                    if self._seen.get(key) != r["changes"]:
                        dirty.add(key[:3])
                self._seen = seen
        return sorted(dirty, key=lambda k: (k[2], k[0], k[1]))

    def mark_dirty(self, model: str, version: str) -> None:
        """Have the evaluator judge every retained window of a model version again, the
        ones only other holders hold included."""
        self._inner.mark_dirty(model, version)
        if self._inner.setup(model, version) is not None:
            self._inner.mark_windows_dirty((model, version, s) for s in self.starts(model, version))

    def merged(
        self, model: str, version: str, since: float | None = None
    ) -> ClassificationSummary | RegressionSummary | None:
        """The merged summaries of a version's retained windows (those starting at
        ``since`` or later), every holder's: what version comparisons run on."""
        setup = self._inner.setup(model, version)
        if setup is None:
            return None
        out = setup.new_summary()
        for start in self.starts(model, version):
            if since is not None and start < since:
                continue
            win = self.window(model, version, start)
            if win is not None:
                out += win.summary  # type: ignore[operator]
        return out


class WindowShare:
    """Writes this process's window profiles (and performance window states) to the store
    every ``interval_seconds``.

    ``profilers``: (model, version) to its profiler (the unwrapped ones); ``performance``:
    the unwrapped performance windows, if any.  Bounded: each round writes at most every
    retained window of every model version, once.
    """

    def __init__(
        self,
        profilers: Mapping[tuple[str, str], WindowProfiler],
        store: SharedWindowStore,
        holder: str,
        *,
        interval_seconds: float = 5.0,
        on_error: Callable[[], None] | None = None,
        performance: PerformanceWindows | None = None,
    ) -> None:
        if not interval_seconds > 0:
            raise ValueError(f"interval_seconds must be positive, not {interval_seconds!r}")
        self.profilers = dict(profilers)
        self.store = store
        self.holder = holder
        self.interval_seconds = interval_seconds
        self._on_error = on_error
        self.errors = 0
        self.flushes = 0
        self._sent: dict[tuple[str, str, float], int] = {}
        self.performance = performance
        # (model, version, start) -> the change counter of the state last written
        self._sent_performance: dict[tuple[str, str, float], int] = {}
        self._lock = threading.Lock()
        self._thread: Periodic | None = None

    def _failed(self, what: str, exc: Exception) -> None:
        self.errors += 1
        if self._on_error is not None:
            self._on_error()
        log.warning("window profiles: %s failed (the next round retries): %s", what, exc)

    def flush(self) -> int:
        """Write every window whose row count (performance: change counter) changed since
        the last write; return how many were written (0 when the store did not answer:
        counted, not raised; the round stops at the first failed write)."""
        with self._lock:
            written = self._flush_profiles()
            if written is None:
                return 0
            done = self._flush_performance()
            if done is None:
                return 0
            self.flushes += 1
            return written + done

    def _flush_performance(self) -> int | None:
        """The performance part of a round (None: the write failed)."""
        pw = self.performance
        if pw is None:
            return 0
        rows: list[dict[str, Any]] = []
        held: set[tuple[str, str, float]] = set()
        for model, version in pw.keys:
            for start, changes in pw.changes(model, version).items():
                key = (model, version, start)
                held.add(key)
                if self._sent_performance.get(key) == changes:
                    continue
                win = pw.window(model, version, start)
                if win is None:
                    continue
                rows.append({"model": model, "version": version, "window_start": start,
                             "state": win.to_dict(), "changes": win.changes})  # fmt: skip
        for key in [k for k in self._sent_performance if k not in held]:
            del self._sent_performance[key]
        if rows:
            try:
                self.store.save_window_performance(self.holder, rows)
            except Exception as exc:
                self._failed(f"writing {len(rows)} performance window states", exc)
                return None
            for r in rows:
                self._sent_performance[(r["model"], r["version"], r["window_start"])] = r["changes"]
        try:
            self.store.prune_window_performance(pw.oldest_start())
        except Exception as exc:
            self._failed("pruning old performance window states", exc)
        return len(rows)

    def _flush_profiles(self) -> int | None:
        """The drift part of a round (None: the write failed)."""
        rows: list[dict[str, Any]] = []
        held: set[tuple[str, str, float]] = set()
        oldest: float | None = None
        for (model, version), prof in self.profilers.items():
            now = window_start(prof.clock(), prof.window_seconds)
            first = now - (prof.retention - 1) * prof.window_seconds
            oldest = first if oldest is None else min(oldest, first)
            for start in prof.starts(model, version):
                key = (model, version, start)
                held.add(key)
                win = prof.window(model, version, start)
                if win is None or win.n_rows == 0 or self._sent.get(key) == win.n_rows:
                    continue
                rows.append({"model": model, "version": version, "window_start": start,
                             "profile": win.to_dict(include_bins=False),
                             "rows": win.n_rows})  # fmt: skip
        for key in [k for k in self._sent if k not in held]:
            del self._sent[key]
        if rows:
            try:
                self.store.save_window_profiles(self.holder, rows)
            except Exception as exc:
                self._failed(f"writing {len(rows)} window profiles", exc)
                return None
            for r in rows:
                self._sent[(r["model"], r["version"], r["window_start"])] = r["rows"]
        if oldest is not None:
            try:
                self.store.prune_window_profiles(oldest)
            except Exception as exc:
                self._failed("pruning old window profiles", exc)
        return len(rows)

    def start(self) -> WindowShare:
        """Start the thread (a second call does nothing)."""
        if self._thread is None:
            self._thread = Periodic(self.flush, self.interval_seconds,
                                    name="inferwatch-window-share")  # fmt: skip
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and write once more (what changed since the last round)."""
        if self._thread is not None:
            self._thread.stop(timeout)
            self._thread = None
        try:
            self.flush()
        except Exception:
            log.exception("window profiles: the last flush failed")
