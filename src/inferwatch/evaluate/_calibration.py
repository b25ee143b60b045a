"""Calibrated live thresholds: a test's no-drift distribution at one window size.

The method and why the reference side is resampled too are explained in
``evaluate/_live.py``'s docstring; this module holds the resampling itself, which needs
only the test and the reference's shares (a histogram or category counts), never rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from inferwatch._binned import Binned
from inferwatch.stats import Counts, DriftTest

__all__ = ["Calibration", "CalibrationMode", "bucket", "calibrate"]

CalibrationMode = Literal["reference", "fixed"]
_IntArray = npt.NDArray[np.int64]
_METHOD: Final = "two-sample multinomial resampling of the reference"


@dataclass(frozen=True, slots=True, eq=False)
class Calibration:
    """A feature's no-drift distribution at one window size, and its threshold."""

    threshold: float
    quantile: float
    resamples: int
    n_current: int
    null: npt.NDArray[np.float64]  # sorted resampled statistics

    def p_value(self, statistic: float) -> float:
        """Share of resamples at least as large as ``statistic`` (with the +1 correction)."""
        above = len(self.null) - int(np.searchsorted(self.null, statistic, side="left"))
        return (above + 1) / (len(self.null) + 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": _METHOD,
            "quantile": self.quantile,
            "resamples": self.resamples,
            "n_current": self.n_current,
            "null_median": float(np.median(self.null)),
        }


def bucket(n: int) -> int:
    """``n`` rounded down to a power of two."""
    return 1 << (max(n, 1).bit_length() - 1)


def calibrate(
    test: DriftTest,
    reference: Binned | Counts,
    n: int,
    *,
    resamples: int,
    quantile: float,
    rng: np.random.Generator,
) -> Calibration:
    """``test``'s no-drift distribution for ``n``-row windows against ``reference``."""
    if isinstance(reference, Binned):
        null = _null_binned(test, reference, n, resamples, rng)
    else:
        null = _null_counts(test, reference, n, resamples, rng)
    stats_ = np.sort(np.abs(null))
    threshold = float(np.quantile(stats_, quantile))
    return Calibration(threshold, quantile, resamples, n, stats_)


def _null_binned(
    test: DriftTest, ref: Binned, n: int, r: int, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """``r`` statistics of a pseudo-reference against a pseudo-window of ``n`` rows, both
    drawn from the reference's shares (the window's with the out-of-range tails)."""
    fn = test.binned
    assert fn is not None
    full = ref.full().astype(np.float64)  # [missing, under, bins..., over]
    n_ref = int(full.sum())
    shares = full / n_ref
    tails = shares.copy()
    if ref.edges[-1] > ref.edges[0]:
        tails[1] += 1.0 / (n_ref + 1)
        tails[-1] += 1.0 / (n_ref + 1)
        tails /= tails.sum()
    refs = rng.multinomial(n_ref, shares, size=r)
    curs = rng.multinomial(n, tails, size=r)
    if test.binned_statistics is not None:  # all at once, no p-value per pair
        return np.asarray(test.binned_statistics(refs, curs), dtype=np.float64)
    edges = ref.edges
    null = [
        fn(_binned(edges, a), _binned(edges, b), 0.5).statistic
        for a, b in zip(refs, curs, strict=True)
    ]
    return np.asarray(null, dtype=np.float64)


def _null_counts(
    test: DriftTest, ref: Counts, n: int, r: int, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """As :func:`_null_binned` for category counts (missing is an entry; no unseen)."""
    fn = test.counts
    assert fn is not None
    vec = np.append(ref.counts, ref.missing).astype(np.float64)
    n_ref = int(vec.sum())
    shares = vec / n_ref
    refs = rng.multinomial(n_ref, shares, size=r)
    curs = rng.multinomial(n, shares, size=r)
    cats = ref.categories
    null = [
        fn(_counts(cats, a), _counts(cats, b), 0.5).statistic
        for a, b in zip(refs, curs, strict=True)
    ]
    return np.asarray(null, dtype=np.float64)


def _binned(edges: npt.NDArray[np.float64], full: _IntArray) -> Binned:
    return Binned(edges, full[1:].astype(np.int64), int(full[0]))


def _counts(categories: tuple[str, ...], vec: _IntArray) -> Counts:
    return Counts(categories, vec[:-1].astype(np.int64), int(vec[-1]))
