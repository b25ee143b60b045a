"""Direct loss estimation (DLE) for regressors: a "nanny" model predicts each row's loss.

Method.  On a labelled reference, two gradient-boosted regressors learn E[|y - ŷ| | x, ŷ] and
E[(y - ŷ)² | x, ŷ] from the features and the prediction.  On unlabelled data MAE is the mean
predicted absolute error and RMSE the root of the mean predicted squared error; per-row losses
are returned too, so a live window can keep their sums instead of rows.

Band.  The realised MAE of a window scatters around its expectation by the spread of |e|
within the window: its variance is at most (mean e² - MAE²) / n, which is what the sums allow
(conservative: it counts the spread between rows' expected losses too).  For RMSE the variance
of e² is (κ - 1)·MSE² with κ = E[e⁴] / E[e²]² measured on the reference, carried to RMSE by the
delta method.  Both are widened, in quadrature, by the nanny's relative error on held-out
reference folds beyond what that sampling spread explains.  Fails when P(y|x) changes (the
reconciliation flags it) and when the reference is the model's training set (losses there are
too small).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import norm

from inferwatch._threads import one_thread
from inferwatch.estimate._result import Estimate

__all__ = ["DLE", "REGRESSION_METRICS"]

FloatArray = npt.NDArray[np.float64]
REGRESSION_METRICS = ("mae", "rmse")
MIN_ROWS = 50


def _design(X: npt.ArrayLike, y_pred: npt.ArrayLike) -> FloatArray:
    x = np.asarray(X, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    p = np.asarray(y_pred, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(p):
        raise ValueError(f"X must be (n, d) with n = len(y_pred) = {len(p)}, got {x.shape}")
    out: FloatArray = np.column_stack([x, p])
    return out


def _nanny(Z: FloatArray, target: FloatArray, seed: int) -> Any:
    """scikit-learn's HistGradientBoostingRegressor, imported here and never at module import:
    the core layer is numpy/scipy, and only fitting a nanny needs a learner (it handles NaN
    features natively and fits 100k rows in about a second)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(max_iter=100, learning_rate=0.1, random_state=seed)
    with one_thread():  # see inferwatch._threads: 40x slower when the cores are busy
        return model.fit(Z, target)


