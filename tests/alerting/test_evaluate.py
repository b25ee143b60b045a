"""RuleEvaluator and SampleHistory: the history's bound, staleness, counter resets, NaN
ratios, the band hook, and registry_samples on a real registry.  (Agreement with a real
Prometheus is tests/alerting/test_agreement.py.)"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np

from inferwatch.alerting import AlertEngine, RuleEvaluator, SampleHistory, parse_matchers
from inferwatch.metrics import Metrics, registry_samples
from inferwatch.rules import Band, Rule, load_rules

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _rule(**kw: object) -> Rule:
    base = {"name": "R", "signal": "accuracy", "aggregation": "last", "warning": 0.9,
            "critical": 0.8}  # fmt: skip
    return load_rules({"rules": [{**base, **kw}]})[0]


def _acc(model: str, value: float) -> tuple[str, dict[str, str], float]:
    labels = {"model": model, "version": "1", "metric": "accuracy"}
    return ("inferwatch_model_performance", labels, value)


def test_a_3_day_window_keeps_a_bounded_history_and_still_reads_the_rate() -> None:
    """17,280 scrapes of a 3-day window keep about 2,000 columns (at most twice that
    allocated between compactions); the newest hour is kept whole (exact windows), and the
    3-day rate is still the true rate."""
    history = SampleHistory({"c_total": 3 * 86400.0})
    scrapes = 3 * 86400 // 15 + 200
    for i in range(scrapes):
        history.observe(i * 15.0, [("c_total", {"model": "m"}, 2.0 * 15 * i)])
    table = history.table("c_total")
    assert table is not None
    assert table.cols <= 4096, table.cols
    table.compact((scrapes - 1) * 15 * 1000, history.points)
    assert table.n < 2100, table.n
    now = (scrapes - 1) * 15 * 1000
    recent = table.times[: table.n][table.times[: table.n] >= now - 3600 * 1000]
    assert len(recent) == 241  # every scrape of the last hour
    ev = RuleEvaluator([_rule(name="Busy", signal="requests", aggregation="rate", window="3d",
                              comparison=">", warning=1.0, critical=None)])  # fmt: skip
    ev.history.tables["inferwatch_requests_total"] = table
    got = ev.values(now / 1000)[("requests", "rate", 3 * 86400.0)].as_dict()
    assert math.isclose(got[(("model", "m"),)], 2.0, rel_tol=1e-9)


def test_an_instant_read_goes_stale_five_minutes_after_the_last_sample() -> None:
    ev = RuleEvaluator([_rule()])
    ev.observe(T0, [_acc("a", 0.5), _acc("b", 0.95)])
    for s in (60, 299, 300):
        got = ev.values(T0 + timedelta(seconds=s))[("accuracy", "last", 300.0)].as_dict()
        assert got == {(("model", "a"),): 0.5, (("model", "b"),): 0.95}
    assert ev.values(T0 + timedelta(seconds=301))[("accuracy", "last", 300.0)].keys == []
    assert [o.labels for o in ev.outcomes(T0 + timedelta(seconds=301))] == []


def test_a_counter_reset_counts_the_value_before_the_drop() -> None:
    """Samples 0, 60, 120, then 30 (reset), 90 a minute apart, window 4m at the last one:
    increase = 90 - 0 + 120 = 210 over 4 minutes sampled exactly at the window's edges."""
    ev = RuleEvaluator([_rule(name="Busy", signal="requests", aggregation="rate", window="4m",
                              comparison=">", warning=0.5, critical=None)])  # fmt: skip
    labels = {"model": "m", "version": "1", "status": "200"}
    for i, v in enumerate((0.0, 60.0, 120.0, 30.0, 90.0)):
        ev.observe(T0 + timedelta(minutes=i), [("inferwatch_requests_total", labels, v)])
    now = T0 + timedelta(minutes=4)
    got = ev.values(now)[("requests", "rate", 240.0)].as_dict()
    assert got == {(("model", "m"),): 210 / 240}
    (out,) = ev.outcomes(now)
    assert out.severity == "warning" and out.levels == ("warning",)


def test_a_zero_over_zero_ratio_is_nan_and_breaches_nothing() -> None:
    ev = RuleEvaluator([_rule(name="Err", signal="error_rate", aggregation="ratio",
                              warning=0.01, critical=0.05)])  # fmt: skip
    for i in range(3):
        ev.observe(T0 + timedelta(minutes=i), [
            ("inferwatch_requests_total", {"model": "idle", "status": "200"}, 5.0),
            ("inferwatch_requests_total", {"model": "idle", "status": "500"}, 1.0),
        ])  # fmt: skip
    now = T0 + timedelta(minutes=2)
    assert ev.outcomes(now) == []
    (quiet,) = ev.outcomes(now, quiet=True)
    assert quiet.severity is None and math.isnan(quiet.value) and dict(quiet.annotations) == {}


