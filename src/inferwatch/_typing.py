"""Type aliases shared across layers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = ["Columns", "FeatureKind", "FloatArray", "Task"]

FeatureKind = Literal["numeric", "categorical", "boolean", "text", "embedding", "datetime"]
Task = Literal["classification", "regression", "generation"]
FloatArray = npt.NDArray[np.float64]
Columns = Mapping[str, npt.NDArray[Any]]
