"""ClassificationSummary against scikit-learn on real data, and its edge cases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from inferwatch.performance import ClassificationSummary, class_indices, summary_for

LOADERS: dict[str, Callable[..., Any]] = {
    "breast_cancer": load_breast_cancer,
    "iris": load_iris,
    "wine": load_wine,
}


def _fitted(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, predictions and probabilities of a model fitted on half the rows."""
    x, y = LOADERS[name](return_X_y=True)
    x = StandardScaler().fit_transform(x)
    clf = LogisticRegression(max_iter=2000, C=0.05).fit(x[::2], y[::2])
    return y, clf.predict(x), clf.predict_proba(x)


def _summary(
    y: np.ndarray, yp: np.ndarray, p: np.ndarray, batch: int = 37
) -> ClassificationSummary:
    s = ClassificationSummary([str(c) for c in np.unique(y)])
    for i in range(0, len(y), batch):
        s.observe(yp[i : i + batch], p[i : i + batch])
        s.add_labels(y[i : i + batch], yp[i : i + batch], p[i : i + batch])
    return s


def _ece_reference(y: np.ndarray, yp: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """ECE on top-class confidence from ``calibration_curve``'s per-bin means; the counts of
    its non-empty bins follow its own rule (right-closed bins via searchsorted)."""
    conf = p[np.arange(len(yp)), yp]
    correct = (yp == y).astype(int)
    acc, mean_conf = calibration_curve(correct, conf, n_bins=bins, strategy="uniform")
    ids = np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], conf)
    counts = np.bincount(ids, minlength=bins)
    counts = counts[counts > 0]
    return float(np.sum(counts * np.abs(acc - mean_conf)) / len(y))


@pytest.mark.parametrize("name", LOADERS)
def test_exact_metrics_equal_sklearn(name: str) -> None:
    y, yp, p = _fitted(name)
    s = _summary(y, yp, p)
    m = s.metrics()
    binary = p.shape[1] == 2
    avg = "binary" if binary else "macro"
    expected = {
        "accuracy": skm.accuracy_score(y, yp),
        "balanced_accuracy": skm.balanced_accuracy_score(y, yp),
        "precision": skm.precision_score(y, yp, average=avg, zero_division=0.0),
        "recall": skm.recall_score(y, yp, average=avg, zero_division=0.0),
        "f1": skm.f1_score(y, yp, average=avg, zero_division=0.0),
        "log_loss": skm.log_loss(y, p),
        "brier": skm.brier_score_loss(y, p[:, 1] if binary else p),
        "ece": _ece_reference(y, yp, p),
        "label_coverage": 1.0,
        "labelled": float(len(y)),
    }
    for average in ("macro", "weighted"):
        for metric in ("precision", "recall", "f1"):
            fn = getattr(skm, f"{metric}_score")
            expected[f"{metric}_{average}"] = fn(y, yp, average=average, zero_division=0.0)
    assert set(m) == set(expected) | {"roc_auc", "pr_auc"}
    for key, value in expected.items():
        assert m[key] == pytest.approx(value, abs=1e-9, rel=0), key
    np.testing.assert_array_equal(s.confusion_matrix(), skm.confusion_matrix(y, yp))
    prec, rec, f1, support = skm.precision_recall_fscore_support(y, yp, zero_division=0.0)
    for i, row in enumerate(s.per_class().values()):
        assert row == pytest.approx(
            {"precision": prec[i], "recall": rec[i], "f1": f1[i], "support": support[i]},
            abs=1e-12,
        )


@pytest.mark.parametrize("name", LOADERS)
def test_binned_auc_within_its_bound(name: str) -> None:
    y, yp, p = _fitted(name)
    s = _summary(y, yp, p)
    if p.shape[1] == 2:
        auc = skm.roc_auc_score(y, p[:, 1])
        ap = skm.average_precision_score(y, p[:, 1])
    else:
        auc = skm.roc_auc_score(y, p, multi_class="ovr", average="macro")
        ap = skm.average_precision_score(np.eye(p.shape[1])[y], p, average="macro")
    bound, ap_bound = s.roc_auc_bound(), s.pr_auc_bound()
    assert 0 < bound < 0.005
    assert abs(s.metrics()["roc_auc"] - auc) <= bound + 1e-12  # the bound can be attained
    assert abs(s.metrics()["pr_auc"] - ap) <= ap_bound + 1e-12 < 0.01


def test_auc_bound_is_attained_by_a_sorted_bin() -> None:
    # all scores in one bin, perfectly separated: exact AUC 1.0, binned 0.5, bound 0.5
    s = ClassificationSummary(["n", "p"], bins=2)
    p = np.array([0.6, 0.7, 0.8, 0.9])
    s.add_labels(np.array([0, 0, 1, 1]), np.array([1, 1, 1, 1]), p)
    assert skm.roc_auc_score([0, 0, 1, 1], p) == 1.0
    assert s.roc_auc() == 0.5 == s.roc_auc_bound()


def test_reliability_matches_calibration_curve() -> None:
    y, yp, p = _fitted("breast_cancer")
    conf, acc, counts = _summary(y, yp, p).reliability(10)
    ref_acc, ref_conf = calibration_curve(
        (yp == y).astype(int), p[np.arange(len(y)), yp], n_bins=10
    )
    full = counts > 0
    np.testing.assert_allclose(conf[full], ref_conf, atol=1e-9, rtol=0)
    np.testing.assert_allclose(acc[full], ref_acc, atol=1e-12, rtol=0)
    assert np.isnan(conf[~full]).all()
    with pytest.raises(ValueError, match="divide"):
        _summary(y, yp, p).reliability(7)


