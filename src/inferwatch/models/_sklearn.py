"""scikit-learn adapter: a fitted estimator or Pipeline behind the ModelAdapter protocol.

Instances become a pandas DataFrame in the schema's column order, so a Pipeline whose
ColumnTransformer selects columns by name gets exactly what it was fitted on.  Results
leave as plain Python values (never numpy types), ready for JSON and the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_regressor

from inferwatch.errors import ModelError
from inferwatch.models._base import ModelPrediction, to_python

__all__ = ["SklearnAdapter"]


class SklearnAdapter:
    """Predict with a fitted scikit-learn estimator (or anything with ``predict``).

    Uses ``predict_proba`` when the estimator has it: the value is then the class with the
    top probability (from ``classes_``), ``probabilities`` maps ``str(class)`` to its
    probability and ``score`` is the top probability.  Otherwise ``predict``: the value is
    a float for regressors, the plain label otherwise, and ``score`` is None.

    An estimator fitted on a DataFrame gets a DataFrame of the columns it was fitted on;
    one fitted on an array gets rows in the schema's order.  With ``dataframe`` it always
    gets a DataFrame of the schema's columns in order: the python flavor's contract, so a
    user's object can select columns by name whatever it records.
    """

    def __init__(
        self,
        estimator: Any,
        feature_names: Sequence[str],
        *,
        flavor: str = "sklearn",
        dataframe: bool = False,
    ) -> None:
        if not callable(getattr(estimator, "predict", None)):
            raise ModelError(f"a {type(estimator).__name__} has no predict() method")
        self.estimator = estimator
        self.feature_names = tuple(feature_names)
        self.flavor = flavor
        fitted_on = getattr(estimator, "feature_names_in_", None)
        self._columns: list[str] | None = None
        if fitted_on is not None:
            self._columns = [str(c) for c in fitted_on]
            missing = [c for c in self._columns if c not in self.feature_names]
            if missing:
                raise ModelError(
                    f"the model was fitted on feature(s) {', '.join(map(repr, missing))} "
                    "that the schema does not have"
                )
        elif dataframe:
            self._columns = list(self.feature_names)
        self._proba = callable(getattr(estimator, "predict_proba", None))
        self._regressor = _is_regressor(estimator)
        classes = getattr(estimator, "classes_", None)
        self._labels: list[Any] | None = None if classes is None else to_python(classes)
        self._keys: tuple[str, ...] | None = (
            None if self._labels is None else tuple(str(c) for c in self._labels)
        )

    @property
    def classes(self) -> tuple[str, ...] | None:
        """The class labels as strings (classifiers), else None."""
        return self._keys

    def predict(self, instances: Sequence[Mapping[str, Any]]) -> list[ModelPrediction]:
        """One prediction per instance, in order."""
        x = self._frame(instances)
        if self._proba:
            return self._from_proba(np.asarray(self.estimator.predict_proba(x)))
        y = np.asarray(self.estimator.predict(x))
        values = [float(v) for v in y.tolist()] if self._regressor else y.tolist()
        return [ModelPrediction(v) for v in values]

    def _frame(self, instances: Sequence[Mapping[str, Any]]) -> Any:
        if self._columns is None:
            # fitted on an array: columns by position, in the schema's order
            return [[inst.get(n) for n in self.feature_names] for inst in instances]
        data = {n: [inst.get(n) for inst in instances] for n in self._columns}
        return pd.DataFrame(data, columns=self._columns)

    def _from_proba(self, proba: np.ndarray[Any, Any]) -> list[ModelPrediction]:
        n_classes = proba.shape[1]
        labels = self._labels if self._labels is not None else list(range(n_classes))
        keys = self._keys if self._keys is not None else tuple(str(c) for c in labels)
        if len(labels) != n_classes:
            raise ModelError(
                f"predict_proba returned {n_classes} columns for {len(labels)} classes"
            )
        rows: list[list[float]] = proba.tolist()
        top: list[int] = proba.argmax(axis=1).tolist()
        return [
            ModelPrediction(labels[j], dict(zip(keys, row, strict=True)), row[j])
            for j, row in zip(top, rows, strict=True)
        ]


def _is_regressor(estimator: Any) -> bool:
    try:
        return bool(is_regressor(estimator))
    except (AttributeError, TypeError):  # duck-typed, not a scikit-learn estimator
        return getattr(estimator, "_estimator_type", None) == "regressor"
