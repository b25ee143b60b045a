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

from inferwatch.rules._band import NORMAL_MAD, divide, median, window_slots
from inferwatch.rules._load import record_name
from inferwatch.rules._spec import Rule, Signal, format_duration, render_template

__all__ = ["GROUP", "alert_annotations", "band_records", "to_prometheus", "to_promtool_tests"]

GROUP: Final = "inferwatch"
#: the group of the band rules' recording rules and alerts (``GROUP`` + this)
BANDS: Final = "_bands"
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

    Threshold-free rules (``rule.band``) go to a second group, ``<group>_bands``: per
    rule its recording rules (:func:`band_records`) and then its alerts on the recorded
    z-score, in one group so the alerts read the z-score of the same evaluation.  Their
    ``{{ $value }}`` is the signal's value (the z-score is the recorded ``...:z``).
    """
    out: list[dict[str, Any]] = []
    bands: list[dict[str, Any]] = []
    for rule in rules:
        if rule.band is not None:
            records = band_records(rule)
            bands += records
            value, z = records[0]["record"], records[-1]["record"]
            bands += _alerts(rule, z, value)
        else:
            out += _alerts(rule, rule.expr())
    groups = [{"name": group, "rules": out}]
    if bands:
        groups.append({"name": group + BANDS, "rules": bands})
    return {"groups": groups}


def _alerts(rule: Rule, expr: str, value: str = "") -> list[dict[str, Any]]:
    """One alert per level on ``expr``; with ``value`` (a band rule: ``expr`` is the
    z-score) the alert's value, ``{{ $value }}``, is the signal's (``value and z > 3``),
    as the built-in engine's outcome carries the signal's value too."""
    out = []
    for severity, threshold in rule.levels():
        cond = f"{expr} {rule.comparison} {_num(threshold)}"
        expr_ = f"{value} and {cond}" if value else cond
        alert: dict[str, Any] = {"alert": rule.name, "expr": expr_}
        if rule.for_:
            alert["for"] = format_duration(rule.for_)
        alert["labels"] = {"severity": severity, **rule.labels}
        alert["annotations"] = alert_annotations(rule)
        out.append(alert)
    return out


def band_records(rule: Rule) -> list[dict[str, str]]:
    """The recording rules of a band rule, ``inferwatch:<rule_snake>:`` + ``value``,
    (``seasonal``,) ``median``, ``mad``, ``count`` and ``z`` (the robust z-score, only
    where the history holds enough points), computed as :mod:`inferwatch.rules._band`
    defines them.

    Without seasonality the history is a subquery ``value[history:step]``; the MAD reads
    the current median with ``@ end()`` so it is the exact MAD of the window.  With daily
    seasonality it is one ``last_over_time(value[step:step] offset O)`` per point (the
    step-aligned sample ``O`` back; ``O`` = each previous day and one step either side),
    each labelled ``band_point``, recorded once as ``seasonal`` (3 series per day of
    history per signal series: computing the points once instead of three times made a
    3-day promtool test 3x faster) and read by ``quantile by`` and ``count by``.  The
    value drops NaN (``>= -Inf`` is false only for NaN: a ratio with no requests), as the
    engine records no NaN.
    """
    band = rule.band
    if band is None:
        raise ValueError(f"rule {rule.name!r} has no band")
    base = f"inferwatch:{record_name(rule.name)}"
    value, med, mad, count = (f"{base}:{k}" for k in ("value", "median", "mad", "count"))
    by = ", ".join(rule.spec.per)
    step = format_duration(band.step)
    if band.seasonality == "daily":
        points = " or ".join(
            f"label_replace(last_over_time({value}[{step}:{step}] offset "
            f'{format_duration(o / 1000)}), "band_point", "{format_duration(o / 1000)}", "", "")'
            for o in band.offsets()
        )
        seasonal = f"{base}:seasonal"
        exprs = {
            seasonal: points,
            med: f"quantile by ({by}) (0.5, {seasonal})",
            mad: f"quantile by ({by}) (0.5, abs({seasonal} - on ({by}) group_left () {med}))",
            count: f"count by ({by}) ({seasonal})",
        }
    else:
        window = f"[{format_duration(band.history)}:{step}]"
        exprs = {
            med: f"quantile_over_time(0.5, {value}{window})",
            mad: f"quantile_over_time(0.5, abs({value} - {med} @ end()){window})",
            count: f"count_over_time({value}{window})",
        }
    scale = f"clamp_min({mad}, {_num(band.min_mad)})" if band.min_mad else mad
    exprs[f"{base}:z"] = (
        f"(({value} - {med}) / ({NORMAL_MAD!r} * {scale})) and ({count} >= {band.min_points()})"
    )
    return [{"record": value, "expr": f"({rule.expr()}) >= -Inf"}] + [
        {"record": k, "expr": v} for k, v in exprs.items()
    ]


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


def _test_step(rule: Rule) -> int:
    """Seconds between a rule's test samples: the largest of a minute, 30 s, 20 s, ...
    that divides the window at least twice, so ``rate`` finds two samples in the window
    wherever an evaluation falls (a test file evaluates at one interval for all its rules:
    the demo's 30 s windows make it 15 s, and a 1-minute window sampled once a minute
    would then read nothing between the minutes)."""
    w = round(rule.window)
    for step in (_STEP, 30, 20, 15, 12, 10, 6, 5, 4, 3, 2, 1):
        if w % step == 0 and w // step >= 2:
            return step
    return 1


def _feed(
    rule: Rule, who: str, value: float, n: int, step: int = _STEP
) -> tuple[list[dict[str, str]], float]:
    """Input series making ``rule``'s expression read about ``value`` for ``who``, and
    the exact value Prometheus computes from them (one sample every ``step`` seconds)."""
    sig = rule.spec
    base = {**_selector_labels(sig.selector), **_ident(sig, who)}
    w = rule.window
    k = w / step  # increments inside the window (samples sit on its edges)

    def rate(step: float) -> float:  # Prometheus: increase * (extrapolation / range)
        return (k * step) * (1.0 / w)

    if sig.kind == "gauge":
        return [_series(sig.metric, base, value, 0, n)], value
    if sig.kind == "rate":
        per_step = _dyadic(value * step)
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
    at every level it breaches, ``warm`` at the warning only, ``calm`` never.  A band rule
    gets the two tests of :func:`_band_tests` instead.
    """
    tests: list[dict[str, Any]] = []
    every = _STEP  # the file's evaluation interval: divides every test's step
    for rule in rules:
        if rule.band is not None:
            tests += _band_tests(rule)
            continue
        sig = rule.spec
        step = _test_step(rule)
        every = math.gcd(every, step)
        settle = math.ceil((rule.window + rule.for_) / step) + 2
        n = settle + 1
        series: list[dict[str, str]] = []
        expected: list[dict[str, Any]] = []
        for who, target in _test_values(rule).items():
            feed, value = _feed(rule, who, target, n, step)
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
        if rule.for_ >= step:
            early = math.floor(rule.for_ / step) - 1
            checks.append({"eval_time": format_duration(early * step), "alertname": rule.name,
                           "exp_alerts": []})  # fmt: skip
        checks.append({"eval_time": format_duration(settle * step), "alertname": rule.name,
                       "exp_alerts": expected})  # fmt: skip
        tests.append(
            {"name": rule.name, "interval": format_duration(step), "input_series": series,
             "alert_rule_test": checks}
        )  # fmt: skip
    return {"rule_files": [rule_file], "evaluation_interval": format_duration(every),
            "tests": tests}  # fmt: skip


