"""Window performance states on every store: one row per holder and window (upserted), read
without the reader's own, listed without the states (what changed), pruned by window start."""

from __future__ import annotations

from typing import Any

import pytest

from inferwatch.errors import StoreError
from inferwatch.ports import WindowPerformanceStore
from inferwatch.store import MemoryStore, SQLStore


@pytest.fixture
def states(any_store: SQLStore | MemoryStore) -> WindowPerformanceStore:
    """Every store (tests/store/conftest.py's ``any_store``)."""
    return any_store


def row(start: float, changes: int, model: str = "m", version: str = "1") -> dict[str, Any]:
    # a state's JSON as WindowPerformance.to_dict writes it: NaN and odd text must survive
    state = {
        "kind": "window_performance",
        "losses": [0.0, float("nan"), 1.5],
        "segments": {"region": {"a\x00b": {"n": changes}, "é": {"n": 2}}},
        "changes": changes,
    }
    return {
        "model": model,
        "version": version,
        "window_start": start,
        "state": state,
        "changes": changes,
    }


def test_each_holder_keeps_its_newest_state_of_a_window(states: WindowPerformanceStore) -> None:
    assert states.save_window_performance("a", [row(120.0, 5), row(180.0, 1)]) == 2
    assert states.save_window_performance("b", [row(120.0, 7)]) == 1
    assert states.save_window_performance("a", [row(120.0, 9)]) == 1  # the newest replaces

    found = states.load_window_performance("m", "1", 120.0)
    assert [(r["holder"], r["changes"]) for r in found] == [("a", 9), ("b", 7)]
    state = found[0]["state"]
    assert state["changes"] == 9 and state["losses"][1] != state["losses"][1]  # NaN back
    assert state["segments"]["region"] == {"a\x00b": {"n": 9}, "é": {"n": 2}}
    assert found[0]["updated_at"].tzinfo is not None
    # the reader leaves its own row out; other windows, models and versions are apart
    assert [
        r["holder"] for r in states.load_window_performance("m", "1", 120, exclude_holder="a")
    ] == ["b"]
    assert [r["changes"] for r in states.load_window_performance("m", "1", 180.0)] == [1]
    assert states.load_window_performance("m", "2", 120.0) == []
    assert states.load_window_performance("other", "1", 120.0) == []
    assert states.save_window_performance("a", []) == 0


def test_the_listing_names_each_row_and_its_change_count_without_the_state(
    states: WindowPerformanceStore,
) -> None:
    states.save_window_performance("a", [row(60.0, 1), row(120.0, 2), row(120.0, 4, "n", "2")])
    states.save_window_performance("b", [row(120.0, 3), row(180.0, 6)])

    listed = states.list_window_performance(120.0)
    assert [(r["window_start"], r["model"], r["version"], r["holder"], r["changes"])
            for r in listed] == [
        (120.0, "m", "1", "a", 2),
        (120.0, "m", "1", "b", 3),
        (120.0, "n", "2", "a", 4),
        (180.0, "m", "1", "b", 6),
    ]  # fmt: skip
    assert all("state" not in r for r in listed)
    others = states.list_window_performance(0.0, exclude_holder="b")
    assert [(r["window_start"], r["holder"]) for r in others] == [
        (60.0, "a"), (120.0, "a"), (120.0, "a")
    ]  # fmt: skip
    states.save_window_performance("b", [row(180.0, 8)])  # a new write shows in the next listing
    assert [r["changes"] for r in states.list_window_performance(180.0)] == [8]


def test_prune_deletes_windows_that_start_before_the_bound(states: WindowPerformanceStore) -> None:
    states.save_window_performance("a", [row(60.0, 1), row(120.0, 2), row(180.0, 3)])
    states.save_window_performance("b", [row(60.0, 4)])
    assert states.prune_window_performance(120.0) == 2
    assert states.load_window_performance("m", "1", 60.0) == []
    assert [r["changes"] for r in states.load_window_performance("m", "1", 120.0)] == [2]
    assert states.prune_window_performance(120.0) == 0


def test_an_empty_holder_is_refused(states: WindowPerformanceStore) -> None:
    with pytest.raises(ValueError, match="holder"):
        states.save_window_performance("", [row(60.0, 1)])


def test_a_store_that_cannot_answer_raises_store_error() -> None:
    store = MemoryStore(available=False)
    with pytest.raises(StoreError):
        store.save_window_performance("a", [row(60.0, 1)])
    with pytest.raises(StoreError):
        store.load_window_performance("m", "1", 60.0)
    with pytest.raises(StoreError):
        store.list_window_performance(0.0)
    with pytest.raises(StoreError):
        store.prune_window_performance(0.0)
