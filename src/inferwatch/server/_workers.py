"""``inferwatch serve --workers N``: N worker processes whose ``/metrics`` sum exactly.

**Supervisor.** uvicorn's own multiprocess supervisor (``uvicorn.supervisors.Multiprocess``):
the parent binds the socket once, starts N spawned children and replaces one that dies
(its liveness ping also kills a hung one); SIGTERM/SIGINT to the parent stop every worker
gracefully (each drains its requests and its prediction log, as ``--workers 1`` does).
Chosen over gunicorn because each child then runs exactly the single-worker server:
:class:`WorkerConfig` is a ``uvicorn.Config`` whose ``load`` (run in the child) builds the
app and hands uvicorn the same connection guard (``server._connections``), so header and
body timeouts, the connection limit and the cheap ``/healthz`` stay per worker, with no
second worker class to keep in step.  ``--workers 1`` does not come here at all.

**Slots.** A worker takes slot ``K`` by an exclusive ``flock`` on ``RUNDIR/slot-K.lock``,
lowest free first; the kernel frees it when the process dies, even by SIGKILL, so N live
workers hold N slots and a replacement inherits the dead worker's slot.  Slots ``N..2N-1``
are taken only while a rolling restart (SIGHUP) briefly runs a new worker beside the old.

**Aggregation by fan-out, not shared files.**  prometheus_client's multiprocess mode keeps
a file per process ever started and reads all of them at every scrape (its issue #443:
scrapes of tens of seconds after thousands of restarts), and it drops exemplars and custom
collectors.  Here each worker serves its own registry's samples on a Unix socket
``RUNDIR/slot-K.sock``; ``/metrics`` on any worker asks its siblings (a bounded timeout
each) and merges.  A scrape reads at most 2N sockets or small files whatever the number of
restarts: its time is flat under churn.  Merge rules (:func:`merge`):

- counters, histograms and summaries: summed sample by sample (``_created``: the oldest);
  exemplars kept, the newest per series/bucket;
- gauges that are a per-process share of a whole (:data:`ADDITIVE_GAUGES`: in-flight
  requests, open connections, the prediction log's queue and spill, and the evaluator
  lease, which one worker holds): summed;
- every other gauge and info metric (process and host resources, drift and performance
  verdicts, model info): the lowest slot's value; series only another slot has are kept.

**Continuity.**  Each worker checkpoints its cumulative samples (counters, histograms) to
``RUNDIR/slot-K.state`` (write to a temporary file, then ``rename``) every
:data:`CHECKPOINT_SECONDS`, before every answer it gives a scrape, and at the end of its
graceful shutdown.  A worker taking slot K starts from that state (its samples are added
to the new process's), and a scrape that finds no live worker on slot K reads the file.
So totals never go backwards: whatever a scrape was shown had been written first.  A
SIGTERMed worker loses nothing; a SIGKILLed one loses the counts of at most the last
checkpoint interval that no scrape saw.

**Drift on all the traffic.**  The evaluator and the alert engine run in the one worker
that holds the store's ``evaluator`` lease (``inferwatch.lease``), so alerts are not
multiplied.  That worker reads its windows through :class:`FleetWindows`: before judging
a window it asks each sibling for the same window's profile over the same sockets and
merges them (``FrameProfile +=``), and its performance windows through
:class:`FleetPerformance` (``WindowPerformance +=``, with the siblings' change marks and
stream detections).  Each worker also saves its windows to ``RUNDIR/slot-K.windows`` when
they changed (every :data:`CHECKPOINT_SECONDS` and after the drain); the next worker on slot
K adds them to its own, and while slot K has no live worker the judge reads the file
(``server._slot_windows``): a killed worker's share of the windows stays judged, less what
changed after its last save.  With ``fleet.share_windows`` every worker writes its own profiles and
performance states to the store and the judge reads them from there
(``inferwatch.shared_windows``), so these socket merges are skipped: a worker's rows would
otherwise be counted twice.  Requests about the judge's state, and model switches, travel
over the same sockets (``server._fleet_routes``).

Modules: ``server._slots`` (slots, sockets, the wire format, checkpoints),
``server._fleet_windows`` (the judge's merged windows), ``server._slot_windows`` (windows
saved on a slot), ``server._fleet_routes``
(forwarding and switches), and this one (the merged registry, the worker's uvicorn config,
``attach_fleet`` and the supervisor).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import uvicorn
from prometheus_client.metrics_core import Metric

from inferwatch.server._fleet_windows import FleetPerformance, FleetWindows
from inferwatch.server._slot_windows import SlotWindows
from inferwatch.server._slots import (
    ADDITIVE_GAUGES,
    CHECKPOINT_SECONDS,
    SIBLING_TIMEOUT_SECONDS,
    SlotMetrics,
    SlotServer,
    WireFamily,
    acquire_slot,
    ask_slot,
    decode,
    encode,
    merge,
    read_state,
    to_metrics,
    to_wire,
)

if TYPE_CHECKING:
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry

    from inferwatch.config import Settings

__all__ = [
    "ADDITIVE_GAUGES",
    "CHECKPOINT_SECONDS",
    "SIBLING_TIMEOUT_SECONDS",
    "FleetPerformance",
    "FleetRegistry",
    "FleetWindows",
    "SlotMetrics",
    "SlotServer",
    "WireFamily",
    "WorkerConfig",
    "acquire_slot",
    "ask_slot",
    "attach_fleet",
    "decode",
    "encode",
    "merge",
    "read_state",
    "run_workers",
    "to_metrics",
    "to_wire",
]

log = logging.getLogger("inferwatch.server")

#: how long the supervisor waits for a worker's liveness answer before replacing it
WORKER_HEALTHCHECK_SECONDS: Final = 30


class FleetRegistry:
    """What ``/metrics`` encodes on a worker: every slot's view, merged.

    ``collect()`` is prometheus_client's registry interface, so the route's text and
    OpenMetrics encoders take it as they take a ``CollectorRegistry``.
    """

    def __init__(self, own: SlotMetrics, workers: int) -> None:
        self.own = own
        self.workers = workers
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=2 * workers, thread_name_prefix="inferwatch-scrape"
        )

    def views(self) -> tuple[list[list[WireFamily]], int]:
        """Every slot's samples in slot order, and how many live workers answered.

        Siblings are asked at once, each on a thread of a small pool, so a scrape waits at
        most :data:`SIBLING_TIMEOUT_SECONDS` however many hang (a SIGSTOPped worker
        accepts the connection and never answers); one that does not answer is read from
        its saved counts, which are never below what it showed.
        """
        rundir = self.own.rundir
        slots = sorted({*range(2 * self.workers), self.own.slot})
        others = [k for k in slots if k != self.own.slot and (rundir / f"slot-{k}.sock").exists()]
        asked = dict(
            zip(others, self._pool.map(lambda k: ask_slot(rundir, k), others), strict=True)
        )
        views: list[list[WireFamily]] = []
        live = 0
        for k in slots:
            got = self.own.view() if k == self.own.slot else asked.get(k)
            if got is not None:
                live += 1
                views.append(got)
                continue
            state = rundir / f"slot-{k}.state"
            if state.exists():  # no worker answers on it now: what the last one counted
                views.append(read_state(state))
        return views, live

    def as_registry(self) -> CollectorRegistry:
        """A ``CollectorRegistry`` holding only this view (for ``registry_samples``)."""
        from prometheus_client import CollectorRegistry

        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        return registry

    def collect(self) -> Iterator[Metric]:
        from inferwatch.metrics import workers_family

        views, live = self.views()
        yield from to_metrics(merge(views))
        yield workers_family(live)


# -- the worker process -------------------------------------------------------------------------


class WorkerConfig(uvicorn.Config):
    """uvicorn's settings for a worker; ``load`` (in the spawned child) builds its app.

    Pickled to each child by uvicorn's supervisor: it carries the settings and the run
    directory, not the app.
    """

    def __init__(self, settings: Settings, rundir: Path, level: str, **kwargs: Any) -> None:
        self.inferwatch_settings = settings
        self.inferwatch_rundir = rundir
        self.inferwatch_level = level
        self._worker_app: Any = None
        super().__init__("inferwatch.server._workers:WorkerConfig", **kwargs)

    def load(self) -> None:
        import gc

        from inferwatch.cli._serve import _uvicorn_config
        from inferwatch.server import build_app

        settings = self.inferwatch_settings
        level = self.inferwatch_level
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        if level != "DEBUG":
            logging.getLogger("alembic").setLevel(logging.WARNING)
        rundir = self.inferwatch_rundir
        slot, _lock_fd = acquire_slot(rundir, self.workers)  # held until this process ends
        app = build_app(settings)
        attach_fleet(app, rundir, slot, self.workers)
        open_health = settings.auth.open_health or not settings.auth.enabled
        own, _guard, _quiet = _uvicorn_config(app, settings.server, level, open_health=open_health)
        self.http = own.http
        self._worker_app = app
        log.info("worker %d serves slot %d", os.getpid(), slot)
        gc.collect()
        gc.freeze()
        super().load()

    def load_app(self) -> Any:
        return self._worker_app


def _shares_performance(performance: Any) -> bool:
    """Whether ``performance`` reads the other holders' windows from the store
    (``fleet.share_windows``), so the socket merge would count them twice."""
    from inferwatch.shared_windows import StorePerformance

    return isinstance(performance, StorePerformance)


def attach_fleet(app: FastAPI, rundir: Path, slot: int, workers: int) -> SlotMetrics:
    """Give ``app`` its slot: inherited state, the sibling socket, the checkpoint thread,
    and ``/metrics`` summing every worker.  The app's lifespan starts and stops them; the
    final checkpoint comes after the app's own shutdown (the log drained)."""
    from inferwatch.shared_windows import StoreWindows

    registry: CollectorRegistry = app.state.metrics.registry
    own = SlotMetrics(registry, rundir, slot)
    evaluator = getattr(app.state, "evaluator", None)
    windows = {}
    shared = evaluator is not None and any(
        isinstance(t.profiler, StoreWindows) for t in evaluator.targets
    )
    if shared and evaluator is not None:
        # fleet.share_windows: every worker's rows reach the judge through the store
        windows = {(t.model, t.version): t.profiler.inner for t in evaluator.targets}
    elif evaluator is not None:  # whichever worker judges (the lease's) sees every worker's
        windows = {(t.model, t.version): t.profiler for t in evaluator.targets}
        evaluator.targets = tuple(
            dataclasses.replace(t, profiler=FleetWindows(t.profiler, rundir, slot, workers))
            for t in evaluator.targets
        )
    performance = None
    if evaluator is not None and evaluator.performance is not None:
        if _shares_performance(evaluator.performance):
            pass  # fleet.share_windows: every worker's labels reach the judge through the store
        else:
            performance = evaluator.performance
            evaluator.performance = FleetPerformance(performance, rundir, slot, workers)
    server = SlotServer(own, windows, performance)
    saved: SlotWindows | None = None
    if not shared and (windows or performance is not None):
        # this worker's windows outlive it: saved on its slot, restored by its successor
        saved = SlotWindows(rundir, slot, windows, performance, interval_seconds=CHECKPOINT_SECONDS)
        saved.restore()
    fleet = FleetRegistry(own, workers)
    app.state.metrics_source = fleet
    alerting = getattr(app.state, "alerting", None)
    if alerting is not None:  # the alert rules read every worker's samples, as a scrape does
        alerting.registry = fleet.as_registry()
    history = getattr(app.state, "history", None)
    if history is not None:
        # one history, of the whole fleet: slot 0 samples every worker's merged counts (they
        # never go back, even across restarts); the others would write the rows again
        app.state.sample_history = slot == 0
        history.registry = fleet.as_registry()
    app.state.worker_slot = slot
    # requests about the judging worker's state go to it; a model switch goes to every worker
    from inferwatch.server._fleet_routes import (
        ForwardToLeader,
        leader_handlers,
        switch_handler,
        tell_siblings,
    )

    leadership = getattr(app.state, "leadership", None)

    def leads() -> bool:
        return True if leadership is None else bool(leadership.is_leader)

    app.add_middleware(ForwardToLeader, rundir=rundir, slot=slot, workers=workers, leads=leads)
    models = getattr(app.state, "registry", None)
    if models is not None:
        server.handlers.update(switch_handler(models))
        models.add_listener(tell_siblings(rundir, slot, workers))
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        import asyncio

        server.handlers.update(leader_handlers(app, asyncio.get_running_loop(), leads))
        own.start()
        if saved is not None:
            saved.start()
        server.start()
        try:
            async with inner(a) as state:
                yield state
        finally:
            if saved is not None:
                saved.stop()
            own.stop()
            server.close()

    app.router.lifespan_context = lifespan
    return own


