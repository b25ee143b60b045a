"""Load a model into a ModelAdapter; one loader per flavor, chosen from a table.

The flavor comes from configuration (``models[].flavor``, ``--flavor``) or, when absent,
from the file's suffix (:func:`flavor_of`).  Framework imports happen inside each loader,
so an optional backend (onnx, keras, torch, mlflow) costs nothing until a model of that
flavor is loaded.  A new flavor is one loader function and one :data:`FLAVORS` entry (and
the ``flavor`` Literal in ``config.ModelSettings``; a test keeps the two in step).
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import re
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferwatch.errors import ModelError
from inferwatch.ports import ModelAdapter

__all__ = [
    "FLAVORS",
    "LoadOptions",
    "check_model_file",
    "file_sha256",
    "flavor_of",
    "load_model",
    "python_reference",
]

log = logging.getLogger("inferwatch.models")


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """How a loader sets up its runtime (the knobs some flavors have and others ignore).

    ``threads`` is the intra-op thread count of runtimes that have one (ONNX Runtime,
    torch).  One by default: a server runs many requests at once and batches them, so one
    thread per call keeps calls from fighting over cores; more only helps a lone large
    batch.  ``classes`` names a tensor model's output columns (keras, torchscript, mlflow
    pyfunc), which the file does not record.  ``tracking_uri`` is the MLflow tracking (and
    registry) server a ``models:/`` URI is resolved against (MLflow's own
    ``MLFLOW_TRACKING_URI`` when None).
    """

    threads: int = 1
    classes: tuple[str, ...] | None = None
    tracking_uri: str | None = None


Loader = Callable[[Path, Sequence[str] | None, LoadOptions], ModelAdapter]

_PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
_SUFFIX_FLAVORS = {
    ".onnx": "onnx",
    ".pt": "torchscript",
    ".keras": "keras",
    ".h5": "keras",
    **dict.fromkeys(_PICKLE_SUFFIXES, "sklearn"),
}
#: MLflow's model registry URIs: models:/name/version, models:/name@alias
MLFLOW_URI_PREFIX = "models:"
_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_PYTHON_REFERENCE = re.compile(rf"({_DOTTED}):({_DOTTED})")


def flavor_of(path: str | Path) -> str | None:
    """The flavor a model path names, or None when it names none.

    The suffix: ``.onnx``: onnx; ``.pt``: torchscript; ``.keras``, ``.h5``: keras;
    ``.joblib``, ``.pkl``, ``.pickle``: sklearn.  A ``models:/`` URI, or a folder holding an
    ``MLmodel`` file (what ``mlflow.<flavor>.save_model`` writes), is mlflow.
    """
    if is_registry_uri(path):
        return "mlflow"
    found = _SUFFIX_FLAVORS.get(Path(path).suffix.lower())
    if found is None and (Path(path) / "MLmodel").is_file():
        return "mlflow"
    return found


def is_registry_uri(path: str | Path) -> bool:
    """Whether ``path`` is an MLflow registry URI (``models:/name/version``), not a path."""
    return str(path).startswith(MLFLOW_URI_PREFIX)


def python_reference(path: str | Path) -> tuple[Path, str, str]:
    """``(folder, module, attribute)`` of a python-flavor model's ``[FOLDER/]module:attribute``.

    The python flavor's "path" names an object rather than a file: the last part is
    ``module:attribute`` (both dotted names), and the folder before it is put at the front
    of ``sys.path`` for the import (the config file's folder when the config gives a bare
    ``module:attribute``, since relative paths resolve against it; the working directory
    for ``serve --model``).  Raises ModelError for anything else.
    """
    path = Path(path)
    match = _PYTHON_REFERENCE.fullmatch(path.name)
    if match is not None and match.group(1).endswith(".py"):
        module = match.group(1).removesuffix(".py")
        raise ModelError(
            f"python model {path.name!r}: expected module:attribute; name the module "
            f"({module}:{match.group(2)}), not its file"
        )
    if match is None:
        raise ModelError(
            f"python model {str(path)!r}: expected module:attribute (e.g. my_models.churn:model,"
            " optionally after a folder to import it from)"
        )
    return path.parent, match.group(1), match.group(2)


def _load_python(path: Path, feature_names: Sequence[str] | None, _: LoadOptions) -> ModelAdapter:
    from inferwatch.models._sklearn import SklearnAdapter

    folder, module_name, attribute = python_reference(path)
    where = f"{module_name}:{attribute}"
    if str(folder) not in sys.path:
        # kept there: the module may import its siblings later, lazily
        sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise ModelError(
                f"python model {where}: no module named {exc.name!r} "
                f"(looked in {folder} first, then sys.path)"
            ) from None
        raise ModelError(f"python model {where}: importing {module_name!r} failed: {exc}") from exc
    except Exception as exc:  # the module's own code raised while it was imported
        raise ModelError(
            f"python model {where}: importing {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    obj: Any = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ModelError(
                f"python model {where}: {module_name!r} has no attribute {attribute!r}"
            ) from None
    if isinstance(obj, type):
        raise ModelError(
            f"python model {where}: names the class {obj.__name__}; name an instance of it "
            "(an object with predict(X))"
        )
    if not callable(getattr(obj, "predict", None)):
        raise ModelError(f"python model {where}: a {type(obj).__name__} has no predict(X) method")
    if feature_names is None:
        fitted_on = getattr(obj, "feature_names_in_", None)
        if fitted_on is None:
            raise ModelError(
                f"python model {where} does not record its feature names; pass feature_names"
            )
        feature_names = [str(c) for c in fitted_on]
    return SklearnAdapter(obj, feature_names, flavor="python", dataframe=True)


def _load_onnx(
    path: Path, feature_names: Sequence[str] | None, options: LoadOptions
) -> ModelAdapter:
    from inferwatch.models._onnx import load_onnx

    return load_onnx(path, feature_names, threads=options.threads)


def _load_sklearn(path: Path, feature_names: Sequence[str] | None, _: LoadOptions) -> ModelAdapter:
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


def _load_torchscript(
    path: Path, feature_names: Sequence[str] | None, options: LoadOptions
) -> ModelAdapter:
    from inferwatch.models._torch import load_torchscript

    return load_torchscript(path, feature_names, threads=options.threads, classes=options.classes)


def _load_keras(
    path: Path, feature_names: Sequence[str] | None, options: LoadOptions
) -> ModelAdapter:
    from inferwatch.models._keras import load_keras

    return load_keras(path, feature_names, threads=options.threads, classes=options.classes)


def _load_mlflow(
    path: Path, feature_names: Sequence[str] | None, options: LoadOptions
) -> ModelAdapter:
    from inferwatch.models._mlflow import load_mlflow

    adapter: ModelAdapter = load_mlflow(
        path, feature_names, tracking_uri=options.tracking_uri, classes=options.classes
    )
    return adapter


#: flavor → loader
FLAVORS: dict[str, Loader] = {
    "sklearn": _load_sklearn,
    "onnx": _load_onnx,
    "python": _load_python,
    "torchscript": _load_torchscript,
    "keras": _load_keras,
    "mlflow": _load_mlflow,
}

#: flavors whose output columns ``classes`` (models[].classes) may name
CLASSES_FLAVORS = frozenset({"torchscript", "keras", "mlflow"})


#: flavors whose files are pickles: loading one runs the code it names
PICKLE_FLAVORS = frozenset({"sklearn"})

#: flavors that name a Python object (``module:attribute``), not a file
OBJECT_FLAVORS = frozenset({"python"})


def file_sha256(path: Path) -> str:
    """The SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_mlflow(path: str | Path, trusted_hashes: Collection[str]) -> Path:
    """An MLflow model is a folder with an MLmodel file, or a registry URI (not fetched
    here: ``config validate`` contacts nothing)."""
    if trusted_hashes:
        raise ModelError(
            f"MLflow model {path}: trusted_model_hashes pins one model file, and an MLflow "
            "model is a folder (or a registry version); leave trusted_model_hashes out"
        )
    if is_registry_uri(path):
        from inferwatch.models._mlflow import parse_registry_uri

        parse_registry_uri(str(path))
        return Path(path)
    path = Path(path)
    if not path.exists():
        raise ModelError(f"MLflow model folder {path} does not exist")
    if not (path / "MLmodel").is_file():
        raise ModelError(
            f"{path} is not an MLflow model: an MLflow model is a folder with an MLmodel file"
        )
    return path


