"""Hostile connections: header and body timeouts, a connection limit, quiet connection logs.

Fault injection against a bare uvicorn found no defence: 20,000 half-sent requests held
every file descriptor (uvicorn's HTTP protocols never time out a request that is still
arriving), new clients timed out, and the accept loop's errors wrote 954k log lines in
30 s.  :class:`ConnectionGuard` puts the missing limits into the HTTP protocol itself
(a subclass of uvicorn's httptools protocol, passed as ``uvicorn.Config(http=...)``):

- **header timeout**: a connection's request headers must be complete within
  ``header_timeout`` of it opening (or of the previous response on a keep-alive
  connection).  Past it, a client that had begun a request gets a 408 JSON answer; one
  that sent nothing is closed without an answer (an unused connection, RFC 9112 9.6).
- **body timeout**: a request's body must arrive within ``body_timeout`` of its headers:
  408 JSON, the connection closed, and the app sees ``http.disconnect``.
- **connection limit**: at most ``max_connections`` are open.  A new connection past it
  takes the place of the connection that has waited longest for its request to arrive
  (idle, headers or body still coming: the cheapest to lose and what a slowloris holds);
  only when every connection is busy with a request being answered is the new one refused
  with 503 JSON, ``Retry-After`` and a close.  So half-open clients cannot starve a
  liveness probe: its request arrives in one packet and is answered.
- **a cheap liveness answer**: ``GET /healthz`` (when it needs no API key) is answered by
  a two-message ASGI callable instead of the app's middleware and routing, about a
  twentieth of the work, so 200 clients hammering it cannot queue a liveness probe
  behind each other for more than a few milliseconds.  It says what the app's route
  says: the event loop runs and answers.
- **quiet logs**: :class:`QuietLogFilter` lets a few lines of each kind through per
  interval and then one summary line ("... and 9,812 more in the last 10 s").

Deadlines are kept in two insertion-ordered dicts (oldest first) and checked by one timer
a few times a second, so a request costs two dict operations and no timer of its own.
uvicorn's ``limit_concurrency`` is not enough: it answers 503 only once a *request's
headers* are complete, so it never sees a connection that sends nothing or half a request.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = [
    "CLOSE_REASONS",
    "ConnectionGuard",
    "ConnectionLimits",
    "QuietLogFilter",
    "fit_to_fd_limit",
]

log = logging.getLogger("inferwatch.server")

#: why the server closed a connection (``inferwatch_connections_closed_total{reason}``)
CLOSE_REASONS: Final = ("header_timeout", "body_timeout", "refused", "evicted", "invalid_http")
#: file descriptors kept for everything else the process opens (store, files, threads, pipes)
FD_RESERVE: Final = 128
#: how long a refused connection may stay open to read its request after the 503 was sent
#: (closing with unread input would reset the connection and lose the 503 on the way)
REFUSAL_LINGER_SECONDS: Final = 1.0
#: the loggers whose lines a flood of bad connections multiplies
NOISY_LOGGERS: Final = ("uvicorn.error", "asyncio")


@dataclass(frozen=True)
class ConnectionLimits:
    """``server.header_timeout_seconds``, ``body_timeout_seconds`` and ``max_connections``."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1024

    @property
    def refusal_slots(self) -> int:
        """Refused connections that may linger at once (more are reset at once)."""
        return max(16, self.max_connections // 16)


def fit_to_fd_limit(max_connections: int) -> int:
    """``max_connections``, lowered when the file-descriptor limit cannot hold it.

    The soft ``RLIMIT_NOFILE`` is raised towards the hard limit when it is too low (as
    the Go runtime does); what still does not fit is clamped with a warning, so the limit
    bites before ``accept`` fails with EMFILE (and the loop logs that on every try).
    """
    limits = ConnectionLimits(max_connections=max_connections)
    needed = max_connections + limits.refusal_slots + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return max_connections
    fitted = max(1, (soft - FD_RESERVE) * 16 // 17)
    log.warning(
        "server.max_connections=%d does not fit the open-file limit (%d): serving at most %d "
        "connections; raise the limit (ulimit -n) to allow more",
        max_connections,
        soft,
        fitted,
    )
    return fitted


def _canned(status: bytes, code: str, message: str, *headers: bytes) -> bytes:
    """A complete HTTP/1.1 answer with the JSON error body, closing the connection."""
    body = msgspec.json.encode({"error": {"code": code, "message": message, "details": []}})
    head = [
        b"HTTP/1.1 " + status,
        b"content-type: application/json",
        b"content-length: " + str(len(body)).encode(),
        *headers,
        b"connection: close",
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


_HEALTHZ_START: Final = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"15")],
}
_HEALTHZ_BODY: Final = {"type": "http.response.body", "body": b'{"status":"ok"}'}


