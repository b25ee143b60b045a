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
stream detections).  With ``fleet.share_windows`` every worker writes its own profiles and
performance states to the store and the judge reads them from there
(``inferwatch.shared_windows``), so these socket merges are skipped: a worker's rows would
otherwise be counted twice.  Requests about the judge's state, and model switches, travel
over the same sockets (``server._fleet_routes``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import shutil
import socket
import struct
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import msgspec
import uvicorn
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Exemplar, Sample

from inferwatch.periodic import Periodic

if TYPE_CHECKING:
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry

    from inferwatch.config import Settings
    from inferwatch.performance import ClassificationSummary, RegressionSummary
    from inferwatch.performance_windows import Detection, PerformanceWindows, WindowPerformance

__all__ = [
    "ADDITIVE_GAUGES",
    "CHECKPOINT_SECONDS",
    "FleetRegistry",
    "SlotMetrics",
    "WorkerConfig",
    "acquire_slot",
    "decode",
    "encode",
    "merge",
    "run_workers",
]

log = logging.getLogger("inferwatch.server")

#: how often a worker writes its cumulative samples to its slot's state file
CHECKPOINT_SECONDS: Final = 1.0
#: how long a scrape waits for one sibling before reading its state file instead
SIBLING_TIMEOUT_SECONDS: Final = 2.0
#: forwarded requests and switches a worker answers at once (each on a thread)
MAX_HANDLER_THREADS: Final = 16
#: how long the supervisor waits for a worker's liveness answer before replacing it
WORKER_HEALTHCHECK_SECONDS: Final = 30
#: gauges that are each process's share of a whole: the fleet's value is the sum
ADDITIVE_GAUGES: Final = frozenset(
    {
        "inferwatch_evaluator_leader",  # the workers holding the evaluator lease: 1
        "inferwatch_inflight_requests",
        "inferwatch_open_connections",
        "inferwatch_prediction_log_queue_rows",
        "inferwatch_prediction_log_spill_bytes",
    }
)
#: family types whose samples are cumulative (summed across workers, checkpointed)
CUMULATIVE: Final = frozenset({"counter", "histogram", "summary", "gaugehistogram"})

# wire and state format: [[name, type, doc, unit, [[sample, labels, value, ts, ex]...]]...]
# with ex = [labels, value, ts] or None; msgpack, length-prefixed on the socket
WireSample = tuple[
    str, dict[str, str], float, float | None, tuple[dict[str, str], float, float | None] | None
]
WireFamily = tuple[str, str, str, str, list[WireSample]]

_LEN: Final = struct.Struct("!I")


def to_wire(families: Iterable[Metric], *, cumulative_only: bool = False) -> list[WireFamily]:
    """Collected families as plain tuples (what :func:`encode` writes)."""
    out: list[WireFamily] = []
    for f in families:
        if cumulative_only and f.type not in CUMULATIVE:
            continue
        samples: list[WireSample] = []
        for s in f.samples:
            ex = s.exemplar
            samples.append(
                (
                    s.name,
                    dict(s.labels),
                    float(s.value),
                    s.timestamp if s.timestamp is None else float(s.timestamp),  # type: ignore[arg-type]
                    None if ex is None else (dict(ex.labels), float(ex.value), ex.timestamp),
                )
            )
        out.append((f.name, f.type, f.documentation, f.unit, samples))
    return out


def encode(families: list[WireFamily]) -> bytes:
    return msgspec.msgpack.encode(families)


def decode(data: bytes) -> list[WireFamily]:
    raw = msgspec.msgpack.decode(data)
    return [
        (
            name,
            typ,
            doc,
            unit,
            [
                (sn, labels, value, ts, None if ex is None else (ex[0], ex[1], ex[2]))
                for sn, labels, value, ts, ex in samples
            ],
        )
        for name, typ, doc, unit, samples in raw
    ]


def merge(views: Sequence[list[WireFamily]]) -> list[WireFamily]:
    """One view of several workers' (or a worker's and its predecessor's) samples.

    ``views`` in slot order: for gauges that are not additive the first view having a
    series gives its value.  Cumulative samples are summed (``_created``: the oldest);
    the newest exemplar of a series is kept.
    """
    order: list[str] = []
    fams: dict[
        str, tuple[str, str, str, dict[tuple[str, tuple[tuple[str, str], ...]], list[Any]]]
    ] = {}
    for view in views:
        for name, typ, doc, unit, samples in view:
            entry = fams.get(name)
            if entry is None:
                entry = fams[name] = (typ, doc, unit, {})
                order.append(name)
            elif entry[0] != typ:
                continue  # a family whose type differs between workers: the first one's
            series = entry[3]
            add = typ in CUMULATIVE or name in ADDITIVE_GAUGES
            for sn, labels, value, ts, ex in samples:
                key = (sn, tuple(sorted(labels.items())))
                seen = series.get(key)
                if seen is None:
                    series[key] = [sn, labels, value, ts, ex]
                    continue
                if add:
                    if sn.endswith("_created"):
                        seen[2] = min(seen[2], value)
                    else:
                        seen[2] += value
                    if ex is not None and (
                        seen[4] is None or (ex[2] or 0.0) >= (seen[4][2] or 0.0)
                    ):
                        seen[4] = ex
    return [
        (
            name,
            fams[name][0],
            fams[name][1],
            fams[name][2],
            [tuple(s) for s in fams[name][3].values()],
        )
        for name in order
    ]


def to_metrics(families: list[WireFamily]) -> list[Metric]:
    """prometheus_client families again, for its text and OpenMetrics encoders."""
    out = []
    for name, typ, doc, unit, samples in families:
        m = Metric(name, doc, typ, unit)
        m.samples = [
            Sample(sn, labels, value, ts, None if ex is None else Exemplar(ex[0], ex[1], ex[2]))
            for sn, labels, value, ts, ex in samples
        ]
        out.append(m)
    return out


# -- slots ------------------------------------------------------------------------------------


def acquire_slot(rundir: Path, workers: int, *, wait: float = 30.0) -> tuple[int, int]:
    """The lowest free slot (``flock`` on ``slot-K.lock``) and the lock's file descriptor.

    Slots ``0..workers-1`` first; ``workers..2*workers-1`` while a rolling restart runs a
    new worker beside the old.  Waits up to ``wait`` seconds for one to free.
    """
    deadline = time.monotonic() + wait
    while True:
        for k in range(2 * workers):
            fd = os.open(rundir / f"slot-{k}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return k, fd
        if time.monotonic() > deadline:
            raise RuntimeError(f"no free worker slot in {rundir} after {wait:g} s")
        time.sleep(0.05)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def read_state(path: Path) -> list[WireFamily]:
    try:
        return decode(path.read_bytes())
    except (OSError, msgspec.DecodeError, ValueError, TypeError):
        return []


class SlotMetrics:
    """One worker's samples: its registry's plus what earlier workers on its slot counted.

    :meth:`view` is what the worker shows (every family; cumulative ones added to the
    inherited state) and, before it returns, writes the cumulative part to the slot's
    state file: nothing shown was not saved first.
    """

    def __init__(self, registry: Any, rundir: Path, slot: int) -> None:
        self.registry = registry
        self.rundir = rundir
        self.slot = slot
        self.state_path = rundir / f"slot-{slot}.state"
        self.base = read_state(self.state_path)
        self._lock = threading.Lock()
        self._thread: Periodic | None = None

    def view(self) -> list[WireFamily]:
        with self._lock:  # one checkpoint at a time, each at least as new as the last
            live = to_wire(self.registry.collect())
            merged = merge([live, self.base]) if self.base else live
            state = [f for f in merged if f[1] in CUMULATIVE]
            _write_atomic(self.state_path, encode(state))
            return merged

    def checkpoint(self) -> None:
        self.view()

    def start(self) -> None:
        # a failed checkpoint (a full disk) is logged and tried again at the next round
        self._thread = Periodic(self.checkpoint, CHECKPOINT_SECONDS,
                                name=f"inferwatch-slot-{self.slot}-checkpoint")  # fmt: skip
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop(5.0)
        self.checkpoint()  # the final one: after the drain, every count of this process


class SlotServer:
    """Answers siblings' scrapes on ``RUNDIR/slot-K.sock``: one request, one view."""

    def __init__(
        self,
        slot_metrics: SlotMetrics,
        windows: Mapping[tuple[str, str], Any] | None = None,
        performance: PerformanceWindows | None = None,
    ) -> None:
        self.metrics = slot_metrics
        #: (model, version) -> this worker's own WindowProfiler (what siblings ask for)
        self.windows = dict(windows or {})
        #: this worker's own performance windows (what the judging sibling asks for)
        self.performance = performance
        self.path = slot_metrics.rundir / f"slot-{slot_metrics.slot}.sock"
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a dead predecessor's
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(self.path))
        self.sock.listen(64)
        self._thread = threading.Thread(
            target=self._serve, name=f"inferwatch-slot-{slot_metrics.slot}-server", daemon=True
        )
        self._closed = False
        #: kind byte -> handler of a length-prefixed msgpack request, answered on a thread of
        #: its own (at most MAX_HANDLER_THREADS at once): a forwarded HTTP request or a model
        #: switch may take longer than a scrape, which must not wait behind it
        self.handlers: dict[bytes, Callable[[Any], bytes]] = {}
        self._handler_slots = threading.BoundedSemaphore(MAX_HANDLER_THREADS)

    def start(self) -> None:
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                conn.settimeout(SIBLING_TIMEOUT_SECONDS)
                kind = conn.recv(1)
                handler = self.handlers.get(kind)
                if handler is not None and self._handler_slots.acquire(blocking=False):
                    threading.Thread(
                        target=self._handle, args=(conn, handler), daemon=True,
                        name=f"inferwatch-slot-{self.metrics.slot}-handler",
                    ).start()  # fmt: skip
                    continue  # the handler's thread answers and closes
                if kind == b"w":
                    body = self._window(conn)
                elif kind == b"p":
                    body = self._performance(conn)
                elif handler is not None:
                    body = msgspec.msgpack.encode(None)  # too many at once: "not here"
                else:
                    body = encode(self.metrics.view())
                conn.sendall(_LEN.pack(len(body)) + body)
            except Exception:
                log.debug("worker slot %d: a sibling's scrape failed", self.metrics.slot)
            conn.close()

    def _handle(self, conn: socket.socket, handler: Callable[[Any], bytes]) -> None:
        try:
            (n,) = _LEN.unpack(_recv_exact(conn, _LEN.size))
            body = handler(msgspec.msgpack.decode(_recv_exact(conn, n)))
            conn.sendall(_LEN.pack(len(body)) + body)
        except Exception:
            log.debug("worker slot %d: a sibling's request failed", self.metrics.slot)
        finally:
            self._handler_slots.release()
            conn.close()

    def _window(self, conn: socket.socket) -> bytes:
        """A window profile of this worker's traffic: ``[model, version, start]`` asked."""
        (n,) = _LEN.unpack(_recv_exact(conn, _LEN.size))
        model, version, start = msgspec.msgpack.decode(_recv_exact(conn, n))
        profiler = self.windows.get((model, version))
        prof = None if profiler is None else profiler.window(model, version, float(start))
        # stdlib json: a profile's dict may hold numpy strings as keys (msgpack refuses them)
        return json.dumps(
            None if prof is None else prof.to_dict(include_bins=False), default=_plain
        ).encode()

    def _performance(self, conn: socket.socket) -> bytes:
        """This worker's part of the performance windows: ``[op, model, version, arg]``.

        ``window`` (arg: start): its ``WindowPerformance.to_dict``; ``starts``; ``dirty``:
        the windows changed since the judge last asked (taken, so each change is judged
        once); ``detections`` (taken likewise); ``merged`` (arg: since): the summary of its
        windows from ``since`` on (version comparisons)."""
        (n,) = _LEN.unpack(_recv_exact(conn, _LEN.size))
        op, model, version, arg = msgspec.msgpack.decode(_recv_exact(conn, n))
        pw = self.performance
        answer: Any = None
        if pw is not None:
            if op == "window":
                win = pw.window(model, version, float(arg))
                answer = None if win is None else win.to_dict()
            elif op == "starts":
                answer = pw.starts(model, version)
            elif op == "dirty":
                answer = [list(k) for k in pw.take_dirty()]
            elif op == "detections":
                answer = [dataclasses.asdict(d) for d in pw.detections(model, version)]
            elif op == "merged":
                summary = pw.merged(model, version, None if arg is None else float(arg))
                answer = None if summary is None else summary.to_dict()
        return json.dumps(answer, default=_plain).encode()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("short read")
        buf += chunk
    return bytes(buf)


def _exchange(
    rundir: Path, slot: int, request: bytes, timeout: float = SIBLING_TIMEOUT_SECONDS
) -> bytes | None:
    """Send ``request`` (a kind byte, then its body) to slot ``slot``'s socket and return
    the length-prefixed answer; None when no worker answers there in ``timeout`` seconds."""
    path = rundir / f"slot-{slot}.sock"
    if not path.exists():
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(str(path))
            conn.sendall(request)
            (n,) = _LEN.unpack(_recv_exact(conn, _LEN.size))
            return _recv_exact(conn, n)
    except (OSError, ConnectionError, struct.error):
        return None


def _framed(kind: bytes, body: Any) -> bytes:
    ask = msgspec.msgpack.encode(body)
    return kind + _LEN.pack(len(ask)) + ask


def ask_slot(
    rundir: Path, slot: int, timeout: float = SIBLING_TIMEOUT_SECONDS
) -> list[WireFamily] | None:
    """Slot ``slot``'s live view over its socket; None when no worker answers."""
    data = _exchange(rundir, slot, b"m", timeout)
    try:
        return None if data is None else decode(data)
    except msgspec.DecodeError:
        return None


def _json_answer(data: bytes | None) -> Any:
    try:
        return None if data is None else json.loads(data)
    except ValueError:
        return None


def ask_window(
    rundir: Path, slot: int, model: str, version: str, start: float
) -> dict[str, Any] | None:
    """Slot ``slot``'s window profile (its ``to_dict``), None when it has none or is gone."""
    got = _json_answer(_exchange(rundir, slot, _framed(b"w", [model, version, start])))
    return got if isinstance(got, dict) else None


def ask_performance(rundir: Path, slot: int, op: str, model: str, version: str, arg: Any) -> Any:
    """Slot ``slot``'s answer to a performance request (see ``SlotServer._performance``);
    None when no worker answers there."""
    return _json_answer(_exchange(rundir, slot, _framed(b"p", [op, model, version, arg])))


def ask_handler(
    rundir: Path, slot: int, kind: bytes, request: Any, timeout: float = SIBLING_TIMEOUT_SECONDS
) -> Any:
    """Send ``request`` to a handler of slot ``slot`` (``SlotServer.handlers``) and return
    its decoded answer; None when no worker answers there in ``timeout`` seconds."""
    data = _exchange(rundir, slot, _framed(kind, request), timeout)
    try:
        return None if data is None else msgspec.msgpack.decode(data)
    except msgspec.DecodeError:
        return None


def _plain(value: Any) -> Any:
    """numpy scalars as Python's, for json."""
    item = getattr(value, "item", None)
    if item is not None:
        return item()
    raise TypeError(f"cannot encode {type(value).__name__}")


class FleetWindows:
    """A worker's ``WindowProfiler`` whose windows hold every worker's traffic.

    The evaluator reads windows through it: :meth:`window` adds to this worker's own
    profile the same window of each sibling, asked over its socket and merged with the
    profile merge (``FrameProfile +=``), so drift is judged on all the traffic, as one
    process would judge it.  Writing (the monitor's ``add``) goes to the wrapped profiler.
    A sibling that does not answer, or whose bins differ, is left out (logged); a dead
    worker's windows go with it (profiles are not saved like counts).
    """

    def __init__(self, inner: Any, rundir: Path, slot: int, workers: int) -> None:
        self._inner = inner
        self._rundir = rundir
        self._slot = slot
        self._workers = workers

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def window(self, model: str, version: str, start: float) -> Any:
        from inferwatch.profile import FrameProfile
        from inferwatch.shared_windows import add_parts

        parts = (
            (f"slot {k}", data)
            for k in range(2 * self._workers)
            if k != self._slot
            and (data := ask_window(self._rundir, k, model, version, start)) is not None
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


class FleetPerformance:
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
    (``WindowPerformance.settle``).  Left out: a sibling that does not answer (judged again
    when it changes) and a dead worker's windows (not saved).  Each worker's stream
    detectors see the error stream of the labels it received.
    """

    def __init__(self, inner: PerformanceWindows, rundir: Path, slot: int, workers: int) -> None:
        self._inner = inner
        self._rundir = rundir
        self._slot = slot
        self._workers = workers

    @property
    def inner(self) -> PerformanceWindows:
        return self._inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _siblings(self, op: str, model: str, version: str, arg: Any = None) -> Iterator[Any]:
        for k in range(2 * self._workers):
            if k != self._slot:
                answer = ask_performance(self._rundir, k, op, model, version, arg)
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
        server.start()
        try:
            async with inner(a) as state:
                yield state
        finally:
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
