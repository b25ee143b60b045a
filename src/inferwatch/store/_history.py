"""The history rows (``inferwatch.history``) as table rows and back, shared by the SQL and
the in-memory store.  Non-finite numbers are stored as 0 (amounts) or NULL (quantiles):
JSON and the API carry no NaN."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from inferwatch.history import ModelRow, ResourceRow

__all__ = [
    "MODEL_COLUMNS",
    "RESOURCE_COLUMNS",
    "model_from_row",
    "model_row",
    "resource_from_row",
    "resource_row",
]

MODEL_COLUMNS: Final = (
    "model", "version", "level", "start", "seconds", "requests", "errors", "latency_count",
    "latency_sum", "latency_buckets", "latency_p50", "latency_p95", "latency_p99",
    "confidence_sum", "confidence_count", "classes",
)  # fmt: skip
RESOURCE_COLUMNS: Final = ("level", "start", "seconds", "values")


def _amount(v: float) -> float:
    return float(v) if math.isfinite(v) else 0.0


def _maybe(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _decoded(value: Any) -> dict[str, float]:
    """A JSON column's value: text (SQLite, read as text on purpose), or already decoded
    (PostgreSQL's driver decodes ``jsonb``; the memory store keeps dicts)."""
    if isinstance(value, str | bytes):
        value = msgspec.json.decode(value)
    return {str(k): float(v) for k, v in (value or {}).items()}


def _amounts(d: Mapping[str, float]) -> dict[str, float]:
    return {str(k): _amount(v) for k, v in d.items()}


def model_row(r: ModelRow) -> dict[str, Any]:
    return {
        "model": r.model,
        "version": r.version,
        "level": int(r.level),
        "start": float(r.start),
        "seconds": _amount(r.seconds),
        "requests": _amount(r.requests),
        "errors": _amount(r.errors),
        "latency_count": _amount(r.latency_count),
        "latency_sum": _amount(r.latency_sum),
        "latency_buckets": _amounts(r.latency_buckets),
        "latency_p50": _maybe(r.latency_p50),
        "latency_p95": _maybe(r.latency_p95),
        "latency_p99": _maybe(r.latency_p99),
        "confidence_sum": _amount(r.confidence_sum),
        "confidence_count": _amount(r.confidence_count),
        "classes": _amounts(r.classes),
    }


def model_from_row(row: Mapping[str, Any]) -> ModelRow:
    return ModelRow(
        model=row["model"],
        version=row["version"],
        level=int(row["level"]),
        start=float(row["start"]),
        seconds=float(row["seconds"]),
        requests=float(row["requests"]),
        errors=float(row["errors"]),
        latency_count=float(row["latency_count"]),
        latency_sum=float(row["latency_sum"]),
        latency_buckets=_decoded(row["latency_buckets"]),
        latency_p50=row["latency_p50"],
        latency_p95=row["latency_p95"],
        latency_p99=row["latency_p99"],
        confidence_sum=float(row["confidence_sum"]),
        confidence_count=float(row["confidence_count"]),
        classes=_decoded(row["classes"]),
    )


def resource_row(r: ResourceRow) -> dict[str, Any]:
    return {
        "level": int(r.level),
        "start": float(r.start),
        "seconds": _amount(r.seconds),
        "values": {str(k): float(v) for k, v in r.values.items() if math.isfinite(v)},
    }


def resource_from_row(row: Mapping[str, Any]) -> ResourceRow:
    return ResourceRow(
        level=int(row["level"]),
        start=float(row["start"]),
        seconds=float(row["seconds"]),
        values=_decoded(row["values"]),
    )
