"""Rules from config data: every problem at once with its key path; the default pack."""

from __future__ import annotations

from typing import Any

import pytest

from inferwatch.rules import RuleError, default_rules, load_rules, rule_to_dict


def _problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(RuleError) as e:
        load_rules(data)
    return e.value.problems


def test_a_valid_rule_loads_with_defaults() -> None:
    [rule] = load_rules({"rules": [{"name": "Slow", "signal": "latency", "warning": 0.5}]})
    assert (rule.aggregation, rule.window, rule.comparison, rule.for_) == ("p99", 300, ">", 0)
    assert rule.critical is None and "$labels.model" in rule.summary
    acc_rule = {"name": "Acc", "signal": "accuracy", "critical": 0.8, "window": "1h",
                "for": "10m", "labels": {"team": "ml"}}  # fmt: skip
    [acc] = load_rules({"rules": [acc_rule]})
    assert (acc.comparison, acc.aggregation, acc.window, acc.for_) == ("<", "last", 3600, 600)
    assert acc.labels == {"team": "ml"}


def test_every_problem_is_reported_with_its_path() -> None:
    problems = _problems(
        {"rules": [
            {"name": "Ok", "signal": "latency", "warning": 0.5},
            {"name": "Typo", "signal": "latncy", "warning": 1},
            {"name": "Order", "signal": "accuracy", "comparison": "<", "warning": 0.85,
             "critical": 0.92},
            {"name": "Up", "signal": "latency", "warning": 1.0, "critical": 0.5},
            {"name": "Dur", "signal": "error_rate", "warning": 0.1, "window": "5 minutes",
             "for": "1x"},
            {"name": "Ok", "signal": "drift", "warning": 0.5},
            {"name": "Side", "signal": "accuracy", "comparison": ">", "warning": 0.9},
            {"name": "Agg", "signal": "drift", "aggregation": "p99", "warning": 0.5},
            {"name": "None", "signal": "drift"},
            {"name": "Lab", "signal": "drift", "warning": 0.5, "labels": {"severity": "x"},
             "summary": "{{ $value | humanize }}", "extra": 1},
        ]}
    )  # fmt: skip
    text = "\n".join(problems)
    assert "alerting.rules[1].signal: unknown signal 'latncy' (known: " in text
    assert "accuracy, " in text  # the list of known signals
    assert "alerting.rules[2].critical: must be below warning for '<'" in problems
    assert "alerting.rules[3].critical: must be above warning for '>'" in problems
    assert any(p.startswith("alerting.rules[4].window: '5 minutes'") for p in problems)
    assert any(p.startswith("alerting.rules[4].for: '1x'") for p in problems)
    assert "alerting.rules[5].name: 'Ok' is already the name of alerting.rules[0]" in problems
    assert any(p.startswith("alerting.rules[6].comparison: 'accuracy' is bad when below")
               for p in problems)  # fmt: skip
    assert any(p.startswith("alerting.rules[7].aggregation: 'p99'") for p in problems)
    assert "alerting.rules[8]: needs a warning or a critical threshold (or both)" in problems
    assert any(p.startswith("alerting.rules[9].labels.severity: reserved") for p in problems)
    assert any(p.startswith("alerting.rules[9].summary: unsupported") for p in problems)
    assert any(p.startswith("alerting.rules[9].extra: unknown key") for p in problems)
    assert not any(p.startswith("alerting.rules[0]") for p in problems)


@pytest.mark.parametrize(
    ("data", "path"),
    [({"rules": {"name": "x"}}, "alerting.rules: must be a list"),
     ({"rules": ["x"]}, "alerting.rules[0]: must be a mapping"),
     ({"default_pack": "yes"}, "alerting.default_pack: must be true or false"),
     ({"rule": []}, "alerting.rule: unknown key"),
     ({"rules": [{"name": "X", "signal": "latency", "warning": True}]},
      "alerting.rules[0].warning: must be a number"),
     ({"rules": [{"name": "X", "signal": "latency", "warning": float("inf")}]},
      "alerting.rules[0].warning: must be finite"),
     ({"rules": [{"name": "1bad", "signal": "latency", "warning": 1}]},
      "alerting.rules[0].name: required")],
)  # fmt: skip
def test_shapes(data: dict[str, Any], path: str) -> None:
    assert any(p.startswith(path) for p in _problems(data))


def test_default_pack_is_valid_and_covers_the_seeds() -> None:
    rules = {r.name: r for r in default_rules()}
    lat = rules["HighLatencyP99"]
    assert (lat.signal, lat.aggregation, lat.critical, lat.warning, lat.for_) == (
        "latency", "p99", 1.0, 0.5, 300,
    )  # fmt: skip
    for name in ("AccuracyLow", "EstimatedAccuracyLow"):
        r = rules[name]
        assert (r.comparison, r.warning, r.critical, r.for_) == ("<", 0.92, 0.85, 600)
    drift = rules["FeatureDrift"]
    assert (drift.signal, drift.comparison, drift.warning, drift.for_) == ("drift", ">", 0.5, 1800)
    signals = {r.signal for r in rules.values()}
    seeds = {"error_rate", "dataset_drift_share", "confidence_drift", "missing_share",
             "out_of_range_share", "requests", "label_coverage", "cpu", "memory"}  # fmt: skip
    assert seeds <= signals
    # and it reads back through the validator unchanged
    again = load_rules({"rules": [rule_to_dict(r) for r in rules.values()]})
    assert again == list(rules.values())


def test_default_pack_merges_and_a_configured_rule_replaces_its_default() -> None:
    mine = {"name": "AccuracyLow", "signal": "accuracy", "warning": 0.8, "critical": 0.7}
    rules = load_rules({"default_pack": True, "rules": [mine]})
    assert len(rules) == len(default_rules())
    [acc] = [r for r in rules if r.name == "AccuracyLow"]
    assert (acc.warning, acc.critical) == (0.8, 0.7)
    assert load_rules({}) == [] and load_rules(None) == []
