"""The engine's plain-data inputs and outputs: rule outcomes in, transitions out.

The engine does not know the rule spec (``inferwatch.rules``): whoever evaluates the rules
hands it one :class:`RuleOutcome` per series per cycle, already judged (the worst level
breached now) and with its annotations already rendered.  That keeps the state machine
testable with nothing but a fake clock, and lets the PromQL path and the built-in path
share the spec without the engine importing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Literal

__all__ = [
    "RESTORE_LIMIT",
    "AlertState",
    "AlertTransition",
    "RuleOutcome",
    "Severity",
    "StoredAlert",
]

Severity = Literal["warning", "critical"]
#: a series' state in the engine; ``inactive`` series are not kept, only named in history
AlertState = Literal["inactive", "pending", "firing", "resolved"]

#: the shared, read-only default of ``annotations``
_EMPTY: Mapping[str, str] = MappingProxyType({})
#: the most alerts a new leader restores (newest first): an engine holds one alert per
#: rule, series and level, so more than this means a runaway label, not alerts to carry on
RESTORE_LIMIT = 10_000
_LEVELS: tuple[Severity, ...] = ("warning", "critical")
_SEVERITIES = frozenset(_LEVELS)


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """One rule judged on one series in one evaluation cycle.

    ``severity`` is the worst level breached now (None: the condition does not hold).  A
    critical breach also holds the rule's warning condition (the warning threshold is the
    milder one), unless ``levels`` says the rule defines no warning level.  ``for_seconds``
    is the rule's ``for`` duration: how long the condition must hold before it fires.
    """

    rule: str
    labels: Mapping[str, str]
    severity: Severity | None
    value: float
    for_seconds: float = 0.0
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    levels: tuple[Severity, ...] = _LEVELS

    def __post_init__(self) -> None:
        # checked here, where a rule evaluator builds it, so a bad outcome never reaches
        # the engine half way through a cycle (which would lose that cycle's history);
        # kept cheap (a rule evaluator builds one per series per cycle: 100k a cycle)
        if self.severity is not None and self.severity not in _SEVERITIES:
            raise ValueError(
                f"rule {self.rule!r}: severity must be warning, critical or None, "
                f"got {self.severity!r}"
            )
        if not self.for_seconds >= 0:  # also rejects NaN
            raise ValueError(
                f"rule {self.rule!r}: for_seconds must be >= 0, got {self.for_seconds}"
            )
        if self.levels is not _LEVELS and (
            not self.levels or not _SEVERITIES.issuperset(self.levels)
        ):
            raise ValueError(f"rule {self.rule!r}: levels must name warning and/or critical")


@dataclass(frozen=True, slots=True)
class AlertTransition:
    """One change of one alert's state: a row of the alert history the store keeps.

    ``labels`` are the alert's full label set (``alertname``, ``severity`` and the
    series' labels); ``fingerprint`` is :attr:`inferwatch.observation.Alert.fingerprint`
    of those labels.  ``value`` is the signal's value at the evaluation that moved it.
    """

    fingerprint: str
    labels: Mapping[str, str]
    from_state: AlertState
    #: "acknowledged": not a state change but the record of an acknowledgement (the
    #: labels then carry ``acknowledged_by`` and ``acknowledgement_comment``)
    to_state: AlertState | Literal["acknowledged"]
    at: datetime
    value: float
    #: the alert's rendered annotations when it moved (kept so a new leader that restores
    #: the alert can send its resolve with them)
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert that was active (pending or firing) when the engine that held it stopped,
    as the store's alert history tells it.

    A new evaluator leader (or a restarted single process) hands these to
    :meth:`AlertEngine.restore`, so an alert firing before a takeover keeps firing instead
    of going pending and notifying again, and a pending one keeps its ``for`` clock.
    ``since`` is when the condition started holding (the ``for`` clock); ``starts_at`` is
    ``since`` for a pending alert and when it fired for a firing one.  ``acknowledged_by``
    and ``acknowledged_at`` are the newest acknowledgement since it fired, if any.
    """

    fingerprint: str
    labels: Mapping[str, str]
    state: Literal["pending", "firing"]
    since: datetime
    starts_at: datetime
    value: float
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