async def _healthz(scope: Any, receive: Any, send: Any) -> None:
    """``GET /healthz``'s answer, the app's ``{"status":"ok"}``, without the app."""
    await send(_HEALTHZ_START)
    await send(_HEALTHZ_BODY)


class ConnectionGuard:
    """The connection state of one server: open count, deadlines, refusals.

    ``closed`` is the labelled ``inferwatch_connections_closed_total`` counter and
    ``open_gauge`` the ``inferwatch_open_connections`` gauge (read at scrape time); both
    optional.  ``protocol()`` is the class to pass as ``uvicorn.Config(http=...)``.
    ``fast_health``: answer ``GET /healthz`` without the app (only when it needs no key).
    """

    def __init__(
        self,
        limits: ConnectionLimits,
        *,
        closed: Any = None,
        open_gauge: Any = None,
        on_sweep: Callable[[], None] | None = None,
        fast_health: bool = False,
    ) -> None:
        self.limits = limits
        self.fast_health = fast_health
        self.open = 0
        self.lingering = 0
        #: connections waiting for a request's headers (idle ones too) -> since when
        self.waiting_headers: OrderedDict[GuardedHttpToolsProtocol, float] = OrderedDict()
        #: connections whose request body is still arriving -> since when
        self.waiting_body: OrderedDict[GuardedHttpToolsProtocol, float] = OrderedDict()
        self.closed_counts = dict.fromkeys(CLOSE_REASONS, 0)
        self._counters = {r: closed.labels(r) for r in CLOSE_REASONS} if closed else {}
        if open_gauge is not None:
            open_gauge.set_function(lambda: self.open)
        self._on_sweep = on_sweep
        self._timer: asyncio.TimerHandle | None = None
        shortest = min(limits.header_timeout, limits.body_timeout)
        #: how often deadlines are checked: a timeout fires up to this late
        self.sweep_interval = min(1.0, max(0.05, shortest / 10))
        h, b = limits.header_timeout, limits.body_timeout
        self.header_timeout_answer = _canned(
            b"408 Request Timeout",
            "request_timeout",
            f"the request headers did not arrive within {h:g} s (server.header_timeout_seconds)",
        )
        self.body_timeout_answer = _canned(
            b"408 Request Timeout",
            "request_timeout",
            f"the request body did not arrive within {b:g} s (server.body_timeout_seconds)",
        )
        self.refusal_answer = _canned(
            b"503 Service Unavailable",
            "connection_limit",
            f"the server is at its connection limit (server.max_connections="
            f"{limits.max_connections}) with every connection busy; retry later",
            b"retry-after: 1",
        )

    def protocol(self) -> type[GuardedHttpToolsProtocol]:
        """The httptools protocol class bound to this guard."""
        return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"guard": self})

    def count(self, reason: str) -> None:
        self.closed_counts[reason] += 1
        counter = self._counters.get(reason)
        if counter is not None:
            counter.inc()

    # -- admission -------------------------------------------------------------------------
    def admit(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Room for a new connection: under the limit, or by evicting the longest waiter."""
        if self._timer is None:
            self._timer = loop.call_later(self.sweep_interval, self._sweep, loop)
        if self.open < self.limits.max_connections:
            self.open += 1
            return True
        for waiting in (self.waiting_headers, self.waiting_body):
            if waiting:
                victim, _ = waiting.popitem(last=False)
                victim.drop("evicted")  # its slot is the new connection's
                self.open += 1
                return True
        return False

    def release(self) -> None:
        self.open -= 1

    # -- deadlines -------------------------------------------------------------------------
    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for waiting, timeout, reason in (
            (self.waiting_headers, self.limits.header_timeout, "header_timeout"),
            (self.waiting_body, self.limits.body_timeout, "body_timeout"),
        ):
            deadline = now - timeout
            while waiting:
                proto, since = next(iter(waiting.items()))
                if since > deadline:
                    break  # oldest first: the rest are younger
                del waiting[proto]
                proto.drop(reason)
        if self._on_sweep is not None:
            self._on_sweep()
        self._timer = loop.call_later(self.sweep_interval, self._sweep, loop)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol under a :class:`ConnectionGuard`'s limits.

    The request path adds an ``OrderedDict`` pop and insert per request and a few
    attribute checks per read; deadlines are the guard's periodic sweep, not timers.
    """

    guard: ClassVar[ConnectionGuard]
    _refused = False  # past the limit: answered 503, read on only to drain
    _dropped = False  # closed by the guard (timeout, eviction): its slot is released
    _begun = False  # a byte of the current request arrived
    _in_body = False  # headers complete, body still arriving
    _body_since: float | None = None
    _linger: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        guard = self.guard
        if guard.admit(self.loop):
            super().connection_made(transport)
            guard.waiting_headers[self] = self.loop.time()
            return
        self._refused = True
        self.transport = transport
        guard.count("refused")
        if guard.lingering >= guard.limits.refusal_slots:
            transport.abort()  # a refusal flood: no fd held to say so politely
            return
        guard.lingering += 1
        transport.write(guard.refusal_answer)
        if transport.can_write_eof():
            transport.write_eof()  # FIN after the answer; reading on drains the request
        self._linger = self.loop.call_later(REFUSAL_LINGER_SECONDS, transport.abort)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            if self._linger is not None:  # it held a refusal slot (an aborted one did not)
                self.guard.lingering -= 1
                self._linger.cancel()
                self._linger = None
            return
        guard = self.guard
        if not self._dropped:
            guard.waiting_headers.pop(self, None)
            guard.waiting_body.pop(self, None)
            guard.release()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused or self._dropped:
            return  # a refused request is read only to be dropped
        self._begun = True  # on_headers_complete clears it when the headers are all here
        super().data_received(data)
        if self._in_body and self._body_since is None and not self._dropped:
            self._body_since = now = self.loop.time()
            self.guard.waiting_body[self] = now

    def on_headers_complete(self) -> None:
        guard = self.guard
        guard.waiting_headers.pop(self, None)
        self._begun = False
        self._in_body = True
        if guard.fast_health and self.url == b"/healthz" and self.parser.get_method() == b"GET":
            app, self.app = self.app, _healthz  # the cycle super() makes runs _healthz
            try:
                super().on_headers_complete()
            finally:
                self.app = app
            return
        super().on_headers_complete()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        """Run the request's app; ``_healthz`` right here, not in a task a loop turn later.

        A liveness probe's answer is then written while its request is read: under load
        each turn of the loop is long, and the probe waits one turn fewer.  Its two sends
        cannot wait when nothing is buffered for the client (flow control pauses writing
        only past 64 KiB), so the coroutine ends at its first step.
        """
        if app is _healthz and not self.transport.get_write_buffer_size():
            coro = cycle.run_asgi(app)
            try:
                coro.send(None)
            except StopIteration:
                return
            coro.close()  # it waited after all: cannot answer in order, so hang up
            self.transport.close()
            return
        super()._start_asgi_task(cycle, app)

    def on_message_complete(self) -> None:
        self._in_body = self._begun = False
        if self._body_since is not None:
            self._body_since = None
            self.guard.waiting_body.pop(self, None)
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # idle again (nothing pipelined behind): the next request's headers are due
        if (
            not self._dropped
            and not self.transport.is_closing()
            and (self.cycle is None or self.cycle.response_complete)
        ):
            self.guard.waiting_headers[self] = self.loop.time()

    def send_400_response(self, msg: str) -> None:
        self.guard.count("invalid_http")
        super().send_400_response(msg)

    def drop(self, reason: str) -> None:
        """Close this connection for the guard (its deadline passed, or it was evicted).

        A request that had begun is answered (408 for a timeout, 503 for an eviction) unless
        the app already answered; an idle connection is just closed.  The app reading the
        body gets ``http.disconnect``.
        """
        guard = self.guard
        self._dropped = True
        guard.waiting_headers.pop(self, None)
        guard.waiting_body.pop(self, None)
        guard.release()
        guard.count(reason)
        transport = self.transport
        if transport.is_closing():
            return
        cycle = self.cycle if self._in_body else None
        answer: bytes | None = None
        if cycle is not None:
            if not cycle.response_started:
                answer = (
                    guard.body_timeout_answer if reason == "body_timeout" else guard.refusal_answer
                )
                cycle.response_started = True  # the app's answer has nowhere to go
            cycle.disconnected = True
            cycle.message_event.set()
        elif self._begun:
            answer = (
                guard.header_timeout_answer if reason == "header_timeout" else guard.refusal_answer
            )
        if answer is not None:
            transport.write(answer)
        transport.close()


# -- quiet logs -----------------------------------------------------------------------------


class QuietLogFilter(logging.Filter):
    """At most ``burst`` lines of each kind per ``interval`` seconds, then one summary.

    A kind is the logger and the first line of the message template (cut to 80
    characters, at most 256 kinds), so "Invalid HTTP request received." from 20,000
    clients is one kind while start-up messages pass untouched.  Lines held back are
    counted; the next line of that kind after the interval, or :meth:`flush` (the
    connection guard's sweep calls it), logs "... and 9,812 more in the last 10 s".
    """

    MAX_KINDS: Final = 256

    def __init__(
        self,
        burst: int = 10,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.burst = burst
        self.interval = interval
        self.clock = clock
        self.suppressed_total = 0
        #: kind -> [window start, lines passed, lines held back, level, logger name]
        self._windows: dict[tuple[str, str], list[Any]] = {}

    @staticmethod
    def _kind(record: logging.LogRecord) -> tuple[str, str]:
        msg = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
        return record.name, msg.split("\n", 1)[0][:80]

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "quiet_summary", False):
            return True
        kind = self._kind(record)
        now = self.clock()
        window = self._windows.get(kind)
        if window is None or now - window[0] >= self.interval:
            if window is not None and window[2]:
                self._summarise(kind, window, now)
            if window is None and len(self._windows) >= self.MAX_KINDS:
                kind = (record.name, "*")
                window = self._windows.get(kind)
                if window is not None and now - window[0] < self.interval:
                    return self._count(window)
            window = self._windows[kind] = [now, 0, 0, record.levelno, record.name]
        return self._count(window)

    def _count(self, window: list[Any]) -> bool:
        if window[1] < self.burst:
            window[1] += 1
            return True
        window[2] += 1
        self.suppressed_total += 1
        return False

    def _summarise(self, kind: tuple[str, str], window: list[Any], now: float) -> None:
        held, window[2] = window[2], 0
        logging.getLogger(window[4]).log(
            window[3],
            "... and %s more like %r in the last %.0f s",
            f"{held:,}",
            kind[1],
            now - window[0],
            extra={"quiet_summary": True},
        )

    def attach(self, names: tuple[str, ...] = NOISY_LOGGERS) -> None:
        """Filter these loggers' lines (uvicorn's error logger and asyncio's by default).

        Attach after uvicorn configured its logging (``uvicorn.Config`` does when built).
        """
        for name in names:
            logging.getLogger(name).addFilter(self)

    def detach(self, names: tuple[str, ...] = NOISY_LOGGERS) -> None:
        for name in names:
            logging.getLogger(name).removeFilter(self)

    def flush(self) -> None:
        """Log the summary of every kind whose interval is over and held lines back."""
        now = self.clock()
        for kind, window in list(self._windows.items()):
            if now - window[0] >= self.interval:
                if window[2]:
                    self._summarise(kind, window, now)
                del self._windows[kind]
