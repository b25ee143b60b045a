"""Keras adapter: a Keras 3 model (``.keras``, or legacy ``.h5``) behind ModelAdapter.

Keras runs on the **torch** backend: ``KERAS_BACKEND=torch`` is set before keras is first
imported unless the environment names another backend, so serving a Keras model needs
torch (the torchscript flavor's CPU build) and not TensorFlow's hundreds of MB.  A ``.h5``
file needs h5py.  The model is loaded without its training configuration
(``compile=False``: serving never trains) and called with ``predict_on_batch``, which runs
without gradients and without ``predict``'s per-call data pipeline (a millisecond less a
call for one row).

Input: one table ``[batch, n_features]`` of the schema's features in the schema's order,
in the model input's dtype (float32 unless it declares another, e.g. int for an Embedding).
Output: read as :mod:`inferwatch.models._tensors` describes; the output layer's activation
says whether the scores are probabilities (softmax, sigmoid) or logits (linear), and a
single sigmoid unit is a binary classifier (the probability of the second class).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inferwatch.errors import ModelError
from inferwatch.models._base import ModelPrediction
from inferwatch.models._tensors import OutputKind, decode_output, table

__all__ = ["KerasAdapter", "load_keras"]

_PROBABILITY_ACTIVATIONS = frozenset({"softmax", "sigmoid", "log_softmax"})


def _import_keras(path: Path) -> Any:
    os.environ.setdefault("KERAS_BACKEND", "torch")  # read once, when keras is imported
    try:
        import keras
    except ImportError as exc:
        backend = os.environ["KERAS_BACKEND"]
        raise ModelError(
            f"cannot load {path}: the keras flavor needs Keras 3 and its backend "
            f"({backend}): pip install 'inferwatch[keras]' ({exc})"
        ) from None
    return keras


def load_keras(
    path: Path,
    feature_names: Sequence[str] | None,
    *,
    threads: int = 1,
    classes: Sequence[str] | None = None,
) -> KerasAdapter:
    """A :class:`KerasAdapter` for the Keras file ``path`` (raises ModelError if it cannot)."""
    keras = _import_keras(path)
    if feature_names is None:
        raise ModelError(
            f"the Keras model {path} does not record its inputs' names; pass feature_names "
            "(the schema's)"
        )
    if keras.backend.backend() == "torch":
        from inferwatch.models._torch import set_torch_threads

        set_torch_threads(threads)
    try:
        model = keras.saving.load_model(str(path), compile=False)
    except ImportError as exc:  # h5py for a .h5 file
        raise ModelError(f"cannot load Keras model {path}: {exc} (pip install h5py)") from exc
    except Exception as exc:
        text = " ".join(str(exc).split())[:300]
        raise ModelError(f"cannot load Keras model {path}: {type(exc).__name__}: {text}") from exc
    return KerasAdapter(model, feature_names, classes=classes, source=str(path))


class KerasAdapter:
    """Predict with a Keras model; see the module docstring for inputs and outputs."""

    flavor = "keras"

    def __init__(
        self,
        model: Any,
        feature_names: Sequence[str],
        *,
        classes: Sequence[str] | None = None,
        source: str = "the Keras model",
    ) -> None:
        self.model = model
        self.feature_names = tuple(feature_names)
        self._source = f"Keras model {source}"
        inputs = list(getattr(model, "inputs", None) or [])
        if len(inputs) != 1:
            raise ModelError(
                f"{self._source} takes {len(inputs)} inputs; inferwatch feeds one table "
                "[batch, features]"
            )
        shape = tuple(inputs[0].shape)
        if len(shape) != 2:
            raise ModelError(
                f"{self._source} takes an input of shape {list(shape)}; inferwatch feeds one "
                "table [batch, features]"
            )
        if shape[1] is not None and shape[1] != len(self.feature_names):
            raise ModelError(
                f"{self._source} takes {shape[1]} features and the schema has "
                f"{len(self.feature_names)} ({', '.join(self.feature_names[:10])})"
            )
        self._dtype = np.dtype(str(inputs[0].dtype or "float32"))
        self._named = None if classes is None else tuple(classes)
        activation = _output_activation(model)
        self._kind: OutputKind = (
            "probabilities"
            if activation in _PROBABILITY_ACTIVATIONS
            else "logits"
            if activation == "linear"
            else "auto"
        )
        if activation == "log_softmax":
            self._kind = "logits"  # log-probabilities: their softmax is the probabilities
        width = _output_width(model)
        self._binary = width == 1 and (
            activation == "sigmoid" or (self._named is not None and len(self._named) == 2)
        )
        self._keys: tuple[str, ...] | None = self._named
        if self._keys is None and self._binary:
            self._keys = ("0", "1")
        elif self._keys is None and width is not None and width > 1:
            self._keys = tuple(str(j) for j in range(width))
        probe = np.zeros((1, len(self.feature_names)), dtype=self._dtype)
        try:
            out = self._run(probe)
        except Exception as exc:
            text = " ".join(str(exc).split())[-300:]
            raise ModelError(
                f"{self._source} cannot take one table of the schema's "
                f"{len(self.feature_names)} features ({type(exc).__name__}: {text})"
            ) from exc
        self._decode(out, 1)

    @property
    def classes(self) -> tuple[str, ...] | None:
        """The class names (a classifier's output), else None (a regressor)."""
        return self._keys

    def predict(self, instances: Sequence[Mapping[str, Any]]) -> list[ModelPrediction]:
        """One prediction per instance, in order."""
        x = table(instances, self.feature_names, self._dtype, self._source)
        return self._decode(self._run(x), len(instances))

    def _run(self, x: np.ndarray[Any, Any]) -> Any:
        out = self.model.predict_on_batch(x)
        if isinstance(out, list | tuple):
            if len(out) != 1:
                raise ModelError(f"{self._source} answered {len(out)} outputs; expected one")
            out = out[0]
        return out

    def _decode(self, out: Any, n: int) -> list[ModelPrediction]:
        return decode_output(
            out, n, classes=self._named, kind=self._kind, binary=self._binary, source=self._source
        )


def _output_activation(model: Any) -> str | None:
    """The name of the activation that makes the model's output (None when unknown).

    A Dense layer's ``activation``, or a final ``Activation``/``Softmax`` layer.
    """
    layers = list(getattr(model, "layers", None) or [])
    if not layers:
        return None
    last = layers[-1]
    if type(last).__name__ == "Softmax":
        return "softmax"
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", None)
    return str(name) if name is not None else None


def _output_width(model: Any) -> int | None:
    """The number of output columns (None when the model does not declare it)."""
    shape = getattr(model, "output_shape", None)
    if isinstance(shape, list) and len(shape) == 1:
        shape = shape[0]
    if isinstance(shape, tuple) and len(shape) == 2 and isinstance(shape[1], int):
        return shape[1]
    if isinstance(shape, tuple) and len(shape) == 1:
        return 1
    return None
