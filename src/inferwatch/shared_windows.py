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
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from inferwatch.ports import WindowProfileStore
from inferwatch.profile import FrameProfile
from inferwatch.windows import WindowProfiler, window_start

__all__ = ["StoreWindows", "WindowShare"]

log = logging.getLogger("inferwatch.shared_windows")


class StoreWindows:
    """A ``WindowProfiler`` whose windows add the other holders' stored profiles.

    Reading only: writing (the monitor's ``add``) goes to the wrapped profiler, and every
    other attribute is the wrapped profiler's.
    """

    def __init__(
        self,
        inner: WindowProfiler,
        store: WindowProfileStore,
        holder: str,
        *,
        on_error: Callable[[], None] | None = None,
    ) -> None:
        self._inner = inner
        self._store = store
        self.holder = holder
        self._on_error = on_error
        self.errors = 0

    @property
    def inner(self) -> WindowProfiler:
        return self._inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def window(self, model: str, version: str, start: float) -> FrameProfile | None:
        """This process's profile of the window plus the other holders' stored ones."""
        merged = self._inner.window(model, version, start)
        try:
            found = self._store.load_window_profiles(
                model, version, start, exclude_holder=self.holder
            )
        except Exception as exc:
            self.errors += 1
            if self._on_error is not None:
                self._on_error()
            log.warning(
                "window %s:%s@%s: the other replicas' profiles could not be read, "
                "judging this replica's rows alone: %s", model, version, start, exc,
            )  # fmt: skip
            return merged
        for row in found:
            try:
                theirs = FrameProfile.from_dict(row["profile"], bins=self._inner.bins)
                if merged is None:
                    merged = theirs
                else:
                    merged += theirs
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("window %s:%s@%s: the profile of %s is left out: %s",
                            model, version, start, row.get("holder"), exc)  # fmt: skip
        return merged

    def current(self, model: str, version: str) -> tuple[float, FrameProfile]:
        start = window_start(self._inner.clock(), self._inner.window_seconds)
        prof = self.window(model, version, start)
        return start, prof if prof is not None else self._inner.empty()


class WindowShare:
    """Writes this process's window profiles to the store every ``interval_seconds``.

    ``profilers``: (model, version) to its profiler (the unwrapped ones).  Bounded: each
    round writes at most every retained window of every model version, once.
    """

    def __init__(
        self,
        profilers: Mapping[tuple[str, str], WindowProfiler],
        store: WindowProfileStore,
        holder: str,
        *,
        interval_seconds: float = 5.0,
        on_error: Callable[[], None] | None = None,
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
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _failed(self, what: str, exc: Exception) -> None:
        self.errors += 1
        if self._on_error is not None:
            self._on_error()
        log.warning("window profiles: %s failed (the next round retries): %s", what, exc)

    def flush(self) -> int:
        """Write every window whose row count changed since the last write; return how
        many were written (0 when the store did not answer: counted, not raised)."""
        with self._lock:
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
                    return 0
                for r in rows:
                    self._sent[(r["model"], r["version"], r["window_start"])] = r["rows"]
            if oldest is not None:
                try:
                    self.store.prune_window_profiles(oldest)
                except Exception as exc:
                    self._failed("pruning old window profiles", exc)
            self.flushes += 1
            return len(rows)

    def start(self) -> WindowShare:
        """Start the thread (a second call does nothing)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="inferwatch-window-share", daemon=True
            )
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            try:
                self.flush()
            except Exception:  # a bug must not end the thread silently
                log.exception("window profiles: a flush round failed")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and write once more (what changed since the last round)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        try:
            self.flush()
        except Exception:
            log.exception("window profiles: the last flush failed")
