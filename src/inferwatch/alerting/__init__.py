"""The built-in alert engine: pending, firing, resolved; grouping, inhibition, silences.

Engine layer (stdlib and the core only, no I/O, clock injected).  Whoever evaluates the
rules hands :meth:`AlertEngine.evaluate` one :class:`RuleOutcome` per series per cycle and
gets the state changes back as history rows; :class:`Dispatcher` groups the alerts and
delivers them through a :class:`Notifier` with retries; :class:`AlertRunner` drives both
on a thread for the server.
"""

from __future__ import annotations

from inferwatch.alerting._bands import BandHistory
from inferwatch.alerting._dispatch import DeliveryAttempt, Dispatcher, Notifier, group_key
from inferwatch.alerting._engine import ActiveAlert, AlertEngine, fingerprint
from inferwatch.alerting._evaluate import BandScore, RuleEvaluator, SignalValues, parse_matchers
from inferwatch.alerting._model import (
    RESTORE_LIMIT,
    AlertState,
    AlertTransition,
    RuleOutcome,
    Severity,
    StoredAlert,
)
from inferwatch.alerting._route import ChildRoute, Route
from inferwatch.alerting._runner import AlertRunner
from inferwatch.alerting._samples import Sample, SampleHistory
from inferwatch.alerting._silence import Matcher, Silence, Silences, SilenceState

__all__ = [
    "ActiveAlert",
    "AlertEngine",
    "AlertRunner",
    "AlertState",
    "AlertTransition",
    "BandHistory",
    "BandScore",
    "ChildRoute",
    "DeliveryAttempt",
    "Dispatcher",
    "Matcher",
    "Notifier",
    "RESTORE_LIMIT",
    "Route",
    "RuleEvaluator",
    "RuleOutcome",
    "Sample",
    "SampleHistory",
    "Severity",
    "SignalValues",
    "Silence",
    "SilenceState",
    "Silences",
    "StoredAlert",
    "fingerprint",
    "group_key",
    "parse_matchers",
]
