"""Data quality and category counts read from window profiles (no rows).

The live evaluator judges windows it only knows as profiles: categories become
:class:`~inferwatch.stats.Counts` (unseen values as categories of their own, those past
the profile's cap pooled as ``(other unseen)``, missing as an entry), a numeric column
judged as categories has one per reference bin, and the quality of a numeric window is
read from its histogram (outliers beyond Tukey's fences on the reference quartiles,
located inside a bin by linear interpolation).

Shares are judged as in ``check`` (``quality/_limits.py``): against the reference
profile's own missing and outlier counts (its outliers located on its own histogram the
same way, so the interpolation error is alike on both sides), its finite count for the
out-of-range allowance and its categories seen once for the unseen allowance.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Final

import numpy as np
import numpy.typing as npt

from inferwatch._binned import Binned
from inferwatch.evaluate._results import DriftOptions
from inferwatch.profile import CategoricalProfile, NumericProfile
from inferwatch.quality import FeatureQuality, NumericReference, with_problems
from inferwatch.stats import Counts

__all__ = [
    "OTHER_UNSEEN",
    "bins_as_counts",
    "numeric_window_quality",
    "profile_reference",
    "reference_counts",
    "window_counts",
]

#: the category that pools a window's unseen values beyond the profile's tracking cap
OTHER_UNSEEN: Final = "(other unseen)"


def _bin_labels(edges: npt.NDArray[np.float64]) -> tuple[str, ...]:
    inner = [f"[{edges[i]:.6g}, {edges[i + 1]:.6g})" for i in range(len(edges) - 1)]
    return (f"< {edges[0]:.6g}", *inner, f"> {edges[-1]:.6g}")


def bins_as_counts(binned: Binned) -> Counts:
    """A histogram as categories, one per bin (numeric columns judged as categories)."""
    return Counts(_bin_labels(binned.edges), binned.counts.astype(np.int64), binned.missing)


def reference_counts(prof: CategoricalProfile) -> Counts:
    """The reference's categories that occur in it (as the batch engine counts them)."""
    present = {c: k for c, k in prof.frequencies.items() if k}
    for value, k in prof.unseen.items():  # a schema with fixed categories: values beyond
        present[value] = k
    if prof.other:
        present[OTHER_UNSEEN] = prof.other
    return Counts.from_mapping(present, prof.missing)


def window_counts(prof: CategoricalProfile) -> Counts:
    """The window's reference-category counts, its unseen values, and ``(other unseen)``."""
    counts = {**prof.frequencies, **prof.unseen}
    if prof.other:
        counts[OTHER_UNSEEN] = counts.get(OTHER_UNSEEN, 0) + prof.other
    return Counts.from_mapping(counts, prof.missing)


def _count_below(hist: Binned, lo_value: float, hi_value: float, x: float) -> float:
    """Finite values below ``x``, reading each bin as uniform (under/overflow bins span
    ``[min, first edge]`` and ``[last edge, max]``)."""
    edges = hist.edges
    lows = np.concatenate(([lo_value], edges))
    highs = np.concatenate((edges, [hi_value]))
    widths = highs - lows
    frac = np.where(
        widths > 0,
        np.clip((x - lows) / np.where(widths > 0, widths, 1.0), 0.0, 1.0),
        (lows < x).astype(np.float64),
    )
    return float(np.dot(hist.counts, frac))


def _outliers(prof: NumericProfile, lo_fence: float, hi_fence: float) -> int:
    """Finite values of ``prof`` beyond the fences, read from its histogram."""
    if not prof.n_finite:
        return 0
    below = _count_below(prof.histogram, prof.min, prof.max, lo_fence)
    above = (
        prof.n_finite + prof.non_finite - _count_below(prof.histogram, prof.min, prof.max, hi_fence)
    )
    return max(0, round(below + above) - prof.non_finite)


def profile_reference(ref: NumericProfile, iqr_factor: float) -> NumericReference:
    """What :func:`~inferwatch.quality.with_problems` needs of a reference profile."""
    q1, median, q3 = (float(v) for v in ref.quantiles([0.25, 0.5, 0.75]))
    out = NumericReference(
        n=ref.count,
        missing=ref.missing,
        n_finite=ref.n_finite,
        min=ref.min,
        max=ref.max,
        q1=q1,
        median=median,
        q3=q3,
        constant=ref.n_finite > 0 and ref.min == ref.max,
        iqr_factor=iqr_factor,
    )
    lo, hi = out.fences
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return out
    return replace(out, outliers=_outliers(ref, lo, hi))


def numeric_window_quality(
    name: str,
    kind: str,
    cur: NumericProfile,
    ref: NumericProfile | NumericReference,
    options: DriftOptions,
) -> FeatureQuality:
    """Quality of a numeric window judged against the reference (a profile, or
    :func:`profile_reference` of it computed once)."""
    if isinstance(ref, NumericProfile):
        ref = profile_reference(ref, options.quality.iqr_factor)
    n = cur.count
    hist = cur.histogram
    out_of_range = max(0, int(hist.counts[0] + hist.counts[-1]) - cur.non_finite)
    lo_fence, hi_fence = ref.fences
    outliers = 0
    if math.isfinite(lo_fence) and math.isfinite(hi_fence):
        outliers = _outliers(cur, lo_fence, hi_fence)
    quartiles = cur.quantiles([0.25, 0.5, 0.75])
    has = cur.n_finite > 0
    summary: dict[str, float | str | None] = {
        "mean": cur.mean if has else None,
        "std": cur.std() if has else None,
        "min": cur.min if has else None,
        "q25": float(quartiles[0]) if has else None,
        "median": float(quartiles[1]) if has else None,
        "q75": float(quartiles[2]) if has else None,
        "max": cur.max if has else None,
    }
    share = (lambda c: c / n) if n else (lambda c: 0.0)
    fq = FeatureQuality(
        name=name,
        kind=kind,
        n=n,
        missing=cur.missing,
        missing_share=share(cur.missing),
        reference_missing_share=ref.missing_share,
        reference_outlier_share=ref.outlier_share,
        non_finite=cur.non_finite,
        type_violations=cur.invalid,
        out_of_range=out_of_range,
        out_of_range_share=share(out_of_range),
        outliers=outliers,
        outlier_share=share(outliers),
        constant=has and cur.min == cur.max,
        summary=summary,
    )
    return with_problems(fq, ref, options.quality)
