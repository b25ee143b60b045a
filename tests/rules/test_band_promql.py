"""Band rules' generated PromQL, checked by the real promtool: every kind of signal
records its value, the z-scores equal the Python reference exactly, and the generated
tests are not vacuous (a changed constant or a rolling MAD fails them).

Daily seasonality runs in tests/alerting/test_bands.py (a day of evaluations, once)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferwatch.rules import Rule, load_rules, to_prometheus, to_promtool_tests

pytestmark = pytest.mark.integration

#: one band rule per kind of signal (histogram quantile and mean, ratio, rate, gauge per
#: model, per feature and per instance), every comparison, custom levels, labels, min_mad
SPECS: list[dict[str, Any]] = [
    {"name": "P99Unusual", "signal": "latency", "aggregation": "p99", "for": "5m",
     "labels": {"team": "ml"}, "unusual": {"history": "2h", "min_history": "1h"}},
    {"name": "MeanUnusual", "signal": "inference_latency", "aggregation": "mean",
     "unusual": {"history": "2h", "min_history": "1h"}},
    {"name": "ErrorsUnusual", "signal": "error_rate", "warning": 4, "for": "10m",
     "unusual": {"history": "3h", "min_history": "1h", "step": "10m", "min_mad": 0.01}},
    {"name": "FewRequests", "signal": "requests", "comparison": "<=", "critical": -4,
     "window": "2m", "unusual": {"history": "1h", "min_history": "20m", "step": "1m"}},
    {"name": "DriftUnusual", "signal": "drift", "aggregation": "avg", "comparison": ">=",
     "unusual": {"history": "2h", "min_history": "1h"}},
    {"name": "CpuUnusual", "signal": "cpu", "unusual": {"history": "2h", "min_history": "1h"}},
]  # fmt: skip


def _promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool not installed (make system-deps)")
    cmd = [found, *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _write(tmp_path: Path, rules: list[Rule]) -> tuple[Path, Path, dict[str, Any]]:
    rule_file, test_file = tmp_path / "rules.yml", tmp_path / "rules_test.yml"
    tests = to_promtool_tests(rules)
    rule_file.write_text(yaml.safe_dump(to_prometheus(rules), sort_keys=False, width=10_000))
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False, width=10_000))
    return rule_file, test_file, tests


def test_every_kind_of_signal_passes_promtool(tmp_path: Path) -> None:
    rules = load_rules({"rules": SPECS})
    rule_file, test_file, tests = _write(tmp_path, rules)
    checked = _promtool("check", "rules", rule_file)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    alerts = sum(len(r.levels()) for r in rules)
    assert f"SUCCESS: {5 * len(rules) + alerts} rules found" in checked.stdout
    tested = _promtool("test", "rules", test_file)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # what promtool checked: the outlier fires every level it reaches, nothing else does
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            who = {v for e in check["exp_alerts"] for k, v in e["exp_labels"].items()
                   if k in ("model", "instance")}  # fmt: skip
            assert who in ({"outlier"}, {"outlier:9000"}), case["name"]
        exprs = case["promql_expr_test"]
        assert all(s["value"] == s["value"] for e in exprs for s in e["exp_samples"])
        assert sum(len(e["exp_samples"]) for e in exprs) >= len(exprs)


def test_the_generated_tests_catch_a_wrong_band(tmp_path: Path) -> None:
    """promtool compares the z-scores exactly, so the rounded constant (1.4826) fails, and
    so does a MAD against each step's own median (the rolling approximation) instead of
    the current one; a rule without the history guard fires for the young series."""
    rules = load_rules({"rules": SPECS[:1]})
    rule_file, test_file, _ = _write(tmp_path, rules)
    assert _promtool("test", "rules", test_file).returncode == 0
    text = rule_file.read_text()
    for broken in (
        text.replace("1.482602218505602", "1.4826"),
        text.replace(" @ end()", ""),
        text.replace("count >= 12", "count >= 1"),
    ):
        assert broken != text
        rule_file.write_text(broken)
        failed = _promtool("test", "rules", test_file)
        out = failed.stdout + failed.stderr
        assert failed.returncode != 0 and ("p99_unusual" in out or "P99Unusual" in out)
