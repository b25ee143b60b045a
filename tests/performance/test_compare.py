"""Version comparison tests, cross-checked against scipy and a published interval."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st

from inferwatch.performance._compare import compare_means, compare_proportions


def test_z_test_matches_a_hand_computation_and_the_uncorrected_chi_square() -> None:
    # 870/1000 correct for A, 900/1000 for B
    c = compare_proportions(870, 1000, 900, 1000, method="z")
    pooled = 1770 / 2000
    z = (0.9 - 0.87) / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert c.test == "two_proportion_z"
    assert c.statistic == pytest.approx(z, rel=1e-12)
    assert c.p_value == pytest.approx(2 * (1 - st.norm.cdf(abs(z))), rel=1e-9)
    # z**2 is the 2 x 2 chi-square without continuity correction: same p-value
    chi2, p, _, _ = st.chi2_contingency([[870, 130], [900, 100]], correction=False)
    assert c.statistic**2 == pytest.approx(chi2, rel=1e-9)
    assert c.p_value == pytest.approx(p, rel=1e-9)
    se = math.sqrt(0.87 * 0.13 / 1000 + 0.9 * 0.1 / 1000)
    assert c.difference == pytest.approx(0.03)
    assert c.ci_low == pytest.approx(0.03 - 1.959963984540054 * se, rel=1e-9)
    assert c.ci_high == pytest.approx(0.03 + 1.959963984540054 * se, rel=1e-9)
    assert c.significant is (c.p_value < 0.05)


def test_fisher_interval_is_newcombes_published_example() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, table II example (a): 56/70 - 48/80,
    # method 10 (hybrid score): 0.0524 to 0.3339
    c = compare_proportions(48, 80, 56, 70, method="fisher")
    assert c.test == "fisher_exact"
    assert c.ci_low == pytest.approx(0.0524, abs=5e-5)
    assert c.ci_high == pytest.approx(0.3339, abs=5e-5)
    assert c.p_value == pytest.approx(st.fisher_exact([[48, 32], [56, 14]]).pvalue, rel=1e-12)


def test_auto_picks_fisher_for_small_counts_and_agrees_with_barnard() -> None:
    c = compare_proportions(1, 10, 7, 10)  # expected successes 4 (< 5) per side
    assert c.test == "fisher_exact"
    barnard = st.barnard_exact([[1, 9], [7, 3]])
    assert (c.p_value < 0.05) == (barnard.pvalue < 0.05)
    assert c.difference > 0 and c.ci_low > 0  # B clearly better: interval excludes 0
    big = compare_proportions(400, 1000, 420, 1000)
    assert big.test == "two_proportion_z"


def test_identical_rates_are_not_significant_and_extremes_are_finite() -> None:
    c = compare_proportions(50, 100, 50, 100)
    assert c.difference == 0 and c.p_value == pytest.approx(1.0)
    assert not c.significant
    same = compare_proportions(100, 100, 200, 200, method="z")  # pooled rate 1: z = 0
    assert same.p_value == 1.0 and same.ci_low == same.ci_high == 0.0


def test_welch_matches_scipy_from_stats_and_from_rows(rng: np.random.Generator) -> None:
    a = np.abs(rng.normal(0, 1.0, 400))  # absolute errors of version A
    b = np.abs(rng.normal(0, 1.2, 250))
    c = compare_means(a.size, a.sum(), (a**2).sum(), b.size, b.sum(), (b**2).sum())
    ref = st.ttest_ind_from_stats(
        b.mean(), b.std(ddof=1), b.size, a.mean(), a.std(ddof=1), a.size, equal_var=False
    )
    assert c.test == "welch_t"
    assert c.statistic == pytest.approx(ref.statistic, rel=1e-9)
    assert c.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    rows = st.ttest_ind(b, a, equal_var=False)
    low, high = rows.confidence_interval(0.95)
    assert c.ci_low == pytest.approx(low, rel=1e-9)
    assert c.ci_high == pytest.approx(high, rel=1e-9)
    assert c.df == pytest.approx(rows.df, rel=1e-9)


def test_welch_from_merged_sums_equals_welch_on_all_rows(rng: np.random.Generator) -> None:
    a = rng.normal(3.0, 2.0, 1000)
    b = rng.normal(3.3, 2.0, 1000)

    def sums(x: np.ndarray) -> tuple[int, float, float]:
        return x.size, float(x.sum()), float((x**2).sum())

    halves = [sums(part) for part in np.array_split(a, 3)]
    n = sum(h[0] for h in halves)
    total = sum(h[1] for h in halves)
    squares = sum(h[2] for h in halves)
    c1 = compare_means(n, total, squares, *sums(b))
    c2 = compare_means(*sums(a), *sums(b))
    assert c1.p_value == pytest.approx(c2.p_value, rel=1e-9)
    assert c1.p_value == pytest.approx(st.ttest_ind(b, a, equal_var=False).pvalue, rel=1e-7)


@pytest.mark.parametrize("method", ["z", "fisher"])
def test_interval_covers_the_true_difference_at_its_level(method: str) -> None:
    gen = np.random.default_rng(11)
    trials, covered, rejected = 600, 0, 0
    for _ in range(trials):
        xa, xb = gen.binomial(60, 0.7), gen.binomial(60, 0.7)
        c = compare_proportions(int(xa), 60, int(xb), 60, method=method)  # type: ignore[arg-type]
        covered += c.ci_low <= 0.0 <= c.ci_high
        rejected += c.significant
    # 95% intervals; binomial sd over 600 trials is about 0.9 points
    assert 0.92 <= covered / trials <= 0.985
    assert rejected / trials <= 0.08  # false-positive rate near (or, Fisher, below) 5%


def test_bad_inputs_are_refused_with_the_side_named() -> None:
    with pytest.raises(ValueError, match="n_b"):
        compare_proportions(1, 10, 0, 0)
    with pytest.raises(ValueError, match="successes_a"):
        compare_proportions(11, 10, 1, 10)
    with pytest.raises(ValueError, match="confidence"):
        compare_proportions(1, 10, 1, 10, confidence=1.5)
    with pytest.raises(ValueError, match="at least 2"):
        compare_means(1, 1.0, 1.0, 10, 5.0, 5.0)
    with pytest.raises(ValueError, match="finite"):
        compare_means(5, math.nan, 1.0, 10, 5.0, 5.0)


def test_constant_samples_give_a_definite_answer() -> None:
    same = compare_means(5, 5.0, 5.0, 5, 5.0, 5.0)
    assert same.p_value == 1.0 and same.difference == 0
    apart = compare_means(5, 5.0, 5.0, 5, 10.0, 20.0)
    assert apart.p_value == 0.0 and apart.statistic == math.inf


def test_summaries_of_two_classifiers_compare_like_their_rows() -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, recall_score
    from sklearn.tree import DecisionTreeClassifier

    from inferwatch.performance import ClassificationSummary, class_indices
    from inferwatch.performance._compare import compare_summaries

    x, y = load_breast_cancer(return_X_y=True)
    truth = np.where(y == 1, "benign", "malignant")
    fit, rest = slice(0, 300), slice(300, None)
    a_pred = LogisticRegression(max_iter=5000).fit(x[fit], truth[fit]).predict(x[rest])
    b_pred = DecisionTreeClassifier(max_depth=2, random_state=0).fit(x[fit], truth[fit])
    b_pred = b_pred.predict(x[rest])
    summaries = []
    for pred in (a_pred, b_pred):
        classes = ["benign", "malignant"]
        s = ClassificationSummary(classes)
        s.observe(class_indices(classes, pred))
        s.add_labels(class_indices(classes, truth[rest]), class_indices(classes, pred))
        summaries.append(s)
    n = truth[rest].size
    got = compare_summaries(summaries[0], summaries[1], "accuracy")
    acc = [accuracy_score(truth[rest], p) for p in (a_pred, b_pred)]
    expected = compare_proportions(round(acc[0] * n), n, round(acc[1] * n), n)
    assert got == expected
    assert got.difference == pytest.approx(acc[1] - acc[0], abs=1e-12)
    recall = compare_summaries(summaries[0], summaries[1], "recall", positive="malignant")
    rec = [recall_score(truth[rest], p, pos_label="malignant") for p in (a_pred, b_pred)]
    assert (recall.a, recall.b) == pytest.approx(rec, abs=1e-12)
    with pytest.raises(ValueError, match="cannot be compared"):
        compare_summaries(summaries[0], summaries[1], "roc_auc")


def test_summaries_of_two_regressors_compare_like_welch_on_their_errors() -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    from inferwatch.performance import RegressionSummary
    from inferwatch.performance._compare import compare_summaries

    x, y = load_diabetes(return_X_y=True)
    fit, rest = slice(0, 250), slice(250, None)
    preds = [
        Ridge(alpha=0.1).fit(x[fit], y[fit]).predict(x[rest]),
        np.full(y[rest].size, y[fit].mean()),  # a baseline that predicts the mean
    ]
    summaries = []
    for pred in preds:
        s = RegressionSummary()
        s.observe(pred)
        s.add_labels(y[rest], pred)
        summaries.append(s)
    got = compare_summaries(summaries[0], summaries[1], "mae")
    errors = [np.abs(y[rest] - p) for p in preds]
    ref = st.ttest_ind(errors[1], errors[0], equal_var=False)
    assert got.test == "welch_t"
    assert got.difference == pytest.approx(errors[1].mean() - errors[0].mean(), rel=1e-9)
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-6)
    bias = compare_summaries(summaries[0], summaries[1], "mean_error")
    signed = [y[rest] - p for p in preds]
    assert bias.p_value == pytest.approx(
        st.ttest_ind(signed[1], signed[0], equal_var=False).pvalue, rel=1e-6
    )
