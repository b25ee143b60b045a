"""Energy distance over the reference std: scipy's answers and the threshold's meaning."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from inferwatch.stats import energy_distance


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("n1", "n2"), [(10, 13), (400, 250), (5000, 8000)])
def test_matches_scipy_over_the_reference_std(seed: int, n1: int, n2: int) -> None:
    rng = np.random.default_rng(seed)
    ref, cur = rng.normal(3.0, 2.0, size=n1), rng.lognormal(1.0, 0.5, size=n2)
    ours = energy_distance(ref, cur)
    expected = scipy.stats.energy_distance(ref, cur) / np.std(ref)
    assert ours.statistic == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert ours.effect_size == ours.statistic


def test_a_small_mean_shift_reads_as_three_quarters_of_it(rng: np.random.Generator) -> None:
    ref = rng.normal(size=100_000)
    result = energy_distance(ref, ref + 0.1)
    assert result.statistic == pytest.approx(np.pi**-0.25 * 0.1, rel=0.02)
    assert not result.drift_detected  # 0.1 flags shifts from about 0.13 std


def test_a_constant_reference_is_scaled_by_the_pooled_std() -> None:
    result = energy_distance(np.zeros(50), np.ones(50))
    assert result.statistic == pytest.approx(scipy.stats.energy_distance([0.0], [1.0]) / 0.5)
    assert result.details["scale_source"].startswith("pooled")
