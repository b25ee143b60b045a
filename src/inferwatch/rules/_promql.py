"""Rules as a Prometheus rule group, and the ``promtool test rules`` file that proves it.

The test file is generated from the same rules: for each rule it feeds synthetic series of
the metric the signal reads, one model past the critical level (``hot``), one between the
levels (``warm``) and one on the good side (``calm``), and expects exactly the alerts the
rule's own :meth:`~inferwatch.rules.Rule.severity` gives for those values, with the
summary rendered by :func:`~inferwatch.rules.render_template`.  So ``promtool test
rules`` passing means the PromQL, the thresholds, ``for`` and the Python renderer agree.
The expected value of each series is computed the way Prometheus computes it (``rate``
over samples that start at the window's edge, multiplied by ``1 / range`` as
Prometheus does, ``histogram_quantile``'s linear
interpolation in the first bucket) from dyadic test values, so it matches to the bit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Final

from inferwatch.rules._spec import Rule, Signal, format_duration, render_template

__all__ = ["GROUP", "alert_annotations", "to_prometheus", "to_promtool_tests"]

GROUP: Final = "inferwatch"
_STEP: Final = 60  # seconds between test samples (promtool's interval)
_EQ: Final = re.compile(r'(\w+)="([^"]*)"')


def _num(value: float) -> str:
    """A threshold as PromQL reads it back exactly."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def alert_annotations(rule: Rule) -> dict[str, str]:
    out = {"summary": rule.summary}
    if rule.description:
        out["description"] = rule.description
    return out


def to_prometheus(rules: Sequence[Rule], *, group: str = GROUP) -> dict[str, Any]:
    """A Prometheus rule file (``{"groups": [...]}``): one alert per rule and severity.

    Each alert keeps the series' identifying labels (``model``, and ``feature`` for
    per-feature signals) and adds ``severity`` and the rule's labels.  A warning alert
    fires beside its critical one; inhibition (Alertmanager's, or the built-in engine's)
    mutes the warning, as Alertmanager's own examples do.
    """
    out: list[dict[str, Any]] = []
    for rule in rules:
        expr = rule.expr()
        for severity, threshold in rule.levels():
            alert: dict[str, Any] = {
                "alert": rule.name,
                "expr": f"{expr} {rule.comparison} {_num(threshold)}",
            }
            if rule.for_:
                alert["for"] = format_duration(rule.for_)
            alert["labels"] = {"severity": severity, **rule.labels}
            alert["annotations"] = alert_annotations(rule)
            out.append(alert)
    return {"groups": [{"name": group, "rules": out}]}


# ----------------------------------------------------------------------------- test data


def _dyadic(value: float) -> float:
    """``value`` rounded to 1/1024 (exact in binary, so sums of it are exact too)."""
    return value if abs(value) >= 2**20 else round(value * 1024) / 1024


def _test_values(rule: Rule) -> dict[str, float]:
    """A value per test model: ``hot`` breaches the worst level, ``warm`` (two levels)
    only the warning, ``calm`` neither.  Inclusive comparisons put ``hot`` exactly on
    the threshold, so the test shows ``>=``/``<=`` include it."""
    up = rule.comparison in (">", ">=")
    inclusive = rule.comparison in (">=", "<=")
    sign = 1.0 if up else -1.0
    levels = dict(rule.levels())
    worst = levels.get("critical", levels.get("warning"))
    assert worst is not None
    warn = levels.get("warning", worst)
    gap = abs(levels["critical"] - warn) if len(levels) == 2 else (abs(worst) / 2 or 1.0)
    values = {"hot": worst if inclusive else worst + sign * gap / 2}
    if len(levels) == 2:
        values["warm"] = (warn + worst) / 2
    calm = warn - sign * gap / 2
    if up and calm < 0 <= warn:  # the signals are not negative
        calm = warn / 2 if warn > 0 else calm
    values["calm"] = calm
    return {k: _dyadic(v) for k, v in values.items()}


def _selector_labels(selector: str) -> dict[str, str]:
    return dict(_EQ.findall(selector))


