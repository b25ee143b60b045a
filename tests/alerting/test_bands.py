"""BandHistory, the built-in engine's memory for threshold-free rules: bounded, forgetful,
and scoring exactly as the generated PromQL does on a real promtool."""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import yaml

from inferwatch.alerting import AlertEngine, BandHistory, RuleEvaluator, RuleOutcome, Severity
from inferwatch.rules import (
    Rule,
    load_rules,
    render_template,
    robust_score,
    to_prometheus,
    to_promtool_tests,
)
from inferwatch.rules._promql import alert_annotations, band_scores, band_series

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, midnight: a multiple of every step


def _rule(**band: Any) -> Rule:
    [rule] = load_rules({"rules": [{"name": "LatencyUnusual", "signal": "latency",
                                    "unusual": band or True}]})  # fmt: skip
    return rule


def test_scores_against_the_history_of_each_series(rng: np.random.Generator) -> None:
    rule = _rule(history="1h", step="1m", min_history="30m")
    h = BandHistory()
    values = rng.normal(0.2, 0.01, 61)
    scores = [h.band_score(rule, {"model": "a"}, T0 + timedelta(minutes=i), v)
              for i, v in enumerate(values)]  # fmt: skip
    assert scores[:29] == [None] * 29  # under min_history: 30 points needed
    assert scores[29] == robust_score(values[:30], values[29])  # the history holds now's value
    assert scores[60] == robust_score(values[:61], values[60])
    assert h.points(rule, {"model": "a"}) == 61
    # another series of the same rule has its own history
    assert h.band_score(rule, {"model": "b"}, T0 + timedelta(minutes=60), 5.0) is None
    # an outlier
    outlier = h.score(rule, {"model": "a"}, T0 + timedelta(minutes=60, seconds=30), 0.4)
    assert outlier is not None and outlier > 10


def test_one_value_per_step_the_last_one_before_it() -> None:
    rule = _rule(history="2h", step="5m", min_history="30m")
    h = BandHistory()
    labels = {"model": "a"}
    steps = [(0, 1.0), (1, 50.0), (4, 2.0), (5, 3.0), (9, 4.0), (10, 5.0), (15, 6.0), (20, 7.0)]
    for minute, v in [*steps, (25, 8.0)]:
        h.record(rule, labels, T0 + timedelta(minutes=minute), v)
    # steps at 0, 5, 10 minutes hold 1, 3, 5 (50 and 2 were overwritten by 3; 4 by 5)
    assert h.points(rule, labels) == 6
    history = [1.0, 3.0, 5.0, 6.0, 7.0, 8.0]
    assert h.score(rule, labels, T0 + timedelta(minutes=25), 5.5) == 0.0
    # epoch seconds work as well as datetimes
    assert h.score(rule, labels, (T0 + timedelta(minutes=25)).timestamp(), 10.0) == (
        robust_score(history, 10.0)
    )
    assert h.score(rule, labels, T0 + timedelta(minutes=24), 5.5) is None  # 5 points then


def test_nan_is_not_recorded_and_not_scored() -> None:
    rule = _rule(history="1h", step="1m", min_history="6m")
    h = BandHistory()
    labels = {"model": "a"}
    assert h.band_score(rule, labels, T0, math.nan) is None
    assert h.points(rule, labels) == 0
    for minute in range(1, 7):
        h.record(rule, labels, T0 + timedelta(minutes=minute), float(minute))
    assert h.score(rule, labels, T0 + timedelta(minutes=6), 1.0) is not None
    assert h.score(rule, labels, T0 + timedelta(minutes=6), math.nan) is None


def test_memory_is_bounded_and_unseen_series_are_forgotten() -> None:
    rule = _rule(history="1h", step="5m", min_history="30m")
    h = BandHistory()
    for minute in range(0, 24 * 60):  # a day of one value a minute
        h.band_score(rule, {"model": "a"}, T0 + timedelta(minutes=minute), 1.0 + minute % 7)
    assert h.points(rule, {"model": "a"}) == rule.band.capacity() == 15  # type: ignore[union-attr]
    h.band_score(rule, {"model": "b"}, T0 + timedelta(days=1), 1.0)
    assert len(h) == 2
    # model a is not seen for more than a history: gone at the next sweep
    h.band_score(rule, {"model": "b"}, T0 + timedelta(days=1, hours=1, minutes=10), 1.0)
    assert len(h) == 1 and h.points(rule, {"model": "a"}) == 0


def test_a_changed_band_starts_a_new_history() -> None:
    short, longer = _rule(history="1h", step="1m", min_history="6m"), _rule(history="2h")
    h = BandHistory()
    for minute in range(5):
        h.record(short, {"model": "a"}, T0 + timedelta(minutes=minute), 1.0)
    assert h.points(short, {"model": "a"}) == 5
    h.record(longer, {"model": "a"}, T0 + timedelta(minutes=5), 1.0)
    assert h.points(longer, {"model": "a"}) == 1


def test_a_rule_without_band_is_not_scored() -> None:
    [rule] = load_rules({"rules": [{"name": "Slow", "signal": "latency", "warning": 1}]})
    assert BandHistory().band_score(rule, {"model": "a"}, T0, 1.0) is None


