"""The write-behind prediction log: a bounded buffer and one writer thread.

The request path appends rows to an in-memory buffer and returns; one background thread
drains it in batches, feeds each batch to the window profiles (``profiler``, when given:
vectorised over the batch, never per request) and then writes it to the store in one
batched insert.  ``flush`` waits for what was queued so far, ``close`` drains
everything: a prediction that was answered is in the store after a clean shutdown.

Written on ``threading`` rather than ``queue.Queue`` because the writer takes rows in
batches and the buffer is bounded in *rows*, not in calls.  A store that is down is
retried with backoff for ``retry_seconds``; a row the store refuses on its own is split
from its batch and quarantined (see :meth:`PredictionLog._write`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from inferwatch.errors import StoreError, StoreRejectedError
from inferwatch.observation import PredictionRecord
from inferwatch.ports import MetricsHook, PredictionSink, QuarantineSink, WindowSink

__all__ = ["MonitorStats", "PredictionLog"]

log = logging.getLogger("inferwatch.monitor")


class _GaveUp(Exception):
    """The prediction-log writer stopped retrying a write (already logged)."""


@dataclass(frozen=True, slots=True)
class MonitorStats:
    """Counts since the prediction log started."""

    logged: int
    written: int
    dropped: int
    failed: int
    queued: int
    profile_errors: int = 0
    quarantined: int = 0


class PredictionLog:
    """A bounded buffer of prediction rows written to ``sink`` by one background thread.

    ``enqueue_timeout`` is how long :meth:`enqueue` blocks when the buffer holds
    ``queue_size`` rows (the store is slower than traffic); rows still without room after
    that are dropped and counted, so a stalled store slows the service down before it
    loses data.  ``profiler`` (anything with ``add(model, version, records)``) receives
    every drained batch, split by model version, before the batch is written; it is fed
    even when the store is down, since the profiles live in memory.  ``metrics`` is told
    of every written, dropped, failed and quarantined row.
    """

    def __init__(
        self,
        sink: PredictionSink,
        *,
        metrics: MetricsHook | None = None,
        profiler: WindowSink | None = None,
        queue_size: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        enqueue_timeout: float = 5.0,
        retry_seconds: float = 30.0,
    ) -> None:
        self.sink = sink
        self.metrics = metrics
        self.profiler = profiler
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.enqueue_timeout = enqueue_timeout
        self.retry_seconds = retry_seconds
        self._buf: deque[PredictionRecord] = deque()
        self._cond = threading.Condition()
        self._logged = self._written = self._dropped = self._failed = 0
        self._quarantined = 0
        self._profile_errors = 0
        self._closing = False
        self._thread: threading.Thread | None = None
        # the batch the writer took and has not finished writing: find() looks here too,
        # so a row is always in the buffer, in flight or in the store (never in between)
        self._inflight: list[PredictionRecord] = []

    def enqueue(self, records: Sequence[PredictionRecord], *, block: bool = True) -> None:
        """Queue rows for the store: blocks up to ``enqueue_timeout`` for room (not at all
        when ``block`` is false: the server's event loop never waits), then drops (and
        counts) what still does not fit."""
        if self._closing:
            raise RuntimeError("this Monitor is closed; create a new one to log more")
        self._ensure_started()
        deadline = time.monotonic() + (self.enqueue_timeout if block else 0.0)
        with self._cond:
            self._logged += len(records)
            room = self.queue_size - len(self._buf)
            while room < len(records) and not self._closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
                room = self.queue_size - len(self._buf)
            take = records if room >= len(records) else records[: max(room, 0)]
            self._buf.extend(take)
            lost = len(records) - len(take)
            if lost:
                self._dropped += lost
                log.error("prediction log buffer full: dropped %d rows", lost)
            if len(self._buf) >= self.batch_size:
                self._cond.notify_all()
        if lost and self.metrics is not None:
            self.metrics.log_queue(depth=len(self._buf), written=0, dropped=lost, failed=0)

    def find(self, ids: Collection[str]) -> dict[str, PredictionRecord]:
        """The rows among ``ids`` not yet committed to the store: still buffered, or in the
        batch the writer is writing right now (kept until its write returns).

        What lets a label arrive before its prediction row is flushed: look here first,
        then in the store; a row leaves the in-flight batch only after its commit, so it
        is always in one of the two.  One pass over the buffer under its lock.
        """
        wanted = ids if isinstance(ids, set | frozenset) else set(ids)
        found: dict[str, PredictionRecord] = {}
        if not wanted:
            return found
        with self._cond:
            for rows in (self._inflight, self._buf):
                for rec in rows:
                    if rec.id in wanted:
                        found[rec.id] = rec
        return found

    # -- writer --------------------------------------------------------------------------
    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._cond:
                if self._thread is None:
                    # the queue gauge reads the buffer's length when scraped: always true
                    # (also while the store is down and no batch finishes) at no cost per row
                    watch = getattr(self.metrics, "watch_log_queue", None)
                    if watch is not None:
                        watch(self._buf.__len__)
                    self._thread = threading.Thread(
                        target=self._run, name="inferwatch-log-writer", daemon=True
                    )
                    self._thread.start()

    def start(self) -> PredictionLog:
        """Start the background writer now (``enqueue`` starts it on first use anyway)."""
        self._ensure_started()
        return self

    def _take(self) -> list[PredictionRecord]:
        with self._cond:
            if len(self._buf) < self.batch_size and not self._closing:
                self._cond.wait(self.flush_interval)
            n = min(len(self._buf), self.batch_size)
            batch = [self._buf.popleft() for _ in range(n)]
            self._inflight = batch  # under the lock that took it from the buffer
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch:
                self._profile(batch)
                self._write(batch)
            with self._cond:
                self._inflight = []  # written, quarantined or failed: no longer ours
                if self._closing and not self._buf:
                    self._cond.notify_all()
                    return
                self._cond.notify_all()  # wake producers waiting for room and flush() callers

    def _profile(self, batch: list[PredictionRecord]) -> None:
        """Feed the batch to the window profiles, one call per model version in it."""
        profiler = self.profiler
        if profiler is None:
            return
        head = batch[0]
        model, version = head.model, head.version
        groups: dict[tuple[str, str], list[PredictionRecord]] = {}
        if all(rec.model == model and rec.version == version for rec in batch):
            groups[(model, version)] = batch
        else:
            for rec in batch:
                groups.setdefault((rec.model, rec.version), []).append(rec)
        for (m, v), records in groups.items():
            try:
                profiler.add(m, v, records)
            except Exception:  # a profile bug must not stop the prediction log
                log.exception("profiling %d rows of %s:%s failed", len(records), m, v)
                with self._cond:
                    self._profile_errors += len(records)

    def _write(self, batch: list[PredictionRecord]) -> None:
        """Write the batch, retrying while the store is down (up to ``retry_seconds``).

        Rows the store refuses on their own (:class:`StoreRejectedError`: a duplicate id,
        a value a column cannot hold) never take their batch with them: the batch is
        split in halves until each refused row stands alone, the good rows are written
        and each refused row is quarantined (``quarantine_predictions`` of the sink, with
        the reason) and counted.  Only a store that is down is retried.
        """
        give_up = time.monotonic() + self.retry_seconds
        written, quarantined, failed = self._write_split(batch, give_up)
        self._account(written, failed, quarantined)

    def _write_split(
        self, batch: Sequence[PredictionRecord], give_up: float
    ) -> tuple[int, int, int]:
        """(written, quarantined, failed) rows of ``batch``."""
        try:
            written = self._retrying(self.sink.write_predictions, batch, give_up)
        except StoreRejectedError as exc:
            if len(batch) == 1:
                return 0, *self._quarantine(batch, str(exc), give_up)
            mid = len(batch) // 2
            left = self._write_split(batch[:mid], give_up)
            right = self._write_split(batch[mid:], give_up)
            return left[0] + right[0], left[1] + right[1], left[2] + right[2]
        except _GaveUp:
            return 0, 0, len(batch)
        return written, 0, len(batch) - written

    def _quarantine(
        self, records: Sequence[PredictionRecord], reason: str, give_up: float
    ) -> tuple[int, int]:
        """(quarantined, failed): keep refused rows aside when the sink can, else lose them."""
        sink = self.sink
        if not isinstance(sink, QuarantineSink):
            log.error("the store refused %d prediction rows (lost): %s", len(records), reason)
            return 0, len(records)
        log.warning("the store refused %d prediction rows; quarantined: %s", len(records), reason)
        try:
            return self._retrying(
                lambda rows: sink.quarantine_predictions(rows, reason), records, give_up
            ), 0
        except StoreRejectedError as exc:
            log.error("quarantining %d rows failed; lost: %s", len(records), exc)
        except _GaveUp:
            pass
        return 0, len(records)

    def _retrying(
        self,
        write: Callable[[Sequence[PredictionRecord]], int],
        rows: Sequence[PredictionRecord],
        give_up: float,
    ) -> int:
        """``write(rows)``, retried with backoff while the store is down, until ``give_up``.

        Raises :class:`StoreRejectedError` at once (retrying cannot help) and ``_GaveUp``
        when the store stayed down or the write failed unexpectedly.
        """
        delay = 0.05
        while True:
            try:
                return write(rows)
            except StoreRejectedError:
                raise
            except StoreError as exc:
                if time.monotonic() + delay > give_up:
                    log.error("store write failed for good; %d rows lost: %s", len(rows), exc)
                    raise _GaveUp from exc
                log.warning("store write failed, retrying in %.2fs: %s", delay, exc)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
            except Exception as exc:
                log.exception("unexpected error writing %d prediction rows", len(rows))
                raise _GaveUp from exc

    def _account(self, written: int, failed: int, quarantined: int = 0) -> None:
        with self._cond:
            self._written += written
            self._failed += failed
            self._quarantined += quarantined
            depth = len(self._buf)
        if self.metrics is not None:
            if quarantined:
                self.metrics.log_queue(
                    depth=depth,
                    written=written,
                    dropped=0,
                    failed=failed,
                    quarantined=quarantined,
                )
            else:  # a MetricsHook written before quarantine existed still works
                self.metrics.log_queue(depth=depth, written=written, dropped=0, failed=failed)

    # -- control -------------------------------------------------------------------------
    @property
    def stats(self) -> MonitorStats:
        with self._cond:
            return MonitorStats(
                self._logged,
                self._written,
                self._dropped,
                self._failed,
                len(self._buf),
                self._profile_errors,
                self._quarantined,
            )

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every row logged so far is written (or failed); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._logged
            self._cond.notify_all()
            while self._written + self._dropped + self._failed + self._quarantined < target:
                if self._thread is None or not self._thread.is_alive():
                    return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(0.05 if left is None else min(left, 0.05))
                self._cond.notify_all()
        return True

    def close(self, timeout: float | None = 30.0) -> bool:
        """Write everything still buffered and stop the writer; True if all was written."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.error("prediction log writer did not finish within %ss", timeout)
                return False
        s = self.stats
        return s.queued == 0 and s.failed == 0 and s.dropped == 0 and s.quarantined == 0
