"""Load a model file into a ModelAdapter; one loader per flavor, chosen from a table.

Framework imports happen inside each loader, so an optional backend (onnx, keras, torch,
mlflow) costs nothing until a model of that flavor is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from inferwatch.errors import ModelError
from inferwatch.ports import ModelAdapter

__all__ = ["FLAVORS", "load_model"]

Loader = Callable[[Path, Sequence[str] | None], ModelAdapter]

_PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")


def _load_sklearn(path: Path, feature_names: Sequence[str] | None) -> ModelAdapter:
    import joblib
    from sklearn.base import BaseEstimator
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    from inferwatch.models._sklearn import SklearnAdapter

    if path.suffix.lower() not in _PICKLE_SUFFIXES:
        raise ModelError(
            f"cannot load {path} as a scikit-learn model: expected a file ending in "
            f"{', '.join(_PICKLE_SUFFIXES)}"
        )
    try:
        estimator: Any = joblib.load(path)
    except Exception as exc:
        raise ModelError(f"cannot load model {path}: {type(exc).__name__}: {exc}") from exc
    if isinstance(estimator, BaseEstimator):
        try:
            check_is_fitted(estimator)
        except NotFittedError:
            raise ModelError(f"the model in {path} has not been fitted") from None
    if feature_names is None:
        fitted_on = getattr(estimator, "feature_names_in_", None)
        if fitted_on is None:
            raise ModelError(
                f"the model in {path} does not record its feature names; pass feature_names"
            )
        feature_names = [str(c) for c in fitted_on]
    return SklearnAdapter(estimator, feature_names, flavor="sklearn")


#: flavor → loader.  Later flavors (onnx, keras, torch, mlflow) add one entry each.
FLAVORS: dict[str, Loader] = {"sklearn": _load_sklearn}


def load_model(
    path: str | Path, flavor: str = "sklearn", *, feature_names: Sequence[str] | None = None
) -> ModelAdapter:
    """Load the model in ``path`` with the adapter for ``flavor``.

    ``feature_names`` is the schema's column order (by default, what the model records).
    Pickle-based files run code when loaded: load only files you trust.
    Raises :class:`~inferwatch.errors.ModelError` for an unknown flavor, a missing file or
    a file that cannot be loaded.
    """
    loader = FLAVORS.get(flavor)
    if loader is None:
        raise ModelError(f"unknown model flavor {flavor!r}; known: {', '.join(sorted(FLAVORS))}")
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    return loader(path, feature_names)
