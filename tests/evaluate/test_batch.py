"""Batch evaluation: verdicts on known drift, edge cases with clear errors, corrections."""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import numpy.typing as npt
import pytest
import scipy.stats

from inferwatch.evaluate import (
    CategoricalColumn,
    ColumnInput,
    DriftOptions,
    NumericColumn,
    SortedColumn,
    evaluate_batch,
)
from inferwatch.schema import Feature, Schema, Target
from inferwatch.stats import benjamini_hochberg, counts_from_values

SCHEMA = Schema(
    (
        Feature("a", "numeric"),
        Feature("b", "numeric"),
        Feature("c", "categorical"),
        Feature("flag", "boolean"),
    )
)


def columns(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, ColumnInput]:
    cats = np.array(["x", "y", "z"], dtype=object)
    p = [0.5, 0.3, 0.2] if shift == 0 else [0.2, 0.3, 0.5]
    return {
        "a": NumericColumn(rng.normal(shift, 1.0, n)),
        "b": NumericColumn(rng.lognormal(0.0, 0.5, n)),
        "c": CategoricalColumn(counts_from_values(cats[rng.choice(3, n, p=p)])),
        "flag": CategoricalColumn(counts_from_values(rng.random(n) < 0.3)),
    }


def test_finds_the_drifted_columns_and_only_them(rng: np.random.Generator) -> None:
    ref = columns(rng, 5000)
    cur = columns(rng, 4000, shift=1.0)
    cur["b"] = NumericColumn(rng.lognormal(0.0, 0.5, 4000))
    cur["flag"] = CategoricalColumn(counts_from_values(rng.random(4000) < 0.3))
    report = evaluate_batch(SCHEMA, ref, cur, n_reference=5000, n_current=4000)
    assert set(report.drifted) == {"a", "c"}
    assert report.drift_share == pytest.approx(0.5)
    assert report.dataset_drift  # 2 of 4 reaches the 0.5 share
    by = {f.name: f for f in report.features}
    assert by["a"].result is not None
    assert by["a"].result.test == "wasserstein"  # n_reference > 1000: Evidently's rule
    assert by["c"].result is not None
    assert by["c"].result.test == "jensen_shannon"


def test_wasserstein_verdict_matches_scipy_on_the_raw_data(rng: np.random.Generator) -> None:
    ref_values = rng.normal(0, 2, 3000)
    cur_values = rng.normal(0.3, 2, 2000)
    ref_values[:100] = np.nan
    report = evaluate_batch(
        Schema((Feature("a", "numeric"),)),
        {"a": NumericColumn(ref_values)},
        {"a": SortedColumn.of(cur_values)},
        n_reference=3000,
        n_current=2000,
    )
    r = report.features[0].result
    assert r is not None
    finite = ref_values[~np.isnan(ref_values)]
    expected = scipy.stats.wasserstein_distance(finite, cur_values) / np.std(finite)
    assert r.statistic == pytest.approx(expected, rel=1e-9)
    assert r.details["missing_reference"] == 100


def test_small_reference_uses_p_value_tests(rng: np.random.Generator) -> None:
    ref = columns(rng, 500)
    cur = columns(rng, 500)
    report = evaluate_batch(SCHEMA, ref, cur, n_reference=500, n_current=500)
    tests = {f.name: f.result.test for f in report.features if f.result}
    assert tests == {"a": "ks", "b": "ks", "c": "chi_square", "flag": "z_test"}
    ks = scipy.stats.ks_2samp(ref["a"].values, cur["a"].values)  # type: ignore[union-attr]
    assert report.features[0].result.p_value == pytest.approx(ks.pvalue, rel=1e-9)  # type: ignore[union-attr]


def test_overrides_and_unknown_test(rng: np.random.Generator) -> None:
    ref, cur = columns(rng, 2000), columns(rng, 2000)
    opts = DriftOptions(tests={"a": "psi", "b": "ks"}, thresholds={"a": 0.5})
    report = evaluate_batch(SCHEMA, ref, cur, n_reference=2000, n_current=2000, options=opts)
    by = {f.name: f.result for f in report.features}
    assert by["a"] is not None
    assert by["a"].test == "psi"
    assert by["a"].threshold == 0.5
    assert by["b"] is not None
    assert by["b"].test == "ks"
    bad = evaluate_batch(
        SCHEMA, ref, cur, n_reference=2000, n_current=2000,
        options=DriftOptions(tests={"a": "nope"}),
    )  # fmt: skip
    assert bad.features[0].result is None
    assert "nope" in (bad.features[0].error or "")
    assert "wasserstein" in (bad.features[0].error or "")  # lists what is available


