"""Regression performance as one constant-size, mergeable summary of a window.

Every sum is exact (``_exact.exact_sum``; squares through Dekker's product), so merging in
any order, any batching, and taking a replaced label out (``sign=-1``) leave the state
exactly as if the rows had been summed once, and R²'s total sum of squares is computed as
an exact fraction (``n * sum y² - (sum y)²``) rather than cancelling in float.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any, Final, Self

import numpy as np
import numpy.typing as npt

from inferwatch.performance._exact import exact_fraction, exact_sums, square_parts
from inferwatch.profile._mergeable import Mergeable
from inferwatch.profile._serial import FORMAT, check_header, read_int

__all__ = ["RegressionSummary"]

_EPS: Final = float(np.finfo(np.float64).eps)
#: larger magnitudes are invalid: their squares (and squared errors) would overflow
LIMIT: Final = 1e150
#: the exact sums kept over labelled pairs, e = y_pred - y_true
_SUMS: Final = ("error", "abs_error", "sq_error", "ape", "y", "y_sq")
_PRED_SUMS: Final = ("pred", "pred_sq")


def _floats(values: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numbers") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


class RegressionSummary(Mergeable):
    """Counts and exact error sums of one window.

    A prediction or label that is NaN, infinite or of magnitude >= ``LIMIT`` (1e150, whose
    square would overflow) is counted (``invalid_predictions``, ``invalid_labels``) and left
    out of the sums.
    """

    __slots__ = ("_invalid_labels", "_invalid_predictions", "_n", "_n_predictions", "_sums")

    def __init__(self) -> None:
        self._n_predictions = 0
        self._invalid_predictions = 0
        self._n = 0
        self._invalid_labels = 0
        self._sums: dict[str, int] = dict.fromkeys(_SUMS + _PRED_SUMS, 0)

    @property
    def n_predictions(self) -> int:
        return self._n_predictions

    @property
    def invalid_predictions(self) -> int:
        return self._invalid_predictions

    @property
    def n_labelled(self) -> int:
        return self._n

    @property
    def invalid_labels(self) -> int:
        return self._invalid_labels

    @property
    def label_coverage(self) -> float:
        return self._n / self._n_predictions if self._n_predictions else float("nan")

    def _exact(self, key: str) -> Fraction:
        return exact_fraction(self._sums[key])

    def prediction_mean(self) -> float:
        """Mean of the finite predictions observed (NaN before any)."""
        n = self._n_predictions - self._invalid_predictions
        return float(self._exact("pred") / n) if n else float("nan")

    def observe(self, y_pred: npt.ArrayLike) -> Self:
        """Count every prediction (labelled or not) and sum the finite ones."""
        yp = _floats(y_pred, "y_pred")
        v = yp[np.abs(yp) < LIMIT]
        self._n_predictions += len(yp)
        self._invalid_predictions += int(len(yp) - len(v))
        hi, lo = square_parts(v)
        pred, sq_hi, sq_lo = exact_sums(np.stack([v, hi, lo]))
        self._sums["pred"] += pred
        self._sums["pred_sq"] += sq_hi + sq_lo
        return self

    def add_labels(self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, sign: int = 1) -> Self:
        """Add labelled pairs, or with ``sign=-1`` take pairs added before out exactly."""
        if sign not in (1, -1):
            raise ValueError(f"sign must be 1 or -1, got {sign!r}")
        yt, yp = _floats(y_true, "y_true"), _floats(y_pred, "y_pred")
        if len(yt) != len(yp):
            raise ValueError(f"y_true has {len(yt)} rows, y_pred {len(yp)}")
        ok = (np.abs(yt) < LIMIT) & (np.abs(yp) < LIMIT)
        t, p = yt[ok], yp[ok]
        e = p - t
        ae = np.abs(e)
        e_hi, e_lo = square_parts(e)
        t_hi, t_lo = square_parts(t)
        ape = ae / np.maximum(np.abs(t), _EPS)
        s = exact_sums(np.stack([e, ae, e_hi, e_lo, ape, t, t_hi, t_lo]))
        parts = dict(zip(("error", "abs_error"), s[:2], strict=True))
        parts["sq_error"] = s[2] + s[3]
        parts["ape"], parts["y"], parts["y_sq"] = s[4], s[5], s[6] + s[7]
        invalid = int(len(yt) - len(t))
        if sign < 0 and (len(t) > self._n or invalid > self._invalid_labels):
            raise ValueError("sign=-1 takes out pairs that were never added to this summary")
        self._n += sign * len(t)
        self._invalid_labels += sign * invalid
        for key, value in parts.items():
            self._sums[key] += sign * value
        return self

    def metrics(self) -> dict[str, float]:
        """``mae``, ``rmse``, ``mape`` (scikit-learn's: |e| / max(|y|, eps), a fraction, not
        %), ``r2`` (scikit-learn's: 1.0 for a perfect fit of a constant target, 0.0 for an
        imperfect one, NaN below 2 rows), ``mean_error`` = mean(y_pred - y_true): positive
        means the model over-predicts; ``label_coverage``, ``labelled``."""
        n = self._n
        nan = float("nan")
        out = dict.fromkeys(("mae", "rmse", "mape", "r2", "mean_error"), nan)
        if n:
            sse = self._exact("sq_error")
            out["mae"] = float(self._exact("abs_error") / n)
            out["rmse"] = float(np.sqrt(float(sse / n)))
            out["mape"] = float(self._exact("ape") / n)
            out["mean_error"] = float(self._exact("error") / n)
        if n >= 2:
            sst = self._exact("y_sq") - self._exact("y") ** 2 / n
            if sst > 0:
                out["r2"] = float(1 - self._exact("sq_error") / sst)
            else:
                out["r2"] = 1.0 if self._sums["sq_error"] == 0 else 0.0
        out["label_coverage"] = self.label_coverage
        out["labelled"] = float(n)
        return out

    def copy(self) -> Self:
        out = self._copy_slots()
        out._sums = dict(self._sums)
        return out

    def try_subtract(self, other: Self) -> bool:
        """Take ``other``'s counts and sums out of these if every count is here (True),
        else change nothing (False): a replaced label's owed pair, settled once merged
        (see ``ClassificationSummary.try_subtract``)."""
        if not isinstance(other, RegressionSummary):
            raise TypeError(f"cannot subtract {type(other).__name__} from a regression summary")
        counts = ("_n_predictions", "_invalid_predictions", "_n", "_invalid_labels")
        if any(getattr(other, c) > getattr(self, c) for c in counts):
            return False
        for c in counts:
            setattr(self, c, getattr(self, c) - getattr(other, c))
        for key, value in other._sums.items():
            self._sums[key] -= value
        return True

    def __iadd__(self, other: Self) -> Self:
        if not isinstance(other, RegressionSummary):
            return NotImplemented
        self._n_predictions += other._n_predictions
        self._invalid_predictions += other._invalid_predictions
        self._n += other._n
        self._invalid_labels += other._invalid_labels
        for key, value in other._sums.items():
            self._sums[key] += value
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RegressionSummary):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"RegressionSummary(predictions={self._n_predictions}, labelled={self._n})"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values; the exact sums (integers in units of 2**-1126) as decimal
        strings, which any JSON reader keeps whole."""
        return {
            "kind": "regression",
            "format": FORMAT,
            "n_predictions": self._n_predictions,
            "invalid_predictions": self._invalid_predictions,
            "labelled": self._n,
            "invalid_labels": self._invalid_labels,
            "sums": {k: str(v) for k, v in self._sums.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        check_header(data, "regression")
        out = cls()
        out._n_predictions = read_int(data, "n_predictions")
        out._invalid_predictions = read_int(data, "invalid_predictions")
        out._n = read_int(data, "labelled")
        out._invalid_labels = read_int(data, "invalid_labels")
        sums = data.get("sums")
        if not isinstance(sums, Mapping) or set(sums) != set(out._sums):
            raise ValueError(f"regression profile: 'sums' must hold {sorted(out._sums)}")
        for key, value in sums.items():
            try:
                out._sums[key] = int(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"regression profile: sums[{key!r}] is not an integer") from exc
        return out
