"""The write-behind prediction log: a bounded buffer and one writer thread.

The request path appends rows to an in-memory buffer and returns; one background thread
drains it in batches, feeds each batch to the window profiles (``profiler``, when given:
vectorised over the batch, never per request) and then writes it to the store in one
batched insert.  ``flush`` waits for what was queued so far, ``close`` drains
everything: a prediction that was answered is in the store after a clean shutdown.

Written on ``threading`` rather than ``queue.Queue`` because the writer takes rows in
batches and the buffer is bounded in *rows*, not in calls.  A row the store refuses on
its own is split from its batch and quarantined (see :meth:`PredictionLog._write`).

Every store call is bounded in time (``call_timeout``): it runs on a helper thread and
the writer waits for it at most that long, because a frozen database (SIGSTOPped, a
hung network path) answers nothing, so no socket or statement timeout ever fires; a call
still hanging makes the next one fail at once, so at most one thread per caller waits on
a frozen store.  With a :class:`~inferwatch.spill.SpillFile`, a batch the store did not
take goes to that file and the batches after it follow it there (order is kept), and a
replay thread sends the file back once the store answers (idempotent inserts: exactly
once).  Without one, a store that is down is retried with backoff for ``retry_seconds``
and the rows are then counted failed.  ``strict`` makes each ``enqueue`` with
``on_stored`` learn whether its rows were committed (the server's
``store.durability: strict``).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from inferwatch.errors import StoreError, StoreRejectedError
from inferwatch.observation import PredictionRecord
from inferwatch.ports import MetricsHook, PredictionSink, QuarantineSink, WindowSink

if TYPE_CHECKING:
    from inferwatch.jsonl_sink import RotatingJsonl
    from inferwatch.spill import SpillFile

__all__ = ["MonitorStats", "PredictionLog"]

log = logging.getLogger("inferwatch.monitor")

#: the longest the replay thread waits between two tries of a store that is down
_REPLAY_BACKOFF_MAX = 1.0


class _Bounded:
    """Runs each call on one daemon helper thread and waits for it at most ``timeout``.

    The only bound that holds against a frozen database: its kernel still acknowledges
    TCP, so neither keepalives nor a statement timeout (which the frozen server would
    have to enforce) ever fire.  A call past the bound raises :class:`StoreError` and is
    left to finish on its own (a write that commits later is harmless: inserts are
    idempotent); until it has, every call fails at once, so a frozen store holds at most
    one thread (and one pooled connection) per caller.  A daemon thread, so a process
    exiting on SIGTERM never waits for it.
    """

    def __init__(self, timeout: float | None, name: str) -> None:
        self.timeout = timeout
        self._name = name
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], threading.Event, list[Any]]]
        self._jobs = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._hung: threading.Event | None = None
        self._since = 0.0

    def __call__(self, call: Callable[[], int]) -> int:
        if self.timeout is None:
            return call()
        if self._hung is not None:
            if not self._hung.is_set():
                raise StoreError(
                    f"the store has not answered a call made {time.monotonic() - self._since:.0f}"
                    " s ago (frozen or unreachable); not sending another"
                )
            self._hung = None
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
            self._thread.start()
        done = threading.Event()
        box: list[Any] = []
        self._since = time.monotonic()
        self._jobs.put((call, done, box))
        if not done.wait(self.timeout):
            self._hung = done
            raise StoreError(f"the store did not answer within {self.timeout:g} s")
        ok, value = box[0]
        if ok:
            return int(value)
        raise value

    def _serve(self) -> None:
        while True:
            call, done, box = self._jobs.get()
            try:
                box.append((True, call()))
            except BaseException as exc:  # handed to the caller, raised there
                box.append((False, exc))
            done.set()


@dataclass(slots=True)
class _Waiter:
    """An ``enqueue`` waiting to learn whether rows ``[start, end)`` were committed."""

    start: int
    end: int
    done: Callable[[bool], None]
    ok: bool = True


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
    #: rows appended to the spill file (cumulative) and rows replayed from it to the store
    spilled: int = 0
    replayed: int = 0
    #: rows in the spill file now, not yet stored (also those left by an earlier process)
    spill_pending: int = 0
    #: rows left out of the store by ``sample_rate`` (still profiled and counted)
    sampled: int = 0


class PredictionLog:
    """A bounded buffer of prediction rows written to ``sink`` by one background thread.

    ``enqueue_timeout`` is how long :meth:`enqueue` blocks when the buffer holds
    ``queue_size`` rows (the store is slower than traffic); rows still without room after
    that are dropped and counted, so a stalled store slows the service down before it
    loses data.  ``profiler`` (anything with ``add(model, version, records)``) receives
    every drained batch, split by model version, before the batch is written; it is fed
    even when the store is down, since the profiles live in memory.  ``metrics`` is told
    of every written, dropped, failed and quarantined row.

    ``call_timeout`` bounds every store call (None: unbounded).  ``spill``, when given,
    keeps what the store did not take (see the module docstring); the batches of a spill
    file left by an earlier process are replayed as soon as the log is built.
    ``strict``: a batch is written at once when someone waits on it (``on_stored``),
    never spilled (a row is either committed or its waiter hears False), and what the
    store does not take is counted failed.  ``drain_timeout`` bounds :meth:`close`.
    ``sample_rate`` (0 < rate <= 1) stores that share of the rows, chosen by a hash of
    the prediction id (the same ids on every replica and every re-send); the profiler
    and the metrics still see every row.
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
        call_timeout: float | None = None,
        spill: SpillFile | None = None,
        strict: bool = False,
        drain_timeout: float = 30.0,
        replay_batch: int = 5000,
        sample_rate: float = 1.0,
        jsonl: RotatingJsonl | None = None,
    ) -> None:
        if not 0 < sample_rate <= 1:
            raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate!r}")
        self.sink = sink
        self.metrics = metrics
        self.profiler = profiler
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.enqueue_timeout = enqueue_timeout
        self.retry_seconds = retry_seconds
        self.call_timeout = call_timeout
        self.spill = spill
        self.strict = strict
        self.drain_timeout = drain_timeout
        self.replay_batch = replay_batch
        self.sample_rate = sample_rate
        self.jsonl = jsonl
        # a row is stored when the CRC-32 of its id falls below this
        self._sample_below = int(sample_rate * 2**32)
        self._sampled = 0
        self._buf: deque[PredictionRecord] = deque()
        self._cond = threading.Condition()
        self._logged = self._written = self._dropped = self._failed = 0
        self._quarantined = 0
        self._profile_errors = 0
        self._spilled = self._replayed = 0
        # rows an earlier process left in the spill file: flush() waits for them too
        self._carried = spill.pending_rows if spill is not None else 0
        self._closing = False
        self._writer_done = False
        self._drain_deadline = math.inf
        self._thread: threading.Thread | None = None
        self._replayer: threading.Thread | None = None
        self._direct = _Bounded(call_timeout, "inferwatch-log-store-call")
        self._replay_call = _Bounded(call_timeout, "inferwatch-log-replay-call")
        # the batch the writer took and has not finished writing: find() looks here too,
        # so a row is always in the buffer, in flight or in the store (never in between)
        self._inflight: list[PredictionRecord] = []
        # strict waiters, in row order: rows [start, end) of the rows ever buffered
        self._waiters: deque[_Waiter] = deque()
        self._accepted = 0  # rows ever put into the buffer
        self._taken = 0  # rows ever taken from it by the writer
        if self._carried:
            self._ensure_started()  # on start, an existing spill file is replayed

    def enqueue(
        self,
        records: Sequence[PredictionRecord],
        *,
        block: bool = True,
        on_stored: Callable[[bool], None] | None = None,
    ) -> None:
        """Queue rows for the store: blocks up to ``enqueue_timeout`` for room (not at all
        when ``block`` is false: the server's event loop never waits), then drops (and
        counts) what still does not fit.

        ``on_stored`` (for ``strict``) is called once, from the writer thread, with True
        when every row of this call is committed to the store, False when any was not
        (dropped here, refused, or the store down): the writer takes the buffer at once
        rather than after ``flush_interval``, so waiting costs about one commit.
        """
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
            start = self._accepted
            self._accepted += len(take)
            lost = len(records) - len(take)
            if lost:
                self._dropped += lost
                log.error("prediction log buffer full: dropped %d rows", lost)
            if on_stored is not None and take:
                # rows dropped here already make it False; the waiter still follows the
                # rows that went in, so its answer comes after they are settled
                self._waiters.append(_Waiter(start, self._accepted, on_stored, ok=not lost))
                self._cond.notify_all()
            elif len(self._buf) >= self.batch_size:
                self._cond.notify_all()
        if on_stored is not None and not take:
            on_stored(False)
        if lost and self.metrics is not None:
            self.metrics.log_queue(depth=len(self._buf), written=0, dropped=lost, failed=0)

    def find(self, ids: Collection[str]) -> dict[str, PredictionRecord]:
        """The rows among ``ids`` not yet committed to the store: still buffered, or in the
        batch the writer is writing right now (kept until its write returns).

        What lets a label arrive before its prediction row is flushed: look here first,
        then in the store; a row leaves the in-flight batch only after its commit, so it
        is always in one of the two (or, during a store outage, in the spill file: not
        searched, since a label cannot be stored then either).  One pass over the buffer
        under its lock.
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
                    spill = self.spill
                    if spill is not None:
                        watch_spill = getattr(self.metrics, "watch_spill", None)
                        if watch_spill is not None:
                            watch_spill(lambda: spill.size)
                        self._replayer = threading.Thread(
                            target=self._replay_run, name="inferwatch-log-replay", daemon=True
                        )
                        self._replayer.start()
                    self._thread = threading.Thread(
                        target=self._run, name="inferwatch-log-writer", daemon=True
                    )
                    self._thread.start()

    def start(self) -> PredictionLog:
        """Start the background writer now (``enqueue`` starts it on first use anyway)."""
        self._ensure_started()
        return self

    def _take(self) -> tuple[list[PredictionRecord], int]:
        with self._cond:
            if len(self._buf) < self.batch_size and not self._closing and not self._waiters:
                self._cond.wait(self.flush_interval)
            n = min(len(self._buf), self.batch_size)
            batch = [self._buf.popleft() for _ in range(n)]
            self._inflight = batch  # under the lock that took it from the buffer
            start = self._taken
            self._taken += n
            return batch, start

    def _run(self) -> None:
        while True:
            batch, start = self._take()
            if batch:
                self._profile(batch)
                unstored = self._write(batch)
                if self._waiters:
                    self._settle(batch, start, unstored)
            with self._cond:
                self._inflight = []  # written, spilled, quarantined or failed: no longer ours
                if self._closing and not self._buf:
                    self._writer_done = True
                    self._cond.notify_all()
                    return
                self._cond.notify_all()  # wake producers waiting for room and flush() callers

    def _settle(self, batch: list[PredictionRecord], start: int, unstored: set[str]) -> None:
        """Tell the strict waiters whose rows were in ``batch`` whether they are stored."""
        end = start + len(batch)
        bad = {start + i for i, rec in enumerate(batch) if rec.id in unstored} if unstored else ()
        ready: list[_Waiter] = []
        with self._cond:
            for w in self._waiters:
                if w.start >= end:
                    break
                if bad and any(w.start <= pos < w.end for pos in bad):
                    w.ok = False
            while self._waiters and self._waiters[0].end <= end:
                ready.append(self._waiters.popleft())
        for w in ready:
            try:
                w.done(w.ok)
            except Exception:  # a waiter's callback must not stop the writer
                log.exception("a strict prediction-log waiter failed")

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

    def _write(self, batch: list[PredictionRecord]) -> set[str]:
        """Write the batch; return the ids of its rows that are not in the store now.

        Rows the store refuses on their own (:class:`StoreRejectedError`: an id stored
        with other values, a value a column cannot hold) never take their batch with
        them: the batch is split in halves until each refused row stands alone, the good
        rows are written and each refused row is quarantined (``quarantine_predictions``
        of the sink, with the reason) and counted.

        A store that is down or did not answer within ``call_timeout``: with a spill file
        (and not ``strict``) the rows go there at once, and so do the batches after them
        until the replay thread has emptied it, so the writer never waits on a store that
        is down and rows reach the store in the order they came; without one they are
        retried with backoff for ``retry_seconds`` (``strict``: not retried, its waiters
        are answering a request), then counted failed.
        """
        if self.jsonl is not None:
            try:
                self.jsonl.write(batch)
            except OSError as exc:  # a copy: its failure costs the store nothing
                log.error("appending %d rows to %s failed: %s", len(batch), self.jsonl.path, exc)
        if self.sample_rate < 1:
            batch = self._sample(batch)
            if not batch:
                return set()
        spill = self.spill if not self.strict else None
        if spill is not None:
            taken = self._to_spill(batch, only_if_pending=True)
            if taken is not None:
                return set() if taken else {rec.id for rec in batch}
        now = time.monotonic()
        give_up = now if spill is not None or self.strict else now + self.retry_seconds
        written, quarantined, lost, down = self._write_split(batch, give_up, self._direct)
        if down and spill is not None and self._to_spill(down):
            down = []
        failed = len(lost) + len(down)
        self._account(written, failed, len(quarantined))
        if written == len(batch):
            return set()
        return {rec.id for rec in (*quarantined, *lost, *down)}

    def _sample(self, batch: list[PredictionRecord]) -> list[PredictionRecord]:
        """The rows of ``batch`` that ``sample_rate`` keeps; the others are counted
        ``sampled`` (done: a strict waiter hears True, flush() does not wait for them)."""
        below = self._sample_below
        kept = [rec for rec in batch if zlib.crc32(rec.id.encode()) < below]
        left_out = len(batch) - len(kept)
        if left_out:
            with self._cond:
                self._sampled += left_out
            hook = getattr(self.metrics, "log_sampled", None)
            if hook is not None:
                hook(left_out)
        return kept

    def _to_spill(
        self, rows: Sequence[PredictionRecord], *, only_if_pending: bool = False
    ) -> bool | None:
        """Append ``rows`` to the spill file: True when they are there; None when
        ``only_if_pending`` and the file is empty (write to the store instead); False
        when the file is full or the disk refused (the rows are counted failed)."""
        spill = self.spill
        assert spill is not None
        try:
            appended = spill.append(rows, only_if_pending=only_if_pending)
        except OSError as exc:
            log.error("appending %d rows to the spill file failed (lost): %s", len(rows), exc)
            appended = False
        else:
            if not appended and only_if_pending and not spill:
                return None
        if not appended:
            if only_if_pending:  # counted here; the direct path counts its own
                self._account(0, len(rows), 0)
            log.error(
                "the spill file %s is full (store.spill_max_bytes=%d): %d rows lost",
                spill.path, spill.max_bytes, len(rows),
            )  # fmt: skip
            return False
        with self._cond:
            self._spilled += len(rows)
            self._cond.notify_all()  # the replay thread
        hook = getattr(self.metrics, "log_spill", None)
        if hook is not None:
            hook(spilled=len(rows), replayed=0)
        return True

    def _replay_run(self) -> None:
        """Send the spill file back to the store, oldest rows first, whenever it has any:
        right away while the store takes them, with backoff (at most
        ``_REPLAY_BACKOFF_MAX``) while it does not.  The file is truncated once all of
        it is stored.  Stops after :meth:`close` once the writer is done and the file is
        empty or the drain deadline has passed (the rest stays for the next start)."""
        spill = self.spill
        assert spill is not None
        delay = 0.0
        while True:
            with self._cond:
                if delay:
                    self._cond.wait(max(min(delay, self._drain_deadline - time.monotonic()), 0))
                while not spill and not (self._closing and self._writer_done):
                    self._cond.wait(1.0)
                drained = not spill or time.monotonic() >= self._drain_deadline
                if self._closing and self._writer_done and drained:
                    self._cond.notify_all()
                    return
            records, offset, covered = spill.read(self.replay_batch)
            written, quarantined, lost, down = self._write_split(
                records, time.monotonic(), self._replay_call
            )
            if down:  # still down: all of it again later (what did go in is not doubled)
                delay = min(max(delay * 2, 0.05), _REPLAY_BACKOFF_MAX)
                continue
            delay = 0.0
            spill.advance(offset, covered)
            with self._cond:
                self._replayed += len(records)
            # rows of a record that could not be decoded are lost: counted failed
            self._account(written, len(lost) + covered - len(records), len(quarantined))
            hook = getattr(self.metrics, "log_spill", None)
            if hook is not None:
                hook(spilled=0, replayed=len(records))
            log.info(
                "replayed %d rows from the spill file (%d left)", len(records), spill.pending_rows
            )

    def _write_split(
        self, batch: Sequence[PredictionRecord], give_up: float, call: _Bounded
    ) -> tuple[int, list[PredictionRecord], list[PredictionRecord], list[PredictionRecord]]:
        """(written, quarantined rows, refused rows lost, rows not written: store down)."""
        try:
            written = self._retrying(self.sink.write_predictions, batch, give_up, call)
        except StoreRejectedError as exc:
            if len(batch) == 1:
                quarantined, lost, down = self._quarantine(batch, str(exc), give_up, call)
                return 0, quarantined, lost, down
            mid = len(batch) // 2
            left = self._write_split(batch[:mid], give_up, call)
            right = self._write_split(batch[mid:], give_up, call)
            return (
                left[0] + right[0], left[1] + right[1], left[2] + right[2], left[3] + right[3]
            )  # fmt: skip
        except _GaveUp:
            return 0, [], [], list(batch)
        if written < len(batch):  # a sink that wrote fewer rows than it was given
            return written, [], list(batch[written:]), []
        return written, [], [], []

    def _quarantine(
        self, records: Sequence[PredictionRecord], reason: str, give_up: float, call: _Bounded
    ) -> tuple[list[PredictionRecord], list[PredictionRecord], list[PredictionRecord]]:
        """(quarantined, lost, down): keep refused rows aside when the sink can, else lose
        them; a store that went down meanwhile leaves them ``down`` (spilled, retried)."""
        sink = self.sink
        if not isinstance(sink, QuarantineSink):
            log.error("the store refused %d prediction rows (lost): %s", len(records), reason)
            return [], list(records), []
        log.warning("the store refused %d prediction rows; quarantined: %s", len(records), reason)
        try:
            self._retrying(
                lambda rows: sink.quarantine_predictions(rows, reason), records, give_up, call
            )
            return list(records), [], []
        except StoreRejectedError as exc:
            log.error("quarantining %d rows failed; lost: %s", len(records), exc)
            return [], list(records), []
        except _GaveUp:
            return [], [], list(records)

    def _retrying(
        self,
        write: Callable[[Sequence[PredictionRecord]], int],
        rows: Sequence[PredictionRecord],
        give_up: float,
        call: _Bounded,
    ) -> int:
        """``write(rows)`` through ``call`` (bounded in time), retried with backoff while
        the store is down, until ``give_up``.

        Raises :class:`StoreRejectedError` at once (retrying cannot help) and ``_GaveUp``
        when the store stayed down or the write failed unexpectedly.
        """
        delay = 0.05
        while True:
            try:
                return call(lambda: write(rows))
            except StoreRejectedError:
                raise
            except StoreError as exc:
                if time.monotonic() + delay > give_up:
                    if self.spill is None or self.strict:
                        log.error("store write failed for good; %d rows lost: %s", len(rows), exc)
                    else:
                        log.warning(
                            "store write failed; %d rows to the spill file: %s", len(rows), exc
                        )
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
                self._spilled,
                self._replayed,
                self.spill.pending_rows if self.spill is not None else 0,
                self._sampled,
            )

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every row logged so far is written (or failed), including rows in the
        spill file (an earlier process's too); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._logged + self._carried
            self._cond.notify_all()
            while (
                self._written + self._dropped + self._failed + self._quarantined + self._sampled
                < target
            ):
                if self._thread is None or not self._thread.is_alive():
                    return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(0.05 if left is None else min(left, 0.05))
                self._cond.notify_all()
        return True

    def close(self, timeout: float | None = None) -> bool:
        """Write everything still buffered and replay the spill file, then stop; True if
        all was written.

        Bounded by ``timeout`` (None: ``drain_timeout``): what the spill file still holds
        then stays there for the next start, which replays it; rows still in the buffer
        when the writer is stuck past it are lost (logged).
        """
        budget = self.drain_timeout if timeout is None else timeout
        deadline = time.monotonic() + budget
        with self._cond:
            self._drain_deadline = deadline
            self._closing = True
            self._cond.notify_all()
        # the replay thread stops at the deadline, but may be inside one (bounded) call
        grace = {self._replayer: (self.call_timeout or 0.0) + 0.5}
        for thread in (self._thread, self._replayer):
            if thread is not None:
                thread.join(max(deadline - time.monotonic(), 0.0) + grace.get(thread, 0.0))
                if thread.is_alive():
                    log.error("prediction log %s did not finish within %ss", thread.name, budget)
                    return False
        s = self.stats
        if self.spill is not None:
            if s.spill_pending:
                log.warning(
                    "%d rows stay in the spill file %s for the next start",
                    s.spill_pending, self.spill.path,
                )  # fmt: skip
            self.spill.close()
        if self.jsonl is not None:
            self.jsonl.close()
        return (
            s.queued == 0
            and s.failed == 0
            and s.dropped == 0
            and s.quarantined == 0
            and s.spill_pending == 0
        )
