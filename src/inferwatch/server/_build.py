"""The composition root: ``build_app(settings)`` opens the store, loads models, builds the app."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from inferwatch.config import ModelSettings, ServerSettings, Settings
from inferwatch.metrics import Metrics
from inferwatch.monitor import Monitor
from inferwatch.server._app import create_app
from inferwatch.server._served import ServedModel

if TYPE_CHECKING:
    from fastapi import FastAPI

    from inferwatch.ports import Store
    from inferwatch.schema import Schema

__all__ = ["build_app", "load_served_model"]

log = logging.getLogger("inferwatch.server")


def _schema_and_rows(m: ModelSettings) -> tuple[Schema, int]:
    """The model's schema (from its YAML, else inferred) and its reference's row count."""
    from inferwatch.io import load_schema, read_columns
    from inferwatch.schema import infer_schema

    # read the reference once: to infer the schema and to count its rows
    columns = read_columns(m.reference) if m.reference is not None else None
    if m.schema_path is not None:
        schema = load_schema(m.schema_path)
    else:
        assert columns is not None  # ModelSettings requires a schema or a reference
        schema = infer_schema(columns, target=m.target, prediction=m.prediction)
    n_rows = len(next(iter(columns.values()))) if columns else 0
    return schema, n_rows


def load_served_model(
    m: ModelSettings, schema: Schema, metrics: Metrics, server: ServerSettings
) -> ServedModel:
    """Load one configured model behind its schema (raises ModelError if it cannot)."""
    from inferwatch.models import load_model

    adapter = load_model(m.path, m.flavor, feature_names=schema.names)
    return ServedModel.build(
        m.name,
        m.version,
        adapter,
        schema,
        metrics,
        max_batch=server.max_batch_size,
        allow_extra=server.allow_extra_features,
    )


def build_app(settings: Settings) -> FastAPI:
    """The app for ``settings``: store opened (and migrated), models loaded and registered.

    Raises ConfigError, SchemaError, InputFileError, ModelError or StoreError at start
    rather than serving a broken model.
    """
    from inferwatch.store import open_store

    store: Store = open_store(settings.store.url)
    try:
        if settings.store.auto_migrate:
            store.upgrade()
        metrics = Metrics(CollectorRegistry())
        models = []
        for m in settings.models:
            schema, n_rows = _schema_and_rows(m)
            models.append(load_served_model(m, schema, metrics, settings.server))
            store.register_model(m.name, m.version, flavor=m.flavor, uri=str(m.path))
            store.register_reference(
                m.name,
                m.version,
                uri=None if m.reference is None else str(m.reference),
                n_rows=n_rows,
                schema=schema.to_dict(),
            )
            log.info("loaded model %s version %s from %s", m.name, m.version, m.path)
    except BaseException:
        store.close()
        raise
    s = settings.store
    monitor = Monitor(
        store,
        metrics=metrics,
        queue_size=s.queue_size,
        batch_size=s.batch_size,
        flush_interval=s.flush_interval_seconds,
        enqueue_timeout=s.enqueue_timeout_seconds,
    )
    return create_app(settings, models=models, monitor=monitor, store=store, metrics=metrics)
