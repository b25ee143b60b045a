"""What the evaluator carries from one cycle to the next must never change a result.

``SampleHistory.observe`` reuses last cycle's sample -> row plan when the cycle hands the
same names and label sets, and ``RuleEvaluator`` reuses an outcome whose verdict and value
did not change.  These tests feed cycles that do and do not repeat (order, series coming
and going, label mappings changed in place by the caller, NaN values, compactions that
drop rows) and compare against what is recorded/judged from scratch."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from inferwatch.alerting import RuleEvaluator, SampleHistory
from inferwatch.rules import load_rules

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NAME = "inferwatch_model_performance"


def _cycles(n: int, seed: int) -> list[list[tuple[str, dict[str, str], float]]]:
    """Cycles of accuracy gauges: mostly the same series in the same order; now and then a
    series vanishes for a while, the order shuffles, or a value is NaN."""
    rng = random.Random(seed)
    models = [f"m{i}" for i in range(6)]
    gone: dict[str, int] = {}
    out = []
    for k in range(n):
        if rng.random() < 0.15:
            gone[rng.choice(models)] = k + rng.randint(1, 12)  # long enough to be dropped
        live = [m for m in models if gone.get(m, -1) <= k]
        if rng.random() < 0.2:
            rng.shuffle(live)
        cycle = []
        for m in live:
            value = rng.choice((0.5, 0.85, 0.95, round(rng.uniform(0.7, 1.0), 3)))
            if rng.random() < 0.05:
                value = math.nan
            cycle.append((NAME, {"model": m, "version": "1", "metric": "accuracy"}, value))
        cycle.append(("unread_gauge", {"model": "x"}, 1.0))  # not kept
        out.append(cycle)
    return out


def _recorded(history: SampleHistory) -> dict[tuple[tuple[str, str], ...], dict[int, float]]:
    table = history.table(NAME)
    assert table is not None
    got = {}
    for r, key in enumerate(table.keys):
        row = {}
        for c in range(table.n):
            v = float(table.values[r, c])
            if not math.isnan(v):
                row[int(table.times[c])] = v
        got[key] = row
    return got


def test_a_reused_plan_records_what_a_fresh_history_records() -> None:
    """Two histories see the same cycles; one gets each cycle's label mappings as fresh
    dicts, the other as the *same* dict objects, rewritten in place (a caller reusing its
    buffers): a plan kept from an earlier cycle must not put a sample in the wrong row."""
    cycles = _cycles(120, seed=3)
    fresh = SampleHistory({NAME: 60.0}, points_per_window=8)
    reused = SampleHistory({NAME: 60.0}, points_per_window=8)
    buffers: list[dict[str, str]] = [{} for _ in range(10)]
    for k, cycle in enumerate(cycles):
        now = T0 + timedelta(seconds=15 * k)
        assert fresh.observe(now, [(n, dict(lab), v) for n, lab, v in cycle])
        handed = []
        for buf, (n, lab, v) in zip(buffers, cycle, strict=False):
            buf.clear()
            buf.update(lab)
            handed.append((n, buf, v))
        assert reused.observe(now, iter(handed))  # an iterator, not a list, works too
        assert _recorded(reused) == _recorded(fresh), k


def test_a_steady_cycle_reuses_the_plan_and_a_changed_one_does_not() -> None:
    history = SampleHistory({NAME: 300.0})
    lab = {"model": "a", "version": "1", "metric": "accuracy"}
    history.observe(T0, [(NAME, lab, 0.9)])
    plan = history._plan
    history.observe(T0 + timedelta(seconds=15), [(NAME, dict(lab), 0.8)])
    assert history._plan is plan  # equal label sets: the same plan
    other = {**lab, "model": "b"}
    history.observe(T0 + timedelta(seconds=30), [(NAME, dict(lab), 0.7), (NAME, other, 0.6)])
    assert history._plan is not plan
    assert _recorded(history) == {
        (("metric", "accuracy"), ("model", "a"), ("version", "1")): {
            1767225600000: 0.9, 1767225615000: 0.8, 1767225630000: 0.7,
        },
        (("metric", "accuracy"), ("model", "b"), ("version", "1")): {1767225630000: 0.6},
    }  # fmt: skip


def _rules() -> list:  # type: ignore[type-arg]
    base = {"signal": "accuracy", "warning": 0.9, "critical": 0.8, "summary": "{{ $value }}"}
    return load_rules(
        {
            "rules": [
                {**base, "name": "Last", "aggregation": "last"},
                {**base, "name": "Avg", "aggregation": "avg", "window": "1m"},
                {**base, "name": "NoWarn", "aggregation": "last", "warning": None},
                {**base, "name": "Tight", "aggregation": "last", "warning": 0.99},
            ]
        }
    )


def _plain(outcomes: list) -> list:  # type: ignore[type-arg]
    return [
        (o.rule, dict(o.labels), o.severity, o.value, o.for_seconds, dict(o.annotations),
         o.levels)
        for o in outcomes
    ]  # fmt: skip


def test_reused_outcomes_equal_outcomes_judged_from_scratch() -> None:
    """Every cycle, the long-lived evaluator's outcomes (some reused from the last cycle)
    equal those of an evaluator judging that cycle for the first time, breaching only and
    with quiet ones; an outcome whose verdict and value held is the same object."""
    cycles = _cycles(60, seed=7)
    ev = RuleEvaluator(_rules())
    reused = 0
    last: dict[tuple[str, str], object] = {}
    history: list[tuple[datetime, list]] = []  # type: ignore[type-arg]
    for k, cycle in enumerate(cycles):
        now = T0 + timedelta(seconds=15 * k)
        history.append((now, cycle))
        ev.observe(now, cycle)
        quiet = k % 5 == 4
        got = ev.outcomes(now, quiet=quiet)
        scratch = RuleEvaluator(_rules())
        for t, c in history[-30:]:
            scratch.observe(t, c)
        assert _plain(got) == _plain(scratch.outcomes(now, quiet=quiet)), k
        for o in got:
            key = (o.rule, o.labels["model"])
            reused += last.get(key) is o
        last = {(o.rule, o.labels["model"]): o for o in got}
    assert reused > 20  # the reuse path was exercised
