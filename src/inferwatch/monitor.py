"""The observation pipeline: ``Monitor.log`` → live metrics, window profiles and a bounded
write-behind log.

The request path does the cheap part (build records, update metric children, append to
an in-memory buffer) and returns; one background thread drains the buffer in batches,
feeds each batch to the window profiles (``profiler``, when given: vectorised over the
batch, never per request) and then writes it to the store in one batched insert.
``flush`` waits for what was logged so far, ``close`` drains everything: a prediction
that was answered is in the store after a clean shutdown.

Written on ``threading`` rather than ``queue.Queue`` because the writer takes rows in
batches and the buffer is bounded in *rows*, not in calls.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from inferwatch.errors import StoreError
from inferwatch.observation import Observation, PredictionRecord
from inferwatch.ports import MetricsHook, PredictionSink, WindowSink

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from inferwatch.config import Settings
    from inferwatch.ports import Store

__all__ = ["Monitor", "MonitorStats", "new_prediction_id"]

log = logging.getLogger("inferwatch.monitor")


def new_prediction_id() -> str:
    return str(uuid.uuid4())


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class MonitorStats:
    """Counts since the monitor started."""

    logged: int
    written: int
    dropped: int
    failed: int
    queued: int
    profile_errors: int = 0


class Monitor:
    """Records predictions: live metrics now, the store soon after, nothing lost on close.

    Use it inside your own service::

        monitor = Monitor(SQLStore("sqlite:///predictions.db"))
        ids = monitor.log("churn", "3", inputs=[{"age": 41}], outputs=["yes"], scores=[0.81])
        ...
        monitor.close()

    ``enqueue_timeout`` is how long ``log`` blocks when the buffer holds ``queue_size``
    rows (the store is slower than traffic); rows still without room after that are
    dropped and counted, so a stalled store slows the service down before it loses data.

    ``profiler`` (a :class:`~inferwatch.windows.WindowProfiler` or anything with
    ``add(model, version, records)``) receives every drained batch, split by model
    version, before the batch is written; it is fed even when the store is down, since
    the profiles live in memory.  Its cost is the writer thread's, not the requests'.
    """

    def __init__(
        self,
        sink: PredictionSink,
        *,
        metrics: MetricsHook | None = None,
        queue_size: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        enqueue_timeout: float = 5.0,
        retry_seconds: float = 30.0,
        clock: Callable[[], datetime] = _utcnow,
        profiler: WindowSink | None = None,
    ) -> None:
        self.sink = sink
        self.metrics = metrics
        self.profiler = profiler
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.enqueue_timeout = enqueue_timeout
        self.retry_seconds = retry_seconds
        self.clock = clock
        self._buf: deque[PredictionRecord] = deque()
        self._cond = threading.Condition()
        self._logged = self._written = self._dropped = self._failed = 0
        self._profile_errors = 0
        self._closing = False
        self._thread: threading.Thread | None = None

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_settings(
        cls, settings: Settings, *, registry: CollectorRegistry | None = None
    ) -> Monitor:
        """A monitor writing to the configured store, with metrics on ``registry``."""
        from inferwatch.metrics import Metrics
        from inferwatch.store import open_store

        store: Store = open_store(settings.store.url)
        if settings.store.auto_migrate:
            store.upgrade()
        s = settings.store
        return cls(
            store,
            metrics=Metrics(registry) if registry is not None else None,
            queue_size=s.queue_size,
            batch_size=s.batch_size,
            flush_interval=s.flush_interval_seconds,
            enqueue_timeout=s.enqueue_timeout_seconds,
        )

    # -- request path --------------------------------------------------------------------
    def log(
        self,
        model: str,
        version: str,
        inputs: Sequence[Mapping[str, Any]],
        outputs: Sequence[Any],
        *,
        ids: Sequence[str] | None = None,
        scores: Sequence[float | None] | None = None,
        probabilities: Sequence[Mapping[str, float] | None] | None = None,
        timestamps: Sequence[datetime] | None = None,
        latency_seconds: float | None = None,
        trace_id: str | None = None,
    ) -> list[str]:
        """Record a batch of predictions; return their ids (generated when not given)."""
        n = len(inputs)
        for name, seq in (("outputs", outputs), ("ids", ids), ("scores", scores)):
            if seq is not None and len(seq) != n:
                raise ValueError(f"{name} has {len(seq)} items but inputs has {n}")
        for name, seq in (("probabilities", probabilities), ("timestamps", timestamps)):
            if seq is not None and len(seq) != n:
                raise ValueError(f"{name} has {len(seq)} items but inputs has {n}")
        ids = list(ids) if ids is not None else [new_prediction_id() for _ in range(n)]
        now = self.clock()
        records = [
            PredictionRecord(
                id=ids[i],
                model=model,
                version=version,
                timestamp=timestamps[i] if timestamps is not None else now,
                inputs=inputs[i],
                output=outputs[i],
                score=None if scores is None else scores[i],
                latency_seconds=latency_seconds,
                trace_id=trace_id,
                probabilities=None if probabilities is None else probabilities[i],
            )
            for i in range(n)
        ]
        self.log_observation(Observation(model, version, records, latency_seconds))
        return ids

    def log_observation(self, observation: Observation) -> None:
        """Update live metrics and queue the rows for the store."""
        if self.metrics is not None:
            self.metrics.observe(observation)
        self._enqueue(observation.records)

    def _enqueue(self, records: Sequence[PredictionRecord]) -> None:
        if self._closing:
            raise RuntimeError("this Monitor is closed; create a new one to log more")
        self._ensure_started()
        deadline = time.monotonic() + self.enqueue_timeout
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

    # -- writer --------------------------------------------------------------------------
    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._cond:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="inferwatch-log-writer", daemon=True
                    )
                    self._thread.start()

    def start(self) -> Monitor:
        """Start the background writer now (``log`` starts it on first use anyway)."""
        self._ensure_started()
        return self

    def _take(self) -> list[PredictionRecord]:
        with self._cond:
            if len(self._buf) < self.batch_size and not self._closing:
                self._cond.wait(self.flush_interval)
            n = min(len(self._buf), self.batch_size)
            return [self._buf.popleft() for _ in range(n)]

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch:
                self._profile(batch)
                self._write(batch)
            with self._cond:
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
        delay, give_up = 0.05, time.monotonic() + self.retry_seconds
        while True:
            try:
                written = self.sink.write_predictions(batch)
            except StoreError as exc:
                if time.monotonic() + delay > give_up:
                    log.error("store write failed for good; %d rows lost: %s", len(batch), exc)
                    self._account(0, len(batch))
                    return
                log.warning("store write failed, retrying in %.2fs: %s", delay, exc)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            except Exception:
                log.exception("unexpected error writing %d prediction rows", len(batch))
                self._account(0, len(batch))
                return
            self._account(written, len(batch) - written)
            return

    def _account(self, written: int, failed: int) -> None:
        with self._cond:
            self._written += written
            self._failed += failed
            depth = len(self._buf)
        if self.metrics is not None:
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
            )

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every row logged so far is written (or failed); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._logged
            self._cond.notify_all()
            while self._written + self._dropped + self._failed < target:
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
        return s.queued == 0 and s.failed == 0 and s.dropped == 0

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
