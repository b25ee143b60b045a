"""Drift statistics: one pure function per test, a registry, and the default choice.

Every test is a function ``(reference, current, threshold) -> DriftResult`` on raw
numeric arrays (``exact``), on reference bins (``binned``, what live profiles hold) or
on category counts (``counts``), bundled in a :class:`DriftTest` and registered by name::

    >>> import numpy as np
    >>> from inferwatch import stats
    >>> rng = np.random.default_rng(0)
    >>> ref, cur = rng.normal(size=500), rng.normal(1.0, size=500)
    >>> stats.get("ks").compare(ref, cur).drift_detected
    True
    >>> stats.default_test("numeric", n_reference=50_000, n_unique=40_000)
    'wasserstein'

Pure core: stdlib, numpy and scipy only; no I/O.
"""

from __future__ import annotations

from inferwatch.stats._anderson import ANDERSON_DARLING, anderson_darling
from inferwatch.stats._base import (
    Counts,
    DriftInputError,
    DriftResult,
    DriftTest,
    EmptySampleError,
    NoDefaultTestError,
    UnknownTestError,
    align,
    counts_from_values,
)
from inferwatch.stats._chi2 import CHI_SQUARE, chi_square
from inferwatch.stats._correction import CORRECTIONS, benjamini_hochberg, bonferroni
from inferwatch.stats._cramer import CRAMER_VON_MISES, cramer_von_mises
from inferwatch.stats._divergence import (
    HELLINGER,
    JENSEN_SHANNON,
    KL_DIVERGENCE,
    hellinger,
    hellinger_binned,
    hellinger_counts,
    jensen_shannon,
    jensen_shannon_binned,
    jensen_shannon_counts,
    kl_divergence,
    kl_divergence_binned,
    kl_divergence_counts,
)
from inferwatch.stats._energy import ENERGY_DISTANCE, energy_distance
from inferwatch.stats._ks import KS, ks_binned, ks_test
from inferwatch.stats._psi import PSI, psi, psi_binned, psi_counts
from inferwatch.stats._registry import (
    DEFAULT_RULES,
    KIND_RULES,
    REGISTRY,
    DefaultRule,
    IntRange,
    KindRule,
    Registry,
    available,
    default_test,
    get,
    register,
)
from inferwatch.stats._samples import quantile_edges
from inferwatch.stats._wasserstein import WASSERSTEIN, wasserstein, wasserstein_binned
from inferwatch.stats._ztest import Z_TEST, z_test

__all__ = [
    "ANDERSON_DARLING",
    "CHI_SQUARE",
    "CORRECTIONS",
    "CRAMER_VON_MISES",
    "Counts",
    "DEFAULT_RULES",
    "DefaultRule",
    "DriftInputError",
    "DriftResult",
    "DriftTest",
    "ENERGY_DISTANCE",
    "EmptySampleError",
    "HELLINGER",
    "IntRange",
    "JENSEN_SHANNON",
    "KIND_RULES",
    "KL_DIVERGENCE",
    "KS",
    "KindRule",
    "NoDefaultTestError",
    "PSI",
    "REGISTRY",
    "Registry",
    "UnknownTestError",
    "WASSERSTEIN",
    "Z_TEST",
    "align",
    "anderson_darling",
    "available",
    "benjamini_hochberg",
    "bonferroni",
    "chi_square",
    "counts_from_values",
    "cramer_von_mises",
    "default_test",
    "energy_distance",
    "get",
    "hellinger",
    "hellinger_binned",
    "hellinger_counts",
    "jensen_shannon",
    "jensen_shannon_binned",
    "jensen_shannon_counts",
    "kl_divergence",
    "kl_divergence_binned",
    "kl_divergence_counts",
    "ks_binned",
    "ks_test",
    "psi",
    "psi_binned",
    "psi_counts",
    "quantile_edges",
    "register",
    "wasserstein",
    "wasserstein_binned",
    "z_test",
]

# reprs and tracebacks show the facade, not the private module (as httpx does)
for _cls in (
    Counts,
    DefaultRule,
    DriftInputError,
    DriftResult,
    DriftTest,
    EmptySampleError,
    IntRange,
    KindRule,
    NoDefaultTestError,
    Registry,
    UnknownTestError,
):
    _cls.__module__ = __name__
del _cls
