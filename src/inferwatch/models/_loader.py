"""Load a model file into a ModelAdapter; one loader per flavor, chosen from a table.

Framework imports happen inside each loader, so an optional backend (onnx, keras, torch,
mlflow) costs nothing until a model of that flavor is loaded.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from inferwatch.errors import ModelError
from inferwatch.ports import ModelAdapter

__all__ = ["FLAVORS", "file_sha256", "load_model"]

log = logging.getLogger("inferwatch.models")

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
        estimator: Any = joblib.load(path)  # unpickling: runs whatever code the file names
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


#: flavors whose files are pickles: loading one runs the code it names
PICKLE_FLAVORS = frozenset({"sklearn"})


def file_sha256(path: Path) -> str:
    """The SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_model_file(
    path: str | Path, flavor: str = "sklearn", trusted_hashes: Collection[str] = ()
) -> Path:
    """``path`` after the checks made before anything is loaded (``config validate`` too).

    The flavor is known, the file exists and is a file (not a folder), and when
    ``trusted_hashes`` is not empty its SHA-256 is one of them: a pickle runs code when
    it is loaded, so pinning the digests is what stops a swapped file from running.
    Raises :class:`~inferwatch.errors.ModelError`.
    """
    if flavor not in FLAVORS:
        raise ModelError(f"unknown model flavor {flavor!r}; known: {', '.join(sorted(FLAVORS))}")
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"model path {path} is a folder, not a model file")
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    if trusted_hashes:
        try:
            digest = file_sha256(path)
        except OSError as exc:
            raise ModelError(f"cannot read model file {path}: {exc}") from exc
        if digest not in {h.strip().lower() for h in trusted_hashes}:
            raise ModelError(
                f"model file {path} has SHA-256 {digest}, which is not in "
                "trusted_model_hashes: refusing to load it (a pickle runs code when loaded)"
            )
    return path


def load_model(
    path: str | Path,
    flavor: str = "sklearn",
    *,
    feature_names: Sequence[str] | None = None,
    trusted_hashes: Collection[str] = (),
) -> ModelAdapter:
    """Load the model in ``path`` with the adapter for ``flavor``.

    ``feature_names`` is the schema's column order (by default, what the model records).
    Pickle-based files (joblib, pickle) run code when loaded: with ``trusted_hashes``
    (SHA-256 hex digests) any file whose digest is not listed is refused before it is
    read; without, every load logs a warning that names the file's digest to pin.
    Raises :class:`~inferwatch.errors.ModelError` for an unknown flavor, a missing file,
    a folder, an unlisted digest or a file that cannot be loaded.
    """
    path = check_model_file(path, flavor, trusted_hashes)
    if flavor in PICKLE_FLAVORS and not trusted_hashes:
        log.warning(
            "loading %s with pickle: unpickling runs code the file names, so load only "
            "files you trust; pin its SHA-256 %s in models[].trusted_model_hashes to "
            "refuse any other file",
            path,
            file_sha256(path),
        )
    return FLAVORS[flavor](path, feature_names)
