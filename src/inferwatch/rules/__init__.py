"""Alert rules as data: one spec for the built-in engine and the generated PromQL.

Pure core (no I/O): :class:`Rule` and the :data:`SIGNALS` catalogue, :func:`load_rules`
(validation with key paths), :func:`default_rules` (the default pack), and
:func:`to_prometheus` / :func:`to_promtool_tests` (a Prometheus rule group and the
``promtool test rules`` file that proves it), and SLO burn-rate alerts
(:class:`SLO`, :func:`slo_rules`, :func:`slo_promtool_tests`), and threshold-free rules
(``unusual:``, :class:`Band`: a robust z-score against the signal's own history,
:func:`robust_score`, recorded in PromQL by :func:`band_records`).
"""

from __future__ import annotations

from inferwatch.rules._band import NORMAL_MAD, Band, robust_score
from inferwatch.rules._load import RuleError, default_rules, load_rules, rule_to_dict
from inferwatch.rules._promql import band_records, to_prometheus, to_promtool_tests
from inferwatch.rules._slo import SLO, load_slos, slo_promtool_tests, slo_rules
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
    "Band",
    "NORMAL_MAD",
    "Rule",
    "RuleError",
    "SIGNALS",
    "SLO",
    "Signal",
    "band_records",
    "default_rules",
    "format_duration",
    "go_float",
    "load_rules",
    "load_slos",
    "parse_duration",
    "render_template",
    "robust_score",
    "rule_to_dict",
    "slo_promtool_tests",
    "slo_rules",
    "to_prometheus",
    "to_promtool_tests",
]
