"""The built-in engine and real Prometheus agree on the same series (issue 13, scope 1).

Input series (counters with a reset, a gap and a late start; histograms; gauges of two
versions of a model; a series that stops and goes stale; an idle model whose 5xx ratio is
``0 / 0``) are fed to :class:`RuleEvaluator` the way the server feeds it (one observation per
scrape), and the same series become the ``input_series`` of a ``promtool test rules`` file
whose expectations ARE our evaluator's results:

- ``promql_expr_test``: each rule's generated ``expr`` at several times (also between
  scrapes, where ``rate``'s extrapolation shows) must return exactly our series and values;
- ``alert_rule_test``: the alerts firing at those times in an :class:`AlertEngine` fed our
  outcomes every evaluation interval (labels, severities, rendered summaries) must be what
  Prometheus fires from the generated rules (``to_prometheus``, SLO rules too).

How promtool compares: ``reflect.DeepEqual`` on the float64 values (cmd/promtool/unittest.go
in 2.42), so the values must agree to the last bit, not within an epsilon; and the alerts'
annotations are compared as strings, so ``{{ $value }}`` must format identically.  NaN
never equals itself there, so where our result has NaN (the idle model's ratio) the test
checks ``(expr) >= -Inf`` (which drops NaN, as a comparison does) plus ``expr != bool expr``
(1 exactly where the value is NaN).  Under ``CI=true`` a missing promtool fails the test.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferwatch.alerting import AlertEngine, RuleEvaluator, SignalValues
from inferwatch.alerting import _evaluate as evaluate_module
from inferwatch.rules import (
    SLO,
    Rule,
    default_rules,
    format_duration,
    load_rules,
    slo_rules,
    to_prometheus,
)

pytestmark = pytest.mark.integration

STEP = 15  # seconds between scrapes (the input series' interval)
MINUTES = 60
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LATENCY_LE = ("0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "+Inf")
#: expression checks, in seconds (7m30s and 12m07s fall between scrapes)
EXPR_TIMES = (180, 450, 727, 1200, 1560, 1860, 2280, 2700, 3300, 3600)
ALERT_TIMES = (600, 1200, 1800, 2400, 3000, 3600)

Series = dict[tuple[str, tuple[tuple[str, str], ...]], list[float | None]]


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("promtool not installed under CI; make system-deps installs it")
        pytest.skip("promtool not installed (make system-deps)")
    return found


def _custom_rules() -> list[Rule]:
    """A few rules beyond the pack: other quantiles and windows, means, over_time."""
    rules = [
        {"name": "LatencyP50", "signal": "latency", "aggregation": "p50", "window": "2m",
         "warning": 0.2, "critical": 0.6, "for": "2m"},
        {"name": "LatencyP90", "signal": "latency", "aggregation": "p90", "window": "10m",
         "warning": 0.5, "critical": 1.5},
        {"name": "LatencyMean", "signal": "latency", "aggregation": "mean", "window": "5m",
         "warning": 0.3, "critical": 0.8, "for": "1m", "labels": {"team": "ml"},
         "description": 'mean {{ printf "%.3f" $value }} s on {{ $labels.model }}'},
        {"name": "ErrorRatio2m", "signal": "error_rate", "window": "2m", "comparison": ">=",
         "warning": 0.02, "critical": 0.08},
        {"name": "BusyModel", "signal": "requests", "window": "5m", "comparison": ">",
         "warning": 3.0},
        {"name": "AccuracyAvgLow", "signal": "accuracy", "aggregation": "avg", "window": "10m",
         "warning": 0.95, "critical": 0.9, "for": "3m"},
        {"name": "AccuracyMinLow", "signal": "accuracy", "aggregation": "min", "window": "5m",
         "warning": 0.9},
        {"name": "DriftMax", "signal": "drift", "aggregation": "max", "window": "5m",
         "warning": 0.7, "critical": 0.9},
        {"name": "MissingMin", "signal": "missing_share", "aggregation": "min", "window": "5m",
         "comparison": ">=", "warning": 0.2},
        {"name": "CpuBusy", "signal": "cpu", "window": "1m", "warning": 0.3, "critical": 0.6},
    ]  # fmt: skip
    return load_rules({"rules": rules})


SLOS = [
    SLO("avail", "availability", 0.99, period=3 * 86400.0),  # windows: 6m/30s ... 7.2h/36m
    SLO("acc", "accuracy", 0.95, period=3 * 86400.0),
    SLO("lat", "latency", 0.97, threshold=0.5, period=3 * 86400.0),
]


def _series() -> Series:
    """Every input series, one value per scrape (None: the scrape missed it)."""
    rng = random.Random(13)
    n = MINUTES * 60 // STEP + 1
    out: Series = {}

    def put(name: str, labels: dict[str, str], values: list[float | None]) -> None:
        out[(name, tuple(sorted(labels.items())))] = values

    def counter(lo: float, hi: float, reset_at: int | None = None) -> list[float | None]:
        total, vals = 0.0, []
        for i in range(n):
            if i == reset_at:
                total = 0.0
            total += rng.uniform(lo, hi)
            vals.append(total)
        return list(vals)

    errors = {"hot": 0.12, "warm": 0.04, "calm": 0.002, "twin": 0.002}
    for model, err in errors.items():
        for version in ("1", "2") if model == "twin" else ("1",):
            ident = {"model": model, "version": version}
            mean = 6 if model == "twin" else 35  # twin: 4 series, no alert (see _ROUND)
            ok = counter(0.3 * mean, 1.7 * mean, reset_at=70 if model == "hot" else None)
            bad = counter(0, 2 * err * mean)
            if model == "warm":
                for i in range(100, 104):  # a minute of missed scrapes
                    ok[i] = None
            if model == "calm":
                bad = [None if i < 120 else v for i, v in enumerate(bad)]  # starts late
            put("inferwatch_requests_total", {**ident, "status": "200"}, ok)
            put("inferwatch_requests_total", {**ident, "status": "500"}, bad)
    models = {"hot": 0.9, "warm": 0.4, "calm": 0.1}
    for model, slow in models.items():
        for version in ("1", "2") if model == "hot" else ("1",):
            ident = {"model": model, "version": version}
            # latency histogram: cumulative bucket counts, a reset for warm
            counts = [0.0] * len(LATENCY_LE)
            total = 0.0
            rows: list[list[float | None]] = [[] for _ in LATENCY_LE]
            sums: list[float | None] = []
            tot: list[float | None] = []
            for i in range(n):
                if model == "warm" and i == 150:
                    counts = [0.0] * len(LATENCY_LE)
                    total = 0.0
                for _ in range(rng.randint(5, 25)):
                    latency = rng.expovariate(1 / slow) if i > 40 else rng.expovariate(20)
                    total += latency
                    for b, le in enumerate(LATENCY_LE):
                        if latency <= float(le):
                            counts[b] += 1
                for b in range(len(LATENCY_LE)):
                    rows[b].append(counts[b])
                sums.append(total)
                tot.append(counts[-1])
            for b, le in enumerate(LATENCY_LE):
                put("inferwatch_request_duration_seconds_bucket", {**ident, "le": le}, rows[b])
            put("inferwatch_request_duration_seconds_sum", ident, sums)
            put("inferwatch_request_duration_seconds_count", ident, tot)
            # gauges
            base = {"hot": 0.86, "warm": 0.93, "calm": 0.97}[model]
            acc: list[float | None] = [
                round(base + rng.uniform(-0.04, 0.04) - (i / 1e4 if version == "2" else 0), 6)
                for i in range(n)
            ]
            if model == "calm":
                acc = [v if i < 160 else None for i, v in enumerate(acc)]  # stops: stale later
            f1: list[float | None] = [rng.random() for _ in range(n)]
            for metric, vals in (("accuracy", acc), ("f1", f1)):
                put("inferwatch_model_performance", {**ident, "metric": metric}, vals)
            put(
                "inferwatch_model_performance_estimated",
                {**ident, "metric": "accuracy"},
                [base + rng.uniform(-0.05, 0.05) for _ in range(n)],
            )
            for feature in ("f1", "f2", "confidence"):
                put("inferwatch_drift_score", {**ident, "feature": feature},
                    [rng.random() ** (0.5 if model == "hot" else 2) for _ in range(n)])  # fmt: skip
                put("inferwatch_feature_missing_share", {**ident, "feature": feature},
                    [rng.uniform(0, 0.4) for _ in range(n)])  # fmt: skip
                for check in ("out_of_range", "missing"):
                    put("inferwatch_feature_quality_share",
                        {**ident, "feature": feature, "check": check},
                        [rng.uniform(0, 0.3) for _ in range(n)])  # fmt: skip
            put("inferwatch_dataset_drift_share", ident, [rng.uniform(0, 0.7) for _ in range(n)])
            put("inferwatch_label_coverage_ratio", ident, [rng.uniform(0, 1) for _ in range(n)])
    # an idle model: counters that never move (rate 0, error ratio 0 / 0 = NaN)
    for status in ("200", "500"):
        put("inferwatch_requests_total", {"model": "idle", "version": "1", "status": status},
            [5.0 if status == "200" else 0.0] * n)  # fmt: skip
    for instance, busy in (("a:9000", 0.9), ("b:9000", 0.1)):
        put("process_cpu_seconds_total", {"instance": instance},
            counter(0.5 * busy * STEP, 1.5 * busy * STEP))  # fmt: skip
        put("process_resident_memory_bytes", {"instance": instance},
            [float(rng.randint(1, 5) * 2**30) for _ in range(n)])  # fmt: skip
    return out


def _value_text(values: list[float | None]) -> str:
    return " ".join("_" if v is None else repr(float(v)) for v in values)


def _labels_text(key: tuple[tuple[str, str], ...]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in key) + "}"


def _run_ours(
    rules: list[Rule], series: Series
) -> tuple[dict[int, dict[str, SignalValues]], dict[int, dict[str, list[dict[str, Any]]]]]:
    """Our values per expression at EXPR_TIMES and our firing alerts at ALERT_TIMES."""
    evaluator = RuleEvaluator(rules, SLOS)
    engine = AlertEngine(lambda: EPOCH)
    names = {r.name for r in rules} | {f"{s.name}_ErrorBudgetBurn" for s in SLOS}
    values: dict[int, dict[str, SignalValues]] = {}
    alerts: dict[int, dict[str, list[dict[str, Any]]]] = {}
    scrape_times = range(0, MINUTES * 60 + 1, STEP)
    for t in sorted(set(scrape_times) | set(EXPR_TIMES)):
        now = EPOCH + timedelta(seconds=t)
        if t % STEP == 0:
            i = t // STEP
            samples = [
                (name, dict(key), v)
                for (name, key), vals in series.items()
                if (v := vals[i]) is not None
            ]
            assert evaluator.observe(now, samples)
        if t % 60 == 0:  # the evaluation interval
            engine.evaluate(evaluator.outcomes(now), now)
        if t in EXPR_TIMES:
            by_key = evaluator.values(now)
            values[t] = {r.expr(): by_key[(r.signal, r.aggregation, r.window)] for r in rules}
        if t in ALERT_TIMES:
            firing: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
            for a in engine.alerts(now):
                if a.alert.status != "firing":
                    continue
                labels = {k: v for k, v in a.alert.labels.items() if k != "alertname"}
                firing[a.alert.labels["alertname"]].append(
                    {"exp_labels": labels, "exp_annotations": dict(a.alert.annotations)}
                )
            alerts[t] = firing
    return values, alerts


#: sums of 3+ series (twin's requests: 2 versions x 2 statuses) depend on the order the
#: series are added in, which in Prometheus is the series' creation order (promtool's
#: loader creates them in Go map order: random per run); those expressions are compared
#: after ``round(x, 2^-30)``, exactly the same operation on both sides
_ROUND = 2.0**-30


def _rounded(value: float) -> float:
    scaled = value * (1.0 / _ROUND) + 0.5
    frac = scaled - math.floor(scaled)
    assert min(frac, 1 - frac) > 1e-4, f"{value} sits on a rounding edge: pick another seed"
    return math.floor(scaled) / (1.0 / _ROUND)


def _expr_checks(values: dict[int, dict[str, SignalValues]]) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    for t, by_expr in values.items():
        when = format_duration(t)
        for expr, got in by_expr.items():
            nan = [math.isnan(v) for v in got.values.tolist()]
            loose = "inferwatch_requests_total" in expr
            samples = [
                {"labels": _labels_text(k), "value": _rounded(v) if loose else float(v)}
                for k, v, is_nan in zip(got.keys, got.values.tolist(), nan, strict=True)
                if not is_nan
            ]
            shown = f"round({expr}, {_ROUND!r})" if loose else expr
            if any(nan):
                checks.append({"expr": f"({shown}) >= -Inf", "eval_time": when,
                               "exp_samples": samples})  # fmt: skip
                flags = [{"labels": _labels_text(k), "value": float(f)}
                         for k, f in zip(got.keys, nan, strict=True)]  # fmt: skip
                checks.append({"expr": f"({expr}) != bool ({expr})", "eval_time": when,
                               "exp_samples": flags})  # fmt: skip
            else:
                checks.append({"expr": shown, "eval_time": when, "exp_samples": samples})
    return checks


def _write(tmp_path: Path, rules: list[Rule], series: Series) -> tuple[Path, dict[str, Any]]:
    values, alerts = _run_ours(rules, series)
    groups = to_prometheus(rules)["groups"] + slo_rules(SLOS)["groups"]
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": f"{STEP}s",
                "input_series": [
                    {"series": name + _labels_text(key), "values": _value_text(vals)}
                    for (name, key), vals in series.items()
                ],
                "promql_expr_test": _expr_checks(values),
                "alert_rule_test": [
                    {"eval_time": format_duration(t), "alertname": name, "exp_alerts": exp}
                    for t, by_name in alerts.items()
                    for name, exp in sorted(by_name.items())
                ],
            }
        ],
    }
    path = tmp_path / "agreement_test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    return path, {"values": values, "alerts": alerts}


def _promtool_test(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), "test", "rules", str(path)], capture_output=True, text=True, timeout=300
    )


def _rules() -> list[Rule]:
    return [r for r in [*default_rules(), *_custom_rules()] if not getattr(r, "band", None)]


def test_our_evaluator_and_promtool_agree_on_the_same_series(tmp_path: Path) -> None:
    rules = _rules()
    path, ours = _write(tmp_path, rules, _series())
    done = _promtool_test(path)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    # the comparison is not vacuous: values, NaN, alerts of every kind are in it
    checks = yaml.safe_load(path.read_text())["tests"][0]
    assert len(checks["promql_expr_test"]) > len(EXPR_TIMES) * 20
    assert any("!= bool" in c["expr"] for c in checks["promql_expr_test"])
    fired = {
        (name, a["exp_labels"]["severity"])
        for by_name in ours["alerts"].values()
        for name, exp in by_name.items()
        for a in exp
    }
    for expected in [
        ("HighLatencyP99", "critical"), ("HighErrorRate", "critical"), ("AccuracyLow", "warning"),
        ("NoTraffic", "warning"), ("FeatureDrift", "warning"), ("LatencyMean", "critical"),
        ("AccuracyAvgLow", "critical"), ("HighCPU", "warning"),
        ("avail_ErrorBudgetBurn", "critical"), ("acc_ErrorBudgetBurn", "warning"),
        ("lat_ErrorBudgetBurn", "critical"),
    ]:  # fmt: skip
        assert expected in fired, f"{expected} never fired: the test would not show it"


def test_promtool_catches_an_evaluator_without_rate_extrapolation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agreement is sharp: a ``rate`` that divides the raw increase by the window
    (no extrapolation to the window's edges) gives other values, and promtool says so."""
    real = evaluate_module._rate

    def no_extrapolation(table: Any, now: int, range_ms: int) -> Any:
        times, values = table.window(now - range_ms, now)
        out = real(table, now, range_ms)
        if len(times) >= 2:
            first, last = values[:, 0], values[:, -1]
            plain = (last - first) / (range_ms / 1000)
            out = plain  # the raw increase over the window
        return out

    monkeypatch.setattr(evaluate_module, "_rate", no_extrapolation)
    rules = [r for r in _rules() if r.name in ("HighErrorRate", "BusyModel", "CpuBusy")]
    path, _ = _write(tmp_path, rules, _series())
    done = _promtool_test(path)
    assert done.returncode != 0
    assert "rate(" in done.stdout + done.stderr
