"""A model's inference worker: model calls off the event loop, concurrent requests batched.

The event loop never runs a model.  Each served model version has a worker (one thread by
default, ``models[].workers`` for more) and a queue of requests.  A request hands its rows
to the queue and awaits a future; the worker takes every request waiting (up to
``max_batch_size`` rows), makes one model call for all of them, and hands each request its
slice of the answer with one wake-up of the loop per batch.

Batching is adaptive.  A busy worker batches by itself: while it runs one call, the next
requests queue, and the next call takes them all.  An idle worker that finds one request
may also wait for company (at most a quarter of a mean call, never past ``max_wait``),
but only while requests are coming together: the last call answered more than one
request, or an exponentially weighted mean of the time between arrivals is below the
wait.  Clients that each wait for their
answer arrive in bursts right after a call returns, which the mean alone misses.  A lone
request on a quiet server is never delayed.

Why threads and not processes: scikit-learn, numpy and ONNX Runtime release the GIL in
their heavy loops, and a process pool would pickle every batch both ways.  A pure-Python
model holds the GIL and gains nothing from the thread but the loop's freedom to answer
other requests (``/healthz`` stays fast).

Failures stay with their request: when a batched call raises or answers with the wrong
number of predictions, each request of the batch is run again on its own, so only the
request that breaks the model gets the 500.  A request whose answer takes longer than
``timeout`` gets a 504; the thread cannot be interrupted, so the call runs on and its
answer is dropped.  Past ``max_queue`` waiting rows a request is refused with 503 and
``Retry-After`` instead of queueing without bound.

Written here because no library fits the server: Triton's and MLServer's batchers live
inside their own servers, and Ray Serve's ``@serve.batch`` needs Ray.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from inferwatch.ports import ModelAdapter, Prediction

if TYPE_CHECKING:
    from inferwatch.metrics import ModelMetrics
    from inferwatch.tracing import RequestTimes

__all__ = ["BatchSettings", "InferenceWorker", "ModelCallError", "Overloaded"]

log = logging.getLogger("inferwatch.server")

#: Weight of the newest gap in the mean time between arrivals (and of the newest call in
#: the mean call time).
ARRIVAL_SMOOTHING = 0.2
#: An idle worker waits for company at most this share of the model's mean call time (and
#: never past ``max_wait``): a 20 ms model waits up to 5 ms, a 0.3 ms one 0.075 ms.
WAIT_SHARE = 0.25


@dataclass(frozen=True, slots=True)
class BatchSettings:
    """How one model is run: see the module docstring."""

    max_batch_size: int = 64
    max_wait: float = 0.005
    timeout: float = 30.0
    max_queue: int = 10_000
    workers: int = 1


class ModelCallError(Exception):
    """The model raised, or answered with the wrong number of predictions."""


class Overloaded(Exception):
    """The queue holds ``max_queue`` rows already."""


@dataclass(slots=True, eq=False)
class _Job:
    rows: list[dict[str, Any]]
    future: asyncio.Future[Sequence[Prediction]]
    loop: asyncio.AbstractEventLoop
    enqueued: float
    abandoned: bool = False  # timed out or cancelled: skipped if not yet started
    started: float = 0.0  # perf_counter when its model call began, and ended
    finished: float = 0.0
    batch_rows: int = 0  # rows in that call
    result: Sequence[Prediction] | BaseException | None = field(default=None)


class InferenceWorker:
    """The worker threads and queue of one served model version (started on first use)."""

    def __init__(
        self,
        name: str,
        version: str,
        adapter: ModelAdapter,
        settings: BatchSettings | None = None,
        metrics: ModelMetrics | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.adapter = adapter
        self.settings = settings or BatchSettings()
        self.metrics = metrics
        if metrics is not None:  # the series exist (at 0) from the start, not the first call
            _ = metrics.batch_size, metrics.queue
        self._jobs: deque[_Job] = deque()
        self._rows = 0  # rows waiting in _jobs
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closing = False
        self._last_arrival = 0.0
        self._gap = float("inf")  # mean time between arrivals (seconds)
        self._last_jobs = 0  # requests in the last call
        self._call_seconds = 0.0  # mean time of a model call

    # -- the event loop's side --------------------------------------------------------------

    async def predict(
        self, rows: list[dict[str, Any]], times: RequestTimes | None = None
    ) -> Sequence[Prediction]:
        """The model's predictions for ``rows``, from a worker thread; ``times`` (for
        tracing) gets when the model call began and ended and how many rows it held.

        Raises :class:`ModelCallError`, :class:`Overloaded` or :class:`TimeoutError`.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Sequence[Prediction]] = loop.create_future()
        now = time.perf_counter()
        job = _Job(rows, future, loop, now)
        with self._cond:
            if self._closing:
                raise Overloaded("the model is shutting down")
            if self._rows and self._rows + len(rows) > self.settings.max_queue:
                raise Overloaded(f"{self._rows} rows are waiting for the model")
            if not self._threads:
                self._start()
            gap = now - self._last_arrival
            self._last_arrival = now
            self._gap = (
                gap
                if self._gap == float("inf")
                else self._gap + ARRIVAL_SMOOTHING * (gap - self._gap)
            )
            self._jobs.append(job)
            self._rows += len(rows)
            self._cond.notify()
        # a timer handle rather than asyncio.timeout(): the same effect at a fraction of
        # the cost per request (no task rescheduling)
        timer = loop.call_later(self.settings.timeout, _expire, future)
        try:
            return await future
        except BaseException:  # TimeoutError, or CancelledError when the client left
            job.abandoned = True
            raise
        finally:
            timer.cancel()
            if times is not None:
                times.started, times.finished, times.batch_rows = (
                    job.started,
                    job.finished,
                    job.batch_rows,
                )

    # -- the worker's side ------------------------------------------------------------------

    def _start(self) -> None:
        for i in range(self.settings.workers):
            thread = threading.Thread(
                target=self._run, name=f"inferwatch-model-{self.name}-{i}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _take(self) -> list[_Job] | None:
        """Wait for work; take up to ``max_batch_size`` rows of it (at least one job)."""
        s = self.settings
        with self._cond:
            while not self._jobs:
                if self._closing:
                    return None
                self._cond.wait()
            batch: list[_Job] = []
            rows = 0
            deadline = None
            while True:
                while self._jobs and (
                    not batch or rows + len(self._jobs[0].rows) <= s.max_batch_size
                ):
                    job = self._jobs.popleft()
                    self._rows -= len(job.rows)
                    if job.abandoned:  # timed out or cancelled while it waited
                        continue
                    batch.append(job)
                    rows += len(job.rows)
                if not batch or self._jobs or rows >= s.max_batch_size or s.max_wait <= 0:
                    break
                if self._closing:
                    break
                if self._gap >= s.max_wait and self._last_jobs <= 1:
                    break  # quiet: company is not expected in time
                if deadline is None:
                    # waiting costs the requests already taken at most a share of a call
                    wait = min(s.max_wait, WAIT_SHARE * self._call_seconds)
                    deadline = time.perf_counter() + wait
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self._cond.wait(left)
            self._last_jobs = len(batch)
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            if batch:
                self._call(batch)

    def _call(self, batch: list[_Job]) -> None:
        started = time.perf_counter()
        if self.metrics is not None:
            for job in batch:
                self.metrics.queue.observe(started - job.enqueued)
        rows = batch[0].rows if len(batch) == 1 else [r for job in batch for r in job.rows]
        for job in batch:
            job.started, job.batch_rows = started, len(rows)
        try:
            predictions = self._predict(rows)
        except ModelCallError as exc:
            if len(batch) == 1:
                batch[0].result = exc
            else:  # find the request that broke it: each runs on its own
                for job in batch:
                    try:
                        job.result = self._predict(job.rows)
                    except ModelCallError as one:
                        job.result = one
        else:
            if len(batch) == 1:
                batch[0].result = predictions
            else:
                at = 0
                for job in batch:
                    job.result = predictions[at : at + len(job.rows)]
                    at += len(job.rows)
        finished = time.perf_counter()
        loops: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in batch:
            job.finished = finished
            loops.setdefault(job.loop, []).append(job)
        for loop, jobs in loops.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_deliver, jobs)

    def _predict(self, rows: list[dict[str, Any]]) -> Sequence[Prediction]:
        t0 = time.perf_counter()
        try:
            predictions = self.adapter.predict(rows)
        except Exception as exc:
            log.exception("model %s version %s failed to predict", self.name, self.version)
            raise ModelCallError(type(exc).__name__) from exc
        seconds = time.perf_counter() - t0
        self._call_seconds += ARRIVAL_SMOOTHING * (seconds - self._call_seconds)
        if self.metrics is not None:
            self.metrics.inference.observe(seconds)
            self.metrics.batch_size.observe(len(rows))
        if len(predictions) != len(rows):
            log.error(
                "model %s version %s answered %d predictions for %d instances",
                self.name,
                self.version,
                len(predictions),
                len(rows),
            )
            raise ModelCallError(f"{len(predictions)} predictions for {len(rows)} instances")
        return predictions

    # -- life -------------------------------------------------------------------------------

    @property
    def queued_rows(self) -> int:
        return self._rows

    def close(self, timeout: float = 5.0) -> bool:
        """Let queued requests finish, then stop the threads; False if one is still busy."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)


def _expire(future: asyncio.Future[Sequence[Prediction]]) -> None:
    """On the event loop: the request waited ``timeout`` seconds for its answer."""
    if not future.done():
        future.set_exception(TimeoutError())


def _deliver(jobs: list[_Job]) -> None:
    """On the event loop: resolve each waiting request's future (once per batch)."""
    for job in jobs:
        future, result = job.future, job.result
        if future.done():  # timed out or cancelled: its client has gone
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result if result is not None else ())
