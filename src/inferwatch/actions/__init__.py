"""Automated responses to alerts: roll a model back, call a retraining hook, publish a
desired-replicas hint for a Kubernetes HPA; each with a cooldown, each recorded with its
evidence.

Adapter layer (it runs commands and posts webhooks).  ``alerting.actions`` in the config
holds the entries (:func:`load_actions` checks them with key paths);
:class:`ActionRunner` is what the alert runner's ``on_transitions`` calls each cycle.
"""

from __future__ import annotations

from inferwatch.actions._config import (
    ActionConfig,
    RetrainActionConfig,
    RollbackActionConfig,
    ScaleActionConfig,
    load_actions,
)
from inferwatch.actions._runner import ActionRunner, engine_lookup, evidence_json

__all__ = [
    "ActionConfig",
    "ActionRunner",
    "RetrainActionConfig",
    "RollbackActionConfig",
    "ScaleActionConfig",
    "engine_lookup",
    "evidence_json",
    "load_actions",
]
