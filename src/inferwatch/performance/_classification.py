"""Classification performance as one constant-size, mergeable summary of a window.

Shapes, with ``k`` classes and ``B`` score bins (``DEFAULT_SCORE_BINS``):

* every prediction (:meth:`ClassificationSummary.observe`, labelled or not): predicted-class
  counts ``(k,)`` and the *scored* histograms ``(k, 2, B)``: for class j, the score p_j of
  each row on fixed equal-width bins of [0, 1], split by ``y_pred == j`` (axis 1: 0 = not
  predicted j, 1 = predicted j), with per-bin sums of p_j.  Label-free estimation reads them.
* labelled pairs (:meth:`ClassificationSummary.add_labels`): the confusion matrix ``(k, k)``;
  the *labelled* histograms ``(k, 2, B)`` of p_j split by ``y_true == j`` (ROC AUC, PR AUC);
  log-loss and per-class squared-error sums (Brier); calibration bins ``(B,)`` of the
  confidence ``p[y_pred]`` with counts, confidence sums and correct counts (ECE, reliability).

Bins are right-closed ``(e_i, e_{i+1}]`` with 0 in the first, the rule of
``sklearn.calibration.calibration_curve``, so coarser reliability bins that divide ``B``
are exact unions of fine ones.  Score sums are fixed-point (see ``_exact``): merging and
taking a replaced label out are exact.  Scores are clipped to [0, 1]; a row whose scores
hold a NaN is left out of every score-based part but still counted in the confusion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Self

import numpy as np
import numpy.typing as npt

from inferwatch.performance._exact import FIXED_BITS, fixed, fixed_to_float
from inferwatch.performance._ranking import (
    binned_ap,
    binned_ap_bound,
    binned_auc,
    binned_auc_bound,
)
from inferwatch.profile._mergeable import Mergeable
from inferwatch.profile._serial import FORMAT, check_header, read_int, read_list

__all__ = ["DEFAULT_SCORE_BINS", "ClassificationSummary", "class_indices"]

#: fixed equal-width bins on [0, 1] for scores
DEFAULT_SCORE_BINS: Final = 200
#: equal-width bins of the expected calibration error in :meth:`ClassificationSummary.metrics`
ECE_BINS: Final = 10
_EPS: Final = float(np.finfo(np.float64).eps)
_CHUNK: Final = 1 << 20  # float64 bincount of fixed-point weights stays exact below 2**21 rows
_SCALE: Final = float(2**FIXED_BITS)

_Ints = npt.NDArray[np.int64]
_Floats = npt.NDArray[np.float64]


def class_indices(
    classes: Sequence[str], values: Sequence[Any] | npt.NDArray[Any]
) -> npt.NDArray[np.intp]:
    """Class names to indices into ``classes``; a value not among them is ``-1``.

    The summaries count a ``-1`` (as ``unknown_predictions`` or ``unknown_labels``) and
    leave it out of every metric: a label outside the class set is reported, never a crash.
    Values are compared as strings, so ``1`` matches the class ``"1"``; None is ``-1``.
    """
    lookup = {str(c): i for i, c in enumerate(classes)}
    arr = np.asarray(values, dtype=object).ravel()
    return np.fromiter(
        (-1 if v is None else lookup.get(str(v), -1) for v in arr), dtype=np.intp, count=len(arr)
    )


def _safe_div(num: _Floats, den: _Floats) -> _Floats:
    """``num / den`` with 0.0 where ``den`` is 0 (scikit-learn's ``zero_division=0.0``)."""
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


class ClassificationSummary(Mergeable):
    """Confusion counts, score histograms and loss sums of one window (see the module doc).

    Binary is two classes with the positive ``classes[1]`` unless :meth:`metrics` is told
    otherwise.  Scores are ``(n, k)`` class probabilities in ``classes`` order; for two
    classes a 1-D array (or ``(n, 1)``) is read as P(``classes[1]``) and expanded to
    ``[1 - p, p]``, as scikit-learn's ``log_loss`` does.
    """

    __slots__ = (
        "_bins",
        "_cal_conf",
        "_cal_correct",
        "_cal_counts",
        "_classes",
        "_confusion",
        "_labelled_counts",
        "_labelled_sums",
        "_log_loss",
        "_n_predictions",
        "_n_scored_labelled",
        "_pred_counts",
        "_scored_counts",
        "_scored_sums",
        "_sq_error",
        "_unknown_labels",
        "_unknown_predictions",
    )

    def __init__(self, classes: Sequence[str], *, bins: int = DEFAULT_SCORE_BINS) -> None:
        names = tuple(str(c) for c in classes)
        if len(names) < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {len(names)}")
        if len(set(names)) != len(names):
            raise ValueError(f"classes must be distinct, got {list(names)}")
        if not isinstance(bins, int) or bins < 1:
            raise ValueError(f"bins must be an integer >= 1, got {bins!r}")
        k = len(names)
        self._classes = names
        self._bins = bins
        self._n_predictions = 0
        self._unknown_predictions = 0
        self._pred_counts = np.zeros(k, np.int64)
        self._scored_counts = np.zeros((k, 2, bins), np.int64)
        self._scored_sums = np.zeros((k, 2, bins), np.int64)
        self._unknown_labels = 0
        self._confusion = np.zeros((k, k), np.int64)
        self._n_scored_labelled = 0
        self._labelled_counts = np.zeros((k, 2, bins), np.int64)
        self._labelled_sums = np.zeros((k, 2, bins), np.int64)
        self._log_loss = 0
        self._sq_error = [0] * k
        self._cal_counts = np.zeros(bins, np.int64)
        self._cal_conf = np.zeros(bins, np.int64)
        self._cal_correct = np.zeros(bins, np.int64)

    # -- read-only state ---------------------------------------------------------------
    @property
    def classes(self) -> tuple[str, ...]:
        return self._classes

    @property
    def bins(self) -> int:
        return self._bins

    @property
    def bin_edges(self) -> _Floats:
        return np.linspace(0.0, 1.0, self._bins + 1)

    @property
    def n_predictions(self) -> int:
        """Predictions observed (unknown predicted classes included)."""
        return self._n_predictions

    @property
    def unknown_predictions(self) -> int:
        return self._unknown_predictions

    @property
    def n_labelled(self) -> int:
        """Labelled pairs whose label and prediction are both among ``classes``."""
        return int(self._confusion.sum())

    @property
    def unknown_labels(self) -> int:
        """Labelled pairs left out because the label or prediction was not a class."""
        return self._unknown_labels

    @property
    def label_coverage(self) -> float:
        return self.n_labelled / self._n_predictions if self._n_predictions else float("nan")

    @property
    def predicted_counts(self) -> _Ints:
        return self._pred_counts.copy()

    @property
    def scored_counts(self) -> _Ints:
        """``(k, 2, B)``: rows per bin of p_j, axis 1 = (y_pred != j, y_pred == j)."""
        return self._scored_counts.copy()

    @property
    def scored_sums(self) -> _Floats:
        """``(k, 2, B)``: sum of p_j per bin of :attr:`scored_counts`."""
        return fixed_to_float(self._scored_sums)

    @property
    def labelled_counts(self) -> _Ints:
        """``(k, 2, B)``: labelled rows per bin of p_j, axis 1 = (y_true != j, y_true == j)."""
        return self._labelled_counts.copy()

    @property
    def labelled_sums(self) -> _Floats:
        return fixed_to_float(self._labelled_sums)

    # -- input -------------------------------------------------------------------------
    def _scores(self, scores: npt.ArrayLike | None, n: int) -> _Floats | None:
        if scores is None:
            return None
        s = np.asarray(scores, dtype=np.float64)
        k = len(self._classes)
        if k == 2 and (s.ndim == 1 or (s.ndim == 2 and s.shape[1] == 1)):
            p = s.reshape(-1)
            s = np.column_stack([1.0 - p, p])
        if s.ndim != 2 or s.shape != (n, k):
            raise ValueError(f"scores must have shape ({n}, {k}), got {np.shape(scores)}")
        return np.minimum(np.maximum(s, 0.0), 1.0)  # clip; NaN stays NaN

    def _indices(self, values: npt.ArrayLike, name: str) -> npt.NDArray[np.intp]:
        arr = np.asarray(values)
        if arr.ndim != 1 or not (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
            raise ValueError(f"{name} must be a 1-D array of class indices, got {arr.dtype}")
        out = arr.astype(np.intp, copy=False)
        return np.where((out >= 0) & (out < len(self._classes)), out, -1)

    @staticmethod
    def _rows(keep: npt.NDArray[np.bool_], s: _Floats | None) -> npt.NDArray[np.bool_] | None:
        """The rows to keep (known classes, no NaN score), or None when that is all of them."""
        if s is not None and np.isnan(s).any():
            keep = keep & ~np.isnan(s).any(axis=1)
        return None if keep.all() else keep

    def _hist(self, p: _Floats, hot: npt.NDArray[np.intp]) -> tuple[_Ints, _Ints, Any, Any]:
        """Counts and fixed-point sums ``(k, 2, B)`` of each column of ``p``, side 1 for the
        column ``hot`` of each row; also the bin indices and fixed-point scores (reused)."""
        k, b = len(self._classes), self._bins
        size = k * 2 * b
        idx = np.ceil(p * b).astype(np.intp)
        idx -= 1
        np.maximum(idx, 0, out=idx)  # p in [0, 1]: (e_i, e_i+1] with 0 in the first bin
        flat = idx + np.arange(0, size, 2 * b, dtype=np.intp)
        flat.ravel()[np.arange(len(p)) * k + hot] += b
        w = np.rint(p * _SCALE)  # fixed-point as float: < 2**53 a bin below 2**21 rows
        counts = np.bincount(flat.ravel(), minlength=size).reshape(k, 2, b)
        sums = np.bincount(flat.ravel(), weights=w.ravel(), minlength=size)
        return counts, sums.astype(np.int64).reshape(k, 2, b), idx, w

    def observe(self, y_pred: npt.ArrayLike, scores: npt.ArrayLike | None = None) -> Self:
        """Count every prediction: predicted classes and the scored histograms."""
        yp = self._indices(y_pred, "y_pred")
        s = self._scores(scores, len(yp))
        if len(yp) > _CHUNK:
            for i in range(0, len(yp), _CHUNK):
                part = None if s is None else s[i : i + _CHUNK]
                self.observe(yp[i : i + _CHUNK], part)
            return self
        known = yp >= 0
        n_known = int(known.sum())
        self._n_predictions += len(yp)
        self._unknown_predictions += len(yp) - n_known
        self._pred_counts += np.bincount(yp[known], minlength=len(self._classes))
        if s is not None:
            rows = self._rows(known, s)
            if rows is not None:
                s, yp = s[rows], yp[rows]
            counts, sums, _, _ = self._hist(s, yp)
            self._scored_counts += counts
            self._scored_sums += sums
        return self

    def add_labels(
        self,
        y_true: npt.ArrayLike,
        y_pred: npt.ArrayLike,
        scores: npt.ArrayLike | None = None,
        *,
        sign: int = 1,
    ) -> Self:
        """Add labelled pairs, or with ``sign=-1`` take pairs added before out exactly (a
        replaced label: take the old pair out, add the new one).  Taking out a pair that was
        never added raises ``ValueError`` and changes nothing (checked per million rows)."""
        if sign not in (1, -1):
            raise ValueError(f"sign must be 1 or -1, got {sign!r}")
        yt = self._indices(y_true, "y_true")
        yp = self._indices(y_pred, "y_pred")
        if len(yt) != len(yp):
            raise ValueError(f"y_true has {len(yt)} rows, y_pred {len(yp)}")
        s = self._scores(scores, len(yt))
        if len(yt) > _CHUNK:
            for i in range(0, len(yt), _CHUNK):
                part = None if s is None else s[i : i + _CHUNK]
                self.add_labels(yt[i : i + _CHUNK], yp[i : i + _CHUNK], part, sign=sign)
            return self
        k = len(self._classes)
        known = (yt >= 0) & (yp >= 0)
        unknown = int(len(yt) - known.sum())
        confusion = np.bincount(yt[known] * k + yp[known], minlength=k * k).reshape(k, k)
        parts = self._labelled_parts(yt, yp, s, known) if s is not None else {}
        if sign < 0:
            self._check_removable(unknown, confusion, parts)
        self._unknown_labels += sign * unknown
        self._confusion += sign * confusion
        if parts:
            counts, sums = parts["labelled"]
            self._labelled_counts += sign * counts
            self._labelled_sums += sign * sums
            self._log_loss += sign * parts["log_loss"]
            pairs = zip(self._sq_error, parts["sq"], strict=True)
            self._sq_error = [a + sign * int(b) for a, b in pairs]
            self._cal_counts += sign * parts["cal"][0]
            self._cal_conf += sign * parts["cal"][1]
            self._cal_correct += sign * parts["cal"][2]
            self._n_scored_labelled += sign * parts["m"]
        return self

    def _labelled_parts(
        self,
        yt: npt.NDArray[np.intp],
        yp: npt.NDArray[np.intp],
        s: _Floats,
        known: npt.NDArray[np.bool_],
    ) -> dict[str, Any]:
        """What labelled rows with scores add: histograms, loss sums, calibration bins."""
        rows = self._rows(known, s)
        if rows is not None:
            s, yt, yp = s[rows], yt[rows], yp[rows]
        m, k, b = len(s), len(self._classes), self._bins
        counts, sums, idx, w = self._hist(s, yt)
        at = np.arange(m) * k
        p_true = s.ravel()[at + yt]
        sq = s * s  # (p_j - [y = j])^2: p_j^2 off the true class, (1 - p_y)^2 on it
        sq.ravel()[at + yt] = (1.0 - p_true) ** 2
        ll = -np.log(np.minimum(np.maximum(p_true, _EPS), 1.0 - _EPS))
        cal_bin = idx.ravel()[at + yp]  # the confidence p[y_pred]'s bin, as in the histograms
        correct = (yt == yp).astype(np.float64)
        return {
            "m": m,
            "labelled": (counts, sums),
            "log_loss": int(fixed(ll).sum()),
            "sq": fixed(sq).sum(axis=0).tolist(),
            "cal": (
                np.bincount(cal_bin, minlength=b),
                np.bincount(cal_bin, weights=w.ravel()[at + yp], minlength=b).astype(np.int64),
                np.bincount(cal_bin, weights=correct, minlength=b).astype(np.int64),
            ),
        }

    def _check_removable(self, unknown: int, confusion: _Ints, parts: Mapping[str, Any]) -> None:
        short = unknown > self._unknown_labels or bool((confusion > self._confusion).any())
        if parts:
            short = short or parts["m"] > self._n_scored_labelled
            counts, sums = parts["labelled"]
            short = short or bool((counts > self._labelled_counts).any())
            short = short or bool((sums > self._labelled_sums).any())
            short = short or bool((parts["cal"][0] > self._cal_counts).any())
            short = short or parts["log_loss"] > self._log_loss
            short = short or any(
                int(b) > a for a, b in zip(self._sq_error, parts["sq"], strict=True)
            )
        if short:
            raise ValueError("sign=-1 takes out pairs that were never added to this summary")

    # -- metrics -----------------------------------------------------------------------
    def _positive(self, positive: str | None) -> int:
        if positive is None:
            return 1
        if positive not in self._classes:
            raise ValueError(
                f"positive {positive!r} is not one of the classes {list(self._classes)}"
            )
        return self._classes.index(positive)

    def per_class(self) -> dict[str, dict[str, float]]:
        """Precision, recall, F1 (0.0 where undefined, scikit-learn's ``zero_division=0.0``)
        and support (true count) of every class."""
        c = self._confusion.astype(np.float64)
        tp, pred, true = np.diag(c), c.sum(axis=0), c.sum(axis=1)
        precision, recall = _safe_div(tp, pred), _safe_div(tp, true)
        f1 = _safe_div(2.0 * tp, pred + true)
        return {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": float(true[i]),
            }
            for i, name in enumerate(self._classes)
        }

    def confusion_matrix(self) -> _Ints:
        """Rows true class, columns predicted class (scikit-learn's layout)."""
        return self._confusion.copy()

    def _ranking(self, j: int) -> tuple[_Ints, _Ints]:
        return self._labelled_counts[j, 1], self._labelled_counts[j, 0]

    def _over_classes(self, fn: Any, positive: int | None) -> float:
        if positive is not None:
            return float(fn(*self._ranking(positive)))
        values = np.array([fn(*self._ranking(j)) for j in range(len(self._classes))])
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")

    def _binary_or_ovr(self, positive: str | None) -> int | None:
        return self._positive(positive) if len(self._classes) == 2 else None

    def roc_auc(self, positive: str | None = None) -> float:
        """Binary: AUC of the positive class's score; multiclass: the mean of one-vs-rest
        AUCs over the classes where it is defined (scikit-learn's ``multi_class="ovr"``,
        ``average="macro"`` when all are)."""
        return self._over_classes(binned_auc, self._binary_or_ovr(positive))

    def roc_auc_bound(self, positive: str | None = None) -> float:
        """The most :meth:`roc_auc` can differ from the AUC of the raw scores (see
        ``_ranking.binned_auc_bound``; multiclass: the mean of the per-class bounds)."""
        return self._over_classes(binned_auc_bound, self._binary_or_ovr(positive))

    def pr_auc(self, positive: str | None = None) -> float:
        """Average precision; binary on the positive class, multiclass one-vs-rest macro."""
        return self._over_classes(binned_ap, self._binary_or_ovr(positive))

    def pr_auc_bound(self, positive: str | None = None) -> float:
        return self._over_classes(binned_ap_bound, self._binary_or_ovr(positive))

    def reliability(self, bins: int = ECE_BINS) -> tuple[_Floats, _Floats, _Ints]:
        """Mean confidence, accuracy and count per equal-width confidence bin (NaN where
        empty); ``bins`` must divide the summary's score bins so that each is exact."""
        if bins < 1 or self._bins % bins:
            raise ValueError(f"bins must divide the summary's {self._bins} score bins, got {bins}")
        g = self._bins // bins
        counts = self._cal_counts.reshape(bins, g).sum(axis=1)
        conf = fixed_to_float(self._cal_conf.reshape(bins, g).sum(axis=1))
        correct = self._cal_correct.reshape(bins, g).sum(axis=1).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return conf / counts, correct / counts, counts

    def ece(self, bins: int = ECE_BINS) -> float:
        """Expected calibration error: ``sum_b n_b / n * |accuracy_b - confidence_b|`` over
        equal-width bins of the confidence ``p[y_pred]`` (the top-class probability when the
        prediction is the argmax)."""
        conf, acc, counts = self.reliability(bins)
        n = int(counts.sum())
        if n == 0:
            return float("nan")
        full = counts > 0
        return float(np.sum(counts[full] * np.abs(acc[full] - conf[full]))) / n

    def metrics(self, positive: str | None = None) -> dict[str, float]:
        """The window's metrics, flat (NaN where undefined).

        ``precision``, ``recall``, ``f1``: binary on the positive class, multiclass the macro
        average.  Macro averages run over the classes present in labels or predictions
        (scikit-learn's default ``labels``).  ``brier``: binary is scikit-learn's
        ``brier_score_loss`` on the positive class, (p - y)^2; multiclass the mean over rows of
        the sum over classes of (p_j - y_j)^2 (range [0, 2]).  ``log_loss`` clips p to
        [eps, 1 - eps] like scikit-learn and does not renormalise rows.
        """
        pos = self._positive(positive)
        c = self._confusion.astype(np.float64)
        n = float(c.sum())
        tp, pred, true = np.diag(c), c.sum(axis=0), c.sum(axis=1)
        precision, recall = _safe_div(tp, pred), _safe_div(tp, true)
        f1 = _safe_div(2.0 * tp, pred + true)
        present = (pred + true) > 0
        nan = float("nan")

        def avg(v: _Floats, weighted: bool) -> float:
            if n == 0:
                return nan
            return float(np.dot(v, true) / n) if weighted else float(v[present].mean())

        binary = len(self._classes) == 2
        m = self._n_scored_labelled
        sq = self._sq_error[pos] if binary else sum(self._sq_error)
        out = {
            "accuracy": float(tp.sum() / n) if n else nan,
            "balanced_accuracy": float(recall[true > 0].mean()) if n else nan,
            "precision": float(precision[pos]) if binary and n else avg(precision, False),
            "recall": float(recall[pos]) if binary and n else avg(recall, False),
            "f1": float(f1[pos]) if binary and n else avg(f1, False),
            "precision_macro": avg(precision, False),
            "recall_macro": avg(recall, False),
            "f1_macro": avg(f1, False),
            "precision_weighted": avg(precision, True),
            "recall_weighted": avg(recall, True),
            "f1_weighted": avg(f1, True),
            "roc_auc": self.roc_auc(positive),
            "pr_auc": self.pr_auc(positive),
            "log_loss": float(fixed_to_float(self._log_loss)) / m if m else nan,
            "brier": float(fixed_to_float(sq)) / m if m else nan,
            "ece": self.ece(),
            "label_coverage": self.label_coverage,
            "labelled": float(self.n_labelled),
        }
        return out

    # -- merge, equality, serialisation ------------------------------------------------
    _ARRAYS: Final = (
        "_pred_counts",
        "_scored_counts",
        "_scored_sums",
        "_confusion",
        "_labelled_counts",
        "_labelled_sums",
        "_cal_counts",
        "_cal_conf",
        "_cal_correct",
    )
    _SCALARS: Final = (
        "_n_predictions",
        "_unknown_predictions",
        "_unknown_labels",
        "_n_scored_labelled",
        "_log_loss",
    )

    def copy(self) -> Self:
        out = self._copy_slots()
        for name in self._ARRAYS:
            setattr(out, name, getattr(self, name).copy())
        out._sq_error = list(self._sq_error)
        return out

    def __iadd__(self, other: Self) -> Self:
        if not isinstance(other, ClassificationSummary):
            return NotImplemented
        if other._classes != self._classes or other._bins != self._bins:
            raise ValueError(
                "cannot merge summaries of different classes or bins: "
                f"{list(self._classes)}/{self._bins} and {list(other._classes)}/{other._bins}"
            )
        for name in self._ARRAYS:
            getattr(self, name).__iadd__(getattr(other, name))
        for name in self._SCALARS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self._sq_error = [a + b for a, b in zip(self._sq_error, other._sq_error, strict=True)]
        return self

    def try_subtract(self, other: Self) -> bool:
        """Take ``other``'s counts and sums out of these, if every one of them is here
        (True); otherwise change nothing (False).

        Why: a process that learns a replaced label may not hold the pair it replaces
        (another worker or replica took the first label).  It keeps that pair as a debt
        (a summary of owed pairs); once the processes' summaries are merged the pair is in,
        and subtracting the debt leaves what one process fed everything would hold."""
        if not isinstance(other, ClassificationSummary):
            raise TypeError(f"cannot subtract {type(other).__name__} from a classification summary")
        if other._classes != self._classes or other._bins != self._bins:
            raise ValueError("cannot subtract a summary of other classes or bins")
        short = any((getattr(other, a) > getattr(self, a)).any() for a in self._ARRAYS)
        short = short or any(getattr(other, a) > getattr(self, a) for a in self._SCALARS)
        short = short or any(b > a for a, b in zip(self._sq_error, other._sq_error, strict=True))
        if short:
            return False
        for name in self._ARRAYS:
            getattr(self, name).__isub__(getattr(other, name))
        for name in self._SCALARS:
            setattr(self, name, getattr(self, name) - getattr(other, name))
        self._sq_error = [a - b for a, b in zip(self._sq_error, other._sq_error, strict=True)]
        return True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClassificationSummary):
            return NotImplemented
        return (
            self._classes == other._classes
            and self._bins == other._bins
            and self._sq_error == other._sq_error
            and all(getattr(self, a) == getattr(other, a) for a in self._SCALARS)
            and all(np.array_equal(getattr(self, a), getattr(other, a)) for a in self._ARRAYS)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"ClassificationSummary(classes={list(self._classes)}, bins={self._bins}, "
            f"predictions={self._n_predictions}, labelled={self.n_labelled})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values; unbounded exact sums as decimal strings (portable)."""
        out: dict[str, Any] = {
            "kind": "classification",
            "format": FORMAT,
            "classes": list(self._classes),
            "bins": self._bins,
            "log_loss": str(self._log_loss),
            "sq_error": [str(v) for v in self._sq_error],
        }
        for name in self._SCALARS[:-1]:
            out[name[1:]] = getattr(self, name)
        for name in self._ARRAYS:
            out[name[1:]] = getattr(self, name).tolist()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        check_header(data, "classification")
        out = cls(read_list(data, "classes"), bins=read_int(data, "bins"))
        for name in cls._SCALARS[:-1]:
            setattr(out, name, read_int(data, name[1:]))
        k = len(out._classes)
        out._log_loss = _read_big(data, "log_loss")
        sq = read_list(data, "sq_error")
        if len(sq) != k:
            raise ValueError(f"classification profile: 'sq_error' needs {k} values")
        out._sq_error = [_read_big({"v": v}, "v") for v in sq]
        for name in cls._ARRAYS:
            want = getattr(out, name).shape
            try:
                arr = np.asarray(data.get(name[1:]), dtype=np.int64)
            except (TypeError, ValueError, OverflowError) as exc:
                raise ValueError(f"classification profile: {name[1:]!r} is not integers") from exc
            if arr.shape != want or (arr < 0).any():
                raise ValueError(
                    f"classification profile: {name[1:]!r} must be {want} integers >= 0"
                )
            setattr(out, name, arr)
        return out


def _read_big(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    try:
        number = int(value) if isinstance(value, str | int) and not isinstance(value, bool) else -1
    except ValueError:
        number = -1
    if number < 0:
        raise ValueError(f"profile: {key!r} must be a non-negative integer, got {value!r}")
    return number
