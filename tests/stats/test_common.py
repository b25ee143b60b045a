"""Every registered drift test, in every form it offers, goes through the same checks."""

from __future__ import annotations

import json
import pickle
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from inferwatch import stats
from inferwatch._binned import Binned, bin_values
from inferwatch.stats import Counts, DriftResult, DriftTest, EmptySampleError

FORMS = [
    pytest.param(stats.get(name), form, id=f"{name}-{form}")
    for name in stats.available()
    for form in ("exact", "binned", "counts")
    if getattr(stats.get(name), form) is not None
]
# the statistics that compare [missing, ...] count vectors: missing is an entry of its own
KEEPS_MISSING = {"psi", "jensen_shannon", "kl_divergence", "hellinger", "chi_square"}


def run(test: DriftTest, form: str, ref: npt.ArrayLike, cur: npt.ArrayLike) -> DriftResult:
    """Run ``test`` in ``form`` on two raw samples (numbers, or labels for counts)."""
    if form == "binned":
        edges = stats.quantile_edges(np.asarray(ref, dtype=float), 20)
        return test.compare(bin_values(ref, edges), bin_values(cur, edges))
    if form == "counts":
        return test.compare(ref, cur, kind="categorical")
    return test.compare(ref, cur)


def samples(form: str, rng: np.random.Generator, shifted: bool) -> tuple[Any, Any]:
    if form == "counts":
        ref = rng.choice(["a", "b"], p=[0.7, 0.3], size=400)
        cur = rng.choice(["a", "b"], p=[0.2, 0.8] if shifted else [0.7, 0.3], size=300)
        return ref, cur
    ref = rng.normal(size=400)
    return ref, (rng.normal(3.0, 1.0, size=300) if shifted else ref.copy())


def check_plain(result: DriftResult, test: DriftTest, form: str) -> None:
    assert result.test == test.name
    assert result.threshold == test.default_threshold
    assert result.mode == ("binned" if form == "binned" else "exact")
    assert (result.p_value is None) == (test.statistic_kind == "distance")
    json.dumps(result.to_dict(), allow_nan=False)


@pytest.mark.parametrize(("test", "form"), FORMS)
def test_repr_names_the_test_and_hides_addresses(test: DriftTest, form: str) -> None:
    assert f"name={test.name!r}" in repr(test)
    assert " at 0x" not in repr(test)
    assert repr(test).startswith("DriftTest(")


@pytest.mark.parametrize(("test", "form"), FORMS)
def test_test_and_result_pickle(test: DriftTest, form: str, rng: np.random.Generator) -> None:
    ref, cur = samples(form, rng, shifted=True)
    clone = pickle.loads(pickle.dumps(test))
    assert clone == test
    result = run(test, form, ref, cur)
    assert run(clone, form, ref, cur) == result
    assert pickle.loads(pickle.dumps(result)) == result


@pytest.mark.parametrize(("test", "form"), FORMS)
def test_identical_samples_do_not_drift(
    test: DriftTest, form: str, rng: np.random.Generator
) -> None:
    ref, _ = samples(form, rng, shifted=False)
    result = run(test, form, ref, ref.copy())
    check_plain(result, test, form)
    assert not result.drift_detected
    if test.statistic_kind == "distance":
        assert result.statistic == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(("test", "form"), FORMS)
def test_a_strong_shift_drifts(test: DriftTest, form: str, rng: np.random.Generator) -> None:
    ref, cur = samples(form, rng, shifted=True)
    result = run(test, form, ref, cur)
    check_plain(result, test, form)
    assert result.drift_detected
    assert result.effect_size is not None
    assert result.effect_size > 0.1


def _empty(form: str, ref: Any) -> Any:
    if form == "binned":
        return Binned(stats.quantile_edges(ref, 20), np.zeros(22, dtype=np.int64))
    if form == "counts":
        return Counts((), np.zeros(0, dtype=np.int64))
    return np.array([], dtype=float)


@pytest.mark.parametrize(("test", "form"), FORMS)
@pytest.mark.parametrize("side", ["reference", "current"])
def test_an_empty_sample_is_a_clear_value_error(
    test: DriftTest, form: str, side: str, rng: np.random.Generator
) -> None:
    ref = rng.normal(size=100)
    full: Any = ref
    if form == "binned":
        full = bin_values(ref, stats.quantile_edges(ref, 20))
    elif form == "counts":
        full = stats.counts_from_values(rng.choice(["a", "b"], size=100))
    empty = _empty(form, ref)
    args = (empty, full) if side == "reference" else (full, empty)
    with pytest.raises(EmptySampleError, match=f"{side} is empty") as info:
        test.compare(*args)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(("test", "form"), FORMS)
def test_an_all_missing_current(test: DriftTest, form: str, rng: np.random.Generator) -> None:
    ref, _ = samples(form, rng, shifted=False)
    cur: Any = np.full(200, np.nan) if form != "counts" else np.array([None] * 200, dtype=object)
    if test.name in KEEPS_MISSING:
        result = run(test, form, ref, cur)
        check_plain(result, test, form)
        assert result.drift_detected
    else:
        with pytest.raises(EmptySampleError, match=r"no (finite|non-missing) values"):
            run(test, form, ref, cur)


@pytest.mark.parametrize(("test", "form"), FORMS)
def test_single_valued_columns(test: DriftTest, form: str) -> None:
    value: Any = "a" if form == "counts" else 3.0
    other: Any = "b" if form == "counts" else 4.0
    same = run(test, form, np.full(200, value), np.full(150, value))
    check_plain(same, test, form)
    assert not same.drift_detected
    assert np.isfinite(same.statistic)
    moved = run(test, form, np.full(200, value), np.full(150, other))
    check_plain(moved, test, form)
    assert moved.drift_detected


@pytest.mark.parametrize(("test", "form"), FORMS)
def test_infinities_are_handled(test: DriftTest, form: str, rng: np.random.Generator) -> None:
    # for counts, a discrete numeric column: +/-inf are then two new categories
    ref = rng.choice([1.0, 2.0], size=2000) if form == "counts" else rng.normal(size=2000)
    cur = ref.copy()  # the same values but five: no verdict rests on sampling noise
    cur[:3] = np.inf
    cur[3:5] = -np.inf
    result = run(test, form, ref, cur)
    check_plain(result, test, form)
    assert np.isfinite(result.statistic)
    if form == "counts":
        assert result.details["unseen_categories"] == 2
        return
    assert not result.drift_detected
    if form == "exact" and test.name not in KEEPS_MISSING:
        assert result.details["non_finite_current"] == 5


@pytest.mark.parametrize(("test", "form"), [f for f in FORMS if f.values[1] == "exact"])
def test_a_missingness_shift_moves_binned_statistics_only(
    test: DriftTest, form: str, rng: np.random.Generator
) -> None:
    # the same values, a fifth of them missing in the current sample
    ref = rng.normal(size=2000)
    cur = ref.copy()
    cur[rng.choice(cur.size, size=cur.size // 5, replace=False)] = np.nan
    result = run(test, form, ref, cur)
    assert result.details["missing_current"] == 400
    assert result.drift_detected == (test.name in KEEPS_MISSING)
