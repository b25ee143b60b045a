"""``serve --workers N``: the judging worker answers for its state; a switch reaches all.

Each worker is a whole server, but some state lives only where it is made: the drift
reports and performance values the evaluator publishes, and the alert engine (alerts,
silences, acknowledgements), run in the one worker that holds the evaluator lease
(``inferwatch.lease``).  A request about that state (:data:`LEADER_ROUTES`) reaching
another worker is forwarded over the slot sockets (``server._workers``) to the leading
worker, which runs it through its own app, in its own event loop, and the answer goes back
as it was made (status, headers, body).  Access control is checked there, on the request's
own headers.  When no worker leads (another replica holds the lease, or the store has not
answered yet) or the leader does not answer in time, the worker answers itself, as a
single process would.

Model switches (``POST .../rollback``, ``.../activate`` and the alert engine's rollback
action) change one process's registry.  The worker that switched records the switch once
and tells each sibling, which makes the same version live without recording it again
(:meth:`ModelRegistry.restore`).  A worker started later restores the newest recorded
switch at start (``server._build``), so a replacement worker serves what the others serve.

Written by hand: the forwarding is a few dozen lines over sockets the workers already
have; an HTTP proxy in front of the workers would need a second port per worker and could
not know which worker leads.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote

import anyio
import msgspec

from inferwatch.server._slots import ask_handler

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from inferwatch.server._registry import ModelRegistry, VersionChange

__all__ = [
    "FORWARDED_HEADER",
    "LEADER_ROUTES",
    "ForwardToLeader",
    "is_leader_route",
    "leader_handlers",
    "switch_handler",
    "tell_siblings",
]

log = logging.getLogger("inferwatch.server")

#: (method, path) of the requests the lease-holding worker answers
LEADER_ROUTES: Final = tuple(
    (method, re.compile(pattern))
    for method, pattern in (
        ("GET", r"/v1/models/[^/]+/drift"),
        ("GET", r"/v1/models/[^/]+/performance"),
        ("POST", r"/v1/models/[^/]+/evaluate"),
        ("GET", r"/v1/alerts"),
        ("POST", r"/v1/alerts/[^/]+/acknowledge"),
        ("GET", r"/v1/silences"),
        ("POST", r"/v1/silences"),
        ("DELETE", r"/v1/silences/[^/]+"),
        ("GET", r"/v1/overview"),
    )
)
#: set on a forwarded request, so it is never forwarded again
FORWARDED_HEADER: Final = b"x-inferwatch-forwarded-by"
#: a forwarded request's longest wait for the leader (an evaluation may take a while)
FORWARD_TIMEOUT_SECONDS: Final = 30.0
#: larger bodies are answered where they arrive (these routes' bodies are small)
MAX_FORWARD_BODY: Final = 1 << 20
_LEADS: Final = b"l"  # "do you hold the lease?"
_HTTP: Final = b"h"  # a forwarded request
_SWITCH: Final = b"s"  # a model switch made by a sibling


def is_leader_route(method: str, path: str) -> bool:
    return any(m == method and p.fullmatch(path) for m, p in LEADER_ROUTES)


class ForwardToLeader:
    """ASGI middleware (the outermost): a leader route on a worker that does not lead is
    answered by the worker that does (see the module docstring)."""

    def __init__(
        self, app: ASGIApp, *, rundir: Path, slot: int, workers: int, leads: Callable[[], bool]
    ) -> None:
        self.app = app
        self.rundir = rundir
        self.slot = slot
        self.workers = workers
        self.leads = leads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not is_leader_route(scope["method"], scope["path"])
            or any(k == FORWARDED_HEADER for k, _ in scope["headers"])
            or self.leads()
        ):
            await self.app(scope, receive, send)
            return
        read: list[Message] = []
        size, more = 0, True
        while more:
            message = await receive()
            read.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            more = bool(message.get("more_body")) and size <= MAX_FORWARD_BODY
        complete = read[-1]["type"] == "http.request" and not read[-1].get("more_body")
        answer = None
        if complete and size <= MAX_FORWARD_BODY:
            body = b"".join(m.get("body", b"") for m in read)
            target = scope["path"] + (
                "?" + scope["query_string"].decode("latin-1") if scope["query_string"] else ""
            )
            headers = [[k, v] for k, v in scope["headers"]]
            headers.append([FORWARDED_HEADER, str(self.slot).encode()])
            request = [scope["method"], target, headers, body]
            answer = await anyio.to_thread.run_sync(self._forward, request)
        if answer is None:  # answered here: replay what was read
            pending = list(read)

            async def replay() -> Message:
                return pending.pop(0) if pending else await receive()

            await self.app(scope, replay, send)
            return
        status, headers, body = answer
        await send(
            {
                "type": "http.response.start",
                "status": int(status),
                "headers": [(bytes(k), bytes(v)) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": bytes(body)})

    def _forward(self, request: list[Any]) -> list[Any] | None:
        """The leading sibling's answer; None when none leads or answers."""
        for k in range(2 * self.workers):
            if k == self.slot or ask_handler(self.rundir, k, _LEADS, None) is not True:
                continue
            answer = ask_handler(self.rundir, k, _HTTP, request, timeout=FORWARD_TIMEOUT_SECONDS)
            if isinstance(answer, list) and len(answer) == 3:
                return answer
            log.warning("worker slot %d: the leading worker (slot %d) did not answer %s %s; "
                        "answering here", self.slot, k, request[0], request[1])  # fmt: skip
            return None
        return None


