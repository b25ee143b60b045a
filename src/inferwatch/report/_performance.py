"""The report's model-quality numbers: realised metrics of the reference and the current file.

When the files hold a prediction column and a target column, each file's rows go through
the same summaries the live windows keep (``inferwatch.performance``), so the report and
the server agree to the last digit.  Only aggregates leave this module: metrics, the
confusion matrix and the reliability bins, never rows.

Classes are the sorted union of the labels and predictions in both files (numerically when
all of them are numbers), so both sides share one order.  ``--score`` columns are the
model's probabilities: for two classes one column, P(the second class); otherwise one
column per class, in that order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from inferwatch._json import plain
from inferwatch.errors import ConfigError
from inferwatch.io import ColumnSource
from inferwatch.performance import ClassificationSummary, RegressionSummary, class_indices
from inferwatch.report._load import LoadedData, _f64

__all__ = ["performance_section"]


def _labels(col: pa.ChunkedArray) -> npt.NDArray[Any]:
    """A label column as strings (None where missing); whole floats lose their ``.0`` so
    that a float prediction column matches an integer target."""
    if pa.types.is_floating(col.type):
        values = _f64(col)
        whole = np.isfinite(values) & (values == np.round(values))
        if whole[np.isfinite(values)].all():
            out = np.full(len(values), None, dtype=object)
            out[whole] = [str(int(v)) for v in values[whole]]
            return out
    text = pc.cast(col, pa.string()).to_numpy(zero_copy_only=False)
    return np.asarray(text, dtype=object)


def _class_order(values: Sequence[str]) -> list[str]:
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


def _read(src: ColumnSource, name: str | None) -> pa.ChunkedArray | None:
    return src.read(name) if name is not None and name in src.names else None


def _scores(src: ColumnSource, names: Sequence[str], k: int) -> npt.NDArray[np.float64] | None:
    if not names or any(n not in src.names for n in names):
        return None
    cols = [_f64(src.read(n)) for n in names]
    return cols[0] if len(cols) == 1 else np.column_stack(cols)


def _classification_side(
    s: ClassificationSummary, extra: dict[str, Any], scored: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rows": s.n_predictions,
        "labelled": s.n_labelled,
        "unknown_labels": s.unknown_labels,
        "metrics": s.metrics(),
        "per_class": s.per_class(),
        "confusion_matrix": s.confusion_matrix(),
    }
    if scored:
        conf, acc, counts = s.reliability()
        out["reliability"] = {"confidence": conf, "accuracy": acc, "count": counts}
        out["roc_auc_bound"] = s.roc_auc_bound()
        out["pr_auc_bound"] = s.pr_auc_bound()
    return out | extra


def performance_section(data: LoadedData, scores: Sequence[str] = ()) -> dict[str, Any] | None:
    """The ``"performance"`` block of the report's JSON, or None without both a target and
    a prediction column (a file without the target has unlabelled predictions only)."""
    target, prediction = data.schema.target, data.schema.prediction
    if target is None or prediction is None:
        if scores:
            raise ConfigError("--score needs both --target and --prediction")
        return None
    sides = {"reference": data.reference.source, "current": data.current.source}
    absent = [n for n in scores if n not in sides["reference"].names]
    if absent:
        raise ConfigError(f"--score: no column {', '.join(map(repr, absent))} in the reference")
    task = prediction.task
    out: dict[str, Any] = {
        "task": task,
        "target": target.name,
        "prediction": prediction.name,
        "scores": list(scores),
    }
    if task == "regression":
        for side, src in sides.items():
            out[side] = _regression_side(src, target.name, prediction.name)
        return plain(out)  # type: ignore[no-any-return]
    cols = {
        side: (_read(src, target.name), _read(src, prediction.name)) for side, src in sides.items()
    }
    labels = {
        side: tuple(None if c is None else _labels(c) for c in pair) for side, pair in cols.items()
    }
    seen = {v for pair in labels.values() for arr in pair if arr is not None for v in arr}
    classes = _class_order([v for v in seen if v is not None])
    if len(classes) < 2:
        classes += [c for c in ("0", "1") if c not in classes][: 2 - len(classes)]
    k = len(classes)
    if scores and len(scores) not in ({1, k} if k == 2 else {k}):
        raise ConfigError(
            f"--score: {len(scores)} column(s) for {k} classes {classes[:10]}; give one "
            "column per class in that order (or, for two classes, one: P(the second))"
        )
    out["classes"] = classes
    out["positive"] = classes[1] if k == 2 else None
    for side, src in sides.items():
        y_true, y_pred = labels[side]
        if y_pred is None:
            out[side] = None
            continue
        s = ClassificationSummary(classes)
        yp = class_indices(classes, y_pred)
        p = _scores(src, scores, k)
        s.observe(yp, p)
        if y_true is not None:
            has = np.fromiter((v is not None for v in y_true), dtype=bool, count=len(y_true))
            s.add_labels(
                class_indices(classes, y_true[has]), yp[has], None if p is None else p[has]
            )
        out[side] = _classification_side(s, {"has_target": y_true is not None}, p is not None)
    return plain(out)  # type: ignore[no-any-return]


def _regression_side(src: ColumnSource, target: str, prediction: str) -> dict[str, Any] | None:
    pred = _read(src, prediction)
    if pred is None:
        return None
    s = RegressionSummary()
    yp = _f64(pred)
    s.observe(yp)
    true = _read(src, target)
    if true is not None:
        yt = _f64(true)
        has = ~np.isnan(yt)
        s.add_labels(yt[has], yp[has])
    return {
        "rows": s.n_predictions,
        "labelled": s.n_labelled,
        "metrics": s.metrics(),
        "has_target": true is not None,
    }
