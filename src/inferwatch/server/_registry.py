"""Which version of each model is live, and the older ones kept loaded for a rollback.

A model configured with ``previous`` versions has all of them loaded at start (so a
rollback is a dictionary assignment, not a model load that could fail at the worst
moment), each with its own metric children, drift target and performance windows.  The
routes read :attr:`ModelRegistry.live` on every request, so a switch takes effect on
the next request; requests already running finish on the version they started with.

A switch (a rollback by an alert action or ``POST /v1/models/{name}/rollback``, or an
``activate``) is recorded as a :class:`VersionChange` with its reason, kept in memory
(the newest :data:`MAX_CHANGES`) and handed to ``on_change`` (the store's action log).

A switch outlives a restart: each record carries the version the configuration made
live (``configured_version``), and at start :func:`switch_to_restore` picks the newest
switch of a model from the store's action log.  It is restored only while the
configuration still names the same live version, so deploying a new version (a changed
``models[].version``) serves the new one, and a rolled-back version stays rolled back.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from inferwatch.server._served import ServedModel

__all__ = [
    "MAX_CHANGES",
    "SWITCH_KINDS",
    "ModelRegistry",
    "VersionChange",
    "switch_target",
    "switch_to_restore",
]

log = logging.getLogger("inferwatch.server")

#: the action-record kinds that switch a model's live version
SWITCH_KINDS: frozenset[str] = frozenset({"rollback", "activate"})

#: version changes kept in memory (``GET /v1/models`` shows each model's newest)
MAX_CHANGES = 100


@dataclass(frozen=True, slots=True)
class VersionChange:
    """One switch of a model's live version, and why."""

    model: str
    from_version: str
    to_version: str
    at: datetime
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "at": self.at.isoformat(),
            "reason": self.reason,
        }


