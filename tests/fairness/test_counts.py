"""GroupCounts: the counts equal a row-by-row tally, removal is exact, and the merge laws
hold (Hypothesis properties, as tests/profile/test_merge_laws.py does for profiles)."""

from __future__ import annotations

import json
import pickle
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferwatch.fairness import CELLS, GroupCounts, SegmentIndex

SETTINGS = settings(max_examples=80, deadline=None)

Row = tuple[object, bool, bool | None]  # group, predicted positive, label (None: unlabelled)

rows_st = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", None, 7]),
        st.booleans(),
        st.one_of(st.none(), st.booleans()),
    ),
    max_size=60,
)


def tally(rows: list[Row]) -> dict[str, dict[str, int]]:
    """The counts a row-by-row loop gives: the oracle for ``add``."""
    out: dict[str, Counter[str]] = {}
    for group, pred, label in rows:
        name = "missing" if group is None else str(group)
        if label is None:
            cell = "unlabelled_positive" if pred else "unlabelled_negative"
        else:
            cell = {(False, False): "tn", (False, True): "fp", (True, False): "fn"}.get(
                (label, pred), "tp"
            )
        out.setdefault(name, Counter())[cell] += 1
    return {g: {c: counter[c] for c in CELLS} for g, counter in out.items()}


def feed(counts: GroupCounts, rows: list[Row], sign: int = 1) -> GroupCounts:
    """Add rows in two calls, one labelled and one unlabelled, as a caller would."""
    for labelled in (True, False):
        part = [r for r in rows if (r[2] is not None) == labelled]
        groups = np.array([r[0] for r in part], dtype=object)
        pred = np.array([r[1] for r in part], dtype=bool)
        true = np.array([bool(r[2]) for r in part], dtype=bool) if labelled else None
        counts.add(groups, pred, true, sign=sign)
    return counts


def nonzero(counts: GroupCounts) -> dict[str, dict[str, int]]:
    return {g: c for g, c in counts.counts().items() if any(c.values())}


@SETTINGS
@given(rows_st)
def test_add_equals_a_row_by_row_tally(rows: list[Row]) -> None:
    counts = feed(GroupCounts(), rows)
    assert nonzero(counts) == tally(rows)
    assert counts.n == len(rows)


@SETTINGS
@given(rows_st, rows_st)
def test_merge_equals_counting_both(a: list[Row], b: list[Row]) -> None:
    left, right = feed(GroupCounts(), a), feed(GroupCounts(), b)
    both = feed(GroupCounts(), a + b)
    assert left + right == both
    assert right + left == both
    assert nonzero(left + right) == tally(a + b)
    assert left == feed(GroupCounts(), a)  # neither input changed
    assert left + GroupCounts() == left == GroupCounts() + left


@SETTINGS
@given(rows_st, rows_st, rows_st)
def test_merge_is_associative(a: list[Row], b: list[Row], c: list[Row]) -> None:
    x, y, z = (feed(GroupCounts(), r) for r in (a, b, c))
    assert (x + y) + z == x + (y + z)


@SETTINGS
@given(rows_st, rows_st)
def test_removal_is_exact(kept: list[Row], removed: list[Row]) -> None:
    counts = feed(GroupCounts(), kept + removed)
    feed(counts, removed, sign=-1)
    assert counts == feed(GroupCounts(), kept)


@SETTINGS
@given(rows_st, rows_st)
def test_overflow_keeps_every_row(a: list[Row], b: list[Row]) -> None:
    """Past the cap which names survive depends on order, but no row is lost or doubled
    and each row stays in its label and prediction cell."""
    small = SegmentIndex(max_values=2)
    merged = feed(GroupCounts(small), a) + feed(GroupCounts(small), b)
    assert len(merged.groups) <= 3
    assert merged.n == len(a) + len(b)
    expected = np.zeros(len(CELLS), dtype=np.int64)
    for cells in tally(a + b).values():
        expected += np.array([cells[c] for c in CELLS])
    assert merged.cells.sum(axis=0).tolist() == expected.tolist()


def test_relabelling_a_row_moves_it_between_cells() -> None:
    counts = GroupCounts()
    counts.add(["a", "b"], np.array([True, False]))  # predictions, labels not yet in
    counts.add(["a"], np.array([True]), sign=-1)  # the label for a's row arrives
    counts.add(["a"], np.array([True]), np.array([False]))
    assert counts.counts()["a"] == dict.fromkeys(CELLS, 0) | {"fp": 1}
    counts.add(["a"], np.array([True]), np.array([False]), sign=-1)  # ...and is corrected
    counts.add(["a"], np.array([True]), np.array([True]))
    assert counts.counts()["a"]["tp"] == 1
    assert counts.n == 2


def test_removing_what_was_never_added_raises_and_changes_nothing() -> None:
    counts = GroupCounts().add(["a"], np.array([True]), np.array([True]))
    before = counts.to_dict()
    with pytest.raises(ValueError, match="none were counted"):
        counts.add(["zz"], np.array([True]), np.array([True]), sign=-1)
    with pytest.raises(ValueError, match="< 0"):
        counts.add(["a", "a"], np.array([True, True]), np.array([True, True]), sign=-1)
    with pytest.raises(ValueError, match="< 0"):
        counts.add(["a"], np.array([False]), np.array([True]), sign=-1)
    assert counts.to_dict() == before


