"""Silences: mute the notifications of alerts whose labels match, for a time.

Alertmanager's model: a silence has matchers (``label=value``, ``label!=value``,
``label=~regex``, ``label!~regex``; regexes are anchored at both ends), a start, an end,
an author and a comment.  It is *pending* before its start, *active* between start and
end and *expired* after; expiring one early sets its end to now, so history keeps who
silenced what and for how long.  A silenced alert stays in the engine's state (it still
fires and resolves, and the history records it); only its notification is held back.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

__all__ = ["Matcher", "Silence", "SilenceState", "Silences"]

MatchOp = Literal["=", "!=", "=~", "!~"]
SilenceState = Literal["pending", "active", "expired"]

_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True, slots=True)
class Matcher:
    """One condition on one label; a missing label reads as "" (as in Alertmanager)."""

    name: str
    op: MatchOp
    value: str

    def __post_init__(self) -> None:
        if self.op not in ("=", "!=", "=~", "!~"):
            raise ValueError(f"matcher {self.name!r}: unknown operator {self.op!r}")
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(
                    f"matcher {self.name!r}: bad regex {self.value!r}: {exc}"
                ) from None

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """``model=iris``, ``severity!=critical``, ``model=~"iris|wine"`` (quotes optional)."""
        m = _MATCHER.match(text)
        if m is None:
            raise ValueError(f"bad matcher {text!r}: expected label=value, !=, =~ or !~")
        name, op, value = m.group(1), m.group(2), m.group(3)
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        return cls(name, op, value)  # type: ignore[arg-type]

    def matches(self, labels: Mapping[str, str]) -> bool:
        got = labels.get(self.name, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        hit = _compiled(self.value).fullmatch(got) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


_REGEX_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    got = _REGEX_CACHE.get(pattern)
    if got is None:
        if len(_REGEX_CACHE) > 1024:
            _REGEX_CACHE.clear()
        got = _REGEX_CACHE[pattern] = re.compile(pattern)
    return got


@dataclass(frozen=True, slots=True)
class Silence:
    """Mutes alerts matching *all* its matchers between ``starts_at`` and ``ends_at``."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    author: str
    comment: str = ""

    def __post_init__(self) -> None:
        if not self.matchers:
            raise ValueError("a silence needs at least one matcher (it would mute everything)")
        if self.ends_at < self.starts_at:
            raise ValueError("a silence must end after it starts")
        if not self.author.strip():
            raise ValueError("a silence needs an author")

    def state(self, now: datetime) -> SilenceState:
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)


class Silences:
    """The set of silences, by id; expiry is by time (nothing to do when one runs out).

    An expired silence stays listed for ``retention`` (Alertmanager keeps them 5 days, its
    ``--data.retention``) and is then forgotten by :meth:`purge` (the runner calls it each
    cycle), so the set does not grow for ever.
    """

    def __init__(self, retention: timedelta = timedelta(days=5)) -> None:
        self.retention = retention
        self._by_id: dict[str, Silence] = {}
        self._lock = threading.Lock()  # added and expired from request threads

    def add(
        self,
        matchers: Iterable[Matcher | str],
        starts_at: datetime,
        ends_at: datetime,
        author: str,
        comment: str = "",
        id: str | None = None,
    ) -> Silence:
        """Create a silence (string matchers are parsed); returns it with its id."""
        parsed = tuple(m if isinstance(m, Matcher) else Matcher.parse(m) for m in matchers)
        if ends_at <= starts_at:
            raise ValueError("a silence must end after it starts")
        silence = Silence(id or uuid.uuid4().hex, parsed, starts_at, ends_at, author, comment)
        with self._lock:
            if silence.id in self._by_id:
                raise ValueError(f"silence {silence.id!r} exists")
            self._by_id[silence.id] = silence
        return silence

    def expire(self, silence_id: str, now: datetime) -> Silence:
        """End a silence now (a pending one ends before it starts: it never mutes)."""
        with self._lock:
            old = self._by_id.get(silence_id)
            if old is None:
                raise KeyError(silence_id)
            if old.state(now) == "expired":
                return old
            if now <= old.starts_at:
                # a pending silence never mutes: it starts and ends now (as in Alertmanager)
                new = replace(old, starts_at=now, ends_at=now)
            else:
                new = replace(old, ends_at=now)
            self._by_id[silence_id] = new
        return new

    def load(self, silences: Iterable[Silence]) -> int:
        """Take ``silences`` (the store's) by id: an unknown one is added, a known one that
        differs is replaced (expired early, or made, through another replica); returns
        how many changed.  Why: silences are made and expired through whichever replica
        the API reached and stored; a replica that takes the evaluator lease reloads them
        so it mutes what the old leader muted.  One held here and not in ``silences`` is
        kept (the store may lag behind this process, never the other way round)."""
        changed = 0
        with self._lock:
            for silence in silences:
                if self._by_id.get(silence.id) != silence:
                    self._by_id[silence.id] = silence
                    changed += 1
        return changed

    def _purge(self, now: datetime) -> None:
        old = [k for k, s in self._by_id.items() if now - s.ends_at >= self.retention]
        for k in old:
            del self._by_id[k]

    def purge(self, now: datetime) -> int:
        """Forget silences expired for longer than ``retention``; returns how many."""
        with self._lock:
            before = len(self._by_id)
            self._purge(now)
            return before - len(self._by_id)

    def get(self, silence_id: str) -> Silence | None:
        return self._by_id.get(silence_id)

    def list(self, now: datetime, state: SilenceState | None = None) -> list[Silence]:
        """All silences (or those in ``state`` at ``now``), by start time."""
        out = [s for s in tuple(self._by_id.values()) if state is None or s.state(now) == state]
        out.sort(key=lambda s: (s.starts_at, s.id))
        return out

    def silenced_by(self, labels: Mapping[str, str], now: datetime) -> tuple[str, ...]:
        """Ids of the active silences that mute this label set."""
        return tuple(
            s.id
            for s in tuple(self._by_id.values())
            if s.starts_at <= now < s.ends_at and s.matches(labels)
        )

    def __len__(self) -> int:
        return len(self._by_id)