# ----------------------------------------------------------------------------- band tests

_MINUTE: Final = 60_000  # ms; band tests sample every minute (promtool's interval)


def _noise(i: int, phase: int) -> float:
    """A deterministic, uneven wobble in [-1, 1] (period 23 minutes)."""
    return (((i + phase) * 37 + 11) % 23 - 11) / 11


def band_series(rule: Rule) -> tuple[int, dict[str, list[float | None]]]:
    """The minutes a band rule's test runs (its last evaluation) and, per test series, the
    value of ``inferwatch:<rule>:value`` at each minute (``None``: no sample).

    ``steady`` wobbles around a level (with daily seasonality, on a daily sine wave);
    ``outlier`` is the same until its last ``for`` + two steps, then sits far on the
    rule's bad side; ``young`` is ``outlier`` with less history than ``min_history``.
    The last evaluation falls between two steps (when a step is longer than a minute), so
    the tests cover an unaligned evaluation as well as aligned ones.
    """
    band = rule.band
    assert band is not None
    unit = rule.spec.unit
    level, spread = (0.5, 0.015625) if unit in ("ratio", "score") else (100.0, 4.0)
    worst = max(abs(t) for _, t in rule.levels())
    shift = (1.0 if rule.comparison in (">", ">=") else -1.0) * 3 * worst * spread
    step_m = round(band.step / 60)
    out_m = math.ceil(rule.for_ / 60) + 2 * step_m
    daily = band.seasonality == "daily"
    if daily:
        days = band.min_points() // 3
        end = days * 1440 + out_m + 2 * step_m
    else:
        hist_m = math.floor(band.history / 60)
        end = max(math.ceil(band.min_history / 60), min(hist_m, 5 * out_m)) + out_m + step_m
    end = math.ceil(end / step_m) * step_m + step_m // 2
    if daily:
        young_from = end - days * 1440 + 3 * step_m
    else:  # one point short of min_history at the end
        young_from = (end // step_m - (band.min_points() - 2)) * step_m

    def value(i: int, phase: int, outlier: bool) -> float:
        v = level + spread * _noise(i, phase)
        if daily:
            v += 10 * spread * math.sin(2 * math.pi * i / 1440)
        return v + shift if outlier and i > end - out_m else v

    series: dict[str, list[float | None]] = {
        "steady": [value(i, 0, False) for i in range(end + 1)],
        "outlier": [value(i, 5, True) for i in range(end + 1)],
    }
    if band.min_points() > 2:
        series["young"] = [value(i, 9, True) if i >= young_from else None for i in range(end + 1)]
    return end, series


def band_scores(rule: Rule, values: Sequence[float | None]) -> list[float | None]:
    """The robust z-score at each minute of a series sampled every minute (``None``: no
    sample, or not enough history): the reference the engine's
    :class:`~inferwatch.alerting.BandHistory` and the PromQL must both equal."""
    band = rule.band
    assert band is not None
    step_m = round(band.step / 60)
    need = band.min_points()
    out: list[float | None] = []
    for t, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        points = [
            p
            for k in window_slots(band, t * _MINUTE).tolist()
            if 0 <= k * step_m <= t and (p := values[k * step_m]) is not None
        ]
        if len(points) < need:
            out.append(None)
            continue
        m = median(points)
        mad = median([abs(p - m) for p in points])
        out.append(divide(v - m, NORMAL_MAD * max(mad, band.min_mad)))
    return out


def _band_tests(rule: Rule) -> list[dict[str, Any]]:
    """Two promtool tests of a band rule.

    The first feeds ``inferwatch:<rule>:value`` directly (the signal's recording rule has
    no input then, and writes nothing), so any signal gets the same test: the recorded
    z-score equals :func:`band_scores` (``promql_expr_test`` at the last evaluation, an
    aligned one and one before the outlier; promtool compares floats exactly), and the
    alerts are exactly those the z-scores give under ``for`` (``outlier`` fires, ``steady``
    and ``young`` don't, by construction).  The second feeds the signal's own metric and
    checks the value recording reads it.
    """
    band = rule.band
    assert band is not None
    sig = rule.spec
    base = f"inferwatch:{record_name(rule.name)}"
    end, series = band_series(rule)
    step_m = round(band.step / 60)
    for_m = math.ceil(rule.for_ / 60)
    inputs: list[dict[str, str]] = []
    scores: dict[str, list[float | None]] = {}
    idents: dict[str, dict[str, str]] = {}
    for who, values in series.items():
        ident = {k: v for k, v in _ident(sig, who).items() if k in sig.per}
        idents[who] = ident
        body = ",".join(f'{k}="{v}"' for k, v in sorted(ident.items()))
        text = " ".join("_" if v is None else repr(v) for v in values)
        inputs.append({"series": f"{base}:value{{{body}}}", "values": text})
        scores[who] = band_scores(rule, values)
    expected: list[dict[str, Any]] = []
    for who, z in scores.items():
        last = series[who][end]
        if z[end] is None or last is None:
            continue
        ann = {k: render_template(t, idents[who], last) for k, t in alert_annotations(rule).items()}
        for level, threshold in rule.levels():
            held = z[max(0, end - for_m) : end + 1]
            if all(x is not None and rule.breaches(x, threshold) for x in held):
                expected.append(
                    {"exp_labels": {**idents[who], "severity": level, **rule.labels},
                     "exp_annotations": dict(ann)}
                )  # fmt: skip
    exprs = []
    out_from = end - for_m - 2 * step_m
    for t in sorted({end, (end // step_m) * step_m, out_from - step_m}):
        if t < 0 or any(math.isnan(z[t] or 0.0) for z in scores.values()):
            continue
        samples = []
        for who, z in scores.items():
            zt = z[t]
            if zt is not None:
                body = ",".join(f'{k}="{v}"' for k, v in sorted(idents[who].items()))
                samples.append({"labels": f"{base}:z{{{body}}}", "value": zt})
        exprs.append({"expr": f"{base}:z", "eval_time": f"{t}m", "exp_samples": samples})
    unusual = {
        "name": f"{rule.name} (unusual: {band.seasonality})", "interval": "1m",
        "input_series": inputs,
        "alert_rule_test": [{"eval_time": f"{end}m", "alertname": rule.name,
                             "exp_alerts": expected}],
        "promql_expr_test": exprs,
    }  # fmt: skip
    # the value recording reads the signal (a constant value, computed as Prometheus does)
    target = 0.25 if sig.unit in ("ratio", "score") else 2.0
    settle = math.ceil(rule.window / _STEP) + 2
    feed, v = _feed(rule, "raw", target, settle + 1)
    ident = {k: x for k, x in _ident(sig, "raw").items() if k in sig.per}
    body = ",".join(f'{k}="{x}"' for k, x in sorted(ident.items()))
    recorded = {
        "name": f"{rule.name} (value)", "interval": "1m", "input_series": feed,
        "promql_expr_test": [{"expr": f"{base}:value", "eval_time": f"{settle}m",
                              "exp_samples": [{"labels": f"{base}:value{{{body}}}",
                                               "value": v}]}],
    }  # fmt: skip
    return [unusual, recorded]
