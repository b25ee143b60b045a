"""``alerting.actions`` entries: parsed into config models, refused with key paths."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from inferwatch.actions import (
    RetrainActionConfig,
    RollbackActionConfig,
    ScaleActionConfig,
    load_actions,
)
from inferwatch.alerting import Matcher
from inferwatch.config import AlertingSettings

ROLLBACK = {
    "name": "rollback-on-accuracy", "kind": "rollback",
    "when": ["alertname=AccuracyLow", "severity=critical"], "cooldown": "1h",
}  # fmt: skip
RETRAIN = {
    "name": "retrain-on-drift", "kind": "retrain",
    "when": ["alertname=DatasetDrift", "severity=critical"],
    "command": ["python", "retrain.py"], "timeout": "10m", "cooldown": "6h",
}  # fmt: skip
SCALE = {
    "name": "scale-on-cpu", "kind": "scale", "when": ["alertname=HighCPU"],
    "target": 0.7, "min_replicas": 1, "max_replicas": 10, "cooldown": "5m",
}  # fmt: skip


def test_the_briefs_example_parses_into_one_model_per_kind() -> None:
    problems, configs = load_actions([ROLLBACK, RETRAIN, SCALE])

    assert problems == []
    rollback, retrain, scale = configs
    assert isinstance(rollback, RollbackActionConfig) and rollback.cooldown == 3600
    assert rollback.matchers == (Matcher("alertname", "=", "AccuracyLow"),
                                 Matcher("severity", "=", "critical"))  # fmt: skip
    assert isinstance(retrain, RetrainActionConfig)
    assert (retrain.command, retrain.url, retrain.timeout, retrain.cooldown) == (
        ["python", "retrain.py"], None, 600.0, 6 * 3600.0,
    )  # fmt: skip
    assert isinstance(scale, ScaleActionConfig)
    assert (scale.target, scale.min_replicas, scale.max_replicas, scale.cooldown) == (
        0.7, 1, 10, 300.0,
    )  # fmt: skip


def test_a_webhook_retrain_and_the_defaults() -> None:
    entry = {"name": "r", "kind": "retrain", "when": ["alertname=X"],
             "url": "http://127.0.0.1:8080/hook"}  # fmt: skip
    (config,) = load_actions([entry])[1]
    assert config.url == "http://127.0.0.1:8080/hook" and config.command is None
    assert config.timeout == 600.0 and config.cooldown == 3600.0


def _problems(**changes: Any) -> list[str]:
    entry = {**changes.pop("base", ROLLBACK), **changes}
    entry = {k: v for k, v in entry.items() if v is not None}
    return load_actions([ROLLBACK, entry])[0]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"kind": "reboot"}, "alerting.actions[1].kind: must be one of rollback, retrain, scale"),
        ({"when": []}, "alerting.actions[1].when: List should have at least 1 item"),
        ({"when": ["model=a", "severity"]}, "alerting.actions[1].when[1]: bad matcher"),
        ({"when": ['model=~"(x"']}, "alerting.actions[1].when[0]: matcher 'model': bad regex"),
        ({"cooldown": "1 hour"}, "alerting.actions[1].cooldown: '1 hour' is not a duration"),
        ({"cooldown": -1}, "alerting.actions[1].cooldown: Input should be greater than or equal"),
        ({"colldown": "1h"}, "alerting.actions[1].colldown: Extra inputs are not permitted"),
        ({"name": ""}, "alerting.actions[1].name: String should have at least 1 character"),
        ({"name": "rollback-on-accuracy"},
         "alerting.actions[1].name: 'rollback-on-accuracy' is already the name of "
         "alerting.actions[0]"),
        ({"base": RETRAIN, "url": "http://x/"}, "alerting.actions[1]: set exactly one of"),
        ({"base": RETRAIN, "command": None}, "alerting.actions[1]: set exactly one of"),
        ({"base": RETRAIN, "command": [" "]}, "alerting.actions[1].command: the program"),
        ({"base": RETRAIN, "command": None, "url": "ftp://x"},
         "alerting.actions[1].url: String should match pattern"),
        ({"base": RETRAIN, "timeout": 0}, "alerting.actions[1].timeout: Input should be greater"),
        ({"base": SCALE, "target": 0}, "alerting.actions[1].target: Input should be greater"),
        ({"base": SCALE, "target": None}, "alerting.actions[1].target: Field required"),
        ({"base": SCALE, "min_replicas": 5, "max_replicas": 2},
         "alerting.actions[1]: max_replicas (2) is below min_replicas (5)"),
    ],
)  # fmt: skip
def test_a_bad_entry_is_refused_with_its_key_path(changes: dict[str, Any], expected: str) -> None:
    problems = _problems(**changes)
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems


def test_every_bad_entry_is_reported_at_once() -> None:
    problems = load_actions([{**ROLLBACK, "kind": "x"}, {**SCALE, "target": -1}, ROLLBACK])[0]
    assert [p.split(":")[0] for p in problems] == [
        "alerting.actions[0].kind", "alerting.actions[1].target",
    ]  # fmt: skip


def test_the_settings_hold_the_models_and_refuse_a_bad_entry() -> None:
    settings = AlertingSettings(actions=[ROLLBACK, SCALE])
    assert [type(a) for a in settings.actions] == [RollbackActionConfig, ScaleActionConfig]
    assert AlertingSettings().actions == []

    with pytest.raises(pydantic.ValidationError, match=r"alerting\.actions\[0\]\.cooldown"):
        AlertingSettings(actions=[{**ROLLBACK, "cooldown": "soon"}])
