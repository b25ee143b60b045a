"""Which receivers hear of an alert: Alertmanager's routing tree, one level of children.

Engine layer (stdlib only).  The config's ``alerting.route`` builds a :class:`Route`
(:meth:`inferwatch.config.AlertingSettings.to_route`) and the :class:`Dispatcher` calls
:meth:`Route.receivers_for` for each new alert.  The semantics are Alertmanager's, so the
built-in engine and the ``alertmanager.yml`` that ``inferwatch generate`` writes from the
same config send an alert to the same receivers: the children are tried in order, the
first that matches takes the alert and stops the search unless it says ``continue``, and
an alert no child takes goes to the default receiver.  A route without a default receiver
(no receivers configured) sends nothing: alerts are only logged and listed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from inferwatch.alerting._silence import Matcher

__all__ = ["ChildRoute", "Route"]


@dataclass(frozen=True, slots=True)
class ChildRoute:
    """A child of the root route: an alert matching *all* ``matchers`` goes to
    ``receiver``; ``continue_`` lets the later children be tried as well."""

    matchers: tuple[Matcher, ...]
    receiver: str
    continue_: bool = False

    def __post_init__(self) -> None:
        if not self.matchers:
            # Alertmanager's child without matchers takes everything; say so explicitly
            # (severity=~".*") rather than by accident
            raise ValueError("a child route needs at least one matcher")
        if not self.receiver:
            raise ValueError("a child route needs a receiver")

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)


@dataclass(frozen=True, slots=True)
class Route:
    """The root route: the default receiver, its children, and the grouping timers the
    :class:`~inferwatch.alerting.Dispatcher` takes (``group_by``, ``group_wait``,
    ``group_interval``, ``repeat_interval``) so the config's one ``route`` block sets all
    of them."""

    receiver: str | None
    routes: tuple[ChildRoute, ...] = ()
    group_by: tuple[str, ...] = ("alertname", "model")
    group_wait: timedelta = timedelta(seconds=30)
    group_interval: timedelta = timedelta(minutes=5)
    repeat_interval: timedelta = timedelta(hours=4)
    _cache: dict[tuple[tuple[str, str], ...], tuple[str, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.receiver is None and self.routes:
            raise ValueError("child routes need a default receiver to fall back on")
        for name, value in (
            ("group_wait", self.group_wait),
            ("group_interval", self.group_interval),
            ("repeat_interval", self.repeat_interval),
        ):
            if value < timedelta(0):
                raise ValueError(f"{name} must not be negative")
        if self.group_interval <= timedelta(0) or self.repeat_interval <= timedelta(0):
            raise ValueError("group_interval and repeat_interval must be positive")

    @property
    def receivers(self) -> list[str]:
        """Every receiver the route can name, default first, each once."""
        names = [self.receiver] if self.receiver is not None else []
        return list(dict.fromkeys([*names, *(r.receiver for r in self.routes)]))

    def receivers_for(self, labels: Mapping[str, str]) -> list[str]:
        """The receivers of an alert with these labels, in route order, each once.

        First matching child wins unless it has ``continue_``; an alert that no child
        takes goes to the default receiver; with no default the list is empty.
        """
        key = tuple(sorted(labels.items()))
        hit = self._cache.get(key)
        if hit is None:
            hit = self._match(labels)
            if len(self._cache) >= 4096:  # label sets are bounded; the cache is too
                self._cache.clear()
            self._cache[key] = hit
        return list(hit)

    def _match(self, labels: Mapping[str, str]) -> tuple[str, ...]:
        out: list[str] = []
        for child in self.routes:
            if child.matches(labels):
                out.append(child.receiver)
                if not child.continue_:
                    break
        if not out and self.receiver is not None:
            out.append(self.receiver)
        return tuple(dict.fromkeys(out))

    @classmethod
    def build(
        cls,
        receiver: str | None,
        routes: Sequence[tuple[Sequence[str], str, bool]] = (),
        *,
        group_by: Sequence[str] = ("alertname", "model"),
        group_wait: timedelta = timedelta(seconds=30),
        group_interval: timedelta = timedelta(minutes=5),
        repeat_interval: timedelta = timedelta(hours=4),
    ) -> Route:
        """A route from matcher strings (``severity=critical``), as the config writes them;
        a bad matcher raises ValueError."""
        children = tuple(
            ChildRoute(tuple(Matcher.parse(m) for m in matchers), name, bool(cont))
            for matchers, name, cont in routes
        )
        return cls(receiver, children, tuple(group_by), group_wait, group_interval, repeat_interval)
