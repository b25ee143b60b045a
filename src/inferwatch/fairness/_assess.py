"""Fairness gaps with fairlearn's definitions, their bootstrap intervals and a verdict.

The four metrics, each between the groups that have rows (fairlearn's
``method="between_groups"``):

* ``demographic_parity_difference``: largest minus smallest selection rate
  (share predicted positive), over every row, labelled or not;
* ``disparate_impact_ratio``: smallest over largest selection rate (fairlearn's
  ``demographic_parity_ratio``; NaN when no group has a positive prediction);
* ``equal_opportunity_difference``: largest minus smallest true positive rate;
* ``equalized_odds_difference``: the larger of the true positive rate gap and the false
  positive rate gap (fairlearn's ``agg="worst_case"``).

The rates follow fairlearn exactly, including its edge: a group with labelled rows but
no positives has a true positive rate of 0 (scikit-learn's ``confusion_matrix(...,
normalize="true")`` turns 0/0 into 0), and likewise for negatives and the false positive
rate.  A group with no labelled rows takes no part in the label-based gaps, as it would
not appear in fairlearn's input of labelled rows.

**Interval.**  A row bootstrap (fairlearn's ``MetricFrame(n_boot=...)`` resamples rows with
replacement) only changes how many rows land in each (group, label, prediction) cell, and
those cell counts are a multinomial draw from the observed cell shares.  So ``resamples``
multinomial draws over the few cells give the same distribution as ``resamples`` row
resamples, in milliseconds whatever the number of rows.  The interval is the percentile
interval at ``confidence``, as MetricFrame's ``ci_quantiles`` gives; resamples in which
a metric is undefined (a ratio with no positive prediction) are left out of its interval.

**Verdict.**  ``unfair`` only when the *whole* interval is past the threshold: the lower
bound above ``difference_threshold`` for a difference, the upper bound below
``ratio_threshold`` for the ratio.  A verdict on the point value would flip on noise: a
max-minus-min gap between groups with *equal* true rates is positive by construction,
and with four groups of 100 rows and equal selection rates (0.5) the gap exceeded 0.1
in 46% of 300 windows, the interval's lower bound in 3% (``tests/fairness/test_assess.py``
holds both rates to bounds): an alert every other window about nothing.
``ok`` therefore means "not shown to be past the threshold at
this confidence", and the interval is reported beside it.  ``insufficient_data`` when
fewer than two groups take part, or when any group has fewer than ``min_group_size`` of
the rows the metric divides by: rows for the selection-rate metrics, labelled positives
for equal opportunity, labelled positives and negatives for equalized odds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import NDArray

from inferwatch._json import plain
from inferwatch.fairness._counts import GroupCounts

__all__ = ["METRICS", "FairnessResult", "Verdict", "assess"]

Verdict = Literal["ok", "unfair", "insufficient_data"]
FloatArray = NDArray[np.float64]

METRICS: Final = (
    "demographic_parity_difference",
    "equalized_odds_difference",
    "equal_opportunity_difference",
    "disparate_impact_ratio",
)


@dataclass(frozen=True, slots=True)
class FairnessResult:
    """One fairness metric for one window: its value, interval, threshold and verdict."""

    metric: str
    value: float
    lower: float
    upper: float
    threshold: float
    verdict: Verdict
    #: per group taking part: selection_rate, tpr, fpr, n, labelled, positives, negatives
    by_group: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values: NaN (an undefined rate or interval) becomes ``None``."""
        out: dict[str, Any] = plain(asdict(self))
        return out


@dataclass(frozen=True, slots=True)
class _Rates:
    """Per-group rates and their denominators over the last axis (groups); leading axes
    are resamples.  A rate is NaN where the group takes no part."""

    n: NDArray[np.int64]
    positives: NDArray[np.int64]
    negatives: NDArray[np.int64]
    selection: FloatArray
    tpr: FloatArray
    fpr: FloatArray


def _ratio(num: NDArray[np.int64], den: NDArray[np.int64], where: NDArray[np.bool_]) -> FloatArray:
    """``num / den`` where ``where``, NaN elsewhere; 0 where ``den`` is 0 (fairlearn)."""
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=where & (den > 0))
    out[where & (den == 0)] = 0.0
    return out


def _rates(cells: NDArray[np.int64]) -> _Rates:
    tn, fp, fn, tp, _, unlabelled_pos = np.moveaxis(cells, -1, 0)
    n = cells.sum(axis=-1)
    positives, negatives = fn + tp, tn + fp
    labelled = (positives + negatives) > 0
    return _Rates(
        n=n,
        positives=positives,
        negatives=negatives,
        selection=_ratio(fp + tp + unlabelled_pos, n, n > 0),
        tpr=_ratio(tp, positives, labelled),
        fpr=_ratio(fp, negatives, labelled),
    )


