"""Model switches outlive a restart and reach every replica, through the store's action log.

A rollback or activation is recorded in the action log (``GET /v1/actions``) by the
process that made it.  Two readers of that log keep every process serving the same
version:

- :func:`restore_switches`, at start: the newest recorded switch is made live again where
  the configured version is unchanged since (``server._registry.switch_to_restore``; a new
  deployment wins);
- :class:`SwitchFollower`, on each round of the evaluator lease's thread (every
  ``fleet.lease_ttl_seconds / 3``, 10 s by default): a switch another replica recorded
  since is made live here (without recording it again).  Workers of one server are told at
  once over their sockets as well (``server._fleet_routes``).

A store that cannot answer costs only the restore or that round: the process keeps
serving what it serves, and the next round reads again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from inferwatch.server._registry import (
    SWITCH_KINDS,
    ModelRegistry,
    switch_target,
    switch_to_restore,
)

if TYPE_CHECKING:
    from inferwatch.ports import Store

__all__ = ["SwitchFollower", "newest_switches", "restore_switches"]

log = logging.getLogger("inferwatch.server")


def newest_switches(store: Store, name: str) -> list[dict[str, Any]]:
    """``name``'s newest successful switch of each kind, newest first (may raise)."""
    records = [
        r
        for kind in sorted(SWITCH_KINDS)
        for r in store.query_action_records(model=name, kind=kind, outcome="ok", limit=1)
    ]
    records.sort(key=lambda r: (r["at"], r["id"]), reverse=True)
    return records


def _switched_models(registry: ModelRegistry) -> list[str]:
    return [name for name in registry.live if len(registry.versions(name)) >= 2]


Seen = dict[str, tuple[Any, Any]]


def restore_switches(registry: ModelRegistry, store: Store) -> Seen:
    """Serve what the last recorded rollback or activation left live, where the configured
    version is unchanged since.  A store that cannot answer costs only the restore: the
    configured versions serve.  Returns the newest switch record read of each model (its
    ``at`` and ``id``), where a :class:`SwitchFollower` starts from."""
    seen: Seen = {}
    for name in _switched_models(registry):
        try:
            records = newest_switches(store, name)
        except Exception as exc:
            log.warning("could not read %s's version switches, serving the configured "
                        "version: %s", name, exc)  # fmt: skip
            continue
        if records:
            seen[name] = (records[0]["at"], records[0]["id"])
        version = switch_to_restore(records, registry.configured(name))
        if version is None:
            continue
        change = registry.restore(name, version, reason="restored at start: the newest "
                                  "recorded switch (GET /v1/actions) left it live")  # fmt: skip
        if change is not None:
            log.warning("model %s serves version %s, as its newest recorded switch left it "
                        "(configured: %s)", name, version, change.from_version)  # fmt: skip
    return seen


class SwitchFollower:
    """Makes live here the switches other replicas record (call :meth:`poll` each round).

    It starts from the newest records at its creation (what :func:`restore_switches`
    already applied: hand its result as ``seen`` rather than reading them again) and acts
    only on newer ones, so a switch is followed once and a later local switch is never
    undone by an older record.
    """

    def __init__(self, registry: ModelRegistry, store: Store, seen: Seen | None = None) -> None:
        self.registry = registry
        self.store = store
        self.followed = 0
        self._seen: Seen = dict(seen) if seen is not None else {}
        for name in _switched_models(registry) if seen is None else ():
            try:
                records = newest_switches(store, name)
            except Exception as exc:  # the first poll reads again
                log.debug("could not read %s's version switches: %s", name, exc)
                continue
            if records:
                self._seen[name] = (records[0]["at"], records[0]["id"])

    def poll(self) -> None:
        for name in _switched_models(self.registry):
            try:
                records = newest_switches(self.store, name)
            except Exception as exc:
                log.debug("could not read %s's version switches: %s", name, exc)
                continue
            if not records:
                continue
            newest = records[0]
            key = (newest["at"], newest["id"])
            seen = self._seen.get(name)
            if seen is not None and key <= seen:
                continue
            self._seen[name] = key
            target = switch_target(newest, self.registry.configured(name))
            if target is None or self.registry.live[name].version == target:
                continue
            change = self.registry.restore(
                name, target, reason=f"switched on another replica: {newest.get('detail') or ''}"
            )
            if change is not None:
                self.followed += 1
                log.warning("model %s switched from %s to %s, following another replica",
                            name, change.from_version, change.to_version)  # fmt: skip
