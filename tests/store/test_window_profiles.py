"""Window profiles on every store: one row per holder and window (upserted), read without
the reader's own, pruned by window start."""

from __future__ import annotations

from typing import Any

import pytest

from inferwatch.errors import StoreError
from inferwatch.ports import WindowProfileStore
from inferwatch.store import MemoryStore, SQLStore


@pytest.fixture
def profiles(any_store: SQLStore | MemoryStore) -> WindowProfileStore:
    """Every store (tests/store/conftest.py's ``any_store``)."""
    return any_store


def row(start: float, n: int, model: str = "m", **extra: Any) -> dict[str, Any]:
    # a profile's JSON as FrameProfile.to_dict writes it: NaN and odd text must survive
    profile = {"n_rows": n, "mean": float("nan"), "unseen": {"a\x00b": 1, "é": 2}, **extra}
    return {"model": model, "version": "1", "window_start": start, "profile": profile, "rows": n}


def test_each_holder_keeps_its_newest_row_of_a_window(profiles: WindowProfileStore) -> None:
    assert profiles.save_window_profiles("a", [row(120.0, 5), row(180.0, 1)]) == 2
    assert profiles.save_window_profiles("b", [row(120.0, 7)]) == 1
    assert profiles.save_window_profiles("a", [row(120.0, 9)]) == 1  # the newest replaces

    found = profiles.load_window_profiles("m", "1", 120.0)
    assert [(r["holder"], r["rows"]) for r in found] == [("a", 9), ("b", 7)]
    prof = found[0]["profile"]
    assert prof["n_rows"] == 9 and prof["mean"] != prof["mean"]  # NaN came back
    assert prof["unseen"] == {"a\x00b": 1, "é": 2}
    assert found[0]["updated_at"].tzinfo is not None
    # the reader leaves its own row out; other windows, models and versions are apart
    assert [
        r["holder"] for r in profiles.load_window_profiles("m", "1", 120, exclude_holder="a")
    ] == ["b"]
    assert [r["rows"] for r in profiles.load_window_profiles("m", "1", 180.0)] == [1]
    assert profiles.load_window_profiles("m", "2", 120.0) == []
    assert profiles.load_window_profiles("other", "1", 120.0) == []
    assert profiles.save_window_profiles("a", []) == 0


def test_prune_deletes_windows_that_start_before_the_bound(profiles: WindowProfileStore) -> None:
    profiles.save_window_profiles("a", [row(60.0, 1), row(120.0, 2), row(180.0, 3)])
    profiles.save_window_profiles("b", [row(60.0, 4)])
    assert profiles.prune_window_profiles(120.0) == 2
    assert profiles.load_window_profiles("m", "1", 60.0) == []
    assert [r["rows"] for r in profiles.load_window_profiles("m", "1", 120.0)] == [2]
    assert profiles.prune_window_profiles(120.0) == 0


def test_an_empty_holder_is_refused(profiles: WindowProfileStore) -> None:
    with pytest.raises(ValueError, match="holder"):
        profiles.save_window_profiles("", [row(60.0, 1)])


def test_a_store_that_cannot_answer_raises_store_error() -> None:
    store = MemoryStore(available=False)
    with pytest.raises(StoreError):
        store.save_window_profiles("a", [row(60.0, 1)])
    with pytest.raises(StoreError):
        store.load_window_profiles("m", "1", 60.0)
