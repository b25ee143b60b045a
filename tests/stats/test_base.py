"""The result, the plug-in, category counts and alignment."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from inferwatch import stats
from inferwatch.stats import (
    Counts,
    DriftInputError,
    DriftResult,
    UnknownTestError,
    align,
    counts_from_values,
)
from inferwatch.stats._base import make_result


def test_to_dict_gives_plain_json_types() -> None:
    result = DriftResult(
        test="x",
        statistic=float("nan"),
        p_value=None,
        threshold=0.1,
        drift_detected=False,
        effect_size=float("inf"),
        mode="exact",
        details={"n": np.int64(3), "share": np.float64(0.5), "bins": (1, 2), "sub": {"v": np.nan}},
    )
    out = result.to_dict()
    assert out["statistic"] is None
    assert out["effect_size"] is None
    assert out["details"] == {"n": 3, "share": 0.5, "bins": [1, 2], "sub": {"v": None}}
    assert type(out["details"]["n"]) is int
    json.dumps(out, allow_nan=False)


@pytest.mark.parametrize(
    ("kind", "statistic", "p_value", "drifted"),
    [
        ("p_value", 1.0, 0.049, True),
        ("p_value", 1.0, 0.05, False),  # strictly below the threshold
        ("distance", 0.05, None, True),  # at the threshold counts
        ("distance", 0.0499, None, False),
    ],
)
def test_make_result_decides_by_statistic_kind(
    kind: str, statistic: float, p_value: float | None, drifted: bool
) -> None:
    result = make_result("t", kind, statistic, p_value, 0.05, None, "exact", {})  # type: ignore[arg-type]
    assert result.drift_detected is drifted


def test_a_p_value_test_without_p_value_is_a_bug() -> None:
    with pytest.raises(ValueError, match="needs a p-value"):
        make_result("t", "p_value", 1.0, None, 0.05, None, "exact", {})


def test_counts_validate_their_shape() -> None:
    with pytest.raises(DriftInputError, match="2 categories but 1 counts"):
        Counts(("a", "b"), np.array([1], dtype=np.int64))
    with pytest.raises(DriftInputError, match="unique"):
        Counts(("a", "a"), np.array([1, 2], dtype=np.int64))
    with pytest.raises(DriftInputError, match="non-negative"):
        Counts(("a",), np.array([-1], dtype=np.int64))


def test_counts_from_mapping_and_equality() -> None:
    c = Counts.from_mapping({"x": 2, "y": 0}, missing=1)
    assert c.total == 3
    assert c == Counts(("x", "y"), np.array([2, 0], dtype=np.int64), 1)
    assert c != Counts(("x", "y"), np.array([2, 0], dtype=np.int64), 0)


def test_counts_from_values_treats_none_and_nan_as_missing() -> None:
    c = counts_from_values(np.array(["b", None, "a", float("nan"), "b"], dtype=object))
    assert c.categories == ("a", "b")
    assert c.counts.tolist() == [1, 2]
    assert c.missing == 2


def test_counts_from_values_labels_numbers_canonically() -> None:
    ints = counts_from_values(np.array([1, 2, 2]))
    floats = counts_from_values(np.array([1.0, 2.0, 2.0, np.nan, 2.5]))
    assert ints.categories == ("1", "2")
    assert floats.categories == ("1", "2", "2.5")
    assert floats.missing == 1
    assert counts_from_values(np.array([True, False, True])).categories == ("False", "True")
    assert counts_from_values(["x", "y", "x"]).counts.tolist() == [2, 1]


def test_align_puts_unseen_categories_after_the_reference_and_missing_last() -> None:
    ref = Counts.from_mapping({"b": 3, "a": 1}, missing=2)
    cur = Counts.from_mapping({"z": 4, "a": 5, "y": 1}, missing=7)
    ref_vec, cur_vec, labels = align(ref, cur)
    assert labels == ("b", "a", "z", "y", None)
    assert ref_vec.tolist() == [3, 1, 0, 0, 2]
    assert cur_vec.tolist() == [0, 5, 4, 1, 7]


def test_compare_routes_each_form_and_refuses_what_a_test_does_not_take() -> None:
    ks = stats.get("ks")
    with pytest.raises(DriftInputError, match="does not take 'categorical'"):
        ks.compare(["a"], ["b"], kind="categorical")
    with pytest.raises(DriftInputError, match="no counts form"):
        ks.compare(counts_from_values(["a"]), counts_from_values(["b"]))
    with pytest.raises(DriftInputError, match="same form"):
        ks.compare(counts_from_values(["a"]), [1.0])
    chi = stats.get("chi_square")
    assert chi.compare(["a", "b"], ["a", "b"], kind="boolean").p_value == 1.0
    result = ks.compare([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], threshold=0.5)
    assert result.threshold == 0.5


def test_unknown_test_error_is_a_key_error_with_a_readable_message() -> None:
    error = UnknownTestError("no drift test named 'x'")
    assert isinstance(error, KeyError)
    assert str(error) == "no drift test named 'x'"


def test_results_carry_python_floats() -> None:
    result = stats.ks_test(np.arange(10.0), np.arange(10.0) + 0.5)
    assert type(result.statistic) is float
    assert type(result.p_value) is float
    assert math.isfinite(result.statistic)
