"""Threshold-free rules, the pure part: the robust z-score (cross-checked against numpy
and scipy), the history window, the ``unusual:`` spec with key paths, and the shape of
the generated recording rules."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from inferwatch.rules import (
    NORMAL_MAD,
    Band,
    RuleError,
    load_rules,
    render_template,
    robust_score,
    rule_to_dict,
    to_prometheus,
)
from inferwatch.rules._band import median, median_abs_deviation, window_slots
from inferwatch.rules._load import record_name


def _rule(**unusual: Any) -> dict[str, Any]:
    return {"name": "LatencyUnusual", "signal": "latency", "unusual": unusual or True}


# ----------------------------------------------------------------------------- statistics


def test_normal_mad_is_scipys_normal_scale() -> None:
    assert pytest.approx(1 / stats.norm.ppf(0.75), rel=1e-15) == NORMAL_MAD


@pytest.mark.parametrize("n", [1, 2, 7, 8, 101, 288])
def test_median_and_mad_match_numpy_and_scipy(rng: np.random.Generator, n: int) -> None:
    x = rng.lognormal(0.0, 1.0, n)
    assert median(x) == pytest.approx(float(np.median(x)), rel=1e-15)
    mad = stats.median_abs_deviation(x, scale="normal")
    assert NORMAL_MAD * median_abs_deviation(x) == pytest.approx(mad, rel=1e-12)
    value = float(x.max() * 3)
    if mad > 0:
        expected = (value - np.median(x)) / mad
        assert robust_score(x, value) == pytest.approx(expected, rel=1e-12)


def test_median_of_an_even_count_averages_the_two_middle_values() -> None:
    # Prometheus' quantile(0.5) interpolates at rank 0.5 * (n - 1), as numpy does
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert median([1.0, 2.0, 3.0]) == 2.0
    assert math.isnan(median([]))


def test_a_history_that_never_varied_gives_promqls_division_by_zero() -> None:
    flat = [0.0] * 10
    assert robust_score(flat, 0.5) == math.inf
    assert robust_score(flat, -0.5) == -math.inf
    assert math.isnan(robust_score(flat, 0.0))  # 0 / 0: no alert
    assert math.isnan(robust_score([], 1.0))
    # min_mad floors the spread: one error in a week of none is 0.01 / (1.4826 * 0.01)
    assert robust_score(flat, 0.01, min_mad=0.01) == pytest.approx(1 / NORMAL_MAD)


def test_the_score_resists_the_outliers_it_looks_for() -> None:
    history = [10.0, 11.0, 9.0, 10.5, 9.5, 10.0, 1000.0]  # one wild point in the history
    assert robust_score(history, 10.2) == pytest.approx(0.2 / (NORMAL_MAD * 0.5))
    assert robust_score(history, 20.0) > 10


# ----------------------------------------------------------------------------- windows


def test_window_without_seasonality_is_every_step_in_the_closed_range() -> None:
    band = Band(history=3600, step=300)
    aligned = 10 * 3600 * 1000  # a multiple of the step
    slots = window_slots(band, aligned)
    assert slots.tolist() == list(range(aligned // 300_000 - 12, aligned // 300_000 + 1))
    later = window_slots(band, aligned + 120_000)  # between two steps: 12 points
    assert later.tolist() == list(range(aligned // 300_000 - 11, aligned // 300_000 + 1))


def test_daily_window_is_the_same_time_of_day_one_step_either_side() -> None:
    band = Band(history=2 * 86400, step=300, seasonality="daily", min_history=86400)
    now = 5 * 86400 * 1000 + 7 * 60_000  # 00:07 on day 5: the last step is 00:05
    times = [int(s) * 300 for s in window_slots(band, now)]
    day = 86400
    anchor = 5 * day + 300
    assert times == sorted(anchor - d * day + j * 300 for d in (1, 2) for j in (-1, 0, 1))
    assert band.min_points() == 3 and band.capacity() == 2 * 288 + 3


# ----------------------------------------------------------------------------- the spec


def test_unusual_defaults_and_levels_on_the_rules_side() -> None:
    up, down = load_rules(
        {"rules": [_rule(), {"name": "FewRequests", "signal": "requests", "comparison": "<",
                             "unusual": {"seasonality": "daily"}}]}
    )  # fmt: skip
    assert up.band == Band(history=7 * 86400, step=300, seasonality="none", min_history=86400)
    assert (up.comparison, up.warning, up.critical) == (">", 3.0, 5.0)
    assert down.band is not None and down.band.min_history == 3 * 86400
    assert (down.warning, down.critical) == (-3.0, -5.0)
    assert "unusual for its history" in down.summary
    assert down.severity(-4.0) == "warning" and down.severity(-math.inf) == "critical"
    assert down.severity(math.nan) is None


def test_round_trip_through_the_yaml_shape() -> None:
    [rule] = load_rules(
        {"rules": [_rule(history="2d", step="10m", seasonality="daily", min_history="2d",
                         min_mad=0.001) | {"warning": 4, "for": "10m"}]}
    )  # fmt: skip
    data = rule_to_dict(rule)
    assert data["unusual"] == {"history": "2d", "step": "10m", "seasonality": "daily",
                               "min_history": "2d", "min_mad": 0.001}  # fmt: skip
    assert load_rules({"rules": [data]}) == [rule]


def test_bad_bands_name_their_key_paths() -> None:
    bad = [
        _rule(seasonality="weekly", hstory="1d"),
        _rule(step="90s"),
        _rule(step="7m", seasonality="daily"),
        _rule(history="12h", seasonality="daily"),
        _rule(history="1h", min_history="2h"),
        {"name": "Wrong", "signal": "accuracy", "warning": 3, "unusual": True},
        {"name": "Short", "signal": "latency", "for": "30m", "unusual": {"history": "1h"}},
        {"name": "Odd", "signal": "latency", "unusual": "yes"},
        _rule(min_mad=-1),
        _rule(step="10m", min_history="30m"),
    ]
    for i, item in enumerate(bad):
        item["name"] = f"Rule{i}"
    with pytest.raises(RuleError) as e:
        load_rules({"rules": bad})
    problems = e.value.problems
    expected = [
        "alerting.rules[0].unusual.hstory: unknown key",
        "alerting.rules[0].unusual.seasonality: must be one of none, daily (got 'weekly')",
        "alerting.rules[1].unusual.step: must be a whole number of minutes",
        "alerting.rules[2].unusual.step: must divide a day",
        "alerting.rules[3].unusual.history: must be at least 2d for daily seasonality",
        "alerting.rules[4].unusual.min_history: must not be longer than history",
        "alerting.rules[5].warning: a z-score level for '<' must be negative",
        "alerting.rules[6].unusual.history: must be at least 4 x (for + step) = 2h20m",
        "alerting.rules[7].unusual: must be true or a mapping",
        "alerting.rules[8].unusual.min_mad: must not be negative",
        "alerting.rules[9].unusual.min_history: must cover at least 6 points (1h): the median",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)
    assert len(problems) == len(expected)


def test_two_band_rules_may_not_record_under_one_name() -> None:
    assert record_name("HTTPErrorsUnusual") == "http_errors_unusual"
    with pytest.raises(RuleError) as e:
        load_rules({"rules": [_rule() | {"name": "aB"}, _rule() | {"name": "a_b"}]})
    assert e.value.problems == [
        "alerting.rules[1].name: its band records as inferwatch:a_b:*, as does "
        "alerting.rules[0]'s; rename one"
    ]


def test_printf_of_an_infinite_score_reads_as_go_prints_it() -> None:
    text = '{{ printf "%.1f" $value }}'
    assert render_template(text, {}, math.inf) == "+Inf"
    assert render_template(text, {}, -math.inf) == "-Inf"
    assert render_template(text, {}, 2.25) == "2.2"  # Go rounds half to even too


# ----------------------------------------------------------------------------- PromQL


def test_band_rules_record_value_median_mad_count_and_z_then_alert() -> None:
    rules = load_rules(
        {"rules": [{"name": "HighLatencyP99", "signal": "latency", "warning": 1},
                   _rule(history="1d", step="5m", min_history="2h") | {"for": "10m"}]}
    )  # fmt: skip
    main, bands = to_prometheus(rules)["groups"]
    assert [r["alert"] for r in main["rules"]] == ["HighLatencyP99"]
    assert bands["name"] == "inferwatch_bands"
    records = {r["record"]: r["expr"] for r in bands["rules"] if "record" in r}
    base = "inferwatch:latency_unusual"
    assert list(records) == [f"{base}:{k}" for k in ("value", "median", "mad", "count", "z")]
    assert records[f"{base}:median"] == f"quantile_over_time(0.5, {base}:value[1d:5m])"
    assert records[f"{base}:mad"] == (
        f"quantile_over_time(0.5, abs({base}:value - {base}:median @ end())[1d:5m])"
    )
    assert records[f"{base}:z"] == (
        f"(({base}:value - {base}:median) / (1.482602218505602 * {base}:mad)) "
        f"and ({base}:count >= 24)"
    )
    alerts = [r for r in bands["rules"] if "alert" in r]
    assert [(a["expr"], a["labels"]["severity"], a["for"]) for a in alerts] == [
        (f"{base}:value and {base}:z > 5", "critical", "10m"),
        (f"{base}:value and {base}:z > 3", "warning", "10m"),
    ]
    # no band rule, no band group
    assert len(to_prometheus(rules[:1])["groups"]) == 1


def test_an_infinite_value_in_the_history_gives_what_promql_gives() -> None:
    # quantile(0.5) of [1, 2, +Inf]: values[1] * 1 + values[2] * 0 = 2 + NaN (Go: Inf * 0)
    assert math.isnan(median([1.0, 2.0, math.inf]))
    assert median([1.0, 2.0, math.inf, math.inf]) == math.inf
