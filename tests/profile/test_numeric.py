"""NumericProfile against numpy on the raw data, its bin look-up against bin_values, edge cases."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import numpy.typing as npt
import pytest

from inferwatch._binned import Binned, bin_values
from inferwatch.profile import NumericProfile, coarsen, quantile_edges


def _edges(rng: np.random.Generator, n: int = 20_000, n_bins: int = 500) -> npt.NDArray[np.float64]:
    fine, _, why = quantile_edges(rng.lognormal(size=n), n_bins)
    assert why is None
    return fine


def _check_against_numpy(prof: NumericProfile, data: npt.NDArray[np.float64]) -> None:
    finite = data[np.isfinite(data)]
    assert prof.count == len(data)
    assert prof.missing == int(np.isnan(data).sum())
    assert prof.non_finite == int(np.isinf(data).sum())
    assert prof.n_finite == len(finite)
    assert prof.histogram == bin_values(data, prof.edges)
    if len(finite):
        assert prof.min == finite.min() and prof.max == finite.max()
        assert prof.mean == pytest.approx(np.mean(finite), rel=1e-9)
        assert prof.var() == pytest.approx(np.var(finite), rel=1e-9)
        if len(finite) > 1:
            assert prof.var(ddof=1) == pytest.approx(np.var(finite, ddof=1), rel=1e-9)


@pytest.mark.parametrize("dist", ["normal", "lognormal", "uniform", "integers"])
def test_batches_match_numpy_on_the_concatenated_data(rng: np.random.Generator, dist: str) -> None:
    ref = _sample(rng, dist, 50_000)
    fine, _, _ = quantile_edges(ref)
    batches = [_sample(rng, dist, int(rng.integers(0, 3000))) for _ in range(30)]
    batches[3][:40] = np.nan
    batches[5][:3] = [np.inf, -np.inf, np.inf]
    batches[7] = batches[7] * 10.0  # well outside the reference range
    prof = NumericProfile(fine)
    for b in batches:
        prof.update_many(b)
    _check_against_numpy(prof, np.concatenate(batches))


def _sample(rng: np.random.Generator, dist: str, n: int) -> npt.NDArray[np.float64]:
    if dist == "normal":
        return rng.normal(-3.0, 2.0, n)
    if dist == "lognormal":
        return rng.lognormal(0.5, 1.5, n)
    if dist == "uniform":
        return rng.uniform(-1.0, 1.0, n)
    return rng.poisson(4.0, n).astype(np.float64)


def test_values_on_and_next_to_every_edge_bin_as_bin_values(rng: np.random.Generator) -> None:
    """The look-up table is exact: edges, their float neighbours, the top edge (closed bin)."""
    for edges in (_edges(rng), np.arange(-5.0, 12.0), np.array([-1e-300, 0.0, 1e-300, 1.0])):
        around = np.concatenate(
            [edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf), [0.0, -0.0]]
        )
        data = np.concatenate([around, rng.choice(around, 5000)])
        prof = NumericProfile(edges).update_many(data)
        assert prof.histogram == bin_values(data, edges)
        assert prof.histogram.counts[-2] >= 1  # the top edge itself is in the last bin


def test_integer_data_on_integer_edges(rng: np.random.Generator) -> None:
    ref = rng.poisson(1.0, 10_000).astype(np.float64)
    fine, _, _ = quantile_edges(ref)
    data = rng.poisson(1.0, 5000)  # int64, as the readers give integer columns
    prof = NumericProfile(fine).update_many(data)
    assert prof.histogram == bin_values(data, fine)
    assert prof.invalid == 0


def test_values_far_outside_the_grid_are_still_exact(rng: np.random.Generator) -> None:
    edges = _edges(rng)
    data = np.array([1e300, -1e300, 1.7e308, -1.7e308, 5e-324, 3.0, 0.5])
    prof = NumericProfile(edges).update_many(data)
    assert prof.histogram == bin_values(data, edges)
    assert prof.min == -1.7e308 and prof.max == 1.7e308


def test_quantiles_lie_in_the_documented_interval(rng: np.random.Generator) -> None:
    ref = rng.lognormal(size=50_000)
    fine, _, _ = quantile_edges(ref)
    data = np.concatenate([rng.lognormal(size=20_000), rng.lognormal(3.0, size=500)])
    prof = NumericProfile(fine).update_many(data)
    qs = np.linspace(0.0, 1.0, 101)
    est = prof.quantiles(qs)
    exact = np.quantile(data, qs)
    for q, e, x in zip(qs, est, exact, strict=True):
        lo, hi = prof.quantile_interval(q)
        assert lo <= x <= hi and lo <= e <= hi, (q, lo, e, x, hi)
    assert est[0] == data.min() and est[-1] == data.max()
    # inside the reference range the interval is about one bin: 1/500 of the reference mass
    ref_cdf = np.searchsorted(np.sort(ref), [prof.quantile_interval(0.5)]) / len(ref)
    assert ref_cdf[0][1] - ref_cdf[0][0] <= 2.5 / 500


def test_quantile_of_one_value_and_of_nothing() -> None:
    prof = NumericProfile([0.0, 1.0, 2.0])
    assert math.isnan(prof.quantile(0.5)) and math.isnan(prof.quantile_interval(0.5)[0])
    prof.update(1.25)
    assert prof.quantile(0.0) == prof.quantile(0.5) == prof.quantile(1.0) == 1.25
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        prof.quantile(1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        prof.quantiles([0.5, np.nan])


def test_empty_batch_changes_nothing(rng: np.random.Generator) -> None:
    prof = NumericProfile(_edges(rng)).update_many(rng.lognormal(size=100))
    before = prof.copy()
    prof.update_many(np.array([], dtype=np.float64))
    prof.update_many([])
    assert prof == before


def test_all_nan_batch_is_missing_only(rng: np.random.Generator) -> None:
    prof = NumericProfile(_edges(rng)).update_many(np.full(50, np.nan))
    assert (prof.count, prof.missing, prof.n_finite) == (50, 50, 0)
    assert math.isnan(prof.mean) and math.isnan(prof.min) and math.isnan(prof.var())
    assert prof.histogram.counts.sum() == 0 and prof.histogram.missing == 50


def test_infinities_go_to_under_and_overflow_not_to_the_moments() -> None:
    prof = NumericProfile([0.0, 1.0]).update_many(np.array([np.inf, -np.inf, np.inf, 0.5]))
    assert prof.histogram.counts.tolist() == [1, 1, 2]
    assert (prof.non_finite, prof.n_finite, prof.mean, prof.max) == (3, 1, 0.5, 0.5)
    only_inf = NumericProfile([0.0, 1.0]).update_many(np.array([np.inf]))
    assert only_inf.n_finite == 0 and math.isnan(only_inf.max)


def test_single_value() -> None:
    prof = NumericProfile([0.0, 1.0]).update(0.25)
    assert (prof.count, prof.mean, prof.var(), prof.min, prof.max) == (1, 0.25, 0.0, 0.25, 0.25)
    assert math.isnan(prof.var(ddof=1))


def test_object_column_with_mixed_types_counts_invalid_values() -> None:
    values = np.array([1, 2.5, None, "3", True, [1], np.float64(4.0), np.nan], dtype=object)
    prof = NumericProfile([0.0, 5.0]).update_many(values)
    assert (prof.count, prof.invalid, prof.missing, prof.n_finite) == (8, 3, 2, 3)
    assert prof.mean == pytest.approx((1 + 2.5 + 4.0) / 3)
    assert prof.histogram.total == prof.count - prof.invalid


def test_an_int_beyond_float64_is_invalid() -> None:
    prof = NumericProfile([0.0, 5.0]).update_many(np.array([10**400, 2, None], dtype=object))
    assert (prof.count, prof.invalid, prof.missing, prof.n_finite, prof.mean) == (3, 1, 1, 1, 2.0)


def test_non_numeric_dtypes_are_invalid_as_a_whole() -> None:
    prof = NumericProfile([0.0, 1.0])
    prof.update_many(np.array(["a", "b"]))
    prof.update_many(np.array([True, False]))
    assert (prof.count, prof.invalid, prof.n_finite) == (4, 4, 0)
    with pytest.raises(ValueError, match="one-dimensional"):
        prof.update_many(np.zeros((2, 2)))


def test_add_missing_counts_rows_without_the_column() -> None:
    prof = NumericProfile([0.0, 1.0]).add_missing(7)
    assert (prof.count, prof.missing, prof.histogram.missing) == (7, 7, 7)
    with pytest.raises(ValueError, match=">= 0"):
        prof.add_missing(-1)


def test_edges_are_validated() -> None:
    for bad in ([1.0], [0.0, 0.0], [1.0, 0.0], [0.0, np.inf], [0.0, np.nan], [[0.0, 1.0]]):
        with pytest.raises(ValueError, match="edges"):
            NumericProfile(bad)


def test_merge_refuses_other_edges_and_other_types() -> None:
    a, b = NumericProfile([0.0, 1.0]), NumericProfile([0.0, 2.0])
    with pytest.raises(ValueError, match="edges"):
        a.merge(b)
    with pytest.raises(TypeError):
        a += 1  # type: ignore[arg-type]
    assert (a == 1) is False and a.isclose(1) is False


def test_round_trip_through_json_and_pickle(rng: np.random.Generator) -> None:
    data = np.concatenate([rng.normal(size=1000), [np.nan, np.inf]])
    prof = NumericProfile(quantile_edges(data)[0]).update_many(data)
    again = NumericProfile.from_dict(json.loads(json.dumps(prof.to_dict())))
    assert again == prof and again.histogram == prof.histogram
    assert pickle.loads(pickle.dumps(prof)) == prof
    no_edges = prof.to_dict(edges=False)
    assert "edges" not in no_edges
    assert NumericProfile.from_dict(no_edges, prof.edges) == prof
    with pytest.raises(ValueError, match="edges"):
        NumericProfile.from_dict(no_edges)
    empty = NumericProfile([0.0, 1.0])
    assert NumericProfile.from_dict(json.loads(json.dumps(empty.to_dict()))) == empty


def test_from_dict_rejects_inconsistent_data() -> None:
    good = NumericProfile([0.0, 1.0]).update_many(np.array([0.5, np.nan])).to_dict()
    for key, value, match in (
        ("count", 3, "add up"),
        ("counts", [0, 1], "counts"),
        ("kind", "text", "kind"),
        ("format", 9, "format"),
        ("missing", -1, "missing"),
        ("mean", "x", "mean"),
    ):
        with pytest.raises(ValueError, match=match):
            NumericProfile.from_dict({**good, key: value})


def test_get_summarises(rng: np.random.Generator) -> None:
    data = rng.normal(size=5000)
    summary = NumericProfile(quantile_edges(data)[0]).update_many(data).get()
    assert summary.count == 5000 and summary.std == pytest.approx(np.std(data))
    assert summary.quantiles[0.5] == pytest.approx(np.median(data), abs=0.01)
    assert "NumericProfile(count=5000" in repr(NumericProfile([0.0, 1.0]).update_many(data))


def test_quantile_edges_and_coarse_edges_nest(rng: np.random.Generator) -> None:
    data = rng.lognormal(size=10_000)
    fine, coarse, why = quantile_edges(data, 500, 10)
    assert why is None and len(fine) == 501 and len(coarse) == 11
    assert np.all(np.diff(fine) > 0) and set(coarse) <= set(fine)
    assert fine[0] == coarse[0] == data.min() and fine[-1] == coarse[-1] == data.max()
    live = rng.lognormal(0.3, size=3000)
    fine_hist = NumericProfile(fine).update_many(live).histogram
    assert coarsen(fine_hist, coarse) == bin_values(live, coarse)


def test_quantile_edges_of_ties_and_degenerate_columns(rng: np.random.Generator) -> None:
    fine, coarse, why = quantile_edges(rng.integers(0, 3, 1000).astype(float))
    assert why is None and fine.tolist() == [0.0, 1.0, 2.0] and set(coarse) <= set(fine)
    fine, coarse, why = quantile_edges(np.full(10, 7.0))
    assert why is not None and "single value" in why
    assert fine[0] < 7.0 < fine[1] and fine[1] - fine[0] < 1e-6 and np.array_equal(fine, coarse)
    for empty in (np.full(5, np.nan), np.array([]), np.array([np.inf, -np.inf])):
        fine, _, why = quantile_edges(empty)
        assert why is not None and fine.tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="divisor"):
        quantile_edges(np.arange(10.0), 500, 7)


def test_coarsen_needs_nested_edges() -> None:
    fine = Binned(np.array([0.0, 1.0, 2.0, 3.0]), np.array([1, 2, 3, 4, 5]), missing=6)
    assert coarsen(fine, [0.0, 2.0, 3.0]).counts.tolist() == [1, 5, 4, 5]
    assert coarsen(fine, [0.0, 3.0]).missing == 6
    for bad in ([0.0, 1.5, 3.0], [1.0, 3.0], [0.0, 2.0], [-1.0, 3.0]):
        with pytest.raises(ValueError, match="fine edges"):
            coarsen(fine, bad)


@pytest.mark.parametrize(
    ("ref", "live"),
    [
        (np.arange(400.0, 600.0), [300.0, 399.0, 450.0, 10.0, -5.0, 650.0]),  # grid above 0
        (np.linspace(-600.0, -400.0, 300), [-300.0, -650.0, -500.0, 0.0, 1e9]),  # below 0
        (np.linspace(1e6, 1e6 + 1.0, 300), [1e6 - 1.0, 1e6 + 0.5, 0.0, 2e6]),  # far from 0
        (1e9 + np.linspace(0.0, 1e-4, 300), [1e9 - 1.0, 1e9 + 5e-5, 0.0]),  # cells > 2**53
        (np.linspace(-1.0, 1.0, 300), [-0.0, 0.0, -1e-310, 1e-310, -2.0, 2.0]),  # around 0
    ],
)
def test_grids_in_every_position_bin_exactly(ref: np.ndarray, live: list[float]) -> None:
    edges, _, _ = quantile_edges(ref, 100, 10)
    data = np.concatenate([live, edges, np.nextafter(edges, -np.inf)])
    singles = [np.array([v]) for v in live]  # a batch's min and max pick the look-up path
    for batch in (data, np.array(live), edges, *singles):
        prof = NumericProfile(edges).update_many(batch)
        assert prof.histogram == bin_values(batch, edges)


def test_ks_and_wasserstein_from_histograms_obey_the_documented_bounds(
    rng: np.random.Generator,
) -> None:
    """The bounds stated in ``inferwatch.profile._bins`` (the drift statistics rely on them)."""
    from scipy import stats

    ref_data = rng.normal(size=20_000)
    edges, _, _ = quantile_edges(ref_data, 200, 10)
    for cur_data in (rng.normal(size=5000), rng.normal(0.3, 1.2, 5000)):
        ref = NumericProfile(edges).update_many(ref_data)
        cur = NumericProfile(edges).update_many(cur_data)
        p = ref.histogram.counts / ref.n_finite
        q = cur.histogram.counts / cur.n_finite
        cdf_p, cdf_q = np.cumsum(p), np.cumsum(q)
        d_edges = float(np.max(np.abs(cdf_p - cdf_q)))
        d_exact = stats.ks_2samp(ref_data, cur_data).statistic
        assert d_edges <= d_exact + 1e-12
        assert d_exact <= d_edges + float(np.max(np.minimum(p, q))) + 1e-12
        lo, hi = min(ref.min, cur.min), max(ref.max, cur.max)
        bounds = np.concatenate(([lo], edges, [hi]))  # slot j spans bounds[j]..bounds[j+1]
        x = np.linspace(bounds[:-1], bounds[1:], 64, axis=1)  # 64 points inside every slot
        start_p, start_q = cdf_p - p, cdf_q - q
        frac = (x - bounds[:-1, None]) / np.maximum(np.diff(bounds), 1e-300)[:, None]
        gap = np.abs((start_p + frac.T * p).T - (start_q + frac.T * q).T)
        w_hist = float(np.sum(np.trapezoid(gap, x, axis=1)))
        w_exact = stats.wasserstein_distance(ref_data, cur_data)
        assert abs(w_hist - w_exact) <= float(np.sum(np.diff(bounds) * (p + q)))