def test_benjamini_hochberg_correction(rng: np.random.Generator) -> None:
    schema = Schema(tuple(Feature(f"f{i}", "numeric") for i in range(10)))
    ref = {f"f{i}": NumericColumn(rng.normal(size=300)) for i in range(10)}
    cur = {f"f{i}": NumericColumn(rng.normal(0.15 * (i == 0), 1, 300)) for i in range(10)}
    plain = evaluate_batch(schema, ref, cur, n_reference=300, n_current=300)
    corrected = evaluate_batch(
        schema, ref, cur, n_reference=300, n_current=300,
        options=DriftOptions(correction="benjamini_hochberg"),
    )  # fmt: skip
    raw = np.array([f.result.p_value for f in plain.features])  # type: ignore[union-attr]
    adjusted = np.array([f.result.p_value for f in corrected.features])  # type: ignore[union-attr]
    np.testing.assert_allclose(adjusted, benjamini_hochberg(raw), rtol=1e-12)
    np.testing.assert_allclose(adjusted, scipy.stats.false_discovery_control(raw), rtol=1e-12)
    for f, p in zip(corrected.features, adjusted, strict=True):
        assert f.result is not None
        assert f.result.drift_detected == (p < 0.05)
        assert f.result.details["correction"] == "benjamini_hochberg"


def test_edge_cases_give_messages_not_crashes(rng: np.random.Generator) -> None:
    schema = Schema(
        (
            Feature("gone", "numeric"),
            Feature("all_null", "numeric", nullable=True),
            Feature("single", "numeric"),
            Feature("inf", "numeric"),
            Feature("words", "text"),
            Feature("many", "categorical"),
        )
    )
    many_ref = counts_from_values(np.array([f"v{i}" for i in range(100_000)], dtype=object))
    many_cur = counts_from_values(np.array([f"w{i}" for i in range(50_000)], dtype=object))
    ref: dict[str, ColumnInput] = {
        "gone": NumericColumn(rng.normal(size=50)),
        "all_null": NumericColumn(np.full(50, np.nan)),
        "single": NumericColumn(np.full(50, 3.0)),
        "inf": NumericColumn(rng.normal(size=50)),
        "many": CategoricalColumn(many_ref),
    }
    cur: dict[str, ColumnInput] = {
        "all_null": NumericColumn(rng.normal(size=40)),
        "single": NumericColumn(np.full(40, 3.0)),
        "inf": NumericColumn(np.concatenate([rng.normal(size=38), [np.inf, -np.inf]])),
        "many": CategoricalColumn(many_cur),
    }
    report = evaluate_batch(schema, ref, cur, n_reference=50, n_current=40)
    by = {f.name: f for f in report.features}
    assert by["gone"].error == "column 'gone' is missing from the current data"
    # an all-null reference against real values: missingness is its own category, so the
    # shift is flagged (a NaN-dropping test would have nothing to compare)
    assert by["all_null"].result is not None
    assert by["all_null"].result.test == "chi_square"
    assert by["all_null"].drift_detected
    assert by["single"].result is not None
    assert not by["single"].drift_detected
    assert by["inf"].result is not None
    assert by["inf"].quality is not None
    assert "non_finite" in by["inf"].quality.problems
    assert "not computed yet" in (by["words"].error or "")
    assert by["many"].drift_detected
    assert by["many"].quality is not None
    assert len(by["many"].quality.unseen_categories) == 20  # bounded
    assert report.quality.missing_columns == ("gone", "words")  # neither was given
    json.dumps(report.to_dict())  # serialisable, NaN-free


def test_prediction_and_target_drift(rng: np.random.Generator) -> None:
    schema = Schema(
        (Feature("a", "numeric"),),
        target=Target("y", "classification", ("0", "1")),
        prediction=Target("p", "classification", ("0", "1")),
    )
    ref: dict[str, ColumnInput] = {
        "a": NumericColumn(rng.normal(size=2000)),
        "y": CategoricalColumn(counts_from_values(rng.integers(0, 2, 2000))),
        "p": CategoricalColumn(counts_from_values((rng.random(2000) < 0.2).astype(int))),
    }
    cur: dict[str, ColumnInput] = {
        "a": NumericColumn(rng.normal(size=2000)),
        "y": CategoricalColumn(counts_from_values(rng.integers(0, 2, 2000))),
        "p": CategoricalColumn(counts_from_values((rng.random(2000) < 0.6).astype(int))),
    }
    report = evaluate_batch(schema, ref, cur, n_reference=2000, n_current=2000)
    assert report.prediction_drift is not None
    assert report.prediction_drift.drift_detected
    assert report.target_drift is not None
    assert not report.target_drift.drift_detected
    assert [f.name for f in report.features] == ["a"]  # roles are not features
    d = report.to_dict()
    assert d["prediction_drift"]["role"] == "prediction"


