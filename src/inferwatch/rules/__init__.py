"""Alert rules as data: one spec for the built-in engine and the generated PromQL.

Pure core (no I/O): :class:`Rule` and the :data:`SIGNALS` catalogue, :func:`load_rules`
(validation with key paths), :func:`default_rules` (the default pack), and
:func:`to_prometheus` / :func:`to_promtool_tests` (a Prometheus rule group and the
``promtool test rules`` file that proves it).
"""

from __future__ import annotations

from inferwatch.rules._load import RuleError, default_rules, load_rules, rule_to_dict
from inferwatch.rules._promql import to_prometheus, to_promtool_tests
from inferwatch.rules._spec import (
    SIGNALS,
    Rule,
    Signal,
    format_duration,
    go_float,
    parse_duration,
    render_template,
)

__all__ = [
    "SIGNALS",
    "Rule",
    "RuleError",
    "Signal",
    "default_rules",
    "format_duration",
    "go_float",
    "load_rules",
    "parse_duration",
    "render_template",
    "rule_to_dict",
    "to_prometheus",
    "to_promtool_tests",
]