def check_model_file(
    path: str | Path, flavor: str | None = None, trusted_hashes: Collection[str] = ()
) -> Path:
    """``path`` after the checks made before anything is loaded (``config validate`` too).

    The flavor (by default the one the suffix names, else sklearn) is known, the file
    exists and is a file (not a folder), and when ``trusted_hashes`` is not empty its
    SHA-256 is one of them: a pickle runs code when it is loaded, so pinning the digests
    is what stops a swapped file from running.  A python-flavor model names an object, not
    a file: its ``module:attribute`` is well formed and its folder exists (nothing is
    imported).  An mlflow model is a folder with an ``MLmodel`` file, or a well-formed
    ``models:/`` URI (the registry is not contacted).  Raises
    :class:`~inferwatch.errors.ModelError`.
    """
    flavor = flavor or flavor_of(path) or "sklearn"
    if flavor not in FLAVORS:
        raise ModelError(f"unknown model flavor {flavor!r}; known: {', '.join(sorted(FLAVORS))}")
    if flavor == "mlflow":
        return _check_mlflow(path, trusted_hashes)
    path = Path(path)
    if flavor in OBJECT_FLAVORS:
        folder, _, _ = python_reference(path)
        if not folder.is_dir():
            raise ModelError(f"python model {path.name}: folder {folder} does not exist")
        if trusted_hashes:
            raise ModelError(
                f"python model {path.name}: trusted_model_hashes pins model files, and a "
                "python model is code imported from its module; pin that code where you "
                "deploy it, and leave trusted_model_hashes out"
            )
        return path
    if path.is_dir():
        raise ModelError(f"model path {path} is a folder, not a model file")
    if not path.is_file():
        hint = ""
        if _PYTHON_REFERENCE.fullmatch(path.name):
            hint = " (a Python object's module:attribute needs flavor python)"
        raise ModelError(f"model file {path} does not exist{hint}")
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
    flavor: str | None = None,
    *,
    feature_names: Sequence[str] | None = None,
    trusted_hashes: Collection[str] = (),
    threads: int = 1,
    classes: Sequence[str] | None = None,
    tracking_uri: str | None = None,
) -> ModelAdapter:
    """Load the model in ``path`` with the adapter for ``flavor``.

    ``flavor`` defaults to the one the path names (:func:`flavor_of`), else sklearn; the
    mlflow flavor's ``path`` is a model folder or ``models:/name/version``; the python
    flavor's ``path`` is
    ``[FOLDER/]module:attribute`` (:func:`python_reference`).  ``feature_names`` is the
    schema's column order (by default, what the model records).  ``threads`` is the
    intra-op thread count of runtimes that have one; ``classes`` names a tensor model's
    output columns; ``tracking_uri`` is the MLflow server of a ``models:/`` URI
    (:class:`LoadOptions`).
    Pickle-based files (joblib, pickle) run code when loaded: with ``trusted_hashes``
    (SHA-256 hex digests) any file whose digest is not listed is refused before it is
    read; without, every load logs a warning that names the file's digest to pin.
    Raises :class:`~inferwatch.errors.ModelError` for an unknown flavor, a missing file,
    a folder, an unlisted digest or a model that cannot be loaded.
    """
    flavor = flavor or flavor_of(path) or "sklearn"
    if threads < 1:
        raise ModelError(f"threads must be at least 1 (got {threads})")
    if classes is not None and flavor not in CLASSES_FLAVORS:
        raise ModelError(
            f"classes names the outputs of {', '.join(sorted(CLASSES_FLAVORS))} models; "
            f"a {flavor} model names its own classes"
        )
    if classes is not None and len(set(classes)) != len(classes):
        raise ModelError(f"classes lists a name twice: {list(classes)}")
    path = check_model_file(path, flavor, trusted_hashes)
    if flavor in PICKLE_FLAVORS and not trusted_hashes:
        log.warning(
            "loading %s with pickle: unpickling runs code the file names, so load only "
            "files you trust; pin its SHA-256 %s in models[].trusted_model_hashes to "
            "refuse any other file",
            path,
            file_sha256(path),
        )
    options = LoadOptions(
        threads=threads,
        classes=None if classes is None else tuple(str(c) for c in classes),
        tracking_uri=tracking_uri,
    )
    return FLAVORS[flavor](path, feature_names, options)
