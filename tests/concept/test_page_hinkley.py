"""Page-Hinkley in reference sigmas: the vectorised batch equals Page's recursion, scale-free."""

from __future__ import annotations

import json
from typing import Any, Literal

import numpy as np
import pytest
from river import drift

from inferwatch.concept import PageHinkley

Direction = Literal["up", "down", "both"]


def _recursion(xs: np.ndarray, mu: float, k: float, h: float, direction: Direction) -> list[int]:
    """Page's CUSUM written the plain way, one value at a time, restarting after each alarm."""
    up = down = 0.0
    hits = []
    for i, x in enumerate(xs.tolist()):
        up = max(0.0, up + x - mu - k)
        down = max(0.0, down + mu - k - x)
        fired = (direction != "down" and up > h) or (direction != "up" and down > h)
        if fired:
            hits.append(i)
            up = down = 0.0
    return hits


@pytest.mark.parametrize("direction", ["up", "down", "both"])
@pytest.mark.parametrize("batch", [1, 13, 1000, 30_000])
def test_batches_equal_the_recursion(direction: Direction, batch: int) -> None:
    rng = np.random.default_rng(10)
    xs = np.r_[rng.normal(0, 1, 10_000), rng.normal(0.6, 1, 5_000), rng.normal(-0.6, 1, 5_000)]
    ph = PageHinkley(0.0, 1.0, delta_sigmas=0.25, threshold_sigmas=8.0, direction=direction)
    got = [s + int(i) for s in range(0, xs.size, batch) for i in ph.update_many(xs[s : s + batch])]
    assert got == _recursion(xs, 0.0, 0.25, 8.0, direction)
    assert got, "the shifts must raise alarms"
    assert ph.n_seen_ == xs.size


def test_alarms_do_not_depend_on_the_units_of_the_errors() -> None:
    """River's data-unit threshold alarms 317 times on N(0,1) and never on the same data x0.1."""
    xs = np.random.default_rng(11).normal(0.0, 1.0, 30_000)
    xs[20_000:] += 1.0
    first = PageHinkley(0.0, 1.0).update_many(xs)
    scaled = PageHinkley(0.0, 0.1).update_many(xs * 0.1)
    assert first.tolist() == scaled.tolist()
    assert first.size and first[0] >= 20_000


def test_rivers_default_false_alarms_on_stable_data_ours_do_not() -> None:
    xs = np.random.default_rng(12).normal(0.0, 1.0, 50_000)
    river_drift: Any = drift  # River ships no type hints
    river = river_drift.PageHinkley()
    river_alarms = 0
    for x in xs.tolist():
        river.update(x)
        river_alarms += river.drift_detected
    ours = PageHinkley(0.0, 1.0, delta_sigmas=0.5, threshold_sigmas=25.0, direction="both")
    assert river_alarms > 0
    assert ours.update_many(xs).size == 0


def test_an_alarm_reports_the_baseline_and_the_level_since_the_change() -> None:
    rng = np.random.default_rng(13)
    xs = np.r_[(rng.random(10_000) < 0.1), (rng.random(2_000) < 0.5)] * 1.0
    alarm = PageHinkley(0.1, 0.3, 0.2, 30.0).alarms(xs)[0]
    assert alarm.position >= 10_000
    assert alarm.direction == "up"
    assert alarm.mean_before == 0.1
    assert 0.35 < alarm.mean_after < 0.8
    assert alarm.run_length <= alarm.position + 1


def test_rebase_moves_the_baseline_and_rebase_to_sets_it() -> None:
    rng = np.random.default_rng(14)
    xs = np.r_[(rng.random(5_000) < 0.1), (rng.random(5_000) < 0.5)] * 1.0
    fixed = PageHinkley(0.1, 0.3, 0.2, 30.0).update_many(xs)
    moving = PageHinkley(0.1, 0.3, 0.2, 30.0, rebase=True)
    assert moving.update_many(xs).size < fixed.size  # fixed re-alarms on the new level
    assert moving.baseline_ is not None and moving.baseline_ > 0.3
    ph = PageHinkley(0.1, 0.3)
    ph.rebase_to(0.4)
    assert ph.baseline_ == 0.4
    with pytest.raises(ValueError, match="finite"):
        ph.rebase_to(float("nan"))


def test_state_round_trips_through_json_mid_stream() -> None:
    rng = np.random.default_rng(15)
    xs = np.r_[rng.normal(0, 1, 3_000), rng.normal(1, 1, 3_000)]
    whole = PageHinkley(0.0, 1.0, 0.3, 6.0, "both").update_many(xs)
    ph = PageHinkley(0.0, 1.0, 0.3, 6.0, "both")
    got = ph.update_many(xs[:3_500]).tolist()
    revived = PageHinkley.from_dict(json.loads(json.dumps(ph.to_dict())))
    got += [3_500 + int(i) for i in revived.update_many(xs[3_500:])]
    assert got == whole.tolist()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reference_std": 0.0}, "reference_std"),
        ({"reference_std": float("nan")}, "finite"),
        ({"threshold_sigmas": 0.0}, "threshold_sigmas"),
        ({"direction": "sideways"}, "direction"),
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, object], match: str) -> None:
    params: dict[str, object] = {"reference_mean": 0.1, "reference_std": 0.3, **kwargs}
    with pytest.raises(ValueError, match=match):
        PageHinkley(**params)  # type: ignore[arg-type]


def test_non_finite_values_are_refused_and_change_nothing() -> None:
    ph = PageHinkley(0.1, 0.3)
    ph.update_many(np.ones(5))
    before = ph.to_dict()
    with pytest.raises(ValueError, match="finite"):
        ph.update_many(np.array([1.0, np.inf]))
    assert ph.to_dict() == before
