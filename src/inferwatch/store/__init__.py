"""The persistent store: SQLAlchemy Core tables, their Alembic migrations, and two Stores.

``SQLStore`` keeps everything in SQLite (a file, the embedded default) or PostgreSQL
(fleet mode); ``MemoryStore`` keeps it in a dict for tests.  Both implement
:class:`inferwatch.ports.Store`.  ``open_store(url)`` picks one from a URL.
"""

from __future__ import annotations

from inferwatch.ports import Store
from inferwatch.store._memory import MemoryStore
from inferwatch.store._sql import SQLStore, head_revision
from inferwatch.store._tables import (
    action_records_table,
    alert_history_table,
    alert_notifications_table,
    evaluations_table,
    labels_table,
    metadata,
    models_table,
    predictions_table,
    references_table,
    silences_table,
)

__all__ = [
    "MemoryStore",
    "SQLStore",
    "action_records_table",
    "alert_history_table",
    "alert_notifications_table",
    "evaluations_table",
    "head_revision",
    "labels_table",
    "metadata",
    "models_table",
    "open_store",
    "predictions_table",
    "references_table",
    "silences_table",
    "upgrade",
]

MEMORY_URL = "memory://"


def open_store(url: str, *, statement_timeout: float | None = 5.0) -> Store:
    """The store for ``url``: ``memory://`` gives a ``MemoryStore``, anything else a ``SQLStore``
    (each call bounded by ``statement_timeout`` seconds: ``store.statement_timeout_seconds``).

    Raises ``StoreError`` for a URL no store understands.  Nothing connects yet.
    """
    if url == MEMORY_URL:
        return MemoryStore()
    return SQLStore(url, statement_timeout=statement_timeout)


def upgrade(url: str) -> None:
    """Create or migrate the schema of the database at ``url`` to the newest revision."""
    store = open_store(url)
    try:
        store.upgrade()
    finally:
        store.close()


for _obj in (MemoryStore, SQLStore, head_revision, open_store, upgrade):
    _obj.__module__ = __name__  # reprs and docs show inferwatch.store.X
del _obj