class ModelRegistry:
    """The served versions of every model, newest first, and the live one of each.

    ``versions`` maps a model name to its versions newest first (the configured version,
    then its ``previous`` list); the first is live at start.
    """

    def __init__(
        self,
        versions: Mapping[str, Sequence[ServedModel]],
        *,
        on_change: Callable[[VersionChange], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        for name, listed in versions.items():
            if not listed:
                raise ValueError(f"model {name!r} has no version")
            seen = [m.version for m in listed]
            if len(set(seen)) != len(seen):
                raise ValueError(f"model {name!r} lists a version twice: {seen}")
            if any(m.name != name for m in listed):
                raise ValueError(f"model {name!r} lists another model's version")
        self._versions = {name: list(listed) for name, listed in versions.items()}
        #: name -> live version; the routes read it on every request (never rebound)
        self.live: dict[str, ServedModel] = {n: v[0] for n, v in self._versions.items()}
        self._clock = clock
        self._since = {n: clock() for n in self._versions}
        self._changes: deque[VersionChange] = deque(maxlen=MAX_CHANGES)
        self._on_change = on_change
        #: more receivers of each switch (serve --workers: the sibling workers)
        self._listeners: list[Callable[[VersionChange], None]] = []
        self._lock = threading.Lock()
        for listed in self._versions.values():
            for m in listed:
                m.metrics.live.set(1 if m is listed[0] else 0)

    @classmethod
    def of(cls, models: Sequence[ServedModel], **kwargs: Any) -> ModelRegistry:
        """A registry of ``models`` in order: the first of each name is live."""
        grouped: dict[str, list[ServedModel]] = {}
        for m in models:
            grouped.setdefault(m.name, []).append(m)
        return cls(grouped, **kwargs)

    def __contains__(self, name: object) -> bool:
        return name in self._versions

    def versions(self, name: str) -> list[ServedModel]:
        """The versions of ``name``, newest first (KeyError for an unknown model)."""
        return list(self._versions[name])

    def all_versions(self) -> list[ServedModel]:
        return [m for listed in self._versions.values() for m in listed]

    def changes(self, name: str | None = None) -> list[VersionChange]:
        """The recorded switches, oldest first (of one model when ``name`` is given)."""
        return [c for c in self._changes if name is None or c.model == name]

    def rollback(self, name: str, *, reason: str = "") -> VersionChange | None:
        """Make the next older version of ``name`` live; None when the live one is the oldest.

        KeyError for an unknown model.
        """
        with self._lock:
            listed = self._versions[name]
            at = listed.index(self.live[name])
            if at + 1 >= len(listed):
                return None
            change = self._switch(name, listed[at + 1], reason)
        self._notify(change)
        return change

    def activate(self, name: str, version: str, *, reason: str = "") -> VersionChange | None:
        """Make ``version`` of ``name`` live; None when it already is.

        KeyError for an unknown model, LookupError naming the versions for an unknown version.
        """
        with self._lock:
            listed = self._versions[name]
            target = next((m for m in listed if m.version == version), None)
            if target is None:
                known = ", ".join(m.version for m in listed)
                raise LookupError(f"model {name!r} has no version {version!r} (versions: {known})")
            if self.live[name] is target:
                return None
            change = self._switch(name, target, reason)
        self._notify(change)
        return change

    def configured(self, name: str) -> str:
        """The version the configuration makes live at start (``models[].version``)."""
        return self._versions[name][0].version

    def restore(self, name: str, version: str, *, reason: str) -> VersionChange | None:
        """Make ``version`` live at start, as a stored switch left it; not handed to
        ``on_change`` (the switch is already on record).  None when it already is live or
        is not loaded any more."""
        with self._lock:
            target = next((m for m in self._versions[name] if m.version == version), None)
            if target is None or self.live[name] is target:
                return None
            return self._switch(name, target, reason)

    def _switch(self, name: str, target: ServedModel, reason: str) -> VersionChange:
        now = self._clock()
        change = VersionChange(name, self.live[name].version, target.version, now, reason)
        self.live[name].metrics.live.set(0)
        target.metrics.live.set(1)
        self.live[name] = target
        self._since[name] = now
        self._changes.append(change)
        return change

    def add_listener(self, listener: Callable[[VersionChange], None]) -> None:
        """Hand every later switch made here (not a restore) to ``listener`` as well."""
        self._listeners.append(listener)

    def _notify(self, change: VersionChange) -> None:
        if self._on_change is not None:
            self._on_change(change)
        for listener in self._listeners:
            try:
                listener(change)
            except Exception:
                log.exception("a listener of model switches failed")

    def describe(self, name: str) -> dict[str, Any]:
        """What ``GET /v1/models`` adds to the live version's summary: every version, which
        is live since when, and the newest switch."""
        live = self.live[name]
        out: dict[str, Any] = {
            "live_since": self._since[name].isoformat(),
            "versions": [
                {"version": m.version, "flavor": m.adapter.flavor, "live": m is live}
                for m in self._versions[name]
            ],
        }
        last = next((c for c in reversed(self._changes) if c.model == name), None)
        if last is not None:
            out["last_change"] = last.to_dict()
        return out


def switch_to_restore(records: Sequence[Mapping[str, Any]], configured: str) -> str | None:
    """The version a model's newest recorded switch made live, if it still applies.

    ``records``: the model's action records, newest first (the store's
    ``query_action_records`` rows).  Only successful switches count (kinds
    :data:`SWITCH_KINDS`, outcome ``ok``); the newest decides.  None when there is none,
    when it was made under another configured version (a new deployment wins) or when it
    switched back to the configured one.
    """
    for rec in records:
        if rec.get("kind") not in SWITCH_KINDS or rec.get("outcome") != "ok":
            continue
        target = switch_target(rec, configured)
        return None if target == configured else target
    return None


def switch_target(record: Mapping[str, Any], configured: str) -> str | None:
    """The version a switch record made live; None when it names none or was made under
    another configured version (another deployment's record)."""
    evidence = record.get("evidence") or {}
    # an API switch carries it at the top, an alert action in its context
    context = evidence.get("context") or {}
    if evidence.get("configured_version", context.get("configured_version")) != configured:
        return None
    moved = evidence.get("change") or evidence.get("rollback") or {}
    target = moved.get("to_version")
    return None if target is None else str(target)
