"""Bonferroni and Benjamini-Hochberg adjustments."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from inferwatch.stats import CORRECTIONS, DriftInputError, benjamini_hochberg, bonferroni


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_benjamini_hochberg_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.random(int(rng.integers(1, 60))) ** 3
    p[: p.size // 4] = p[0]  # ties
    np.testing.assert_allclose(
        benjamini_hochberg(p), scipy.stats.false_discovery_control(p, method="bh"), atol=1e-12
    )


def test_bonferroni_multiplies_and_caps() -> None:
    np.testing.assert_allclose(bonferroni([0.01, 0.2, 0.5]), [0.03, 0.6, 1.0])


def test_empty_and_invalid_input() -> None:
    assert benjamini_hochberg([]).size == 0
    assert bonferroni([]).size == 0
    for bad in ([0.1, float("nan")], [1.5], [-0.1]):
        with pytest.raises(DriftInputError, match=r"\[0, 1\]"):
            benjamini_hochberg(bad)


def test_corrections_by_config_name() -> None:
    assert set(CORRECTIONS) == {"bonferroni", "benjamini_hochberg"}
    assert CORRECTIONS["bonferroni"] is bonferroni