def test_outcomes_carry_rule_labels_rendered_annotations_and_feed_the_engine() -> None:
    rule = _rule(labels={"team": "ml"}, summary="{{ $labels.model }} at {{ $value }}",
                 description='{{ printf "%.1f" $value }}', **{"for": "1m"})  # fmt: skip
    ev = RuleEvaluator([rule])
    engine = AlertEngine(lambda: T0)
    for i in range(3):
        now = T0 + timedelta(minutes=i)
        engine.evaluate(ev.cycle(now, [_acc("a", 0.85), _acc("b", 0.99)]), now)
    (out,) = ev.outcomes(now)
    assert dict(out.labels) == {"model": "a", "team": "ml"}
    assert (out.severity, out.value, out.for_seconds) == ("warning", 0.85, 60.0)
    assert dict(out.annotations) == {"summary": "a at 0.85", "description": "0.8"}
    firing = [a.alert for a in engine.alerts(now) if a.alert.status == "firing"]
    assert [(a.labels["alertname"], a.labels["severity"]) for a in firing] == [("R", "warning")]


def test_band_rules_are_judged_by_the_hook_and_skipped_without_one() -> None:
    base = _rule(warning=3.0, critical=6.0, comparison=">", signal="drift")
    banded = replace(base, band=Band())
    seen: list[tuple[dict[str, str], float]] = []

    def score(rule: Rule, labels: object, now: datetime, value: float) -> float | None:
        seen.append((dict(labels), value))  # type: ignore[call-overload]
        return 7.0 if value > 0.5 else 1.0

    samples = [("inferwatch_drift_score", {"model": "a", "feature": "x"}, 0.7),
               ("inferwatch_drift_score", {"model": "a", "feature": "y"}, 0.2)]  # fmt: skip
    assert RuleEvaluator([banded]).cycle(T0, samples) == []
    (out,) = RuleEvaluator([banded], band_score=score).cycle(T0, samples)
    assert out.severity == "critical" and out.value == 0.7
    assert sorted((lab["feature"], v) for lab, v in seen) == [("x", 0.7), ("y", 0.2)]


def test_an_observation_not_after_the_last_is_refused() -> None:
    ev = RuleEvaluator([_rule()])
    assert ev.observe(T0, [_acc("a", 0.5)])
    assert not ev.observe(T0, [_acc("a", 0.99)])
    assert ev.history.out_of_order == 1
    assert ev.values(T0)[("accuracy", "last", 300.0)].as_dict() == {(("model", "a"),): 0.5}


def test_registry_samples_flattens_a_real_registry_for_the_rules() -> None:
    metrics = Metrics()
    metrics.requests.labels("iris", "1", "200").inc(3)
    metrics.request_duration.labels("iris", "1").observe(0.3)
    ev = RuleEvaluator(load_rules({"default_pack": True}))
    samples = registry_samples(metrics.registry, ev.sample_names, labels={"instance": "h:1"})
    names = {s[0] for s in samples}
    assert "inferwatch_requests_total" in names and "process_cpu_seconds_total" in names
    assert not any(n.endswith("_created") for n in names) and names <= ev.sample_names
    buckets = {s[1]["le"]: s[2] for s in samples if s[0].endswith("_bucket")}
    assert buckets["0.25"] == 0.0 and buckets["0.5"] == 1.0 and buckets["+Inf"] == 1.0
    assert all(s[1]["instance"] == "h:1" for s in samples)


def test_parse_matchers_reads_promql_label_matchers() -> None:
    assert parse_matchers('metric="accuracy", status=~"5..",a!="b"') == (
        ("metric", "=", "accuracy"), ("status", "=~", "5.."), ("a", "!=", "b"),
    )  # fmt: skip
    assert parse_matchers("") == ()


def test_thinned_history_reads_long_windows_within_the_stated_bound() -> None:
    """A 6-hour rate and average over a thinned history (older columns kept at most
    ``2 age / K`` apart) stay within 1% of the same computed from every scrape."""
    rng = np.random.default_rng(7)
    rules = load_rules({"rules": [
        {"name": "Busy", "signal": "requests", "aggregation": "rate", "window": "6h",
         "comparison": ">", "warning": 1.0},
        {"name": "AccAvg", "signal": "accuracy", "aggregation": "avg", "window": "6h",
         "warning": 0.9},
    ]})  # fmt: skip
    thinned, exact = RuleEvaluator(rules), RuleEvaluator(rules, points_per_window=10**6)
    total = 0.0
    for i in range(6 * 240 + 100):  # 6h25m of 15 s scrapes, the rate drifting
        total += rng.uniform(10, 20) * (1 + i / 1000)
        samples = [
            ("inferwatch_requests_total", {"model": "m", "status": "200"}, total),
            _acc("m", 0.9 + 0.05 * math.sin(i / 50) + rng.uniform(-0.01, 0.01)),
        ]
        thinned.observe(i * 15.0, samples)
        exact.observe(i * 15.0, samples)
    now = (6 * 240 + 99) * 15.0
    for ev in (thinned, exact):  # compact now (as the next observation would)
        for table in ev.history.tables.values():
            table.compact(round(now * 1000), ev.history.points)
    kept = {n: t.n for n, t in thinned.history.tables.items()}
    every = {n: t.n for n, t in exact.history.tables.items()}
    assert all(kept[n] < 1000 < every[n] for n in kept), (kept, every)  # 1,441 scrapes
    got, want = thinned.values(now), exact.values(now)
    for key in [("requests", "rate", 21600.0), ("accuracy", "avg", 21600.0)]:
        (a,), (b,) = got[key].values.tolist(), want[key].values.tolist()
        assert math.isclose(a, b, rel_tol=0.01), (key, a, b)
