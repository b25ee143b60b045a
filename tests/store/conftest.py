"""Fixtures for the store tests: the same suite runs on a SQLite file and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inferwatch.store import MemoryStore, SQLStore


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)],
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database: a SQLite file, or a fresh database in the test cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/t.db"
    url: str = request.getfixturevalue("postgres_db_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[SQLStore]:
    """A migrated ``SQLStore`` on that database, closed after the test."""
    sql_store = SQLStore(store_url)
    sql_store.upgrade()
    yield sql_store
    sql_store.close()


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration), "memory"]
)
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStore | MemoryStore]:
    """A migrated store: a SQLite file, a fresh PostgreSQL database, or in memory."""
    if request.param == "memory":
        yield MemoryStore()
        return
    url = (
        f"sqlite:///{tmp_path}/t.db"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_db_url")
    )
    store = SQLStore(url)
    store.upgrade()
    yield store
    store.close()