def test_the_rule_evaluator_scores_through_band_history() -> None:
    """Wired as the server wires it (``RuleEvaluator(band_score=history.band_score)``),
    fed the gauge an accuracy band reads: every series is scored once a cycle, as the
    reference scores it, and the outlier (accuracy falling) fires, the steady one not."""
    [rule] = load_rules(
        {"rules": [{"name": "AccuracyUnusual", "signal": "accuracy", "aggregation": "last",
                    "unusual": {"history": "2h", "min_history": "1h"}}]}
    )  # fmt: skip
    end, series = band_series(rule)
    history = BandHistory()
    seen: dict[str, list[float | None]] = {who: [None] * (end + 1) for who in series}
    minute = 0

    def hook(r: Rule, labels: Mapping[str, str], now: datetime, value: float) -> float | None:
        z = history.band_score(r, labels, now, value)
        seen[labels["model"]][minute] = z
        return z

    evaluator = RuleEvaluator([rule], band_score=hook)
    gauge = "inferwatch_model_performance"
    for minute in range(end + 1):
        samples = [
            (gauge, {"metric": "accuracy", "model": who, "version": "2"}, v)
            for who, values in series.items()
            if (v := values[minute]) is not None
        ]
        outcomes = evaluator.cycle(T0 + timedelta(minutes=minute), samples)
    for who, values in series.items():
        assert seen[who] == band_scores(rule, values)
    assert {(o.labels["model"], o.severity) for o in outcomes} == {("outlier", "critical")}
    assert outcomes[0].value == series["outlier"][end]  # the signal's value, as in PromQL


# ----------------------------------------------------------------------------- promtool


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool not installed (make system-deps)")
    return found


def _values(text: str) -> list[float | None]:
    return [None if v == "_" else float(v) for v in text.split()]


@pytest.mark.integration
def test_engine_scores_and_alerts_equal_promtools(tmp_path: Path) -> None:
    """One promtool run for both seasonalities: the generated recording rules reproduce
    the z-scores the generated test expects (promtool compares floats exactly:
    ``reflect.DeepEqual`` in cmd/promtool/unittest.go), the alerts fire as expected, and
    BandHistory fed the same series gives the same z-scores, bit for bit, at every
    minute, and through the AlertEngine (``for`` included) the same alerts."""
    rules = load_rules(
        {"rules": [
            {"name": "FewRequests", "signal": "requests", "comparison": "<", "for": "5m",
             "unusual": {"seasonality": "daily", "history": "2d", "min_history": "2d"}},
            {"name": "LatencyUnusual", "signal": "latency", "for": "5m",
             "labels": {"team": "ml"}, "unusual": {"history": "2h", "min_history": "1h"}},
        ]}
    )  # fmt: skip
    # a rule file each (promtool evaluates every rule of a file at every minute of every
    # test in it: the two days of the daily test need not pay for the other rule)
    test_files, tests = [], []
    for i, rule in enumerate(rules):
        rule_file, test_file = tmp_path / f"rules{i}.yml", tmp_path / f"rules{i}_test.yml"
        rule_file.write_text(yaml.safe_dump(to_prometheus([rule]), sort_keys=False, width=10_000))
        tests.append(to_promtool_tests([rule], rule_file=rule_file.name))
        test_file.write_text(yaml.safe_dump(tests[-1], sort_keys=False, width=10_000))
        test_files.append(str(test_file))
    run = subprocess.run(
        [_promtool(), "test", "rules", *test_files], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr

    for rule, generated in zip(rules, tests, strict=True):
        [case] = [t for t in generated["tests"] if t["name"].startswith(f"{rule.name} (unusual")]
        series = {s["series"].split('model="')[1].split('"')[0]: _values(s["values"])
                  for s in case["input_series"]}  # fmt: skip
        assert set(series) == {"steady", "outlier", "young"}
        end = len(series["steady"]) - 1
        assert series == band_series(rule)[1]
        history, engine = BandHistory(), AlertEngine(clock=lambda: T0)
        scores: dict[str, list[float | None]] = {who: [] for who in series}
        for minute in range(end + 1):
            now = T0 + timedelta(minutes=minute)
            outcomes = []
            for who, values in series.items():
                v = values[minute]
                z = None if v is None else history.band_score(rule, {"model": who}, now, v)
                scores[who].append(z)
                if z is None or v is None:
                    continue
                ann = {k: render_template(t, {"model": who}, v)
                       for k, t in alert_annotations(rule).items()}  # fmt: skip
                severity = cast(Severity | None, rule.severity(z))
                levels = tuple(cast(Severity, s) for s, _ in rule.levels())
                labels = {"model": who, **rule.labels}
                outcomes.append(RuleOutcome(rule.name, labels, severity, v, rule.for_, ann, levels))
            engine.evaluate(outcomes, now)
        # the engine's z-scores are the reference's at every minute ...
        for who, values in series.items():
            assert scores[who] == band_scores(rule, values)
        # ... and promtool's wherever the test asks
        for check in case["promql_expr_test"]:
            minute = int(check["eval_time"].rstrip("m"))
            for sample in check["exp_samples"]:
                who = sample["labels"].split('model="')[1].split('"')[0]
                assert scores[who][minute] == sample["value"]
            assert len(check["exp_samples"]) == sum(z[minute] is not None for z in scores.values())
        # the alerts firing at the end are the ones promtool checked
        [alerts] = case["alert_rule_test"]
        firing = sorted(
            (sorted(a.alert.labels.items()), sorted(a.alert.annotations.items()))
            for a in engine.alerts(T0 + timedelta(minutes=end))
            if a.alert.status == "firing"
        )
        expected = sorted(
            (sorted({"alertname": rule.name, **e["exp_labels"]}.items()),
             sorted(e["exp_annotations"].items()))
            for e in alerts["exp_alerts"]
        )  # fmt: skip
        assert firing == expected
        assert {dict(labels)["model"] for labels, _ in firing} == {"outlier"}
        assert {dict(labels)["severity"] for labels, _ in firing} == {"critical", "warning"}
