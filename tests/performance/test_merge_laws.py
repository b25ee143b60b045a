"""The merge laws of the performance summaries (Hypothesis properties).

``summary(A) + summary(B) == summary(A and B)`` EXACTLY (fixed-point and exact float sums,
see ``performance._exact``), merging is associative and commutative with the empty summary
as identity, adding then removing pairs (``sign=-1``, a replaced label) restores the state
exactly, ``to_dict``/``from_dict`` (through JSON) and pickle round-trip, and the state's
size does not depend on the rows seen.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from inferwatch.performance import ClassificationSummary, RegressionSummary

SETTINGS = settings(max_examples=60, deadline=None)
CLASSES = ("a", "b", "c")

probabilities = st.one_of(
    st.floats(0.0, 1.0),
    st.sampled_from([0.0, 1.0, 0.5, 0.1, 0.3, np.nan, 1.5, -0.2]),
)
reals = st.one_of(
    st.floats(-1e9, 1e9, allow_nan=False),
    st.sampled_from([0.0, -0.0, 1e-300, 5e-324, 1e15, 1e149, 1e151, np.nan, np.inf]),
)


@st.composite
def class_rows(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    n = draw(st.integers(0, 30))
    labels = st.integers(-1, len(CLASSES) - 1)
    yt = np.array(draw(st.lists(labels, min_size=n, max_size=n)), dtype=np.intp)
    yp = np.array(draw(st.lists(labels, min_size=n, max_size=n)), dtype=np.intp)
    flat = draw(st.lists(probabilities, min_size=3 * n, max_size=3 * n))
    return yt, yp, np.array(flat, dtype=np.float64).reshape(n, 3)


@st.composite
def reg_rows(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    n = draw(st.integers(0, 30))
    yt = np.array(draw(st.lists(reals, min_size=n, max_size=n)), dtype=np.float64)
    yp = np.array(draw(st.lists(reals, min_size=n, max_size=n)), dtype=np.float64)
    return yt, yp


def _cls(*parts: tuple[np.ndarray, ...]) -> ClassificationSummary:
    s = ClassificationSummary(CLASSES, bins=20)
    for yt, yp, p in parts:
        s.observe(yp, p)
        s.add_labels(yt, yp, p)
    return s


def _reg(*parts: tuple[np.ndarray, ...]) -> RegressionSummary:
    s = RegressionSummary()
    for yt, yp in parts:
        s.observe(yp)
        s.add_labels(yt, yp)
    return s


def _union(*parts: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    return tuple(np.concatenate(cols) for cols in zip(*parts, strict=True))


@SETTINGS
@given(a=class_rows(), b=class_rows(), c=class_rows())
def test_classification_merge_laws(a: Any, b: Any, c: Any) -> None:
    sa, sb, sc = _cls(a), _cls(b), _cls(c)
    assert sa + sb == _cls(_union(a, b)) == _cls(a, b)
    assert (sa + sb) + sc == sa + (sb + sc)
    assert sa + sb == sb + sa
    empty = ClassificationSummary(CLASSES, bins=20)
    assert sa + empty == sa == empty + sa
    assert _metrics_equal((sa + sb).metrics(), _cls(_union(a, b)).metrics())


@SETTINGS
@given(a=class_rows(), b=class_rows())
def test_classification_add_then_remove_restores_exactly(a: Any, b: Any) -> None:
    s = _cls(a)
    before = s.copy()
    s.add_labels(*b)
    s.add_labels(*b, sign=-1)
    assert s == before
    # a replaced label: a pair added in one batch comes out alone
    yt, yp, p = a
    if len(yt):
        s.add_labels(yt[:1], yp[:1], p[:1], sign=-1)
        assert s == _cls((yt[:0], yp[:0], p[:0])) + _observed(a) + _labelled(a, 1)


def _observed(a: Any) -> ClassificationSummary:
    return ClassificationSummary(CLASSES, bins=20).observe(a[1], a[2])


def _labelled(a: Any, start: int) -> ClassificationSummary:
    yt, yp, p = a
    return ClassificationSummary(CLASSES, bins=20).add_labels(yt[start:], yp[start:], p[start:])


@SETTINGS
@given(a=class_rows())
def test_classification_round_trips(a: Any) -> None:
    s = _cls(a)
    assert ClassificationSummary.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert pickle.loads(pickle.dumps(s)) == s


@SETTINGS
@given(a=reg_rows(), b=reg_rows(), c=reg_rows())
def test_regression_merge_laws(a: Any, b: Any, c: Any) -> None:
    sa, sb, sc = _reg(a), _reg(b), _reg(c)
    assert sa + sb == _reg(_union(a, b)) == _reg(a, b)
    assert (sa + sb) + sc == sa + (sb + sc)
    assert sa + sb == sb + sa
    assert sa + RegressionSummary() == sa
    assert _metrics_equal((sa + sb).metrics(), _reg(_union(a, b)).metrics())


@SETTINGS
@given(a=reg_rows(), b=reg_rows())
def test_regression_add_then_remove_restores_exactly(a: Any, b: Any) -> None:
    s = _reg(a)
    before = s.copy()
    s.add_labels(*b)
    s.add_labels(*b, sign=-1)
    assert s == before
    yt, yp = a
    if len(yt):
        s.add_labels(yt[:1], yp[:1], sign=-1)
        expected = RegressionSummary().observe(yp).add_labels(yt[1:], yp[1:])
        assert s == expected


@SETTINGS
@given(a=reg_rows())
def test_regression_round_trips(a: Any) -> None:
    s = _reg(a)
    assert RegressionSummary.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert pickle.loads(pickle.dumps(s)) == s


def test_state_size_does_not_grow_with_rows() -> None:
    rng = np.random.default_rng(0)

    def size(n: int) -> int:
        p = rng.dirichlet(np.ones(3), n)
        yp, yt = p.argmax(axis=1), rng.integers(0, 3, n)
        return len(json.dumps(_cls((yt, yp, p)).to_dict(), separators=(",", ":")))

    small, large = size(10), size(100_000)
    # the arrays hold the same number of integers; only their digits grow
    assert large < 3 * small


def _metrics_equal(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(
        (np.isnan(a[k]) and np.isnan(b[k])) or a[k] == b[k] for k in a
    )