@pytest.mark.parametrize(
    ("pred", "true", "message"),
    [
        (np.array([1, 0]), None, "boolean"),
        (np.array([True]), None, "shape"),
        (np.array([True, False]), np.array([1.0, 0.0]), "boolean"),
        (np.array([True, False]), np.array([True]), "shape"),
    ],
)
def test_bad_batches_are_refused_before_anything_is_counted(
    pred: np.ndarray, true: np.ndarray | None, message: str
) -> None:
    counts = GroupCounts()
    with pytest.raises(ValueError, match=message):
        counts.add(["a", "new"], pred, true)
    assert counts.groups == ()
    assert counts.n == 0
    with pytest.raises(ValueError, match="sign"):
        counts.add(["a"], np.array([True]), sign=0)


def test_counts_own_their_index() -> None:
    shared = SegmentIndex(max_values=3)
    one, two = GroupCounts(shared), GroupCounts(shared)
    one.add(["x"], np.array([True]))
    assert shared.names == ()
    assert two.groups == ()
    assert one.segments.names == ("x",)


def test_size_does_not_grow_with_rows(rng: np.random.Generator) -> None:
    counts = GroupCounts()
    sizes = []
    for _ in range(3):
        n = 100_000
        groups = rng.integers(0, 1000, n)  # far more values than slots
        counts.add(groups, rng.random(n) < 0.5, rng.random(n) < 0.5)
        sizes.append(len(json.dumps(counts.to_dict())))
    assert len(counts.groups) == 21
    assert counts.n == 300_000
    assert max(sizes) - min(sizes) < 40  # only the digits of the counts grow


@SETTINGS
@given(rows_st)
def test_round_trips_through_json_and_pickle(rows: list[Row]) -> None:
    counts = feed(GroupCounts(SegmentIndex(max_values=3)), rows)
    back = GroupCounts.from_dict(json.loads(json.dumps(counts.to_dict())))
    assert back == counts
    assert back.to_dict() == counts.to_dict()
    assert pickle.loads(pickle.dumps(counts)).to_dict() == counts.to_dict()
    assert counts.copy().to_dict() == counts.to_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "segment_index"}, "kind"),
        ({"cells": ["tp"]}, "cells"),
        ({"counts": [[1, 2, 3, 4, 5, 6]]}, "rows"),
        ({"counts": [[1, 2, 3, 4, 5, -6], [0] * 6]}, "rows"),
        ({"counts": [[1, 2, 3, 4, 5, 6.5], [0] * 6]}, "rows"),
        ({"segments": None}, "segments"),
    ],
)
def test_from_dict_refuses_bad_counts(change: dict[str, object], message: str) -> None:
    good = GroupCounts().add(["a", "b"], np.array([True, False])).to_dict()
    with pytest.raises(ValueError, match=message):
        GroupCounts.from_dict({**good, **change})


def test_merging_needs_the_same_settings() -> None:
    with pytest.raises(ValueError, match="different settings"):
        GroupCounts(SegmentIndex(max_values=2)).merge(GroupCounts())
    with pytest.raises(TypeError):
        GroupCounts().merge(SegmentIndex())  # type: ignore[arg-type]


def test_a_debt_of_rows_counted_elsewhere_settles_once_the_counts_are_merged() -> None:
    """Process b learns labels of rows process a counted: b cannot take them out of its
    own counts (it never had them), so it owes them; merged, the debt settles exactly."""
    rng = np.random.default_rng(11)
    groups = rng.choice(["f", "m", "x"], 300)
    pred = rng.random(300) < 0.4
    truth = rng.random(300) < 0.5
    whole, a, b = GroupCounts(), GroupCounts(), GroupCounts()
    whole.add(groups, pred)
    a.add(groups[:200], pred[:200])
    b.add(groups[200:], pred[200:])
    labelled = np.arange(0, 300, 3)  # every third row's label, all sent to b
    whole.add(groups[labelled], pred[labelled], sign=-1)
    whole.add(groups[labelled], pred[labelled], truth[labelled])
    mine, owed = labelled[labelled >= 200], labelled[labelled < 200]
    b.add(groups[mine], pred[mine], sign=-1)
    with pytest.raises(ValueError, match="cannot remove"):
        b.add(groups[owed], pred[owed], sign=-1)  # refused: b never counted them
    debt = GroupCounts().add(groups[owed], pred[owed])
    b.add(groups[labelled], pred[labelled], truth[labelled])
    merged = a.copy()
    merged += b
    assert merged != whole  # the unlabelled counts of the owed rows are still in
    rest = merged.settle(debt)
    assert merged == whole and rest.n == 0
    # what a does not hold stays owed
    c = GroupCounts().add(["f"], np.array([True]))
    left = c.settle(GroupCounts().add(["f", "f", "z"], np.array([True, True, False])))
    assert c.n == 0 and left.counts()["f"]["unlabelled_positive"] == 1 and left.n == 2
