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

from inferwatch._json import plain
from inferwatch.errors import ConfigError
from inferwatch.io import ColumnSource
from inferwatch.performance import ClassificationSummary, RegressionSummary
from inferwatch.report._load import LoadedData, _f64, _with_nulls

__all__ = ["performance_section"]


def _encode(col: pa.ChunkedArray) -> tuple[npt.NDArray[np.intp], list[str | None]]:
    """A label column as codes into its distinct values (-1 where missing) and those values
    as strings (None for NaN), by Arrow's dictionary encoding: the Python work is per
    distinct value, not per row.  Whole floats lose their ``.0`` so that a float prediction
    column matches an integer target."""
    encoded = col.combine_chunks().dictionary_encode()
    # int32 codes with nulls as -1, read off the buffers (to_numpy would import pandas)
    codes = _with_nulls(encoded.indices, np.int32, -1).astype(np.intp)
    names: list[str | None] = []
    for value in encoded.dictionary.to_pylist():
        if isinstance(value, float) and value != value:
            names.append(None)  # NaN: missing
        elif isinstance(value, float) and value.is_integer():
            names.append(str(int(value)))
        else:
            names.append(None if value is None else str(value))
    return codes, names


def _indices(
    encoded: tuple[npt.NDArray[np.intp], list[str | None]], classes: Sequence[str]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """Class indices (-1 for a value outside ``classes``) and where a value is present."""
    codes, names = encoded
    position = {c: i for i, c in enumerate(classes)}
    lut = np.array([-1 if n is None else position.get(n, -1) for n in names] + [-1], np.intp)
    present = np.array([n is not None for n in names] + [False], dtype=bool)
    return lut[codes], present[codes]  # code -1 (null) reads the trailing entries


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
        side: tuple(None if c is None else _encode(c) for c in pair) for side, pair in cols.items()
    }
    seen = {n for pair in labels.values() for enc in pair if enc is not None for n in enc[1]}
    classes = _class_order([n for n in seen if n is not None])
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
        yp, _ = _indices(y_pred, classes)
        p = _scores(src, scores, k)
        s.observe(yp, p)
        if y_true is not None:  # rows without a label are predictions only
            yt, has = _indices(y_true, classes)
            s.add_labels(yt[has], yp[has], None if p is None else p[has])
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