def _gap(rates: FloatArray) -> FloatArray:
    """Largest minus smallest rate over the groups, ignoring the NaN ones."""
    if rates.shape[-1] == 0:
        return np.full(rates.shape[:-1], np.nan)
    gap: FloatArray = np.fmax.reduce(rates, axis=-1) - np.fmin.reduce(rates, axis=-1)
    return gap


def _min_over_max(rates: FloatArray) -> FloatArray:
    if rates.shape[-1] == 0:
        return np.full(rates.shape[:-1], np.nan)
    low, high = np.fmin.reduce(rates, axis=-1), np.fmax.reduce(rates, axis=-1)
    out = np.full(low.shape, np.nan)
    np.divide(low, high, out=out, where=high > 0)
    return out


_VALUES: Final[dict[str, Callable[[_Rates], FloatArray]]] = {
    "demographic_parity_difference": lambda r: _gap(r.selection),
    "equalized_odds_difference": lambda r: np.fmax(_gap(r.tpr), _gap(r.fpr)),
    "equal_opportunity_difference": lambda r: _gap(r.tpr),
    "disparate_impact_ratio": lambda r: _min_over_max(r.selection),
}


def _sizes(metric: str, r: _Rates) -> NDArray[np.int64]:
    """Per taking-part group, the rows the metric divides by (the smallest denominator)."""
    if metric in ("demographic_parity_difference", "disparate_impact_ratio"):
        return r.n[r.n > 0]
    part = ~np.isnan(r.tpr)
    if metric == "equal_opportunity_difference":
        return r.positives[part]
    return np.minimum(r.positives, r.negatives)[part]


def _check(name: str, value: float, low: float, high: float, *, open_low: bool) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not (low < value <= high if open_low else low <= value <= high):
        raise ValueError(f"{name} must be in {'(' if open_low else '['}{low}, {high}], got {value}")


def _check_int(name: str, value: int, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _interval(samples: FloatArray, confidence: float) -> tuple[float, float]:
    finite = samples[~np.isnan(samples)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return (float(low), float(high))


def _by_group(groups: tuple[str, ...], r: _Rates) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for i, name in enumerate(groups):
        if r.n[i] == 0:
            continue
        out[name] = {
            "selection_rate": float(r.selection[i]),
            "tpr": float(r.tpr[i]),
            "fpr": float(r.fpr[i]),
            "n": float(r.n[i]),
            "labelled": float(r.positives[i] + r.negatives[i]),
            "positives": float(r.positives[i]),
            "negatives": float(r.negatives[i]),
        }
    return out


def assess(
    counts: GroupCounts,
    *,
    difference_threshold: float = 0.1,
    ratio_threshold: float = 0.8,
    confidence: float = 0.95,
    resamples: int = 1000,
    min_group_size: int = 30,
    seed: int = 0,
) -> list[FairnessResult]:
    """The four fairness metrics of ``counts`` (in :data:`METRICS` order), each with its
    bootstrap interval and verdict; see the module docstring for the rules.

    The defaults are the common conventions: a 0.1 gap, and the "four-fifths rule" (0.8)
    of US employment guidance for the disparate impact ratio.  ``seed`` makes the interval
    reproducible: the same counts and arguments give the same result.
    """
    if not isinstance(counts, GroupCounts):
        raise TypeError(f"counts must be GroupCounts, got {type(counts).__name__}")
    _check("difference_threshold", difference_threshold, 0.0, 1.0, open_low=False)
    _check("ratio_threshold", ratio_threshold, 0.0, 1.0, open_low=False)
    _check("confidence", confidence, 0.0, 1.0, open_low=True)
    if confidence >= 1.0:
        raise ValueError(f"confidence must be below 1, got {confidence}")
    _check_int("resamples", resamples, 1)
    _check_int("min_group_size", min_group_size, 1)
    _check_int("seed", seed, 0)

    cells = counts.cells
    rates = _rates(cells)
    total = int(cells.sum())
    boot: _Rates | None = None
    if total > 0:
        rng = np.random.default_rng(seed)
        draws = rng.multinomial(total, cells.ravel() / total, size=resamples)
        boot = _rates(draws.reshape(resamples, *cells.shape))
    by_group = _by_group(counts.groups, rates)

    results = []
    for metric in METRICS:
        value = float(_VALUES[metric](rates))
        low, high = (
            _interval(_VALUES[metric](boot), confidence) if boot is not None else (np.nan, np.nan)
        )
        sizes = _sizes(metric, rates)
        ratio = metric == "disparate_impact_ratio"
        threshold = ratio_threshold if ratio else difference_threshold
        verdict: Verdict
        if np.isnan(value) or sizes.size < 2 or int(sizes.min()) < min_group_size:
            verdict = "insufficient_data"
        elif (high < threshold) if ratio else (low > threshold):
            verdict = "unfair"
        else:
            verdict = "ok"
        results.append(
            FairnessResult(
                metric=metric,
                value=value,
                lower=low,
                upper=high,
                threshold=float(threshold),
                verdict=verdict,
                by_group={g: dict(d) for g, d in by_group.items()},
            )
        )
    return results
