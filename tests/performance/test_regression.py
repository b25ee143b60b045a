"""RegressionSummary against scikit-learn on load_diabetes, and its edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

from inferwatch.performance import RegressionSummary, summary_for


def _diabetes() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_diabetes(return_X_y=True)
    return y, Ridge(alpha=0.5).fit(x[::2], y[::2]).predict(x)


def test_metrics_equal_sklearn_on_diabetes() -> None:
    y, yp = _diabetes()
    s = RegressionSummary()
    for i in range(0, len(y), 50):
        s.observe(yp[i : i + 50])
        s.add_labels(y[i : i + 50], yp[i : i + 50])
    m = s.metrics()
    expected = {
        "mae": skm.mean_absolute_error(y, yp),
        "rmse": skm.root_mean_squared_error(y, yp),
        "mape": skm.mean_absolute_percentage_error(y, yp),
        "r2": skm.r2_score(y, yp),
        "mean_error": float(np.mean(yp - y)),
        "label_coverage": 1.0,
        "labelled": float(len(y)),
    }
    assert set(m) == set(expected)
    for key, value in expected.items():
        assert m[key] == pytest.approx(value, abs=1e-9, rel=0), key
    assert s.prediction_mean() == pytest.approx(float(np.mean(yp)), abs=1e-12)


def test_mean_error_is_positive_when_the_model_over_predicts() -> None:
    s = RegressionSummary().add_labels(np.array([1.0, 2.0]), np.array([2.0, 3.0]))
    assert s.metrics()["mean_error"] == 1.0


def test_r2_does_not_cancel_on_a_large_offset() -> None:
    rng = np.random.default_rng(3)
    y = 1e8 + rng.normal(0.0, 1.0, 2000)
    yp = y + rng.normal(0.0, 0.5, 2000)
    s = RegressionSummary().add_labels(y, yp)
    assert s.metrics()["r2"] == pytest.approx(skm.r2_score(y, yp), abs=1e-9)


def test_mape_uses_sklearns_epsilon_for_zero_targets() -> None:
    y, yp = np.array([0.0, 2.0]), np.array([1.0, 1.0])
    s = RegressionSummary().add_labels(y, yp)
    assert s.metrics()["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, yp))


def test_edge_cases() -> None:
    empty = RegressionSummary().metrics()
    assert empty["labelled"] == 0.0 and np.isnan(empty["mae"]) and np.isnan(empty["r2"])
    one = RegressionSummary().add_labels(np.array([3.0]), np.array([1.0])).metrics()
    assert one["mae"] == 2.0 and np.isnan(one["r2"])  # sklearn: R² undefined below 2 rows
    const = RegressionSummary().add_labels(np.array([3.0, 3.0]), np.array([3.0, 3.0]))
    assert const.metrics()["r2"] == skm.r2_score([3.0, 3.0], [3.0, 3.0]) == 1.0
    bad = RegressionSummary().add_labels(np.array([1.0, np.nan, 2.0]), np.array([1.0, 1.0, np.inf]))
    assert bad.n_labelled == 1 and bad.invalid_labels == 2
    s = RegressionSummary().observe(np.array([1.0, np.nan]))
    assert s.n_predictions == 2 and s.invalid_predictions == 1
    with pytest.raises(ValueError, match="never added"):
        RegressionSummary().add_labels(np.array([1.0]), np.array([1.0]), sign=-1)
    with pytest.raises(ValueError, match="rows"):
        RegressionSummary().add_labels(np.array([1.0]), np.array([1.0, 2.0]))
    assert isinstance(summary_for("regression", None), RegressionSummary)
