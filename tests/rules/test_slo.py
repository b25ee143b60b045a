"""SLO burn-rate alerts (SRE workbook, multi-window multi-burn-rate): validation with key
paths, and the generated recording and alerting rules run by the real promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferwatch.rules import SLO, RuleError, load_slos, slo_promtool_tests, slo_rules

BOUNDS = (0.25, 0.5, 1.0)
SLOS: list[dict[str, Any]] = [
    {"name": "Availability", "sli": "availability", "objective": 0.999},
    {"name": "Accuracy", "sli": "accuracy", "objective": 0.99},
    {"name": "Fast", "sli": "latency", "objective": 0.99, "threshold": 0.5},
]


def test_windows_and_factors_are_the_workbooks() -> None:
    [slo] = load_slos([SLOS[0]])
    assert slo.budget == 0.001
    assert slo.windows() == [
        ("critical", 14.4, 3600, 300), ("critical", 6.0, 21600, 1800),
        ("warning", 3.0, 86400, 7200), ("warning", 1.0, 259200, 21600),
    ]  # fmt: skip
    short = SLO("A", "availability", 0.99, period=86400)  # a 1-day period scales windows
    assert short.windows()[0] == ("critical", 14.4, 120, 10)


def test_rules_record_each_window_once_and_alert_on_pairs() -> None:
    [group] = slo_rules(load_slos([SLOS[0]]))["groups"]
    records = [r["record"] for r in group["rules"] if "record" in r]
    assert records == [f"model:inferwatch_slo_errors:ratio_rate{w}"
                       for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d")]  # fmt: skip
    page = next(r for r in group["rules"] if r.get("labels", {}).get("severity") == "critical")
    assert page["expr"] == (
        '(model:inferwatch_slo_errors:ratio_rate1h{slo="Availability"} > (14.4 * 0.001) and '
        'model:inferwatch_slo_errors:ratio_rate5m{slo="Availability"} > (14.4 * 0.001)) or '
        '(model:inferwatch_slo_errors:ratio_rate6h{slo="Availability"} > (6.0 * 0.001) and '
        'model:inferwatch_slo_errors:ratio_rate30m{slo="Availability"} > (6.0 * 0.001))'
    )


def test_bad_slos_name_their_paths() -> None:
    with pytest.raises(RuleError) as e:
        load_slos(
            [{"name": "A", "sli": "availability", "objective": 99.9},
             {"name": "A", "sli": "uptime", "objective": 0.9},
             {"name": "L", "sli": "latency", "objective": 0.99, "threshold": 0.3},
             {"name": "P", "sli": "accuracy", "objective": 0.9, "period": "a month",
              "threshold": 1}],
            latency_bounds=BOUNDS,
        )  # fmt: skip
    problems = e.value.problems
    assert "alerting.slos[0].objective: must be a fraction between 0 and 1, like 0.999" in (
        problems
    )
    assert "alerting.slos[1].name: 'A' is already the name of alerting.slos[0]" in problems
    assert any(p.startswith("alerting.slos[1].sli: must be one of") for p in problems)
    assert any(
        p.startswith("alerting.slos[2].threshold: must be a latency bucket") for p in problems
    )
    assert any(p.startswith("alerting.slos[3].period: 'a month'") for p in problems)
    assert "alerting.slos[3].threshold: only a latency objective has one" in problems


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool not installed (make system-deps)")
    return found


@pytest.mark.integration
def test_burn_rate_rules_pass_promtool_and_the_short_window_matters(tmp_path: Path) -> None:
    slos = load_slos(SLOS, latency_bounds=BOUNDS)
    rule_file, test_file = tmp_path / "slo.yml", tmp_path / "slo_test.yml"
    rule_file.write_text(yaml.safe_dump(slo_rules(slos), sort_keys=False, width=10_000))
    test_file.write_text(yaml.safe_dump(slo_promtool_tests(slos), sort_keys=False))

    def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
        cmd = [_promtool(), *map(str, args)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    checked = promtool("check", "rules", rule_file)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 27 rules found" in checked.stdout  # 3 x (7 records + page + ticket)
    tested = promtool("test", "rules", test_file)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # without the short windows, a model that stopped erring an hour ago would still page
    text = rule_file.read_text()
    assert text.count(" and ") == 3 * 4
    rule_file.write_text(text.replace(" and ", " or "))
    failed = promtool("test", "rules", test_file)
    assert failed.returncode != 0 and "recovered" in failed.stdout + failed.stderr
