"""``rules/*.yml``: the PromQL of the configured rules and SLOs, and the ``promtool test
rules`` files beside them (``rule_files`` relative to the test file, as promtool reads)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inferwatch.rules import slo_promtool_tests, slo_rules, to_prometheus, to_promtool_tests

if TYPE_CHECKING:
    from inferwatch.config import Settings

__all__ = ["rule_file_names", "rule_files"]

RULES = "rules/inferwatch.yml"
SLOS = "rules/slo.yml"


def rule_file_names(settings: Settings) -> list[str]:
    """The rule files (relative to the output folder) the config implies, for
    ``prometheus.yml``'s ``rule_files`` whether or not the rules are written this time."""
    names = []
    if settings.alerting.to_rules():
        names.append(RULES)
    if settings.alerting.to_slos():
        names.append(SLOS)
    return names


def rule_files(settings: Settings) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """``{path: YAML data}`` of the rule and test files, and notes for the user."""
    rules = settings.alerting.to_rules()
    slos = settings.alerting.to_slos()
    files: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    if not rules and not slos:
        notes.append(
            "rules: the config has no alert rules (set alerting.default_pack: true, "
            "alerting.rules or alerting.slos); no rule files written"
        )
        return files, notes
    if rules:
        files[RULES] = to_prometheus(rules)
        files[RULES.replace(".yml", "_test.yml")] = to_promtool_tests(
            rules, rule_file=RULES.removeprefix("rules/")
        )
    if slos:
        files[SLOS] = slo_rules(slos)
        tests = slo_promtool_tests(slos, rule_file=SLOS.removeprefix("rules/"))
        if tests["tests"]:
            files[SLOS.replace(".yml", "_test.yml")] = tests
    return files, notes
