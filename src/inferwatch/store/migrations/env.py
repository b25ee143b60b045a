"""Alembic environment for the inferwatch store, run programmatically by ``SQLStore.upgrade``.

The caller passes an open connection in ``config.attributes["connection"]`` and
Alembic migrates through it (inside the caller's transaction, if one is open).
Without one it falls back to ``sqlalchemy.url``, so the ``alembic`` command can
still be pointed at this directory when writing a new revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from inferwatch.store._tables import VERSION_TABLE, metadata


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        # SQLite cannot ALTER most things; batch mode copies the table instead
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_offline(url: str) -> None:
    context.configure(
        url=url,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("pass a connection in config.attributes or set sqlalchemy.url")
    if context.is_offline_mode():
        _run_offline(url)
        return
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


_main()
