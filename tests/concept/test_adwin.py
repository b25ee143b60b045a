"""ADWIN: the histogram's laws, batches equal one by one, River's detections on the same streams."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from river import drift

from inferwatch.concept import ADWIN

#: River ships no type hints; reach it through Any so mypy does not flag the calls.
RIVER: Any = drift


def _step(rng: np.random.Generator, n: int, p0: float, p1: float) -> np.ndarray:
    xs: np.ndarray = np.r_[rng.random(n) < p0, rng.random(n) < p1].astype(np.float64)
    return xs


def _buckets(adwin: ADWIN) -> object:
    """The histogram itself (the running M2 may differ in the last bits with the batching)."""
    return adwin.to_dict()["rows"]


def _river_first(xs: np.ndarray) -> int | None:
    detector = RIVER.ADWIN()
    for i, x in enumerate(xs.tolist()):
        detector.update(x)
        if detector.drift_detected:
            return i
    return None


def test_without_a_cut_the_histogram_keeps_exact_width_mean_and_variance() -> None:
    rng = np.random.default_rng(1)
    xs = rng.normal(3.0, 2.0, 20_000)
    adwin = ADWIN()
    assert adwin.update_many(xs).size == 0
    assert adwin.width == xs.size
    assert adwin.estimation == pytest.approx(xs.mean(), rel=1e-12)
    assert adwin.variance == pytest.approx(xs.var(), rel=1e-9)
    rows = adwin.to_dict()["rows"]
    assert all(len(row) <= adwin.max_buckets for row in rows)
    assert sum(len(row) << i for i, row in enumerate(rows)) == xs.size


@pytest.mark.parametrize("batch", [1, 7, 32, 1000, 12_000])
def test_update_many_in_any_batches_equals_one_by_one(batch: int) -> None:
    xs = _step(np.random.default_rng(2), 6_000, 0.1, 0.5)
    single = ADWIN()
    one_by_one = [i for i, x in enumerate(xs.tolist()) if single.update(x)]
    batched = ADWIN()
    hits = [
        start + int(i)
        for start in range(0, xs.size, batch)
        for i in batched.update_many(xs[start : start + batch])
    ]
    assert hits == one_by_one
    assert _buckets(batched) == _buckets(single)
    assert batched.variance == pytest.approx(single.variance, rel=1e-9)
    assert one_by_one, "the step must be detected"


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("p0", "p1"), [(0.1, 0.3), (0.2, 0.6)])
def test_first_detection_where_rivers_is(seed: int, p0: float, p1: float) -> None:
    xs = _step(np.random.default_rng(seed), 5_000, p0, p1)
    ours = ADWIN().update_many(xs)
    theirs = _river_first(xs)
    assert theirs is not None and ours.size
    # same test, same clock; River's bucket loop differs from MOA's (river #1539)
    assert abs(int(ours[0]) - theirs) <= ADWIN().clock


def test_after_a_change_it_keeps_the_new_part_and_reports_both_means() -> None:
    xs = _step(np.random.default_rng(3), 5_000, 0.1, 0.5)
    adwin = ADWIN()
    cuts = adwin.cuts(xs)
    assert cuts and cuts[0].position >= 5_000
    assert cuts[0].mean_before == pytest.approx(0.1, abs=0.03)
    assert (
        cuts[0].mean_after > cuts[0].mean_before + 0.05
    )  # the kept part may start before the step
    assert adwin.width < 5_200  # it dropped the old level (to within one bucket)
    assert adwin.estimation == pytest.approx(0.5, abs=0.05)


def test_stable_normal_stream_raises_no_alarm() -> None:
    xs = np.random.default_rng(4).normal(0.0, 1.0, 50_000)
    assert ADWIN().update_many(xs).size == 0


def test_state_round_trips_through_json_mid_stream() -> None:
    xs = _step(np.random.default_rng(5), 4_000, 0.1, 0.4)
    whole = ADWIN(delta=0.001)
    expected = whole.update_many(xs)
    first = ADWIN(delta=0.001)
    got = list(first.update_many(xs[:3_000]))
    revived = ADWIN.from_dict(json.loads(json.dumps(first.to_dict())))
    got += [3_000 + int(i) for i in revived.update_many(xs[3_000:])]
    assert got == expected.tolist()
    assert _buckets(revived) == _buckets(whole)


def test_reported_values_ride_along_without_changing_the_test() -> None:
    rng = np.random.default_rng(6)
    xs = _step(rng, 3_000, 0.1, 0.5)
    shown = xs * 10.0 + 1.0
    plain, carried = ADWIN(), ADWIN()
    cuts = carried.cuts(xs, report=shown)
    expected = plain.cuts(xs)
    assert [c.position for c in cuts] == [c.position for c in expected]
    assert carried.reported_estimation == pytest.approx(carried.estimation * 10.0 + 1.0)
    for ours, base in zip(cuts, expected, strict=True):
        assert ours.mean_before == pytest.approx(base.mean_before * 10.0 + 1.0)
        assert ours.mean_after == pytest.approx(base.mean_after * 10.0 + 1.0)


def test_bad_input_is_refused_and_changes_nothing() -> None:
    adwin = ADWIN()
    adwin.update_many(np.zeros(100))
    before = adwin.to_dict()
    with pytest.raises(ValueError, match="finite"):
        adwin.update_many(np.array([0.0, np.nan]))
    assert adwin.to_dict() == before
    with pytest.raises(ValueError, match="delta"):
        ADWIN(delta=0.0)
