"""Infer a Schema from reference columns (numpy arrays keyed by name).

The rules are data, not nested ``if``s: see :data:`InferenceRules`.  Pandas is not
needed here; the readers in ``inferwatch.io`` turn files into numpy columns first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from inferwatch._typing import FeatureKind, Task
from inferwatch.errors import SchemaError
from inferwatch.schema._types import Feature, Schema, Target

__all__ = ["InferenceRules", "infer_feature", "infer_schema", "infer_task"]


@dataclass(frozen=True, slots=True)
class InferenceRules:
    """Thresholds that decide between categorical and text, and classification and regression.

    A string column is *categorical* when it has at most ``max_categories`` distinct values
    or its distinct values are at most ``max_category_ratio`` of its rows; otherwise it is
    *text*.

    A target's or prediction's task is read off its type and cardinality the way a person
    would (:func:`infer_task`):

    * floating point is *regression*: a float is never a class.  (One exception: a float
      column whose values are all integral and that has missing values is what the readers
      make of an integer column with gaps, and is judged as an integer column);
    * strings and booleans are *classification*;
    * an integer column is *classification* when it has at most ``few_classes`` distinct
      values (labels such as 0/1, 1-5 ratings, digits), or at most ``max_classes`` distinct
      values that are at most ``max_class_ratio`` of its rows (each class seen about 20
      times or more); otherwise, with more distinct values than that (prices, counts, ages),
      it is *regression*.

    ``--task`` (``task=`` here) overrides the rule.
    """

    max_categories: int = 50
    max_category_ratio: float = 0.05
    few_classes: int = 10
    max_classes: int = 50
    max_class_ratio: float = 0.05

    def integer_task(self, n_distinct: int, n_present: int) -> Task:
        """The task of an integer column with ``n_distinct`` values in ``n_present`` rows."""
        if n_distinct <= self.few_classes:
            return "classification"
        if n_distinct <= self.max_classes and n_distinct <= self.max_class_ratio * n_present:
            return "classification"
        return "regression"


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _object_kind(values: Sequence[Any]) -> FeatureKind | None:
    """Kind of an object column from its non-missing values; None if mixed."""
    if not values:
        return None
    if all(isinstance(v, bool | np.bool_) for v in values):
        return "boolean"
    if all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in values):
        return "numeric"
    if all(isinstance(v, str) for v in values):
        return "categorical"  # refined into text later
    if all(isinstance(v, list | tuple | np.ndarray) for v in values):
        return "embedding"
    return None


def infer_feature(
    name: str, values: npt.NDArray[Any], rules: InferenceRules = InferenceRules()
) -> Feature:
    """Infer one feature's kind, nullability, range and categories from its reference values."""
    arr = np.asarray(values)
    n = len(arr)
    kind_char = arr.dtype.kind
    if kind_char == "b":
        return Feature(name, "boolean", nullable=False)
    if kind_char in "iu":
        if n == 0:
            return Feature(name, "numeric", integer=True)
        return Feature(name, "numeric", integer=True, min=float(arr.min()), max=float(arr.max()))
    if kind_char == "f":
        finite = arr[np.isfinite(arr)]
        nullable = bool(np.isnan(arr).any())
        integral = bool(finite.size) and bool(np.all(np.floor(finite) == finite))
        return Feature(
            name,
            "numeric",
            nullable=nullable,
            integer=integral and nullable,  # ints read with missing values become floats
            min=float(finite.min()) if finite.size else None,
            max=float(finite.max()) if finite.size else None,
        )
    if kind_char == "M":
        return Feature(name, "datetime", nullable=bool(np.isnat(arr).any()))
    if kind_char in "OUST":
        present = [v for v in arr.tolist() if not _is_missing(v)]
        nullable = len(present) < n
        if not present:
            raise SchemaError(
                f"column {name!r} has no values (all {n} missing); "
                "exclude it or declare its kind in the schema"
            )
        kind = _object_kind(present)
        if kind is None:
            raise SchemaError(
                f"column {name!r} mixes value types "
                f"({', '.join(sorted({type(v).__name__ for v in present}))}); "
                "clean it or declare its kind in the schema"
            )
        if kind == "numeric":
            nums = np.asarray(present, dtype=np.float64)
            return Feature(
                name, "numeric", nullable=nullable, min=float(nums.min()), max=float(nums.max())
            )
        if kind == "boolean":
            return Feature(name, "boolean", nullable=nullable)
        if kind == "embedding":
            dims = {len(v) for v in present}
            return Feature(
                name,
                "embedding",
                nullable=nullable,
                dimension=dims.pop() if len(dims) == 1 else None,
            )
        distinct = sorted(set(present))
        is_categorical = len(distinct) <= rules.max_categories or (
            len(distinct) <= rules.max_category_ratio * len(present)
        )
        if is_categorical:
            return Feature(name, "categorical", nullable=nullable, categories=tuple(distinct))
        return Feature(name, "text", nullable=nullable)
    raise SchemaError(f"column {name!r} has an unsupported dtype {arr.dtype}")