def test_json_contract_fields(rng: np.random.Generator) -> None:
    report = evaluate_batch(
        SCHEMA, columns(rng, 300), columns(rng, 300), n_reference=300, n_current=300
    )
    d = report.to_dict()
    for key in ("dataset_drift", "drift_share", "n_reference", "n_current", "features",
                "prediction_drift", "multivariate"):  # fmt: skip
        assert key in d
    for f in d["features"]:
        for key in ("name", "kind", "test", "statistic", "p_value", "threshold", "drift_detected"):
            assert key in f
        assert "missing_share" in f["quality"]
        assert "unseen_categories" in f["quality"]


def test_parallel_and_serial_agree(rng: np.random.Generator) -> None:
    ref, cur = columns(rng, 3000), columns(rng, 3000, shift=0.2)
    one = evaluate_batch(
        SCHEMA, ref, cur, n_reference=3000, n_current=3000, options=DriftOptions(workers=1)
    )
    two = evaluate_batch(
        SCHEMA, ref, cur, n_reference=3000, n_current=3000, options=DriftOptions(workers=2)
    )
    assert one.to_dict() == two.to_dict()


class CountingColumns(Mapping[str, ColumnInput]):
    """A lazy side that makes each column when asked and counts how many are alive.

    Every column it hands out is a fresh array watched by a weakref finalizer, so
    ``peak`` is the most columns of this side held at any moment by anyone (the engine,
    its job queue, its results).
    """

    def __init__(self, make: Mapping[str, Callable[[], ColumnInput]]) -> None:
        self.make = make
        self.live = 0
        self.peak = 0
        self.reads = 0
        self.lock = threading.Lock()

    def _died(self) -> None:
        with self.lock:
            self.live -= 1

    def __getitem__(self, name: str) -> ColumnInput:
        col = self.make[name]()
        watched = col.counts.counts if isinstance(col, CategoricalColumn) else col.values  # type: ignore[union-attr]
        with self.lock:
            self.live += 1
            self.reads += 1
            self.peak = max(self.peak, self.live)
        weakref.finalize(watched, self._died)
        return col

    def __contains__(self, name: object) -> bool:
        return name in self.make

    def __iter__(self) -> Iterator[str]:
        return iter(self.make)

    def __len__(self) -> int:
        return len(self.make)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_holds_at_most_the_worker_count_of_columns(workers: int) -> None:
    """Each worker reads the column it evaluates and drops it: with 12 columns a side,
    no more than ``workers`` of them are alive at once (reading all first would hold 12)."""
    n = 2000
    names = [f"n{i}" for i in range(10)]
    schema = Schema(
        (*(Feature(c, "numeric") for c in names), Feature("c", "categorical")),
        prediction=Target("p", "classification", ("0", "1")),
    )

    def side(seed: int, shift: float) -> dict[str, Callable[[], ColumnInput]]:
        def numeric(i: int) -> Callable[[], ColumnInput]:
            return lambda: NumericColumn(
                np.random.default_rng(seed + i).normal(shift * (i == 0), 1.0, n)
            )

        def cats(values: npt.NDArray[np.object_]) -> Callable[[], ColumnInput]:
            return lambda: CategoricalColumn(counts_from_values(values))

        out = {c: numeric(i) for i, c in enumerate(names)}
        out["c"] = cats(np.array(["x", "y", "z"] * (n // 3), dtype=object))
        out["p"] = cats((np.random.default_rng(seed).random(n) < 0.3).astype(int).astype(str))
        return out

    ref_make, cur_make = side(1, 0.0), side(100, 1.0)
    ref, cur = CountingColumns(ref_make), CountingColumns(cur_make)
    report = evaluate_batch(
        schema, ref, cur, n_reference=n, n_current=n, options=DriftOptions(workers=workers)
    )
    assert ref.reads == cur.reads == 12  # every column read once
    assert 1 <= ref.peak <= workers
    assert 1 <= cur.peak <= workers
    assert ref.live == cur.live == 0  # nothing kept once the report is built
    eager = evaluate_batch(
        schema,
        {k: f() for k, f in ref_make.items()},
        {k: f() for k, f in cur_make.items()},
        n_reference=n,
        n_current=n,
    )
    assert report.to_dict() == eager.to_dict()  # same verdicts as columns read up front
    assert report.drifted == ("n0",)
