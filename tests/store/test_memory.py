"""MemoryStore: the same Store contract as SQLStore, plus its switch for a store that is down."""

from __future__ import annotations

import pytest

from inferwatch.errors import StoreError
from inferwatch.store import MemoryStore
from tests.store.test_sql import StoreContract, record


class TestMemoryStore(StoreContract):
    """Every check that SQLite and PostgreSQL pass, on the in-memory store."""

    @pytest.fixture
    def store(self) -> MemoryStore:
        memory = MemoryStore()
        memory.upgrade()
        return memory


def test_revision_is_none_until_upgrade() -> None:
    store = MemoryStore()
    assert store.current_revision() is None
    store.upgrade()
    assert store.current_revision() == store.head_revision()


def test_stored_values_are_copies_not_the_callers_objects() -> None:
    store = MemoryStore()
    inputs = {"x": [1, 2]}
    written = record(inputs=inputs)
    store.write_predictions([written])

    inputs["x"].append(3)

    read = store.get_prediction(written.id)
    assert read is not None
    assert read.inputs == {"x": [1, 2]}


def test_an_unavailable_store_refuses_writes_and_fails_ping() -> None:
    store = MemoryStore(available=False)

    assert store.ping() is False
    with pytest.raises(StoreError, match="unavailable"):
        store.write_predictions([record()])

    store.available = True
    assert store.ping() is True
    assert store.write_predictions([record()]) == 1
