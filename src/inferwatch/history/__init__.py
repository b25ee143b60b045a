"""The embedded server's own history of the series the dashboard draws (traffic, errors,
latency quantiles, confidence, predicted classes, resources), so it needs no Prometheus.

Pure and adapter-free: :class:`Sampler` turns successive registry reads (plain sample
triples) into per-interval rows, :mod:`._series` re-buckets stored rows onto the API's
time grid and folds old rows into rollups.  The server (``server._history``) runs the
sampling thread and the routes; the store keeps the rows (``ports.HistoryStore``).
"""

from __future__ import annotations

from inferwatch.history._rows import RAW, ROLLUP, ModelRow, ResourceRow
from inferwatch.history._sample import SAMPLE_NAMES, Sampler, quantiles
from inferwatch.history._series import (
    MAX_POINTS,
    MODEL_SERIES,
    RESOURCE_SERIES,
    choose_step,
    fold_models,
    fold_resources,
    model_columns,
    resource_columns,
    summarise,
)

__all__ = [
    "MAX_POINTS",
    "MODEL_SERIES",
    "RAW",
    "RESOURCE_SERIES",
    "ROLLUP",
    "SAMPLE_NAMES",
    "ModelRow",
    "ResourceRow",
    "Sampler",
    "choose_step",
    "fold_models",
    "fold_resources",
    "model_columns",
    "quantiles",
    "resource_columns",
    "summarise",
]
