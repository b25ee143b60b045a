"""The prediction every model adapter returns, and numpy-to-plain-Python conversion for JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ModelPrediction", "to_python"]


@dataclass(frozen=True, slots=True)
class ModelPrediction:
    """One instance's prediction (implements :class:`inferwatch.ports.Prediction`).

    ``value`` is the predicted label or number as a plain Python value; ``probabilities``
    maps each class (as a string) to its probability for classifiers that give them;
    ``score`` is the top probability, or None.
    """

    value: Any
    probabilities: dict[str, float] | None = None
    score: float | None = None


def to_python(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into int/float/str/bool/list."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    return value
