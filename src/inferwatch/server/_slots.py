"""``serve --workers N``: the slots and sockets the workers see each other through.

A worker holds slot ``K`` by an ``flock`` on ``RUNDIR/slot-K.lock`` and answers its
siblings on ``RUNDIR/slot-K.sock`` (:class:`SlotServer`): its registry's samples for a
scrape, its window profile or performance window for the judging worker, and the
handlers of ``server._fleet_routes`` (a forwarded request, a model switch).  The wire
format (:func:`to_wire`, :func:`encode`, :func:`merge`) and the per-slot checkpoints of
cumulative samples (:class:`SlotMetrics`) are here too; ``server._workers`` has the why
of the whole design.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import msgspec
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Exemplar, Sample

from inferwatch.periodic import Periodic

if TYPE_CHECKING:
    from inferwatch.performance_windows import PerformanceWindows

__all__ = [
    "ADDITIVE_GAUGES",
    "CHECKPOINT_SECONDS",
    "CUMULATIVE",
    "MAX_HANDLER_THREADS",
    "SIBLING_TIMEOUT_SECONDS",
    "SlotMetrics",
    "SlotServer",
    "WireFamily",
    "acquire_slot",
    "ask_handler",
    "ask_json",
    "ask_performance",
    "ask_slot",
    "ask_window",
    "decode",
    "encode",
    "merge",
    "read_state",
    "to_metrics",
    "to_wire",
]

log = logging.getLogger("inferwatch.server")

#: how often a worker writes its cumulative samples to its slot's state file
CHECKPOINT_SECONDS: Final = 1.0
#: how long a scrape waits for one sibling before reading its state file instead
SIBLING_TIMEOUT_SECONDS: Final = 2.0
#: forwarded requests and switches a worker answers at once (each on a thread)
MAX_HANDLER_THREADS: Final = 16
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


def ask_json(rundir: Path, slot: int, kind: bytes, request: Any) -> tuple[bool, Any]:
    """Whether a worker answered on slot ``slot``, and its JSON answer (a window request:
    ``b"w"`` or ``b"p"``): a live worker with nothing to say answers ``(True, None)``."""
    data = _exchange(rundir, slot, _framed(kind, request))
    return data is not None, _json_answer(data)


def ask_window(
    rundir: Path, slot: int, model: str, version: str, start: float
) -> dict[str, Any] | None:
    """Slot ``slot``'s window profile (its ``to_dict``), None when it has none or is gone."""
    _, got = ask_json(rundir, slot, b"w", [model, version, start])
    return got if isinstance(got, dict) else None


def ask_performance(rundir: Path, slot: int, op: str, model: str, version: str, arg: Any) -> Any:
    """Slot ``slot``'s answer to a performance request (see ``SlotServer._performance``);
    None when no worker answers there."""
    return ask_json(rundir, slot, b"p", [op, model, version, arg])[1]


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