# -- the parent -------------------------------------------------------------------------------


def run_workers(settings: Settings, level: str, workers: int) -> None:
    """Run ``workers`` processes on one listening socket until SIGTERM/SIGINT.

    The store is migrated once here, before the workers start, so they do not race to.
    """
    from uvicorn.supervisors import Multiprocess

    from inferwatch.store import open_store

    if settings.store.auto_migrate:
        store = open_store(
            settings.store.url, statement_timeout=settings.store.statement_timeout_seconds
        )
        try:
            store.upgrade()
        finally:
            store.close()
        settings = settings.model_copy(
            update={"store": settings.store.model_copy(update={"auto_migrate": False})}
        )
    rundir = Path(tempfile.mkdtemp(prefix="inferwatch-workers-"))
    log.info("%d workers; their slots, sockets and saved counts are in %s", workers, rundir)
    server = settings.server
    config = WorkerConfig(
        settings,
        rundir,
        level,
        workers=workers,
        host=server.host,
        port=server.port,
        ws="none",
        log_level=level.lower(),
        access_log=server.access_log,
        timeout_keep_alive=server.keepalive_timeout_seconds,
        timeout_graceful_shutdown=30,
        # the supervisor's liveness ping: a worker loading its models on a busy machine
        # answers it late, and one killed for that would be started again, and again
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )
    sock = config.bind_socket()
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
        shutil.rmtree(rundir, ignore_errors=True)