def infer_task(values: npt.NDArray[Any], rules: InferenceRules = InferenceRules()) -> Task:
    """Classification or regression for a target's or prediction's values (the rule is in
    :class:`InferenceRules`' docstring).

    >>> import numpy as np
    >>> infer_task(np.array([0, 1, 1, 0])), infer_task(np.array([0.5, 1.25]))
    ('classification', 'regression')
    >>> infer_task(np.arange(1000) % 300)  # 300 distinct integers: prices, counts
    'regression'
    """
    arr = np.asarray(values)
    kind = arr.dtype.kind
    if kind == "b":
        return "classification"
    if kind in "iu":
        return rules.integer_task(int(np.unique(arr).size), len(arr))
    if kind == "f":
        missing = np.isnan(arr)
        finite = arr[~missing]
        if missing.any() and finite.size and bool(np.all(np.floor(finite) == finite)):
            # an integer column with gaps, as the readers give it
            return rules.integer_task(int(np.unique(finite).size), int(finite.size))
        return "regression"
    present = [v for v in arr.tolist() if not _is_missing(v)]
    if present and all(
        isinstance(v, int | float | np.number) and not isinstance(v, bool | np.bool_)
        for v in present
    ):  # numbers in an object column (JSON values, model outputs)
        if all(isinstance(v, int | np.integer) for v in present):
            return rules.integer_task(len(set(present)), len(present))
        return "regression"
    return "classification"


def _infer_target(
    name: str, values: npt.NDArray[Any], task: Task | None, rules: InferenceRules
) -> Target:
    arr = np.asarray(values)
    present = [v for v in arr.tolist() if not _is_missing(v)]
    if task is None:
        task = infer_task(arr, rules)
    if task == "classification":
        classes = sorted({_class_label(v) for v in present}, key=_class_sort_key)
        return Target(name, "classification", tuple(classes))
    return Target(name, task)


def _class_label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _class_sort_key(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def infer_schema(
    columns: Mapping[str, npt.NDArray[Any]],
    *,
    target: str | None = None,
    prediction: str | None = None,
    task: Task | None = None,
    exclude: Sequence[str] = (),
    rules: InferenceRules = InferenceRules(),
) -> Schema:
    """Infer the schema of a reference dataset.

    Every column becomes a feature except ``target``, ``prediction`` and ``exclude``.
    ``task`` forces classification or regression; by default it is read off the target
    (or the prediction when there is no target) by :func:`infer_task`: floats and
    integers with many distinct values are regression, strings, booleans and integers
    with few distinct values are classification (see :class:`InferenceRules`).
    """
    for col in (target, prediction, *exclude):
        if col is not None and col not in columns:
            raise SchemaError(
                f"column {col!r} is not in the reference (columns: {', '.join(columns)})"
            )
    skip = {target, prediction, *exclude}
    features = tuple(
        infer_feature(name, values, rules) for name, values in columns.items() if name not in skip
    )
    if not features:
        raise SchemaError("the reference has no feature columns")
    tgt = None if target is None else _infer_target(target, columns[target], task, rules)
    pred_task = task or (tgt.task if tgt else None)
    pred = (
        None
        if prediction is None
        else _infer_target(prediction, columns[prediction], pred_task, rules)
    )
    return Schema(features=features, target=tgt, prediction=pred)
