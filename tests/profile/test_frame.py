"""ReferenceBins and FrameProfile: fitting, per-feature profiles, missing columns, round trips."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

import inferwatch.profile
from inferwatch._binned import bin_values
from inferwatch.profile import (
    BOOLEAN_CATEGORIES,
    CategoricalProfile,
    DatetimeProfile,
    FrameProfile,
    NumericProfile,
    ReferenceBins,
    TextProfile,
    fit_bins,
    profile,
)
from inferwatch.schema import Feature, Schema


def _frame(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "age": rng.normal(40.0, 12.0, n),
        "plan": np.array(rng.choice(["basic", "pro", "team"], n).tolist(), dtype=object),
        "autopay": rng.random(n) < 0.3,
        "note": np.array(rng.choice(["ok", "call me back", "été"], n).tolist(), dtype=object),
        "seen": np.datetime64("2024-01-01", "ns")
        + rng.integers(0, 10**12, n).astype("timedelta64[ns]"),
        "vec": np.empty(n, dtype=object),
        "unused": np.zeros(n),
    }


SCHEMA = Schema(
    (
        Feature("age", "numeric"),
        Feature("plan", "categorical", categories=("basic", "pro", "team")),
        Feature("autopay", "boolean"),
        Feature("note", "text"),
        Feature("seen", "datetime"),
        Feature("vec", "embedding", dimension=4),
    )
)


@pytest.fixture
def bins(rng: np.random.Generator) -> ReferenceBins:
    return fit_bins(_frame(rng, 5000), SCHEMA, n_bins=200, n_coarse=10)


def test_facade_all_is_sorted_and_resolves() -> None:
    names = list(inferwatch.profile.__all__)
    assert names == sorted(names) and len(set(names)) == len(names)
    assert all(getattr(inferwatch.profile, n) is not None for n in names)


def test_the_profile_package_imports_only_the_core() -> None:
    code = (
        "import sys, inferwatch.profile\n"
        "bad = [m for m in ('pandas', 'scipy', 'sqlalchemy', 'fastapi', 'prometheus_client')"
        " if m in sys.modules]\nprint(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr


def test_constructor_stores_and_fit_learns(rng: np.random.Generator) -> None:
    unfitted = ReferenceBins(n_bins=7, n_coarse=3)  # not a divisor: fit says so, not __init__
    assert (unfitted.n_bins, unfitted.n_coarse) == (7, 3) and not hasattr(unfitted, "edges_")
    with pytest.raises(ValueError, match="divisor"):
        unfitted.fit(_frame(rng, 10), SCHEMA)
    with pytest.raises(ValueError, match="not fitted"):
        FrameProfile(ReferenceBins())
    with pytest.raises(ValueError, match="n_bins"):
        ReferenceBins(n_bins=0).fit(_frame(rng, 10), SCHEMA)


def test_fit_learns_edges_categories_and_notes(bins: ReferenceBins) -> None:
    assert set(bins.edges_) == {"age", "note"}
    assert len(bins.edges_["age"]) == 201 and len(bins.coarse_edges_["age"]) == 11
    assert set(bins.coarse_edges_["age"]) <= set(bins.edges_["age"])
    assert bins.edges_["note"].tolist() == [2.0, 3.0, 12.0]  # lengths of the three notes
    assert bins.categories_ == {"plan": ("basic", "pro", "team"), "autopay": BOOLEAN_CATEGORIES}
    assert bins.skipped_ == ("vec",) and bins.n_rows_ == 5000 and bins.degenerate_ == {}
    assert len(bins.fingerprint_) == 16


def test_degenerate_reference_columns_get_documented_edges() -> None:
    schema = Schema(
        (
            Feature("const", "numeric"),
            Feature("empty", "numeric"),
            Feature("absent", "numeric"),
            Feature("cat", "categorical"),
        )
    )
    columns = {
        "const": np.full(10, 3.0),
        "empty": np.full(10, np.nan),
        "cat": np.array(["b", "a", None, "b"] * 2 + ["a", 1], dtype=object),
    }
    bins = fit_bins(columns, schema)
    assert set(bins.degenerate_) == {"const", "empty", "absent"}
    assert bins.edges_["empty"].tolist() == bins.edges_["absent"].tolist() == [0.0, 1.0]
    assert bins.edges_["const"][0] < 3.0 < bins.edges_["const"][1]
    assert bins.categories_["cat"] == ("a", "b")  # learned: the schema had none
    with pytest.raises(ValueError, match="differ in length"):
        fit_bins({"const": np.zeros(3), "empty": np.zeros(4)}, schema)


def test_profile_holds_one_column_profile_per_feature(
    bins: ReferenceBins, rng: np.random.Generator
) -> None:
    batch = _frame(rng, 1000)
    prof = profile(batch, bins)
    assert prof.n_rows == 1000 and prof.skipped == ("vec",)
    assert isinstance(prof["age"], NumericProfile)
    assert isinstance(prof["plan"], CategoricalProfile)
    assert isinstance(prof["autopay"], CategoricalProfile) and prof["autopay"].is_boolean
    assert isinstance(prof["note"], TextProfile) and isinstance(prof["seen"], DatetimeProfile)
    assert set(prof.columns) == {"age", "plan", "autopay", "note", "seen"}
    assert prof.numeric("age").histogram == bin_values(batch["age"], bins.edges_["age"])
    assert prof.categorical("autopay").frequencies["True"] == int(batch["autopay"].sum())
    assert prof.text("note").count == prof.datetime("seen").count == 1000
    with pytest.raises(TypeError, match="CategoricalProfile, not a NumericProfile"):
        prof.numeric("plan")
    with pytest.raises(KeyError, match="vec"):
        prof["vec"]
    assert set(prof.get()) == set(prof.columns) and "n_rows=1000" in repr(prof)


def test_a_missing_column_counts_missing_for_every_row(
    bins: ReferenceBins, rng: np.random.Generator
) -> None:
    batch = _frame(rng, 300)
    del batch["age"], batch["plan"], batch["seen"]
    prof = profile(batch, bins)
    assert (prof["age"].count, prof["age"].missing) == (300, 300)
    assert prof.numeric("age").histogram.missing == 300
    assert (prof["plan"].missing, prof["seen"].missing) == (300, 300)
    assert prof["note"].missing == 0
    only_extra = profile({"unused": np.zeros(5)}, bins)  # no feature at all: 5 missing rows
    assert only_extra.n_rows == 5 and only_extra["age"].missing == 5
    assert profile({}, bins).n_rows == 0


def test_a_bad_batch_is_refused_before_anything_changes(bins: ReferenceBins) -> None:
    with pytest.raises(ValueError, match="differ in length"):
        profile({"age": np.zeros(3), "plan": np.array(["pro"], dtype=object)}, bins)
    prof = FrameProfile(bins)
    with pytest.raises(ValueError, match="one-dimensional: note"):
        prof.update({"age": np.zeros(2), "note": np.zeros((2, 2))})
    assert prof == FrameProfile(bins)


def test_streaming_and_merging_equal_profiling_at_once(
    bins: ReferenceBins, rng: np.random.Generator
) -> None:
    parts = [_frame(rng, int(n)) for n in rng.integers(0, 700, 6)]
    whole = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    streamed = FrameProfile(bins)
    for p in parts:
        streamed.update(p)
    merged = profile(parts[0], bins)
    for p in parts[1:]:
        merged = merged + profile(p, bins)
    at_once = profile(whole, bins)
    assert streamed.isclose(at_once) and merged.isclose(at_once)
    assert merged.numeric("age").histogram == at_once.numeric("age").histogram
    assert merged["plan"] == at_once["plan"] and merged["seen"] == at_once["seen"]


def test_merging_refuses_other_bins(bins: ReferenceBins, rng: np.random.Generator) -> None:
    other = fit_bins(_frame(rng, 100), SCHEMA, n_bins=20, n_coarse=10)
    with pytest.raises(ValueError, match="reference bins"):
        _ = FrameProfile(bins) + FrameProfile(other)
    with pytest.raises(ValueError, match="max_unseen"):
        _ = FrameProfile(bins) + FrameProfile(bins, max_unseen=3)
    with pytest.raises(TypeError):
        _ = FrameProfile(bins) + 1  # type: ignore[operator]
    assert FrameProfile(bins) != FrameProfile(other) and not FrameProfile(bins).isclose(1)


def test_round_trips_with_and_without_bins(bins: ReferenceBins, rng: np.random.Generator) -> None:
    prof = profile(_frame(rng, 500), bins)
    full = json.loads(json.dumps(prof.to_dict()))
    assert FrameProfile.from_dict(full) == prof
    bare = json.loads(json.dumps(prof.to_dict(include_bins=False)))
    assert "bins" not in bare and len(json.dumps(bare)) < len(json.dumps(full))
    assert FrameProfile.from_dict(bare, bins) == prof
    with pytest.raises(ValueError, match="no 'bins'"):
        FrameProfile.from_dict(bare)
    other = fit_bins(_frame(rng, 100), SCHEMA, n_bins=20, n_coarse=10)
    with pytest.raises(ValueError, match="other reference bins"):
        FrameProfile.from_dict(bare, other)
    with pytest.raises(ValueError, match="columns"):
        FrameProfile.from_dict({**bare, "columns": {}}, bins)
    assert pickle.loads(pickle.dumps(prof)) == prof


def test_profiles_of_one_reference_share_their_bin_look_up_tables(
    bins: ReferenceBins, rng: np.random.Generator
) -> None:
    a, b = profile(_frame(rng, 10), bins), FrameProfile(bins)
    assert a.numeric("age")._locator is b.numeric("age")._locator is not None
    c = FrameProfile.from_dict(a.to_dict(include_bins=False), bins)
    assert c.text("note")._lengths._locator is a.text("note")._lengths._locator
    assert "_lookups" in vars(bins) and "_lookups" not in vars(pickle.loads(pickle.dumps(bins)))
    with pytest.raises(ValueError, match="different edges"):
        NumericProfile([0.0, 1.0])._share_lookup(NumericProfile([0.0, 2.0]))


def test_reference_bins_round_trip(bins: ReferenceBins) -> None:
    again = ReferenceBins.from_dict(json.loads(json.dumps(bins.to_dict())))
    assert again == bins and again.fingerprint_ == bins.fingerprint_
    assert again.schema_ == bins.schema_ and again.categories_ == bins.categories_
    assert np.array_equal(again.edges_["age"], bins.edges_["age"])
    tampered = bins.to_dict()
    tampered["n_rows"] += 1
    with pytest.raises(ValueError, match="fingerprint"):
        ReferenceBins.from_dict(tampered)
    with pytest.raises(ValueError, match="malformed"):
        ReferenceBins.from_dict({"format": 1})
    with pytest.raises(ValueError, match="not fitted"):
        ReferenceBins().to_dict()
    assert ReferenceBins() == ReferenceBins() and ReferenceBins() != bins
    assert "n_bins=200" in repr(bins)
