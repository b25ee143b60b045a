"""The generated bundle checked by the real Debian binaries: ``promtool check config``,
``promtool check rules``, ``promtool test rules`` and ``amtool check-config`` pass for the
default pack, SLOs and every receiver type (secrets inline, from env and files), and
``amtool config routes test`` routes alerts to the receivers our :class:`Route` picks.

One bundle, one run of each check: the suite's time is tight."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from inferwatch.config import Settings
from inferwatch.generate import GenerateOptions, generate, write_bundle
from tests.generate._bundles import ENV_SECRETS, full_settings

pytestmark = pytest.mark.integration


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not installed (make system-deps)")
    return found


def _run(binary: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Settings]:
    folder = tmp_path_factory.mktemp("generate")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in ENV_SECRETS.items():
            mp.setenv(name, value)
        settings = full_settings(folder)
        out = folder / "out"
        write_bundle(generate(settings, (), GenerateOptions(webhook_url_in_clear=True)), out)
    # as the note asks: the file with the key Prometheus sends to a guarded /metrics
    (out / "secrets").mkdir()
    (out / "secrets" / "inferwatch_api_key").write_text("k" * 20)
    return out, settings


def test_promtool_checks_config_and_rules_and_runs_the_tests(
    bundle: tuple[Path, Settings],
) -> None:
    out, _ = bundle
    promtool = _binary("promtool")
    config = _run(promtool, "check", "config", "prometheus.yml", cwd=out)
    assert config.returncode == 0, config.stdout + config.stderr
    assert "SUCCESS: 2 rule files found" in config.stdout
    rules = _run(promtool, "check", "rules", "rules/inferwatch.yml", "rules/slo.yml", cwd=out)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    written = yaml.safe_load((out / "rules" / "inferwatch.yml").read_text())
    n_rules = sum(len(g["rules"]) for g in written["groups"])
    assert [g["name"] for g in written["groups"]] == ["inferwatch", "inferwatch_bands"]
    assert f"SUCCESS: {n_rules} rules found" in rules.stdout
    tests = _run(
        promtool, "test", "rules", "rules/inferwatch_test.yml", "rules/slo_test.yml", cwd=out
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert tests.stdout.count("SUCCESS") == 2


def test_amtool_checks_the_config_and_routes_as_we_do(bundle: tuple[Path, Settings]) -> None:
    out, settings = bundle
    amtool = _binary("amtool")
    checked = _run(amtool, "check-config", "alertmanager.yml", cwd=out)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "6 receivers" in checked.stdout and "1 inhibit rules" in checked.stdout
    route = settings.alerting.to_route()
    cases = [
        {"alertname": "LatencyHigh", "severity": "critical", "model": "iris"},
        {"alertname": "LatencyHigh", "severity": "critical", "model": "canary"},
        {"alertname": "DriftHigh", "severity": "warning", "model": "wine"},
        {"alertname": "DriftHigh", "severity": "warning", "model": "churn"},
    ]
    for labels in cases:
        got = _run(
            amtool, "config", "routes", "test", "--config.file=alertmanager.yml",
            *(f"{k}={v}" for k, v in labels.items()), cwd=out,
        )  # fmt: skip
        assert got.returncode == 0, got.stdout + got.stderr
        assert got.stdout.strip().split(",") == route.receivers_for(labels), labels


def test_a_webhook_url_file_loads_only_from_alertmanager_026(tmp_path: Path) -> None:
    """Why a webhook is refused for Alertmanager 0.25 (Debian 12's) by default: the
    ``url_file`` written for 0.26 and later fails there, and loads in a newer one."""
    amtool = _binary("amtool")
    settings = Settings(
        alerting={"receivers": [{"name": "hook", "type": "webhook", "url_env": "NOPE"}]}
    )
    opts = GenerateOptions(alertmanager_version=(0, 26))
    write_bundle(generate(settings, ["alertmanager"], opts), tmp_path)
    about = _run(amtool, "--version", cwd=tmp_path)
    found = re.search(r"version (\d+)\.(\d+)", about.stdout + about.stderr)
    assert found is not None, about.stdout + about.stderr
    checked = _run(amtool, "check-config", "alertmanager.yml", cwd=tmp_path)
    if (int(found.group(1)), int(found.group(2))) >= (0, 26):
        assert checked.returncode == 0, checked.stdout + checked.stderr
    else:
        assert checked.returncode != 0
        assert "field url_file not found" in checked.stdout + checked.stderr