@dataclass(slots=True, eq=False)
class DLE:
    """Direct loss estimation, fitted on a labelled reference with :meth:`fit`.

    The fitted nanny models are scikit-learn objects (picklable, not JSON)."""

    abs_model_: Any
    sq_model_: Any
    kappa_: float
    sigma_: dict[str, float]
    coverage: float = 0.95

    @classmethod
    def fit(
        cls,
        X: npt.ArrayLike,
        y_pred: npt.ArrayLike,
        y_true: npt.ArrayLike,
        *,
        seed: int = 0,
        coverage: float = 0.95,
        folds: int = 5,
    ) -> DLE:
        """Fit the nanny models and measure their relative error on held-out folds."""
        Z = _design(X, y_pred)
        yt = np.asarray(y_true, dtype=np.float64)
        if len(yt) != len(Z):
            raise ValueError(f"y_true ({len(yt)}) and y_pred ({len(Z)}) differ in length")
        ok = np.isfinite(yt) & np.isfinite(Z[:, -1])
        Z, yt = Z[ok], yt[ok]
        if len(yt) < MIN_ROWS:
            raise ValueError(
                f"the reference needs at least {MIN_ROWS} labelled rows, has {len(yt)}"
            )
        if not 0 < coverage < 1:
            raise ValueError(f"coverage must be in (0, 1), got {coverage}")
        err = yt - Z[:, -1]
        ae, se = np.abs(err), err**2
        mse = float(se.mean())
        kappa = float((se**2).mean() / mse**2) if mse > 0 else 3.0
        rng = np.random.default_rng(seed)
        fold = rng.permutation(len(yt)) % folds
        rel: dict[str, list[float]] = {"mae": [], "rmse": []}
        noise: dict[str, list[float]] = {"mae": [], "rmse": []}
        proto = cls(None, None, kappa, {"mae": 0.0, "rmse": 0.0}, coverage)
        for f in range(folds):
            train, test = fold != f, fold == f
            proto.abs_model_ = _nanny(Z[train], ae[train], seed)
            proto.sq_model_ = _nanny(Z[train], se[train], seed)
            pa, ps = proto._losses(Z[test])
            n = int(test.sum())
            est = {"mae": float(pa.mean()), "rmse": math.sqrt(float(ps.mean()))}
            real = {"mae": float(ae[test].mean()), "rmse": math.sqrt(float(se[test].mean()))}
            sd = proto._sampling_sd(n, float(pa.sum()), float(ps.sum()))
            for m in REGRESSION_METRICS:
                if real[m] > 0:
                    rel[m].append((est[m] / real[m] - 1) ** 2)
                    noise[m].append((sd[m] / real[m]) ** 2)
        sigma = {
            m: math.sqrt(max(0.0, float(np.mean(rel[m])) - float(np.mean(noise[m]))))
            if rel[m]
            else 0.0
            for m in REGRESSION_METRICS
        }
        return cls(_nanny(Z, ae, seed), _nanny(Z, se, seed), kappa, sigma, coverage)

    def _losses(self, Z: FloatArray) -> tuple[FloatArray, FloatArray]:
        if len(Z) == 0:
            return np.zeros(0), np.zeros(0)
        with one_thread():
            a = np.clip(np.asarray(self.abs_model_.predict(Z), dtype=np.float64), 0.0, None)
            s = np.clip(np.asarray(self.sq_model_.predict(Z), dtype=np.float64), 0.0, None)
        return a, np.maximum(s, a**2)  # E[e²] >= E[|e|]² (Jensen)

    def predict_losses(
        self, X: npt.ArrayLike, y_pred: npt.ArrayLike
    ) -> tuple[FloatArray, FloatArray]:
        """Expected absolute and squared error of each row (for a summary to sum)."""
        return self._losses(_design(X, y_pred))

    def _sampling_sd(self, n: int, sum_abs: float, sum_sq: float) -> dict[str, float]:
        mae, mse = sum_abs / n, sum_sq / n
        sd_mae = math.sqrt(max(0.0, mse - mae**2) / n)
        sd_mse = math.sqrt(max(0.0, self.kappa_ - 1.0) / n) * mse
        sd_rmse = sd_mse / (2 * math.sqrt(mse)) if mse > 0 else 0.0
        return {"mae": sd_mae, "rmse": sd_rmse}

    def estimate_sums(self, n: int, sum_abs: float, sum_sq: float) -> dict[str, Estimate]:
        """MAE and RMSE of a window from its row count and summed predicted losses."""
        if n <= 0:
            nan = Estimate(math.nan, math.nan, math.nan, self.coverage, "dle")
            return dict.fromkeys(REGRESSION_METRICS, nan)
        z = float(norm.ppf(0.5 + self.coverage / 2))
        sd = self._sampling_sd(n, sum_abs, sum_sq)
        value = {"mae": sum_abs / n, "rmse": math.sqrt(max(0.0, sum_sq / n))}
        out: dict[str, Estimate] = {}
        for m in REGRESSION_METRICS:
            half = z * math.hypot(sd[m], self.sigma_[m] * value[m])
            out[m] = Estimate(
                value[m], max(0.0, value[m] - half), value[m] + half, self.coverage, "dle"
            )
        return out

    def estimate(self, X: npt.ArrayLike, y_pred: npt.ArrayLike) -> dict[str, Estimate]:
        """Estimated MAE and RMSE of these rows, with bands (rows with a non-finite
        prediction are left out)."""
        Z = _design(X, y_pred)
        Z = Z[np.isfinite(Z[:, -1])]
        a, s = self._losses(Z)
        return self.estimate_sums(len(Z), float(a.sum()), float(s.sum()))
