"""``inferwatch rules list|validate``, and ``serve`` refusing bad rules at start, run as a
user runs them (a subprocess, stdout piped)."""

from __future__ import annotations

import json
from pathlib import Path

from inferwatch.rules import default_rules
from tests.cli.conftest import Run

BAD = """\
alerting:
  default_pack: true
  rules:
    - {name: Slow, signal: latency, warning: 0.5}
    - {name: Typo, signal: latncy, warning: 1}
    - {name: Acc, signal: accuracy, comparison: "<", warning: 0.85, critical: 0.92}
    - {name: Dur, signal: error_rate, warning: 0.1, window: 5 minutes}
    - {name: Slow, signal: drift, warning: 0.5}
  slos:
    - {name: Fast, sli: latency, objective: 0.99, threshold: 0.3}
"""
GOOD = """\
alerting:
  default_pack: true
  rules:
    - name: SlowP95
      signal: latency
      aggregation: p95
      warning: 0.2
      critical: 0.4
      for: 2m
      labels: {team: ml}
      summary: "p95 of {{ $labels.model }} is {{ $value }} s"
    - {name: FewRequests, signal: requests, comparison: "<", unusual: true}
  slos:
    - {name: Fast, sli: latency, objective: 0.99, threshold: 0.5}
"""
PATHS = (
    "alerting.rules[1].signal: unknown signal 'latncy' (known: accuracy,",
    "alerting.rules[2].critical: must be below warning for '<'",
    "alerting.rules[3].window: '5 minutes' is not a duration",
    "alerting.rules[4].name: 'Slow' is already the name of alerting.rules[0]",
    "alerting.slos[0].threshold: must be a latency bucket bound (0.0005, 0.001,",
)


def test_validate_names_every_bad_key_and_exits_2(run_cli: Run, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD)
    out = run_cli("rules", "validate", "-c", "bad.yaml")
    assert out.returncode == 2, out.stdout + out.stderr
    for path in PATHS:
        assert path in out.stderr
    assert "Traceback" not in out.stderr and "rules[0]" not in out.stderr.replace(
        "name of alerting.rules[0]", ""
    )


def test_serve_refuses_bad_rules_at_start(run_cli: Run, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD)
    for cmd in (("serve", "-c", "bad.yaml"), ("config", "validate", "bad.yaml")):
        out = run_cli(*cmd, timeout=60)
        assert out.returncode == 2, out.stdout + out.stderr
        for path in PATHS:
            assert path in out.stderr, cmd
        assert "Traceback" not in out.stderr


def test_validate_and_list_a_good_config(run_cli: Run, tmp_path: Path) -> None:
    (tmp_path / "inferwatch.yaml").write_text(GOOD)
    total = len(default_rules()) + 2
    ok = run_cli("rules", "validate")  # ./inferwatch.yaml by default
    assert ok.returncode == 0, ok.stderr
    assert f"{total} alert rule(s), 1 SLO(s)" in ok.stdout
    listed = run_cli("rules", "list", "--promql")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    [slow] = [line for line in lines if line.startswith("SlowP95")]
    cells = [c.strip() for c in slow.split("│")]
    assert cells[:8] == ["SlowP95", "latency", "p95", "5m", ">", "0.2", "0.4", "2m"]
    assert "histogram_quantile(0.95, sum by (model, le)" in cells[8]
    [few] = [line for line in lines if line.startswith("FewRequests")]
    cells = [c.strip() for c in few.split("│")]
    assert cells[4:7] == ["unusual: z <", "-3", "-5"]  # levels of the z-score, marked
    assert "…" not in listed.stdout  # a pipe gets whole lines
    assert f"{total} rule(s)" in listed.stdout
    assert "SLO Fast: latency within 0.5 s, objective 0.99 over 30d" in listed.stdout
    as_json = json.loads(run_cli("rules", "list", "--json").stdout)
    assert [r["name"] for r in as_json][-2:] == ["SlowP95", "FewRequests"]
    assert as_json[-2]["labels"] == {"team": "ml"} and as_json[-2]["for"] == "2m"
    assert as_json[-1]["unusual"]["seasonality"] == "none"


def test_no_rules_and_no_config(run_cli: Run, tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("logging: {level: INFO}\n")
    out = run_cli("rules", "list", "-c", "empty.yaml")
    assert out.returncode == 0 and "no alert rules" in out.stdout
    missing = run_cli("rules", "validate")
    assert missing.returncode == 2 and "no configuration" in missing.stderr
