"""ErrorStreamMonitor: the budget holds on stable errors, steps are caught, state survives."""

from __future__ import annotations

import json
from typing import Literal

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.metrics import accuracy_score, mean_absolute_error

from inferwatch.concept import (
    Detection,
    ErrorStreamMonitor,
    lundberg_exponent,
    per_prediction_errors,
)

#: Rows after a step by which the monitor must have fired (bench: p90 76 and 483 rows).
STEP_LIMITS = {0.40: 150, 0.20: 900}


def _bernoulli(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    return (rng.random(n) < p) * 1.0


def _diabetes_residuals(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """|y - prediction| of a linear regressor on two held-out thirds of scikit-learn's diabetes."""
    x, y = load_diabetes(return_X_y=True)
    train, ref, cur = np.array_split(np.random.default_rng(seed).permutation(y.size), 3)
    model = LinearRegression().fit(x[train], y[train])
    return np.abs(y[ref] - model.predict(x[ref])), np.abs(y[cur] - model.predict(x[cur]))


def test_lundberg_exponent_matches_the_normal_closed_form() -> None:
    # for steps ~ N(-k, s^2), E[exp(theta y)] = 1 at theta = 2k / s^2
    steps = np.random.default_rng(20).normal(-0.3, 1.5, 400_000)
    assert lundberg_exponent(steps) == pytest.approx(2 * 0.3 / 1.5**2, rel=0.03)
    assert lundberg_exponent(np.array([-1.0, -0.5])) == np.inf
    # weights describe the same distribution as repeated steps
    assert lundberg_exponent([-0.15, 0.85], [0.9, 0.1]) == pytest.approx(
        lundberg_exponent(np.r_[np.full(9, -0.15), 0.85]), rel=1e-9
    )
    with pytest.raises(ValueError, match="drift down"):
        lundberg_exponent(np.array([1.0, -0.5]))


@pytest.mark.parametrize("budget", [1_000, 20_000, 100_000])
def test_false_alarms_stay_within_the_budget_on_stable_errors(budget: int) -> None:
    rows = 200_000
    rng = np.random.default_rng(21)
    ref_res, cur_res = _diabetes_residuals(0)
    streams = {
        "bernoulli": (_bernoulli(rng, 5_000, 0.1), _bernoulli(rng, rows, 0.1)),
        "diabetes residuals": (ref_res, rng.choice(cur_res, size=rows)),
    }
    for name, (reference, stream) in streams.items():
        monitor = ErrorStreamMonitor.from_reference(reference, false_alarm_budget=budget)
        alarms = monitor.update_many(stream)
        assert len(alarms) <= rows // budget, (name, alarms[:5])


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("p1", [0.40, 0.20])
def test_a_step_in_the_error_rate_is_caught_within_the_stated_rows(seed: int, p1: float) -> None:
    rng = np.random.default_rng(100 + seed)
    monitor = ErrorStreamMonitor.from_reference(_bernoulli(rng, 5_000, 0.1))
    before = monitor.update_many(_bernoulli(rng, 20_000, 0.1))
    assert before == []
    after = monitor.update_many(_bernoulli(rng, 2_000, p1))
    assert after, "no detection"
    assert after[0].index - 20_000 <= STEP_LIMITS[p1]
    assert after[0].mean_after > after[0].mean_before


@pytest.mark.parametrize("direction", ["down", "both"])
def test_errors_that_fall_are_caught_when_asked(direction: Literal["down", "both"]) -> None:
    rng = np.random.default_rng(29)
    reference = _bernoulli(rng, 5_000, 0.2)
    up_only = ErrorStreamMonitor.from_reference(reference)
    watch = ErrorStreamMonitor.from_reference(reference, direction=direction)
    stable, better = _bernoulli(rng, 50_000, 0.2), _bernoulli(rng, 3_000, 0.05)
    assert watch.update_many(stable) == []
    found = watch.update_many(better)
    ph = [d for d in found if d.detector == "page_hinkley"]
    assert ph and ph[0].index - 50_000 <= 300
    assert ph[0].mean_after < ph[0].mean_before
    up_only.update_many(stable)
    assert not [d for d in up_only.update_many(better) if d.detector == "page_hinkley"]


def test_regression_errors_that_grow_are_caught_and_reported_in_error_units() -> None:
    ref_res, cur_res = _diabetes_residuals(1)
    rng = np.random.default_rng(22)
    monitor = ErrorStreamMonitor.from_reference(ref_res)
    assert monitor.rank_knots, "continuous errors are ranked for ADWIN"
    assert monitor.update_many(rng.choice(cur_res, 20_000)) == []
    found = monitor.update_many(rng.choice(cur_res, 3_000) * 1.6)
    assert {d.detector for d in found} == {"adwin", "page_hinkley"}
    adwin = next(d for d in found if d.detector == "adwin")
    assert adwin.mean_before == pytest.approx(cur_res.mean(), rel=0.15)
    assert adwin.mean_after > adwin.mean_before
    # the window ADWIN kept is the new level, in the errors' own units
    assert monitor.adwin.reported_estimation == pytest.approx(1.6 * cur_res.mean(), rel=0.15)


def test_detections_do_not_depend_on_how_the_stream_is_batched() -> None:
    rng = np.random.default_rng(23)
    reference = _bernoulli(rng, 5_000, 0.1)
    stream = np.r_[
        _bernoulli(rng, 8_000, 0.1), _bernoulli(rng, 4_000, 0.35), _bernoulli(rng, 4_000, 0.1)
    ]
    whole = ErrorStreamMonitor.from_reference(reference).update_many(stream)
    monitor = ErrorStreamMonitor.from_reference(reference)
    pieces: list[Detection] = []
    for start in range(0, stream.size, 777):
        pieces += monitor.update_many(stream[start : start + 777])
    assert pieces == whole
    assert [d.index for d in whole] == sorted(d.index for d in whole)
    assert monitor.n_seen == stream.size


def test_state_round_trips_through_json_between_batches() -> None:
    rng = np.random.default_rng(24)
    ref_res, cur_res = _diabetes_residuals(2)
    stream = np.r_[rng.choice(cur_res, 6_000), rng.choice(cur_res, 2_000) * 2.0]
    whole = ErrorStreamMonitor.from_reference(ref_res).update_many(stream)
    monitor = ErrorStreamMonitor.from_reference(ref_res)
    got = monitor.update_many(stream[:5_000])
    revived = ErrorStreamMonitor.from_dict(json.loads(json.dumps(monitor.to_dict())))
    got += revived.update_many(stream[5_000:])
    assert got == whole and whole
    assert [d.to_dict() for d in got] == json.loads(json.dumps([d.to_dict() for d in whole]))


def test_thresholds_are_in_reference_sigmas_and_grow_with_the_budget() -> None:
    reference = _bernoulli(np.random.default_rng(25), 5_000, 0.1)
    small = ErrorStreamMonitor.from_reference(reference, false_alarm_budget=1_000)
    large = ErrorStreamMonitor.from_reference(reference, false_alarm_budget=1_000_000)
    assert small.page_hinkley.reference_std == pytest.approx(reference.std())
    assert large.page_hinkley.threshold_sigmas > small.page_hinkley.threshold_sigmas
    assert large.adwin.delta < small.adwin.delta
    # continuous errors in other units: the same thresholds in sigmas
    residuals = np.random.default_rng(25).exponential(3.0, 5_000)
    base = ErrorStreamMonitor.from_reference(residuals, false_alarm_budget=1_000)
    scaled = ErrorStreamMonitor.from_reference(residuals * 7.0, false_alarm_budget=1_000)
    assert scaled.page_hinkley.threshold_sigmas == pytest.approx(
        base.page_hinkley.threshold_sigmas, rel=1e-9
    )
    assert scaled.page_hinkley.delta_sigmas == pytest.approx(base.page_hinkley.delta_sigmas)


@pytest.mark.parametrize(
    ("reference", "kwargs", "match"),
    [
        (np.full(100, 2.5), {}, "no spread"),
        (np.ones(10), {}, "at least"),
        (np.r_[np.zeros(50), np.nan], {}, "finite"),
        (np.r_[np.zeros(50), np.ones(5)], {"false_alarm_budget": 0}, "false_alarm_budget"),
        (np.r_[np.zeros(50), np.ones(5)], {"delta_sigmas": 0.0}, "delta_sigmas"),
    ],
)
def test_unusable_references_are_refused(
    reference: np.ndarray, kwargs: dict[str, float], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        ErrorStreamMonitor.from_reference(reference, **kwargs)  # type: ignore[arg-type]


def test_a_classifier_that_never_erred_on_the_reference_still_gets_a_monitor() -> None:
    """No spread in 0/1 errors: one pseudo-error (rate 1/(n+1)) instead of a refusal."""
    rng = np.random.default_rng(28)
    monitor = ErrorStreamMonitor.from_reference(np.zeros(2_000))
    assert monitor.page_hinkley.reference_mean == pytest.approx(1 / 2_001)
    assert monitor.update_many(_bernoulli(rng, 50_000, 1 / 2_001)) == []
    found = monitor.update_many(_bernoulli(rng, 2_000, 0.05))
    assert found and found[0].index - 50_000 <= 200


def test_a_bad_batch_is_refused_whole_and_loses_nothing() -> None:
    monitor = ErrorStreamMonitor.from_reference(_bernoulli(np.random.default_rng(26), 1_000, 0.1))
    monitor.update_many(np.zeros(100))
    before = monitor.to_dict()
    with pytest.raises(ValueError, match="finite"):
        monitor.update_many(np.array([0.0, 1.0, np.nan]))
    assert monitor.to_dict() == before


def test_per_prediction_errors_agree_with_scikit_learn() -> None:
    rng = np.random.default_rng(27)
    labels = rng.integers(0, 3, 1_000)
    predicted = np.where(rng.random(1_000) < 0.8, labels, rng.integers(0, 3, 1_000))
    errors = per_prediction_errors(labels, predicted, "classification")
    assert 1.0 - errors.mean() == pytest.approx(accuracy_score(labels, predicted), abs=1e-12)
    y, yhat = rng.normal(size=500), rng.normal(size=500)
    assert per_prediction_errors(y, yhat, "regression").mean() == pytest.approx(
        mean_absolute_error(y, yhat), abs=1e-12
    )
    with pytest.raises(ValueError, match="shape"):
        per_prediction_errors(y, yhat[:3], "regression")