async def _run(app: ASGIApp, request: list[Any]) -> list[Any]:
    """Run one forwarded request through ``app`` in this process: [status, headers, body]."""
    method, target, headers, body = request
    path, _, query = str(target).partition("?")
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": str(method),
        "scheme": "http",
        "path": unquote(path),
        "raw_path": path.encode(),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": [(bytes(k), bytes(v)) for k, v in headers],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
    }
    delivered = asyncio.Event()
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}
        await delivered.wait()  # the client never goes away before the answer
        return {"type": "http.disconnect"}

    out: list[Any] = [500, [], b""]
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            out[0] = message["status"]
            out[1] = [[k, v] for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                delivered.set()

    await app(scope, receive, send)
    out[2] = b"".join(chunks)
    return out


def leader_handlers(
    app: ASGIApp, loop: asyncio.AbstractEventLoop, leads: Callable[[], bool]
) -> dict[bytes, Callable[[Any], bytes]]:
    """The slot socket's handlers that answer for this worker's state: whether it leads,
    and a forwarded request (run on ``loop``, the worker's event loop)."""

    def lead(_: Any) -> bytes:
        return msgspec.msgpack.encode(bool(leads()))

    def http(request: Any) -> bytes:
        if not leads():
            return msgspec.msgpack.encode(None)
        future = asyncio.run_coroutine_threadsafe(_run(app, request), loop)
        return msgspec.msgpack.encode(future.result(FORWARD_TIMEOUT_SECONDS))

    return {_LEADS: lead, _HTTP: http}


def switch_handler(registry: ModelRegistry) -> dict[bytes, Callable[[Any], bytes]]:
    """The slot socket's handler of a sibling's switch: the same version made live here."""

    def switch(request: Any) -> bytes:
        model, version, reason = request
        try:
            change = registry.restore(str(model), str(version), reason=str(reason))
        except KeyError:
            return msgspec.msgpack.encode(False)
        if change is not None:
            log.warning("model %s switched from %s to %s by a sibling worker: %s", model,
                        change.from_version, change.to_version, change.reason)  # fmt: skip
        return msgspec.msgpack.encode(True)

    return {_SWITCH: switch}


def tell_siblings(rundir: Path, slot: int, workers: int) -> Callable[[VersionChange], None]:
    """A registry listener that hands each switch to every sibling, on a thread of its own
    (a hung sibling must not hold the request that switched)."""

    def tell(change: VersionChange) -> None:
        request = [change.model, change.to_version, change.reason]

        def send() -> None:
            for k in range(2 * workers):
                if (
                    k != slot
                    and (rundir / f"slot-{k}.sock").exists()
                    and ask_handler(rundir, k, _SWITCH, request) is None
                ):
                    log.warning("worker slot %d: slot %d did not take the switch of %s "
                                    "to %s", slot, k, change.model, change.to_version)  # fmt: skip

        threading.Thread(target=send, name="inferwatch-switch-fanout", daemon=True).start()

    return tell