def test_empty_summary_is_nan_not_an_error() -> None:
    m = ClassificationSummary(["a", "b", "c"]).metrics()
    assert m["labelled"] == 0.0
    assert all(np.isnan(v) for k, v in m.items() if k != "labelled")


def test_one_class_only_leaves_auc_undefined() -> None:
    s = ClassificationSummary(["no", "yes"])
    p = np.array([0.2, 0.9, 0.7])
    s.observe(np.array([0, 1, 1]), p)
    s.add_labels(np.array([1, 1, 1]), np.array([0, 1, 1]), p)
    m = s.metrics()
    assert np.isnan(m["roc_auc"]) and np.isnan(s.roc_auc_bound())
    assert m["accuracy"] == pytest.approx(skm.accuracy_score([1, 1, 1], [0, 1, 1]))
    assert m["pr_auc"] == pytest.approx(1.0)  # every positive ranks above no negative
    assert m["brier"] == pytest.approx(skm.brier_score_loss([1, 1, 1], p), abs=1e-9)


def test_nan_scores_are_skipped_in_score_metrics_only() -> None:
    s = ClassificationSummary(["a", "b"])
    p = np.array([[0.3, 0.7], [np.nan, np.nan], [0.8, 0.2]])
    s.observe(np.array([1, 1, 0]), p)
    s.add_labels(np.array([1, 0, 0]), np.array([1, 1, 0]), p)
    m = s.metrics()
    assert s.scored_counts.sum() == 2 * 2  # two rows, two classes each
    assert m["labelled"] == 3.0 and m["accuracy"] == pytest.approx(2 / 3)
    assert m["log_loss"] == pytest.approx(skm.log_loss([1, 0], p[[0, 2]]), abs=1e-9)


def test_unknown_labels_are_counted_never_a_crash() -> None:
    classes = ["cat", "dog"]
    idx = class_indices(classes, ["dog", "cat", "fish", 1, None])
    np.testing.assert_array_equal(idx, [1, 0, -1, -1, -1])
    s = ClassificationSummary(classes)
    s.observe(np.array([1, 0, -1]))
    s.add_labels(idx[:3], np.array([1, 0, 1]))
    assert s.unknown_labels == 1 and s.unknown_predictions == 1
    assert s.n_labelled == 2 and s.label_coverage == pytest.approx(2 / 3)
    assert s.metrics()["accuracy"] == 1.0


def test_scores_not_summing_to_one_are_used_as_given() -> None:
    s = ClassificationSummary(["a", "b", "c"])
    p = np.array([[0.5, 0.5, 0.5], [0.1, 0.2, 0.3], [1.4, -0.2, 0.0]])
    y, yp = np.array([0, 2, 0]), np.array([0, 2, 0])
    s.add_labels(y, yp, p)
    clipped = np.clip(p, 0, 1)
    with pytest.warns(UserWarning, match="sum to one"):
        expected = skm.log_loss(y, clipped, labels=[0, 1, 2])
    assert s.metrics()["log_loss"] == pytest.approx(expected, abs=1e-9)


def test_binary_with_only_the_positive_score_column() -> None:
    y, yp, p = _fitted("breast_cancer")
    full, positive_only = _summary(y, yp, p), _summary(y, yp, p[:, 1])
    assert full.metrics() == pytest.approx(positive_only.metrics(), abs=1e-9, nan_ok=True)
    with pytest.raises(ValueError, match="shape"):
        ClassificationSummary(["a", "b", "c"]).observe(np.array([0]), np.array([0.5]))


def test_positive_class_can_be_chosen() -> None:
    y, yp, p = _fitted("breast_cancer")
    m = _summary(y, yp, p).metrics(positive="0")
    assert m["precision"] == pytest.approx(skm.precision_score(y, yp, pos_label=0))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p[:, 0], pos_label=0), abs=1e-9)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(1 - y, p[:, 0]), abs=0.005)
    with pytest.raises(ValueError, match="positive"):
        _summary(y, yp, p).metrics(positive="2")


def test_bad_arguments_raise_value_errors() -> None:
    with pytest.raises(ValueError, match="2 classes"):
        ClassificationSummary(["only"])
    with pytest.raises(ValueError, match="distinct"):
        ClassificationSummary(["a", "a"])
    s = ClassificationSummary(["a", "b"])
    with pytest.raises(ValueError, match="class indices"):
        s.observe(np.array([0.5]))
    with pytest.raises(ValueError, match="sign"):
        s.add_labels(np.array([0]), np.array([0]), sign=2)
    with pytest.raises(ValueError, match="never added"):
        s.add_labels(np.array([0]), np.array([0]), sign=-1)
    assert s == ClassificationSummary(["a", "b"])  # the failed removal changed nothing
    one_bin = ClassificationSummary(["a", "b"], bins=1)  # the counts cannot tell the scores
    one_bin.add_labels(np.array([0]), np.array([0]), np.array([0.2]))
    with pytest.raises(ValueError, match="never added"):  # the same pair with other scores
        one_bin.add_labels(np.array([0]), np.array([0]), np.array([0.9]), sign=-1)
    with pytest.raises(ValueError, match="different classes"):
        s += ClassificationSummary(["a", "c"])


def test_summary_for_picks_the_task() -> None:
    assert isinstance(summary_for("classification", ["a", "b"]), ClassificationSummary)
    with pytest.raises(ValueError, match="classes"):
        summary_for("classification", None)
    with pytest.raises(ValueError, match="task"):
        summary_for("ranking", None)


def test_a_batch_past_the_chunk_size_equals_its_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    import inferwatch.performance._classification as module

    y, yp, p = _fitted("wine")
    whole = _summary(y, yp, p, batch=len(y))
    monkeypatch.setattr(module, "_CHUNK", 7)
    assert _summary(y, yp, p, batch=len(y)) == whole