def _ident(signal: Signal, who: str) -> dict[str, str]:
    """The identifying labels of one test series (``who`` is hot, warm or calm)."""
    out: dict[str, str] = {}
    for label in signal.per:
        if label == "model":
            out["model"] = who
            out["version"] = "1"
        elif label == "instance":
            out["instance"] = f"{who}:9000"
        else:
            out[label] = f"{label}_1"
    return out


def _series(
    metric: str, labels: dict[str, str], start: float, step: float, n: int
) -> dict[str, str]:
    body = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {"series": f"{metric}{{{body}}}", "values": f"{_num(start)}+{_num(step)}x{n}"}


def _feed(rule: Rule, who: str, value: float, n: int) -> tuple[list[dict[str, str]], float]:
    """Input series making ``rule``'s expression read about ``value`` for ``who``, and
    the exact value Prometheus computes from them."""
    sig = rule.spec
    base = {**_selector_labels(sig.selector), **_ident(sig, who)}
    w = rule.window
    k = w / _STEP  # increments inside the window (samples sit on its edges)

    def rate(step: float) -> float:  # Prometheus: increase * (extrapolation / range)
        return (k * step) * (1.0 / w)

    if sig.kind == "gauge":
        return [_series(sig.metric, base, value, 0, n)], value
    if sig.kind == "rate":
        per_step = _dyadic(value * _STEP)
        return [_series(sig.metric, base, 0, per_step, n)], rate(per_step)
    if sig.kind == "ratio":
        bad = round(value * 1000)
        out = [
            _series(sig.metric, {**base, "status": "500"}, 0, bad, n),
            _series(sig.metric, {**base, "status": "200"}, 0, 1000 - bad, n),
        ]
        r_bad, r_ok = rate(bad), rate(1000 - bad)
        return out, r_bad / (r_bad + r_ok)
    count = 60.0
    r_count = rate(count)
    if rule.aggregation == "mean":
        total = _dyadic(value * count)
        out = [
            _series(f"{sig.metric}_sum", base, 0, total, n),
            _series(f"{sig.metric}_count", base, 0, count, n),
        ]
        return out, rate(total) / r_count
    q = float(rule.aggregation[1:]) / 100
    bound = value / q
    le = repr(bound)
    out = [
        _series(f"{sig.metric}_bucket", {**base, "le": le}, 0, count, n),
        _series(f"{sig.metric}_bucket", {**base, "le": "+Inf"}, 0, count, n),
    ]
    return out, 0.0 + (float(le) - 0.0) * ((q * r_count) / r_count)


def to_promtool_tests(rules: Sequence[Rule], *, rule_file: str = "rules.yml") -> dict[str, Any]:
    """A ``promtool test rules`` file for :func:`to_prometheus`'s group of ``rules``.

    One test per rule: before ``for`` has passed nothing fires; after it, ``hot`` fires
    at every level it breaches, ``warm`` at the warning only, ``calm`` never.
    """
    tests: list[dict[str, Any]] = []
    for rule in rules:
        sig = rule.spec
        settle = math.ceil((rule.window + rule.for_) / _STEP) + 2
        n = settle + 1
        series: list[dict[str, str]] = []
        expected: list[dict[str, Any]] = []
        for who, target in _test_values(rule).items():
            feed, value = _feed(rule, who, target, n)
            series += feed
            severity = rule.severity(value)
            if (severity is None) != (who == "calm"):
                raise ValueError(f"{rule.name}: test value {value} for {who} is on the wrong side")
            ident = {k: v for k, v in _ident(sig, who).items() if k in sig.per}
            ann = {k: render_template(t, ident, value) for k, t in alert_annotations(rule).items()}
            for level, threshold in rule.levels():
                if rule.breaches(value, threshold):
                    expected.append(
                        {"exp_labels": {**ident, "severity": level, **rule.labels},
                         "exp_annotations": dict(ann)}
                    )  # fmt: skip
        checks: list[dict[str, Any]] = []
        if rule.for_ >= _STEP:
            early = math.floor(rule.for_ / _STEP) - 1
            checks.append({"eval_time": f"{early}m", "alertname": rule.name, "exp_alerts": []})
        checks.append({"eval_time": f"{settle}m", "alertname": rule.name, "exp_alerts": expected})
        tests.append(
            {"name": rule.name, "interval": "1m", "input_series": series,
             "alert_rule_test": checks}
        )  # fmt: skip
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": tests}
