"""MLflow adapter: an MLflow model (a local folder or ``models:/name/version``) as an adapter.

Where the model comes from:

* a local folder with an ``MLmodel`` file (what ``mlflow.<flavor>.save_model`` writes, or a
  run's downloaded ``artifacts``);
* ``models:/name/version`` or ``models:/name@alias`` in a model registry: resolved with an
  ``MlflowClient`` on ``tracking_uri`` (``models[].tracking_uri``; MLflow's own
  ``MLFLOW_TRACKING_URI`` when None), and its artifacts downloaded once, at load, into a
  temporary folder removed at exit.  The server never talks to the registry afterwards.

How it predicts (what was chosen, and why):

* The MLmodel names the **sklearn** flavor: the estimator itself is loaded with
  ``mlflow.sklearn.load_model`` and served by the scikit-learn adapter, because the
  pyfunc wrapper only calls ``predict`` and a classifier's probabilities (and its classes)
  would be lost.  Loading it unpickles (``pickle``/``cloudpickle``) or reads skops
  (MLflow 3's default, which needs the ``skops`` package): load only models you trust.
* Any other flavor: ``mlflow.pyfunc.load_model``; ``predict`` gets a pandas DataFrame of
  the features, with the signature's float and double columns cast to that type (MLflow's
  schema enforcement refuses a JSON integer where the signature says double).  A 1-D
  answer (array, list, Series, one-column DataFrame) is the prediction; a 2-D numeric
  answer of k > 1 columns is one score per class (the DataFrame's column names, or
  ``models[].classes``, or ``0 .. k-1``), read as the tensor flavors read theirs.

The signature, when the model has one, is compared with the schema at load: a column the
model needs that the schema lacks, or a tensor input whose width is not the schema's, is a
ModelError naming the model.  The model gets the signature's columns, in its order (the
schema's extra features are still monitored); without a signature, the schema's columns
in the schema's order.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inferwatch.errors import ModelError
from inferwatch.models._base import ModelPrediction, to_python
from inferwatch.models._tensors import decode_output

__all__ = ["MlflowPyfuncAdapter", "load_mlflow", "parse_registry_uri"]

log = logging.getLogger("inferwatch.models")

_FORMS = "models:/NAME/VERSION or models:/NAME@ALIAS"


def parse_registry_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``(name, version, alias)`` of ``models:/name/version`` or ``models:/name@alias``."""
    rest = uri.removeprefix("models:").lstrip("/")
    if "@" in rest and "/" not in rest:
        name, alias = rest.rsplit("@", 1)
        if name and alias:
            return name, None, alias
    elif rest.count("/") == 1:
        name, version = rest.split("/")
        if name and version.isdigit():
            return name, version, None
    raise ModelError(f"MLflow model {uri!r}: expected {_FORMS}")


def _import_mlflow(where: str) -> Any:
    """``mlflow`` with its pyfunc, sklearn and models modules (raises ModelError if absent).

    Importing ``mlflow.pyfunc`` warns about MLflow's own type hints (a UserWarning from
    inside MLflow, nothing the user can act on): silenced for the import only.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            import mlflow
            import mlflow.models
            import mlflow.pyfunc
            import mlflow.sklearn
    except ImportError:
        raise ModelError(
            f"cannot load {where}: the mlflow flavor needs MLflow "
            "(pip install 'inferwatch[mlflow]')"
        ) from None
    return mlflow


def _download(uri: str, tracking_uri: str | None) -> Path:
    """The registered model version's artifacts, downloaded into a temporary folder."""
    mlflow = _import_mlflow(uri)
    from mlflow import MlflowClient

    name, version, alias = parse_registry_uri(uri)
    where = tracking_uri or mlflow.get_tracking_uri()
    try:
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        if version is None:  # parse_registry_uri gave an alias
            version = str(client.get_model_version_by_alias(name, str(alias)).version)
        source = client.get_model_version_download_uri(name, version)
        folder = tempfile.mkdtemp(prefix="inferwatch-mlflow-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=source, dst_path=folder, tracking_uri=tracking_uri
        )
    except ModelError:
        raise
    except Exception as exc:  # MlflowException (no such model, version or alias), I/O
        text = " ".join(str(exc).split())[:300]
        raise ModelError(
            f"cannot fetch MLflow model {uri} from {where}: {type(exc).__name__}: {text}"
        ) from exc
    log.info("MLflow model %s is version %s, downloaded to %s", uri, version, local)
    return Path(local)


