"""What ``generate`` writes, read back as YAML: scrape targets, rule files, the route tree
and receivers translated, secrets never written, refusals with the key's path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from inferwatch.config import Settings
from inferwatch.generate import GenerateError, GenerateOptions, generate, write_bundle
from inferwatch.rules import default_rules, slo_rules, to_prometheus
from tests.generate._bundles import ENV_SECRETS, INLINE_SECRETS, full_settings

CLEAR = GenerateOptions(webhook_url_in_clear=True)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in ENV_SECRETS.items():
        monkeypatch.setenv(name, value)
    return full_settings(tmp_path)


def _yaml(text: str) -> Any:
    return yaml.safe_load(text)


def test_all_targets_by_default_in_a_fixed_order(settings: Settings) -> None:
    bundle = generate(settings, (), CLEAR)
    assert list(bundle.files) == [
        "prometheus.yml",
        "rules/inferwatch.yml",
        "rules/inferwatch_test.yml",
        "rules/slo.yml",
        "rules/slo_test.yml",
        "alertmanager.yml",
        "grafana/dashboards/inferwatch-overview.json",
        "grafana/dashboards/inferwatch-model.json",
        "grafana/provisioning/datasources/inferwatch.yml",
        "grafana/provisioning/dashboards/inferwatch.yml",
    ]
    assert list(generate(settings, ["alertmanager", "prometheus"], CLEAR).files) == [
        "prometheus.yml",
        "alertmanager.yml",
    ]
    with pytest.raises(GenerateError, match=r"unknown target.*'nagios'"):
        generate(settings, ["nagios"])


def test_prometheus_scrapes_the_server_and_pushgateway(settings: Settings) -> None:
    prom = _yaml(generate(settings, ["prometheus"], CLEAR).files["prometheus.yml"])
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    # a wildcard bind address is scraped on loopback; /metrics is guarded: a key file
    assert jobs["inferwatch"]["static_configs"] == [{"targets": ["127.0.0.1:8123"]}]
    assert jobs["inferwatch"]["metrics_path"] == "/metrics"
    assert jobs["inferwatch"]["authorization"] == {
        "type": "Bearer",
        "credentials_file": "secrets/inferwatch_api_key",
    }
    assert jobs["pushgateway"]["honor_labels"] is True
    assert jobs["pushgateway"]["static_configs"] == [{"targets": ["127.0.0.1:9091"]}]
    # the test files beside the rules are not loaded as rules
    assert prom["rule_files"] == ["rules/inferwatch.yml", "rules/slo.yml"]
    assert prom["global"]["evaluation_interval"] == "30s"
    # the config's alertmanager receiver is where Prometheus sends alerts
    assert prom["alerting"]["alertmanagers"][0]["static_configs"] == [
        {"targets": ["127.0.0.1:19093"]}
    ]


def test_prometheus_options_and_open_metrics() -> None:
    settings = Settings(server={"host": "::", "port": 9000})
    opts = GenerateOptions(pushgateway=None, scrape_interval=2, alertmanager="am.local:9093")
    prom = _yaml(generate(settings, ["prometheus"], opts).files["prometheus.yml"])
    (job,) = prom["scrape_configs"]
    assert job["static_configs"] == [{"targets": ["[::1]:9000"]}]
    assert "authorization" not in job  # no keys: /metrics is open
    # a scrape timeout never longer than the interval (Prometheus refuses that)
    assert prom["global"]["scrape_interval"] == prom["global"]["scrape_timeout"] == "2s"
    assert prom["alerting"]["alertmanagers"][0]["static_configs"] == [
        {"targets": ["am.local:9093"]}
    ]
    assert prom["rule_files"] == []
    target = GenerateOptions(target="https://iw.example.com:443")
    prom = _yaml(generate(settings, ["prometheus"], target).files["prometheus.yml"])
    assert prom["scrape_configs"][0]["scheme"] == "https"
    assert prom["scrape_configs"][0]["static_configs"] == [{"targets": ["iw.example.com:443"]}]


def test_port_zero_and_bad_addresses_are_refused() -> None:
    with pytest.raises(GenerateError, match=r"server\.port: 0 picks a free port"):
        generate(Settings(server={"port": 0}), ["prometheus"])
    with pytest.raises(GenerateError, match="--pushgateway: 'gateway' is not HOST:PORT"):
        generate(Settings(), ["prometheus"], GenerateOptions(pushgateway="gateway"))
    with pytest.raises(GenerateError, match="--target: 'ftp://x:1'"):
        generate(Settings(), ["prometheus"], GenerateOptions(target="ftp://x:1"))


def test_rule_files_are_the_rules_promql(settings: Settings) -> None:
    files = generate(settings, ["rules"]).files
    assert _yaml(files["rules/inferwatch.yml"]) == to_prometheus(settings.alerting.to_rules())
    # the default pack, then the configured (band) rule
    assert [r.name for r in settings.alerting.to_rules()][-1] == "LatencyUnusual"
    assert len(settings.alerting.to_rules()) == len(default_rules()) + 1
    assert _yaml(files["rules/slo.yml"]) == slo_rules(settings.alerting.to_slos())
    # the test files name their rule file relative to themselves, as promtool reads it
    assert _yaml(files["rules/inferwatch_test.yml"])["rule_files"] == ["inferwatch.yml"]
    assert _yaml(files["rules/slo_test.yml"])["rule_files"] == ["slo.yml"]


def test_no_rules_writes_no_rule_files_and_says_so() -> None:
    bundle = generate(Settings(), ["rules"])
    assert bundle.files == {}
    assert any("no alert rules" in n for n in bundle.notes)


def test_alertmanager_route_tree(settings: Settings) -> None:
    am = _yaml(generate(settings, ["alertmanager"], CLEAR).files["alertmanager.yml"])
    route = am["route"]
    assert route["receiver"] == "chat"
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == (
        "10s",
        "2m",
        "3h",
    )
    assert route["routes"] == [
        {"receiver": "pager", "matchers": ['severity="critical"'], "continue": True},
        {"receiver": "mail", "matchers": ['severity="critical"', 'model!="canary"']},
        {"receiver": "hook", "matchers": ['model=~"iris|wine"']},
    ]
    (inhibit,) = am["inhibit_rules"]
    assert inhibit["source_matchers"] == ['severity="critical"']
    assert inhibit["target_matchers"] == ['severity="warning"']
    assert inhibit["equal"][:2] == ["alertname", "model"]


def test_receivers_translated_with_secrets_as_file_references(
    settings: Settings, tmp_path: Path
) -> None:
    bundle = generate(settings, ["alertmanager"], CLEAR)
    am = _yaml(bundle.files["alertmanager.yml"])
    rx = {r["name"]: r for r in am["receivers"]}
    assert rx["hook"]["webhook_configs"] == [
        {"send_resolved": True, "url": INLINE_SECRETS[0], "max_alerts": 5}
    ]
    assert rx["chat"]["slack_configs"] == [
        {"send_resolved": True, "api_url_file": str(tmp_path / "slack_url"), "channel": "#ml"}
    ]
    assert rx["pager"]["pagerduty_configs"] == [
        {"send_resolved": True, "routing_key_file": "secrets/pager_routing_key",
         "source": "inferwatch"}
    ]  # fmt: skip
    assert rx["pager2"]["pagerduty_configs"][0]["routing_key_file"] == (
        "secrets/pager2_routing_key"
    )
    assert rx["pager2"]["pagerduty_configs"][0]["url"] == "http://127.0.0.1:9/enqueue"
    assert rx["mail"]["email_configs"] == [
        {"send_resolved": False, "to": "oncall@example.com, ml@example.com",
         "from": "inferwatch@example.com", "smarthost": "smtp.example.com:587",
         "require_tls": True, "hello": "inferwatch.example.com", "auth_username": "iw",
         "auth_password_file": "secrets/mail_password"}
    ]  # fmt: skip
    assert rx["am"] == {"name": "am"}
    notes = "\n".join(bundle.notes)
    for placeholder in ("secrets/pager_routing_key", "secrets/pager2_routing_key",
                        "secrets/mail_password"):  # fmt: skip
        assert f"from {placeholder!r}" in notes
    assert "$IW_TEST_PD_KEY" in notes and "dedup" in notes and "in clear" in notes


def test_no_secret_is_ever_written(settings: Settings) -> None:
    """Inline, env and file secrets: none of their values in any file (the webhook's
    URL only with --webhook-url-in-clear, or as url_file for Alertmanager 0.26+)."""
    opts = GenerateOptions(alertmanager_version=(0, 27))
    bundle = generate(settings, (), opts)
    text = "\n".join(bundle.files.values()) + "\n".join(bundle.notes)
    secrets = [*INLINE_SECRETS, *ENV_SECRETS.values(), "file-s3cr3t", "k" * 20]
    assert [s for s in secrets if s in text] == []
    am = _yaml(bundle.files["alertmanager.yml"])
    hook = next(r for r in am["receivers"] if r["name"] == "hook")
    assert hook["webhook_configs"][0]["url_file"] == "secrets/hook_url"


def test_a_webhook_for_alertmanager_025_is_refused_unless_in_clear(settings: Settings) -> None:
    with pytest.raises(GenerateError) as info:
        generate(settings, ["alertmanager"])
    assert str(info.value).startswith("alerting.receivers[0]: Alertmanager 0.25 cannot read")
    assert INLINE_SECRETS[0] not in str(info.value)


def test_no_receivers_route_to_a_receiver_that_sends_nothing() -> None:
    am = _yaml(generate(Settings(), ["alertmanager"]).files["alertmanager.yml"])
    assert am["route"]["receiver"] == "inferwatch-none"
    assert am["receivers"] == [{"name": "inferwatch-none"}]


def test_write_refuses_to_overwrite_without_force(settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "out"
    bundle = generate(settings, (), CLEAR)
    written = write_bundle(bundle, out)
    assert sorted(p.relative_to(out).as_posix() for p in written) == sorted(bundle.files)
    (out / "alertmanager.yml").write_text("# edited by hand\n")
    (out / "prometheus.yml").unlink()
    with pytest.raises(GenerateError, match=r"refusing to overwrite .*alertmanager\.yml"):
        write_bundle(bundle, out)
    # all or nothing: the missing file was not written either
    assert not (out / "prometheus.yml").exists()
    assert (out / "alertmanager.yml").read_text() == "# edited by hand\n"
    write_bundle(bundle, out, force=True)
    assert (out / "alertmanager.yml").read_text() == bundle.files["alertmanager.yml"]
    assert (out / "prometheus.yml").stat().st_mode & 0o777 == 0o644
    assert not list(out.rglob("*.tmp"))
