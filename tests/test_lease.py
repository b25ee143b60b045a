"""Leadership: one replica holds the evaluator lease, and it moves when its holder goes."""

from __future__ import annotations

import time

from inferwatch.lease import Leadership
from inferwatch.store import MemoryStore


def test_the_first_replica_leads_the_second_follows_and_takes_over_after_a_release() -> None:
    store = MemoryStore()
    seen: list[tuple[str, bool]] = []
    a = Leadership(store, holder="a", ttl_seconds=30, on_change=lambda b: seen.append(("a", b)))
    b = Leadership(store, holder="b", ttl_seconds=30, on_change=lambda b: seen.append(("b", b)))
    try:
        assert a.start() is True
        assert b.start() is False
        assert (a.is_leader, b.is_leader) == (True, False)
        assert b.tick() is False  # a's lease is live
        a.stop()  # graceful: released at once
        assert not a.is_leader
        assert b.tick() is True
        row = store.query_lease("evaluator")
        assert row is not None and row["holder"] == "b"
    finally:
        a.stop()
        b.stop()
    assert ("a", True) in seen and ("a", False) in seen and ("b", True) in seen


def test_a_dead_holder_loses_the_lease_within_its_time_to_live() -> None:
    store = MemoryStore()
    a = Leadership(store, holder="a", ttl_seconds=0.3)
    b = Leadership(store, holder="b", ttl_seconds=0.3)
    assert a.tick() is True
    # a dies without releasing (no stop, no more renewals); b's thread renews every 0.1 s
    started = time.monotonic()
    b.start()
    try:
        while not b.is_leader and time.monotonic() - started < 5:
            time.sleep(0.02)
        took = time.monotonic() - started
        assert b.is_leader
        assert took < 0.3 + 0.1 + 0.5  # time to live + one renewal round + slack
        assert a.tick() is False  # the old holder, back, finds the lease taken
    finally:
        b.stop()


def test_a_store_that_does_not_answer_keeps_the_role() -> None:
    store = MemoryStore()
    changes: list[bool] = []
    a = Leadership(store, holder="a", ttl_seconds=30, on_change=changes.append)
    assert a.tick() is True
    store.available = False
    assert a.tick() is True and a.errors == 1
    follower = Leadership(store, holder="b", ttl_seconds=30)
    assert follower.tick() is False and follower.errors == 1
    store.available = True
    assert follower.tick() is False
    assert changes == [True]
