"""The rule spec: durations, comparisons, templates and the signal catalogue."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from inferwatch.resources import RESOURCE_METRICS
from inferwatch.rules import (
    SIGNALS,
    Rule,
    format_duration,
    go_float,
    parse_duration,
    render_template,
)
from inferwatch.rules._spec import AGGREGATIONS, template_problems

METRICS_PY = Path(__file__).parents[2] / "src" / "inferwatch" / "metrics.py"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("1d", 86400), ("1h30m", 5400), ("250ms", 0.25),
     ("2w", 1209600)],
)  # fmt: skip
def test_durations_parse_as_prometheus_does(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 m", "m", "1.5h", "30m1h", "5m5m", "-5m", "5M"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|largest"):
        parse_duration(text)


def test_format_duration_is_shortest() -> None:
    assert [format_duration(s) for s in (0, 30, 300, 5400, 86400 + 60)] == [
        "0s", "30s", "5m", "1h30m", "1d1m",
    ]  # fmt: skip


def _rule(comparison: str, warning: float | None, critical: float | None) -> Rule:
    return Rule("R", "latency", "p99", 300, comparison, warning, critical)  # type: ignore[arg-type]


def test_severity_picks_the_worst_level_breached() -> None:
    up = _rule(">", 0.5, 1.0)
    assert [up.severity(v) for v in (0.4, 0.5, 0.7, 1.0, 1.2)] == [
        None, None, "warning", "warning", "critical",
    ]  # fmt: skip
    inclusive = _rule(">=", 0.5, 1.0)
    assert [inclusive.severity(v) for v in (0.5, 1.0)] == ["warning", "critical"]
    down = _rule("<", 0.92, 0.85)
    assert [down.severity(v) for v in (0.95, 0.92, 0.9, 0.85, 0.8)] == [
        None, None, "warning", "warning", "critical",
    ]  # fmt: skip
    assert down.severity(float("nan")) is None
    assert _rule("<=", 0, None).severity(0.0) == "warning"


def test_templates_render_like_prometheus() -> None:
    text = '{{ $labels.model }}/{{$labels.feature}}: {{ $value }} ({{ printf "%.2f" $value }})'
    out = render_template(text, {"model": "iris", "feature": "x"}, 0.8125)
    assert out == "iris/x: 0.8125 (0.81)"
    assert render_template("{{ $labels.nope }}!", {}, 1.0) == "!"  # missing label: empty
    assert template_problems(text) == []
    assert template_problems("{{ $value | humanize }}")
    assert template_problems("{{ .Labels.model }}")
    assert template_problems("oops {{ $value")


@pytest.mark.parametrize(
    ("value", "go"),
    # what Go's fmt.Sprint(float64) prints (text/template's {{ $value }})
    [(0.85, "0.85"), (1.0, "1"), (100.0, "100"), (123456.0, "123456"), (1e6, "1e+06"),
     (1234567.0, "1.234567e+06"), (1e-4, "0.0001"), (1e-5, "1e-05"), (2.5e-7, "2.5e-07"),
     (-0.5, "-0.5"), (0.1 + 0.2, "0.30000000000000004"), (4294967296.0, "4.294967296e+09")],
)  # fmt: skip
def test_go_float(value: float, go: str) -> None:
    assert go_float(value) == go


def test_every_signal_reads_a_metric_that_exists() -> None:
    """The catalogue names only metrics defined in metrics.py, the resource collector or
    prometheus_client's process collector, so a renamed metric breaks this test, not a
    user's alerts."""
    source = METRICS_PY.read_text()
    defined = set(re.findall(r'"(inferwatch_[a-z_]+)"', source))
    defined |= {name for name, _, _ in RESOURCE_METRICS}
    for sig in SIGNALS.values():
        base = sig.metric.removesuffix("_total")
        assert base in defined or sig.metric.startswith("process_"), sig.name
        assert sig.default_aggregation in AGGREGATIONS[sig.kind]
        for agg in AGGREGATIONS[sig.kind]:
            expr = sig.expr(agg, 300)
            assert sig.metric in expr and expr.count("(") == expr.count(")")
