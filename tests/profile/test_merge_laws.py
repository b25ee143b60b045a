"""The merge laws, for every column profile and the frame profile (property tests).

``profile(A) + profile(B)`` equals the profile of A and B together: exactly for counts,
histograms, min/max and categories, to 1e-9 for means and variances (``isclose``).  Merging
is associative and commutative, an empty profile is its identity, feeding several batches
equals feeding one, ``to_dict``/``from_dict`` and pickle round-trip exactly, and the size
of a profile does not grow with the rows it has seen.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferwatch._binned import bin_values
from inferwatch.profile import (
    CategoricalProfile,
    ColumnProfile,
    DatetimeProfile,
    FrameProfile,
    NumericProfile,
    TextProfile,
    fit_bins,
    profile,
)
from inferwatch.schema import Feature, Schema

SETTINGS = settings(max_examples=60, deadline=None)

EDGES = np.unique(np.round(np.random.default_rng(7).normal(0.0, 100.0, 60), 1))
EDGE_VALUES = np.concatenate([EDGES, np.nextafter(EDGES, -np.inf), np.nextafter(EDGES, np.inf)])

numbers = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.sampled_from(EDGE_VALUES.tolist()),
    st.integers(-300, 300).map(float),
    st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0]),
)
categories = st.one_of(
    st.sampled_from(["a", "b", "c", "d"]),  # "d" is not a reference category
    st.text(alphabet="xyz", min_size=1, max_size=2),
    st.sampled_from([None, np.nan, 3, 2.5]),
)
texts = st.one_of(st.text(max_size=12), st.sampled_from([None, 4, "naïve café ☕"]))
stamps = st.one_of(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1)),
    st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC)
    ),
    st.sampled_from([None, "2024-01-01", 7]),
)


def _objects(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


KINDS: dict[str, tuple[Callable[[], ColumnProfile], Any, Callable[[list[Any]], np.ndarray]]] = {
    "numeric": (lambda: NumericProfile(EDGES), numbers, lambda v: np.array(v, dtype=np.float64)),
    "categorical": (lambda: CategoricalProfile(("a", "b", "c")), categories, _objects),
    "boolean": (
        CategoricalProfile.for_boolean,
        st.sampled_from([True, False, None, 1, np.True_]),
        _objects,
    ),
    "text": (lambda: TextProfile([0.0, 1.0, 3.0, 8.0]), texts, _objects),
    "datetime": (DatetimeProfile, stamps, _objects),
}


def _batches(data: st.DataObject, kind: str, n: int) -> list[np.ndarray]:
    _, values, to_array = KINDS[kind]
    return [to_array(data.draw(st.lists(values, max_size=40))) for _ in range(n)]


def _fed(kind: str, *batches: np.ndarray) -> ColumnProfile:
    prof = KINDS[kind][0]()
    for b in batches:
        prof.update_many(b)
    return prof


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_merge_equals_profiling_the_union(kind: str, data: st.DataObject) -> None:
    a, b = _batches(data, kind, 2)
    merged = _fed(kind, a) + _fed(kind, b)  # type: ignore[operator]
    assert merged.isclose(_fed(kind, np.concatenate([a, b])))


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_merge_is_associative_commutative_with_identity(kind: str, data: st.DataObject) -> None:
    pa, pb, pc = (_fed(kind, b) for b in _batches(data, kind, 3))
    assert ((pa + pb) + pc).isclose(pa + (pb + pc))  # type: ignore[operator]
    assert (pa + pb).isclose(pb + pa)  # type: ignore[operator]
    empty = KINDS[kind][0]()
    assert pa + empty == pa == empty + pa  # type: ignore[operator]


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_several_batches_equal_one(kind: str, data: st.DataObject) -> None:
    parts = _batches(data, kind, 4)
    assert _fed(kind, *parts).isclose(_fed(kind, np.concatenate(parts)))


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_round_trips_are_exact(kind: str, data: st.DataObject) -> None:
    prof = _fed(kind, *_batches(data, kind, 2))
    again = type(prof).from_dict(json.loads(json.dumps(prof.to_dict(), allow_nan=False)))
    assert again == prof
    assert pickle.loads(pickle.dumps(prof)) == prof


@SETTINGS
@given(values=st.lists(numbers, max_size=200), cut=st.integers(0, 200))
def test_numeric_profile_against_numpy(values: list[float], cut: int) -> None:
    data = np.array(values, dtype=np.float64)
    prof = NumericProfile(EDGES).update_many(data[:cut]).update_many(data[cut:])
    assert prof.histogram == bin_values(data, EDGES)
    finite = data[np.isfinite(data)]
    assert prof.n_finite == len(finite) and prof.missing == int(np.isnan(data).sum())
    if len(finite):
        assert (prof.min, prof.max) == (finite.min(), finite.max())
        scale = float(np.max(np.abs(finite)))
        assert prof.mean == pytest.approx(np.mean(finite), rel=1e-9, abs=1e-12 * scale)
        assert prof.var() == pytest.approx(np.var(finite), rel=1e-9, abs=1e-9 * scale**2)
        for q in (0.0, 0.1, 0.5, 0.9, 1.0):
            lo, hi = prof.quantile_interval(q)
            exact = float(np.quantile(finite, q))
            slack = 1e-9 * max(1.0, scale)
            assert lo - slack <= exact <= hi + slack
            assert lo - slack <= prof.quantile(q) <= hi + slack


@SETTINGS
@given(values=st.lists(st.text(alphabet="pqrstuv", min_size=1, max_size=3), max_size=120))
def test_unseen_totals_stay_exact_past_the_cap(values: list[str]) -> None:
    half = len(values) // 2
    a, b = np.array(values[:half], dtype=object), np.array(values[half:], dtype=object)

    def fed(*batches: np.ndarray) -> CategoricalProfile:
        prof = CategoricalProfile(("p",), max_unseen=5)
        for batch in batches:
            prof.update_many(batch)
        return prof

    merged, whole = fed(a) + fed(b), fed(a, b)
    assert merged.frequencies == whole.frequencies and merged.n_unseen == whole.n_unseen
    assert len(merged.unseen) <= 5 and merged.count == whole.count == len(values)


SCHEMA = Schema(
    (
        Feature("x", "numeric"),
        Feature("k", "categorical", categories=("a", "b", "c")),
        Feature("t", "text"),
    )
)
REFERENCE = {
    "x": np.random.default_rng(3).normal(size=500),
    "k": np.array(["a", "b", "c", "a"] * 125, dtype=object),
    "t": np.array(["one", "three", "eleven", ""] * 125, dtype=object),
}


@st.composite
def frames(draw: st.DrawFn) -> dict[str, np.ndarray]:
    n = draw(st.integers(0, 30))
    cols = {
        "x": np.array(draw(st.lists(numbers, min_size=n, max_size=n)), dtype=np.float64),
        "k": _objects(draw(st.lists(categories, min_size=n, max_size=n))),
        "t": _objects(draw(st.lists(texts, min_size=n, max_size=n))),
    }
    dropped = draw(st.sets(st.sampled_from(sorted(cols)), max_size=2))
    return {k: v for k, v in cols.items() if k not in dropped}


@SETTINGS
@given(a=frames(), b=frames(), c=frames())
def test_frame_profiles_obey_the_laws(
    a: dict[str, np.ndarray], b: dict[str, np.ndarray], c: dict[str, np.ndarray]
) -> None:
    bins = fit_bins(REFERENCE, SCHEMA, n_bins=50)
    pa, pb, pc = profile(a, bins), profile(b, bins), profile(c, bins)
    streamed = FrameProfile(bins).update(a).update(b).update(c)
    assert ((pa + pb) + pc).isclose(pa + (pb + pc))
    assert (pa + pb + pc).isclose(streamed) and (pc + pb + pa).isclose(streamed)
    assert pa + FrameProfile(bins) == pa
    assert FrameProfile.from_dict(json.loads(json.dumps(streamed.to_dict()))) == streamed


def _shape(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _shape(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [len(obj), *sorted({repr(_shape(v)) for v in obj})]
    return type(obj).__name__


def test_profile_size_does_not_grow_with_rows(rng: np.random.Generator) -> None:
    """The serialised structure after 10 batches equals that after 1,000 (unseen values capped)."""
    reference = {
        "x": rng.lognormal(size=5000),
        "k": np.array(rng.choice(["a", "b", "c"], 5000).tolist(), dtype=object),
        "t": np.array(rng.choice(["one", "three"], 5000).tolist(), dtype=object),
    }
    bins = fit_bins(reference, SCHEMA)
    prof = FrameProfile(bins, max_unseen=20)
    sizes = {}
    for i in range(1, 1001):
        fresh = [f"new{5 * i + j}" for j in range(5)]  # 5 never-seen values a batch
        batch = {
            "x": rng.lognormal(size=100) * (1 + i % 7),
            "k": np.array(rng.choice(["a", "b", *fresh], 100).tolist(), dtype=object),
            "t": np.array(rng.choice(["one", "a longer text"], 100).tolist(), dtype=object),
        }
        prof.update(batch)
        if i in (10, 1000):
            sizes[i] = _shape(prof.to_dict(include_bins=False))
    assert sizes[10] == sizes[1000]
    assert prof.n_rows == 100_000 and len(prof.categorical("k").unseen) == 20


@st.composite
def edge_sets(draw: st.DrawFn) -> np.ndarray:
    centre = draw(st.sampled_from([0.0, 1.0, -7.5, 450.0, -3e4, 1e6, -1e9, 1e-3]))
    scale = draw(st.sampled_from([1e-6, 1e-3, 1.0, 50.0, 1e4]))
    raw = draw(st.lists(st.floats(-1.0, 1.0), min_size=2, max_size=40, unique=True))
    integral = draw(st.booleans())
    edges = np.unique(centre + scale * np.array(raw))
    edges = np.unique(np.round(edges)) if integral else edges
    return edges if len(edges) >= 2 else np.array([centre, centre + 1.0])


@SETTINGS
@given(edges=edge_sets(), data=st.data())
def test_bin_look_up_is_exact_for_any_edges(edges: np.ndarray, data: st.DataObject) -> None:
    near = np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])
    lo, hi = float(edges[0]), float(edges[-1])
    span = hi - lo
    values = data.draw(
        st.lists(
            st.one_of(
                st.sampled_from(near.tolist()),
                st.floats(lo - span, hi + span),
                st.floats(-1e12, 1e12),
                st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0]),
            ),
            max_size=60,
        )
    )
    batch = np.array(values, dtype=np.float64)
    prof = NumericProfile(edges).update_many(batch)
    assert prof.histogram == bin_values(batch, edges)
