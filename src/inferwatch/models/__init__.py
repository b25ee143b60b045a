"""Model adapters: load a model file and predict through the uniform ModelAdapter protocol.

Framework-specific adapters load on first use: ``import inferwatch.models`` does not
import scikit-learn, pandas or any optional backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inferwatch.models._base import ModelPrediction, to_python
from inferwatch.models._loader import FLAVORS, flavor_of, load_model

if TYPE_CHECKING:
    from inferwatch.models._keras import KerasAdapter
    from inferwatch.models._mlflow import MlflowPyfuncAdapter
    from inferwatch.models._onnx import OnnxAdapter
    from inferwatch.models._sklearn import SklearnAdapter
    from inferwatch.models._torch import TorchScriptAdapter

__all__ = [
    "FLAVORS",
    "KerasAdapter",
    "MlflowPyfuncAdapter",
    "ModelPrediction",
    "OnnxAdapter",
    "SklearnAdapter",
    "TorchScriptAdapter",
    "flavor_of",
    "load_model",
    "to_python",
]


def __getattr__(name: str) -> Any:
    if name == "SklearnAdapter":
        from inferwatch.models._sklearn import SklearnAdapter

        return SklearnAdapter
    if name == "OnnxAdapter":
        from inferwatch.models._onnx import OnnxAdapter

        return OnnxAdapter
    if name == "TorchScriptAdapter":
        from inferwatch.models._torch import TorchScriptAdapter

        return TorchScriptAdapter
    if name == "KerasAdapter":
        from inferwatch.models._keras import KerasAdapter

        return KerasAdapter
    if name == "MlflowPyfuncAdapter":
        from inferwatch.models._mlflow import MlflowPyfuncAdapter

        return MlflowPyfuncAdapter
    raise AttributeError(f"module 'inferwatch.models' has no attribute {name!r}")
