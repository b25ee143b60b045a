"""Generated PromQL, checked by the real promtool: rules load, and the generated unit
tests (synthetic series per rule, expected alerts and summaries from our own renderer)
pass, so the PromQL, the thresholds, ``for`` and the Python renderer agree."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferwatch.rules import (
    SIGNALS,
    Rule,
    default_rules,
    load_rules,
    to_prometheus,
    to_promtool_tests,
)
from inferwatch.rules._spec import AGGREGATIONS

pytestmark = pytest.mark.integration


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool not installed (make system-deps)")
    return found


def _write(tmp_path: Path, rules: list[Rule]) -> tuple[Path, Path]:
    rule_file = tmp_path / "rules.yml"
    test_file = tmp_path / "rules_test.yml"
    rule_file.write_text(yaml.safe_dump(to_prometheus(rules), sort_keys=False))
    test_file.write_text(yaml.safe_dump(to_promtool_tests(rules), sort_keys=False))
    return rule_file, test_file


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *map(str, args)], capture_output=True, text=True, timeout=120
    )


def _every_signal() -> list[Rule]:
    """A rule per signal and aggregation, cycling through the four comparisons."""
    rules: list[dict[str, Any]] = []
    for sig in SIGNALS.values():
        for agg in AGGREGATIONS[sig.kind]:
            up = sig.bad != "below"
            cmp = (">", ">=")[len(rules) % 2] if up else ("<", "<=")[len(rules) % 2]
            lo, hi = (0.2, 0.6) if sig.unit in ("ratio", "score") else (2.0, 8.0)
            warning, critical = (lo, hi) if up else (hi, lo)
            rules.append(
                {"name": f"{sig.name}_{agg}", "signal": sig.name, "aggregation": agg,
                 "comparison": cmp, "warning": warning, "critical": critical,
                 "window": ("2m", "5m", "10m")[len(rules) % 3],
                 "for": ("0s", "1m", "3m")[len(rules) % 3], "labels": {"team": "ml"},
                 "summary": "{{ $labels.model }}{{ $labels.feature }}{{ $labels.instance }} "
                            "at {{ $value }}",
                 "description": 'value {{ printf "%.3f" $value }}'}
            )  # fmt: skip
    return load_rules({"rules": rules})


def test_default_pack_passes_promtool(tmp_path: Path) -> None:
    rule_file, test_file = _write(tmp_path, default_rules())
    checked = _run("check", "rules", rule_file)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {sum(len(r.levels()) for r in default_rules())} rules found" in (
        checked.stdout
    )
    tested = _run("test", "rules", test_file)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_short_windows_like_the_demos_pass_promtool(tmp_path: Path) -> None:
    """Windows under a minute (the demo's 30 s) and a 1-minute window in one file: each
    rule's test samples often enough that ``rate`` finds two samples at every evaluation
    (sampled once a minute, a 30 s window read nothing and its alerts never fired)."""
    from inferwatch.demo._data import demo_alerting

    rules = load_rules({"rules": demo_alerting()["rules"]})
    assert {r.window for r in rules if r.spec.kind != "gauge"} >= {30.0, 60.0}
    _, test_file = _write(tmp_path, rules)
    tested = _run("test", "rules", test_file)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_signal_aggregation_and_comparison_passes_promtool(tmp_path: Path) -> None:
    rules = _every_signal()
    assert len(rules) == sum(len(AGGREGATIONS[s.kind]) for s in SIGNALS.values())
    rule_file, test_file = _write(tmp_path, rules)
    checked = _run("check", "rules", rule_file)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _run("test", "rules", test_file)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_generated_tests_catch_a_wrong_rule(tmp_path: Path) -> None:
    """The tests are not vacuous: a threshold or ``for`` edited in the rule file makes
    promtool fail them."""
    rules = [r for r in default_rules() if r.name in ("HighLatencyP99", "AccuracyLow")]
    rule_file, test_file = _write(tmp_path, rules)
    assert _run("test", "rules", test_file).returncode == 0
    text = rule_file.read_text()
    rule_file.write_text(text.replace("> 1\n", "> 2\n", 1))
    failed = _run("test", "rules", test_file)
    assert failed.returncode != 0 and "HighLatencyP99" in failed.stdout + failed.stderr
    rule_file.write_text(text.replace("for: 10m", "for: 1m"))
    assert _run("test", "rules", test_file).returncode != 0


def test_alerts_carry_severity_model_and_annotations() -> None:
    group = to_prometheus(default_rules())["groups"][0]
    assert group["name"] == "inferwatch"
    lat = [a for a in group["rules"] if a["alert"] == "HighLatencyP99"]
    assert [a["labels"]["severity"] for a in lat] == ["critical", "warning"]
    assert lat[0]["expr"] == (
        "histogram_quantile(0.99, sum by (model, le) "
        "(rate(inferwatch_request_duration_seconds_bucket[5m]))) > 1"
    )
    assert lat[0]["for"] == "5m" and "{{ $labels.model }}" in lat[0]["annotations"]["summary"]
