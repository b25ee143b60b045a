"""CategoricalProfile (and its boolean form): counts, unseen values, the cap, types, round trips."""

from __future__ import annotations

import collections
import json
import pickle

import numpy as np
import pytest

from inferwatch.profile import CategoricalProfile


def _objects(values: list[object]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def test_counts_match_a_counter_over_the_batches(rng: np.random.Generator) -> None:
    cats = tuple(f"c{i}" for i in range(20))
    pool = np.array([*cats, "new_a", "new_b", None], dtype=object)
    prof = CategoricalProfile(cats)
    seen: collections.Counter[object] = collections.Counter()
    for _ in range(20):
        batch = pool[rng.integers(0, len(pool), int(rng.integers(0, 500)))]
        prof.update_many(batch)
        seen.update(batch.tolist())
    assert prof.frequencies == {c: seen[c] for c in cats}
    assert prof.counts.tolist() == [seen[c] for c in cats]
    assert prof.unseen == {"new_a": seen["new_a"], "new_b": seen["new_b"]}
    assert prof.missing == seen[None] and prof.other == 0
    assert prof.n_unseen == seen["new_a"] + seen["new_b"]
    assert prof.count == sum(seen.values())
    assert prof.full().tolist() == [seen[None], *[seen[c] for c in cats], prof.n_unseen]


def test_numpy_string_arrays_and_lists_are_accepted() -> None:
    prof = CategoricalProfile(("a", "b")).update_many(np.array(["a", "a", "z"]))
    prof.update_many(["b", "a"]).update("b")
    assert prof.frequencies == {"a": 3, "b": 2} and prof.unseen == {"z": 1}


def test_hundred_thousand_distinct_values_stay_bounded() -> None:
    prof = CategoricalProfile(("a",), max_unseen=1000)
    for start in range(0, 100_000, 10_000):
        prof.update_many(np.array([f"v{i}" for i in range(start, start + 10_000)], dtype=object))
    prof.update_many(np.array(["a", "v5", "v99999"], dtype=object))
    assert len(prof.unseen) == 1000 and prof.unseen["v5"] == 2
    assert prof.other == 100_000 - 1000 + 1  # v99999 arrived after the cap: "other"
    assert prof.n_unseen == 100_002 and prof.frequencies == {"a": 1}
    assert len(json.dumps(prof.to_dict())) < 30_000
    assert prof.top_unseen(2) == [("v5", 2), ("v0", 1)]


def test_mixed_types_are_counted_invalid_not_raised() -> None:
    values = _objects(["a", 1, 2.5, None, float("nan"), [1, 2], {"k": 1}, True, b"a", "b"])
    prof = CategoricalProfile(("a", "b")).update_many(values)
    assert prof.frequencies == {"a": 1, "b": 1}
    assert (prof.missing, prof.invalid, prof.n_unseen, prof.count) == (2, 6, 0, 10)
    prof.update_many(np.array([1.0, np.nan, 3.0]))  # a float column declared categorical
    assert (prof.missing, prof.invalid) == (3, 8)


def test_boolean_profile() -> None:
    prof = CategoricalProfile.for_boolean()
    prof.update_many(np.array([True, False, True]))
    prof.update_many(_objects([True, None, np.True_, False, 1, "yes", float("nan"), [0]]))
    assert prof.categories == ("False", "True")
    assert prof.frequencies == {"False": 2, "True": 4}
    assert (prof.missing, prof.invalid, prof.n_unseen, prof.count) == (2, 3, 0, 11)
    assert prof.is_boolean
    with pytest.raises(ValueError, match="boolean"):
        CategoricalProfile(("a", "b"), boolean=True)


def test_empty_batch_and_missing_rows() -> None:
    prof = CategoricalProfile(("a",)).update_many(np.array([], dtype=object))
    assert prof.count == 0
    prof.add_missing(4)
    assert (prof.count, prof.missing) == (4, 4)
    with pytest.raises(ValueError, match=">= 0"):
        prof.add_missing(-1)
    with pytest.raises(ValueError, match="one-dimensional"):
        prof.update_many(np.array([["a"]], dtype=object))


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="distinct"):
        CategoricalProfile(("a", "a"))
    with pytest.raises(ValueError, match="distinct strings"):
        CategoricalProfile((1, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_unseen"):
        CategoricalProfile(("a",), max_unseen=-1)


def test_merge_is_exact_below_the_cap(rng: np.random.Generator) -> None:
    pool = np.array(["a", "b", "x", "y", "z", None], dtype=object)
    a_vals, b_vals = pool[rng.integers(0, 6, 300)], pool[rng.integers(0, 6, 200)]
    a = CategoricalProfile(("a", "b")).update_many(a_vals)
    b = CategoricalProfile(("a", "b")).update_many(b_vals)
    both = CategoricalProfile(("a", "b")).update_many(np.concatenate([a_vals, b_vals]))
    assert a + b == both == b + a
    assert a.count == 300  # merging made new profiles
    a += b
    assert a == both


def test_merge_past_the_cap_keeps_totals_exact() -> None:
    a = CategoricalProfile((), max_unseen=3).update_many(np.array(["p", "q", "r", "s"]))
    b = CategoricalProfile((), max_unseen=3).update_many(np.array(["s", "t", "p"]))
    merged = a + b
    assert merged.unseen == {"p": 2, "q": 1, "r": 1}
    assert merged.other == 3 and merged.n_unseen == 7 == a.n_unseen + b.n_unseen
    with pytest.raises(ValueError, match="categories"):
        _ = a + CategoricalProfile(("x",), max_unseen=3)
    with pytest.raises(TypeError):
        a += 1  # type: ignore[arg-type]


def test_round_trip_through_json_and_pickle() -> None:
    prof = CategoricalProfile(("a", "b"), max_unseen=2)
    prof.update_many(_objects(["a", "z", "y", "x", None, 3]))
    again = CategoricalProfile.from_dict(json.loads(json.dumps(prof.to_dict())))
    assert again == prof and list(again.unseen) == ["z", "y"]
    assert pickle.loads(pickle.dumps(prof)) == prof
    bare = prof.to_dict(categories=False)
    assert CategoricalProfile.from_dict(bare, ("a", "b")) == prof
    with pytest.raises(ValueError, match="categories"):
        CategoricalProfile.from_dict(bare)
    with pytest.raises(ValueError, match="add up"):
        CategoricalProfile.from_dict({**prof.to_dict(), "count": 99})
    boolean = CategoricalProfile.for_boolean().update_many(np.array([True]))
    assert CategoricalProfile.from_dict(boolean.to_dict()) == boolean


def test_get_and_repr() -> None:
    prof = CategoricalProfile(("a",)).update_many(np.array(["a", "b", "b"], dtype=object))
    summary = prof.get()
    assert summary.frequencies == {"a": 1} and summary.top_unseen == (("b", 2),)
    assert summary.n_unseen == 2 and "unseen=2" in repr(prof)
    assert prof.isclose(prof.copy()) and not prof.isclose(1)
