"""inferwatch: production monitoring for deployed ML models.

The facade: import the public names from here (``from inferwatch import Monitor``).
Heavy modules (the server, the store, the CLI) load only when asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inferwatch._version import __version__
from inferwatch.errors import (
    ConfigError,
    InferwatchError,
    ModelError,
    SchemaError,
    StoreError,
    ValidationError,
)
from inferwatch.observation import Label, Observation, PredictionRecord
from inferwatch.schema import Feature, Schema, Target, infer_schema

if TYPE_CHECKING:
    from inferwatch.monitor import Monitor

__all__ = [
    "ConfigError",
    "Feature",
    "InferwatchError",
    "Label",
    "ModelError",
    "Monitor",
    "Observation",
    "PredictionRecord",
    "Schema",
    "SchemaError",
    "StoreError",
    "Target",
    "ValidationError",
    "__version__",
    "infer_schema",
]


def __getattr__(name: str) -> Any:
    # Monitor pulls in the engine; keep `import inferwatch` light for the CLI's start-up.
    if name == "Monitor":
        from inferwatch.monitor import Monitor

        return Monitor
    raise AttributeError(f"module 'inferwatch' has no attribute {name!r}")
