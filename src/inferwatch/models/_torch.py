"""TorchScript adapter: a ``torch.jit`` archive (``.pt``) on the CPU behind ModelAdapter.

The model gets one float32 tensor ``[batch, n_features]`` of the schema's features in the
schema's order (all-numeric schemas) and runs under ``torch.inference_mode`` in eval mode;
its output is read as :mod:`inferwatch.models._tensors` describes (regression value,
binary score, or one score per class; probabilities or logits decided from the output).

Class names: ``models[].classes`` in the config, else the archive's ``classes`` extra
file (a JSON list or comma-separated names, written by
``torch.jit.save(m, path, _extra_files={"classes": json.dumps([...])})``, the way an
ONNX model carries them in its metadata), else ``0 .. k-1``.

The model is called once at load on a row of zeros: a file that is not a TorchScript
archive, a model that cannot take the schema's width, or an output of a shape no
prediction can be read from stops the server at start, naming the file, instead of
failing the first request.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inferwatch.errors import ModelError
from inferwatch.models._base import ModelPrediction
from inferwatch.models._tensors import decode_output, table

__all__ = ["TorchScriptAdapter", "load_torchscript", "set_torch_threads"]

_threads_lock = threading.Lock()
_threads_asked = 0


def set_torch_threads(threads: int) -> None:
    """Give torch's intra-op pool ``threads`` threads, or more if another model asked more.

    torch's thread count belongs to the process, not to a model: with several torch-backed
    models (TorchScript, Keras on torch) the largest ``models[].threads`` wins, whatever
    the order they load in.
    """
    import torch

    global _threads_asked
    with _threads_lock:
        _threads_asked = max(_threads_asked, threads)
        if torch.get_num_threads() != _threads_asked:
            torch.set_num_threads(_threads_asked)


def read_classes(raw: bytes | str | None) -> tuple[str, ...] | None:
    """Class names from a JSON list or comma-separated names (None when empty)."""
    text = raw.decode() if isinstance(raw, bytes) else (raw or "")
    if not text.strip():
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, list):
        return tuple(str(c) for c in parsed)
    return tuple(c.strip() for c in text.split(",") if c.strip())


def load_torchscript(
    path: Path,
    feature_names: Sequence[str] | None,
    *,
    threads: int = 1,
    classes: Sequence[str] | None = None,
) -> TorchScriptAdapter:
    """A :class:`TorchScriptAdapter` for the archive ``path`` (raises ModelError if it cannot)."""
    try:
        import torch
    except ImportError:
        raise ModelError(
            f"cannot load {path}: the torchscript flavor needs PyTorch "
            "(pip install 'inferwatch[torch]')"
        ) from None
    if feature_names is None:
        raise ModelError(
            f"the TorchScript model {path} does not record its inputs' names; pass "
            "feature_names (the schema's)"
        )
    set_torch_threads(threads)
    extra: dict[str, Any] = {"classes": ""}
    try:
        with warnings.catch_warnings():
            # torch.jit is deprecated in favour of torch.export, and still what loads a .pt
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(  # type: ignore[no-untyped-call]
                str(path), map_location="cpu", _extra_files=extra
            )
    except Exception as exc:
        text = " ".join(str(exc).split())[:200]
        hint = ""
        if "constants.pkl" in text or "not a ZIP archive" in text:
            hint = " (a TorchScript archive is written by torch.jit.save, not torch.save)"
        raise ModelError(
            f"cannot load TorchScript model {path}: {type(exc).__name__}: {text}{hint}"
        ) from exc
    module.eval()
    named = tuple(classes) if classes else read_classes(extra.get("classes"))
    return TorchScriptAdapter(module, feature_names, classes=named, source=str(path))


class TorchScriptAdapter:
    """Predict with a TorchScript module; see the module docstring for inputs and outputs."""

    flavor = "torchscript"

    def __init__(
        self,
        module: Any,
        feature_names: Sequence[str],
        *,
        classes: Sequence[str] | None = None,
        source: str = "the TorchScript model",
    ) -> None:
        self.module = module
        self.feature_names = tuple(feature_names)
        self._source = f"TorchScript model {source}"
        self._named = None if classes is None else tuple(classes)
        # two named classes make a one-number output a binary classifier's score
        self._binary = self._named is not None and len(self._named) == 2
        self._keys: tuple[str, ...] | None = self._named
        probe = self._run(np.zeros((1, len(self.feature_names)), dtype=np.float32), at_load=True)
        if probe.ndim == 2 and probe.shape[1] > 1 and self._keys is None:
            self._keys = tuple(str(j) for j in range(probe.shape[1]))
        decode_output(
            probe, 1, classes=self._named, kind="auto", binary=self._binary, source=self._source
        )

    @property
    def classes(self) -> tuple[str, ...] | None:
        """The class names (a classifier's output), else None (a regressor)."""
        return self._keys

    def predict(self, instances: Sequence[Mapping[str, Any]]) -> list[ModelPrediction]:
        """One prediction per instance, in order."""
        x = table(instances, self.feature_names, np.float32, self._source)
        return decode_output(
            self._run(x, at_load=False),
            len(instances),
            classes=self._named,
            kind="auto",
            binary=self._binary,
            source=self._source,
        )

    def _run(self, x: np.ndarray[Any, Any], *, at_load: bool) -> np.ndarray[Any, Any]:
        import torch

        try:
            with torch.inference_mode():
                out = self.module(torch.from_numpy(x))
        except Exception as exc:
            if not at_load:
                raise
            text = " ".join(str(exc).split())[-300:]
            raise ModelError(
                f"{self._source} cannot take one float32 table of the schema's "
                f"{x.shape[1]} features ({type(exc).__name__}: {text})"
            ) from exc
        if isinstance(out, tuple | list) and len(out) == 1:
            out = out[0]
        if not isinstance(out, torch.Tensor):
            raise ModelError(f"{self._source} answered a {type(out).__name__}; expected one tensor")
        result: np.ndarray[Any, Any] = out.detach().cpu().float().numpy()
        return result
