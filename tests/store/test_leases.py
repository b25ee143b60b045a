"""The evaluator lease on every store: taken when free or expired, renewed by its holder."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from inferwatch.errors import StoreError
from inferwatch.ports import LeaseStore
from inferwatch.store import MemoryStore

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def test_one_holder_at_a_time_until_its_lease_expires(any_store: LeaseStore) -> None:
    assert any_store.query_lease("evaluator") is None
    assert any_store.acquire_lease("evaluator", "a", 30, now=T0)
    assert not any_store.acquire_lease("evaluator", "b", 30, now=T0 + 10 * S)
    # the holder renews: its term keeps its start, its expiry moves
    assert any_store.acquire_lease("evaluator", "a", 30, now=T0 + 20 * S)
    row = any_store.query_lease("evaluator")
    assert row is not None
    assert row["holder"] == "a"
    assert row["acquired_at"] == T0
    assert row["renewed_at"] == T0 + 20 * S
    assert row["expires_at"] == T0 + 50 * S
    assert not any_store.acquire_lease("evaluator", "b", 30, now=T0 + 49 * S)
    # a holder that stopped renewing loses it once it expired
    assert any_store.acquire_lease("evaluator", "b", 30, now=T0 + 51 * S)
    row = any_store.query_lease("evaluator")
    assert row is not None and row["holder"] == "b" and row["acquired_at"] == T0 + 51 * S
    assert not any_store.acquire_lease("evaluator", "a", 30, now=T0 + 52 * S)
    # leases are independent by name
    assert any_store.acquire_lease("other", "a", 30, now=T0 + 52 * S)


def test_a_released_lease_is_taken_at_once_and_only_its_holder_releases_it(
    any_store: LeaseStore,
) -> None:
    assert any_store.acquire_lease("evaluator", "a", 30, now=T0)
    assert not any_store.release_lease("evaluator", "b")
    assert not any_store.acquire_lease("evaluator", "b", 30, now=T0 + S)
    assert any_store.release_lease("evaluator", "a")
    assert any_store.acquire_lease("evaluator", "b", 30, now=T0 + 2 * S)
    assert not any_store.release_lease("nothing", "a")


def test_a_time_to_live_must_be_positive(any_store: LeaseStore) -> None:
    with pytest.raises(ValueError, match="positive"):
        any_store.acquire_lease("evaluator", "a", 0, now=T0)


def test_racing_replicas_get_exactly_one_holder(any_store: LeaseStore) -> None:
    """Many threads try the same free lease at the same instant: exactly one wins."""
    won: list[str] = []
    start = threading.Barrier(8)

    def race(holder: str) -> None:
        start.wait()
        try:
            if any_store.acquire_lease("evaluator", holder, 30, now=T0):
                won.append(holder)
        except StoreError:  # SQLite may refuse a concurrent writer: not a win
            pass

    threads = [threading.Thread(target=race, args=(f"r{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(won) == 1
    row = any_store.query_lease("evaluator")
    assert row is not None and row["holder"] == won[0]


def test_a_store_that_is_down_raises_store_error() -> None:
    store = MemoryStore(available=False)
    with pytest.raises(StoreError):
        store.acquire_lease("evaluator", "a", 30, now=T0)
