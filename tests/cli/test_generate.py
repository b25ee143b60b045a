"""``inferwatch generate`` as a user runs it: a line per file written, notes on stderr,
refusal to overwrite without --force, exit 2 naming the key on a bad config or usage."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.cli.conftest import Run

CONFIG = """\
server: {host: 127.0.0.1, port: 8011}
alerting:
  default_pack: true
  receivers:
    - {name: chat, type: slack, url_env: SLACK_URL}
    - {name: pager, type: pagerduty, routing_key_file: /run/secrets/pd}
  route:
    routes:
      - {matchers: [severity=critical], receiver: pager}
"""
FILES = [
    "prometheus.yml",
    "rules/inferwatch.yml",
    "rules/inferwatch_test.yml",
    "alertmanager.yml",
    "grafana/dashboards/inferwatch-overview.json",
    "grafana/dashboards/inferwatch-model.json",
    "grafana/provisioning/datasources/inferwatch.yml",
    "grafana/provisioning/dashboards/inferwatch.yml",
    *(
        f"k8s/{kind}.yaml"
        for kind in (
            "configmap",
            "deployment",
            "service",
            "servicemonitor",
            "prometheusrule",
            "kustomization",
        )
    ),
]


def test_writes_every_file_and_refuses_to_overwrite(run_cli: Run, tmp_path: Path) -> None:
    (tmp_path / "inferwatch.yaml").write_text(CONFIG)
    out = run_cli("generate", "-c", "inferwatch.yaml", "--out", "mon")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines() == [f"wrote {Path('mon') / f}" for f in FILES]
    assert "note: alertmanager.yml: receiver 'chat' reads its url from 'secrets/chat_url'" in (
        out.stderr.replace("\n", " ")
    )
    am = yaml.safe_load((tmp_path / "mon" / "alertmanager.yml").read_text())
    assert am["route"]["receiver"] == "chat"
    assert am["route"]["routes"] == [{"receiver": "pager", "matchers": ['severity="critical"']}]
    assert am["receivers"][1]["pagerduty_configs"][0]["routing_key_file"] == "/run/secrets/pd"

    (tmp_path / "mon" / "prometheus.yml").write_text("# mine\n")
    again = run_cli("generate", "prometheus", "-c", "inferwatch.yaml", "--out", "mon")
    assert again.returncode == 2
    assert "refusing to overwrite mon/prometheus.yml (pass --force" in again.stderr
    assert (tmp_path / "mon" / "prometheus.yml").read_text() == "# mine\n"
    forced = run_cli(
        "generate", "prometheus", "-c", "inferwatch.yaml", "--out", "mon", "--force",
        "--pushgateway", "none", "--scrape-interval", "5s",
    )  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.splitlines() == [f"wrote {Path('mon') / 'prometheus.yml'}"]
    prom = yaml.safe_load((tmp_path / "mon" / "prometheus.yml").read_text())
    assert [j["job_name"] for j in prom["scrape_configs"]] == ["inferwatch"]
    assert prom["global"]["scrape_interval"] == "5s"


def test_bad_config_and_usage_exit_2_naming_the_key(run_cli: Run, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(CONFIG.replace("receiver: pager}", "receiver: oncall}"))
    bad = run_cli("generate", "-c", "bad.yaml", "--out", "mon")
    assert bad.returncode == 2
    assert "alerting.route.routes[0].receiver: no receiver named 'oncall'" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert not (tmp_path / "mon").exists()

    (tmp_path / "hook.yaml").write_text(CONFIG.replace(
        "  route:", "    - {name: hook, type: webhook, url: 'http://127.0.0.1:1/x'}\n  route:"
    ))  # fmt: skip
    hook = run_cli("generate", "alertmanager", "nagios", "-c", "hook.yaml")
    assert hook.returncode == 2
    assert "unknown target(s) nagios; choose from prometheus, rules, alertmanager" in (
        hook.stderr.replace("\n", " ")
    )
    hook = run_cli("generate", "alertmanager", "-c", "hook.yaml", "-o", "mon")
    assert hook.returncode == 2
    text = hook.stderr.replace("\n", " ")
    assert "alerting.receivers[2]: Alertmanager 0.25 cannot read a webhook URL" in text
    assert "127.0.0.1:1/x" not in text and not (tmp_path / "mon").exists()
    clear = run_cli(
        "generate", "alertmanager", "-c", "hook.yaml", "-o", "mon", "--webhook-url-in-clear"
    )
    assert clear.returncode == 0, clear.stderr
