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

if TYPE_CHECKING:
    from inferwatch.monitor import Monitor
    from inferwatch.schema import Feature, Schema, Target, infer_schema

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


_SCHEMA_NAMES = frozenset({"Feature", "Schema", "Target", "infer_schema"})


def __getattr__(name: str) -> Any:
    # Monitor pulls in the engine and the schema names pull in numpy: keep
    # `import inferwatch` light for the CLI's start-up (`inferwatch --help` needs neither).
    if name == "Monitor":
        from inferwatch.monitor import Monitor

        return Monitor
    if name in _SCHEMA_NAMES:
        from inferwatch import schema

        return getattr(schema, name)
    raise AttributeError(f"module 'inferwatch' has no attribute {name!r}")