def load_mlflow(
    path: Path | str,
    feature_names: Sequence[str] | None,
    *,
    tracking_uri: str | None = None,
    classes: Sequence[str] | None = None,
) -> Any:
    """An adapter for the MLflow model at ``path`` (folder or ``models:/`` URI).

    Returns a :class:`~inferwatch.models.SklearnAdapter` (flavor ``mlflow``) for a model
    with the sklearn flavor, else an :class:`MlflowPyfuncAdapter`; raises ModelError.
    """
    uri = str(path)
    mlflow = _import_mlflow(uri)
    folder = _download(uri, tracking_uri) if uri.startswith("models:") else Path(path)
    if not (folder / "MLmodel").is_file():
        raise ModelError(
            f"{uri} is not an MLflow model: an MLflow model is a folder with an MLmodel file"
        )
    source = f"MLflow model {uri}"
    from mlflow.models import Model

    try:
        meta = Model.load(str(folder / "MLmodel"))
    except Exception as exc:
        raise ModelError(f"cannot read {folder / 'MLmodel'}: {exc}") from exc
    columns, casts = _signature_columns(meta, feature_names, source)
    if "sklearn" in meta.flavors:
        if classes is not None:
            raise ModelError(
                f"{source} is a scikit-learn model, which names its own classes; leave classes out"
            )
        if meta.flavors["sklearn"].get("serialization_format") in ("pickle", "cloudpickle"):
            log.warning(
                "loading %s unpickles it: unpickling runs code the file names, so load only "
                "models you trust",
                source,
            )
        try:
            estimator = mlflow.sklearn.load_model(str(folder))
        except ImportError as exc:  # skops, MLflow 3's default sklearn format
            raise ModelError(f"cannot load {source}: {exc} (pip install skops)") from exc
        except Exception as exc:
            text = " ".join(str(exc).split())[:300]
            raise ModelError(f"cannot load {source}: {type(exc).__name__}: {text}") from exc
        from inferwatch.models._sklearn import SklearnAdapter

        return SklearnAdapter(estimator, columns, flavor="mlflow", dataframe=True)
    if "python_function" not in meta.flavors:
        raise ModelError(
            f"{source} has no python_function flavor (it has {', '.join(meta.flavors)}); "
            "inferwatch serves pyfunc models"
        )
    try:
        model = mlflow.pyfunc.load_model(str(folder))
    except Exception as exc:
        text = " ".join(str(exc).split())[:300]
        raise ModelError(f"cannot load {source}: {type(exc).__name__}: {text}") from exc
    return MlflowPyfuncAdapter(model, columns, casts=casts, classes=classes, source=source)


def _signature_columns(
    meta: Any, feature_names: Sequence[str] | None, source: str
) -> tuple[list[str], dict[str, Any]]:
    """The columns the model gets and the dtype each float column is cast to."""
    schema = meta.get_input_schema()
    if schema is None:
        if feature_names is None:
            raise ModelError(f"{source} has no signature naming its inputs; pass feature_names")
        return list(feature_names), {}
    if schema.is_tensor_spec():
        (spec, *more) = schema.inputs
        width = spec.shape[-1] if len(spec.shape) == 2 else None
        if more or feature_names is None or (width not in (-1, None, len(feature_names))):
            raise ModelError(
                f"{source}'s signature takes {schema}; inferwatch feeds the schema's "
                f"{0 if feature_names is None else len(feature_names)} features as one table"
            )
        return list(feature_names), {}
    names = [str(n) for n in schema.input_names()]
    if feature_names is not None:
        required = [s.name for s in schema.inputs if getattr(s, "required", True)]
        missing = [n for n in required if n not in feature_names]
        if missing:
            raise ModelError(
                f"{source}'s signature needs column(s) {', '.join(map(repr, missing[:10]))} "
                f"that the schema does not have (it has {', '.join(feature_names[:10])})"
            )
        names = [n for n in names if n in feature_names]
    casts: dict[str, Any] = {}
    for spec in schema.inputs:
        kind = getattr(getattr(spec, "type", None), "name", None)
        if kind in ("double", "float") and spec.name in names:
            casts[spec.name] = np.float64 if kind == "double" else np.float32
    return names, casts


class MlflowPyfuncAdapter:
    """Predict with an MLflow pyfunc model; see the module docstring for its answers."""

    flavor = "mlflow"

    def __init__(
        self,
        model: Any,
        columns: Sequence[str],
        *,
        casts: Mapping[str, Any] | None = None,
        classes: Sequence[str] | None = None,
        source: str = "the MLflow model",
    ) -> None:
        self.model = model
        self.feature_names = tuple(columns)
        self._casts = dict(casts or {})
        self._named = None if classes is None else tuple(classes)
        self._keys: tuple[str, ...] | None = self._named
        self._source = source

    @property
    def classes(self) -> tuple[str, ...] | None:
        """``models[].classes``, else a DataFrame answer's column names once seen, else None."""
        return self._keys

    def predict(self, instances: Sequence[Mapping[str, Any]]) -> list[ModelPrediction]:
        """One prediction per instance, in order."""
        import pandas as pd

        data = {c: [inst.get(c) for inst in instances] for c in self.feature_names}
        frame = pd.DataFrame(data, columns=list(self.feature_names))
        for column, dtype in self._casts.items():
            frame[column] = frame[column].astype(dtype)
        out = self.model.predict(frame)
        return self._read(out, len(instances))

    def _read(self, out: Any, n: int) -> list[ModelPrediction]:
        import pandas as pd

        names: tuple[str, ...] | None = self._named
        if isinstance(out, pd.DataFrame):
            if out.shape[1] == 1:
                out = out.iloc[:, 0]
            elif names is None:
                names = tuple(str(c) for c in out.columns)
        values = np.asarray(out)
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if len(values) != n:
            raise ModelError(f"{self._source} answered {len(values)} predictions for {n} rows")
        if values.ndim == 1:
            if values.dtype.kind == "f":
                return [ModelPrediction(float(v)) for v in values.tolist()]
            return [ModelPrediction(to_python(v)) for v in values]
        if self._keys is None and names is not None:
            self._keys = names
        return decode_output(
            values, n, classes=names, kind="auto", binary=False, source=self._source
        )
