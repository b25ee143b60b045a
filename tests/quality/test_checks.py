"""Feature-level quality checks against numpy on the raw data and hand-counted cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import betabinom

from inferwatch.quality import (
    CategoricalReference,
    FeatureQuality,
    NumericReference,
    QualityThresholds,
    categorical_limits,
    categorical_quality,
    numeric_quality,
    split_numeric,
)
from inferwatch.stats import Counts


def check(ref: np.ndarray, cur: np.ndarray, **kw: float) -> FeatureQuality:
    s, missing, inf = split_numeric(cur)
    return numeric_quality("x", s, missing, inf, NumericReference.fit(ref), QualityThresholds(**kw))


def test_reference_fit_matches_numpy(rng: np.random.Generator) -> None:
    ref = rng.normal(size=1001)
    ref[:50] = np.nan
    r = NumericReference.fit(ref)
    finite = ref[~np.isnan(ref)]
    assert r.n == 1001
    assert r.missing == 50
    assert r.missing_share == pytest.approx(50 / 1001)
    assert r.min == finite.min()
    assert r.max == finite.max()
    np.testing.assert_allclose(
        [r.q1, r.median, r.q3], np.quantile(finite, [0.25, 0.5, 0.75]), rtol=1e-12
    )


def test_summary_and_counts_match_numpy(rng: np.random.Generator) -> None:
    ref = rng.normal(size=2000)
    cur = rng.normal(0.3, 1.5, size=3000)
    cur[:100] = np.nan
    cur[100:103] = np.inf
    q = check(ref, cur)
    finite = cur[np.isfinite(cur)]
    assert q.n == 3000
    assert q.missing == 100
    assert q.non_finite == 3
    assert q.missing_share == pytest.approx(100 / 3000)
    assert q.summary["mean"] == pytest.approx(finite.mean(), rel=1e-12)
    assert q.summary["std"] == pytest.approx(finite.std(), rel=1e-12)
    for key, p in (("q25", 0.25), ("median", 0.5), ("q75", 0.75)):
        assert q.summary[key] == pytest.approx(np.quantile(finite, p), rel=1e-12)
    expected_oor = int(((finite < np.nanmin(ref)) | (finite > np.nanmax(ref))).sum())
    assert q.out_of_range == expected_oor
    q1, q3 = np.quantile(ref, [0.25, 0.75])
    fence = 1.5 * (q3 - q1)
    assert q.outliers == int(((finite < q1 - fence) | (finite > q3 + fence)).sum())
    assert "non_finite" in q.problems
    assert "outliers" in q.problems


def test_hand_counted_case() -> None:
    ref = np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # q1=2, q3=4, fences -1 and 7
    cur = np.array([0.5, 1.0, 5.0, 6.0, 8.0, np.nan, np.nan])
    q = check(ref, cur)
    assert q.out_of_range == 3  # 0.5, 6, 8
    assert q.outliers == 1  # 8
    assert q.missing == 2
    assert q.missing_share_change == pytest.approx(2 / 7)
    # five reference values cannot tell a rise from chance: the limits say so
    assert q.limits["missing_share"] == betabinom.ppf(0.9999, 7, 0.5, 5.5) / 7
    assert q.limits["out_of_range_share"] == betabinom.ppf(0.9999, 5, 2, 4) / 7
    assert q.problems == ()
    # the same shares on 1,000 times the rows are a rise
    big = check(np.tile(ref, 1000), np.tile(cur, 1000))
    assert {"missing_increase", "out_of_range", "outliers"} <= set(big.problems)
    assert big.to_dict()["limits"] == dict(big.limits)
    assert set(big.limits) == {"missing_share", "out_of_range_share", "outlier_share"}


def test_reference_fit_counts_its_own_outliers(rng: np.random.Generator) -> None:
    ref = rng.lognormal(size=3000)
    ref[:30] = np.nan
    r = NumericReference.fit(ref, iqr_factor=2.0)
    finite = ref[np.isfinite(ref)]
    q1, q3 = np.quantile(finite, [0.25, 0.75])
    assert r.fences == pytest.approx((q1 - 2 * (q3 - q1), q3 + 2 * (q3 - q1)))
    assert r.outliers == int(((finite < r.fences[0]) | (finite > r.fences[1])).sum())
    assert r.outliers > 0.03 * len(finite)  # a skewed column: past any fixed 3% cap
    assert r.missing == 30
    assert r.n_finite == len(finite)


def test_same_distribution_has_no_problems(rng: np.random.Generator) -> None:
    q = check(rng.normal(size=5000), rng.normal(size=5000))
    assert q.problems == ()
    assert not q.failed


def test_constant_and_near_constant() -> None:
    ref = np.arange(100.0)
    q = check(ref, np.full(50, 7.0))
    assert q.constant
    assert q.near_constant
    assert q.n_unique == 1
    assert "constant" in q.problems
    near = np.concatenate([np.full(96, 3.0), [1.0, 2.0, 4.0, 5.0]])
    q = check(ref, near)
    assert not q.constant
    assert q.near_constant
    assert q.top_share == pytest.approx(0.96)
    # a reference that was already constant is not a problem when the current is too
    assert "constant" not in check(np.full(10, 7.0), np.full(10, 7.0)).problems


def test_empty_all_missing_and_all_infinite_current() -> None:
    q = check(np.arange(10.0), np.array([], dtype=float))
    assert q.n == 0
    assert q.summary["mean"] is None
    assert q.problems == ()
    q = check(np.arange(100.0), np.full(50, np.nan))
    assert q.missing_share == 1.0
    assert "missing_increase" in q.problems
    assert q.to_dict()["summary"]["mean"] is None
    q = check(np.arange(100.0), np.array([np.inf, -np.inf] * 25))
    assert q.non_finite == 50
    assert "non_finite" in q.problems


def test_categorical_limits_count_singletons() -> None:
    # 40 categories seen once in 1,000 rows: Good-Turing says 4% of new rows bring a new one
    counts = {f"c{i}": 1 for i in range(40)} | {"a": 600, "b": 360}
    ref = CategoricalReference.fit(Counts.from_mapping(counts))
    assert ref.singletons == 40
    assert ref.n_present == 1000
    limits = categorical_limits(ref, 1000, 1000, QualityThresholds())
    assert limits["unseen_share"] == betabinom.ppf(0.9999, 1000, 40.5, 960.5) / 1000
    assert limits["unseen_share"] > 0.04
    few = CategoricalReference.fit(Counts.from_mapping({"a": 600, "b": 400}))
    assert categorical_limits(few, 1000, 1000, QualityThresholds())["unseen_share"] < 0.02


def test_categorical_unseen_and_missing() -> None:
    ref = Counts(("a", "b", "c"), np.array([50, 30, 20]), missing=0)
    cur = Counts(("a", "b", "new1", "new2"), np.array([40, 30, 20, 5]), missing=5)
    q = categorical_quality("c", cur, CategoricalReference.fit(ref))
    assert q.n == 100
    assert dict(q.unseen_categories) == {"new1": 20, "new2": 5}
    assert q.unseen_share == pytest.approx(0.25)
    assert q.missing_share == pytest.approx(0.05)
    assert q.n_unique == 4
    assert q.summary["top"] == "a"
    assert "unseen_categories" in q.problems
    assert "missing_increase" not in q.problems  # 5 of 100 where 0 of 100 were: chance
    assert set(q.limits) == {"missing_share", "unseen_share"}
    assert q.to_dict()["unseen_categories"] == {"new1": 20, "new2": 5}


def test_categorical_unseen_list_is_bounded() -> None:
    ref = Counts(("a",), np.array([10]))
    cats = tuple(f"n{i:03d}" for i in range(500))
    cur = Counts(cats, np.arange(1, 501))
    q = categorical_quality("c", cur, CategoricalReference.fit(ref))
    assert len(q.unseen_categories) == 20
    assert next(iter(q.unseen_categories)) == "n499"  # most frequent first
    assert q.summary["unseen_total"] == sum(range(1, 501))
