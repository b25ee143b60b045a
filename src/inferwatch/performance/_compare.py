"""Is version B better than version A?  Significance tests on mergeable summaries.

Two model versions that served disjoint shares of traffic (an A/B split) are compared
from the counts their performance windows already keep, never from rows:

- **rates** (accuracy, precision, recall, agreement: ``successes`` out of ``n``):
  the two-proportion z-test, or Fisher's exact test when the normal approximation is
  poor (any expected cell of the 2 x 2 table below 5, Cochran's rule).  The z-test's
  p-value uses the pooled share; its interval is the Wald interval of the difference.
  With Fisher's test the interval is Newcombe's hybrid score interval (method 10 of
  Newcombe 1998), which keeps its coverage for small counts where Wald's does not.
- **means of a per-prediction quantity** (absolute error for MAE, error for bias,
  squared error for MSE) from ``n``, the sum and the sum of squares of that quantity:
  Welch's t-test with the Welch-Satterthwaite degrees of freedom.  Sums add across
  windows, workers and replicas, so the test runs on merged summaries.

Every result states the difference ``b - a``, its confidence interval, the p-value
(two-sided) and the test used.  The samples must be independent: an A/B split is; a
shadow version scores the *same* rows as its primary, so its comparison is paired and
these tests are conservative for it (they ignore the pairing's lower variance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from inferwatch.performance._classification import ClassificationSummary
    from inferwatch.performance._regression import RegressionSummary

__all__ = ["Comparison", "compare_means", "compare_proportions", "compare_summaries"]

ProportionMethod = Literal["auto", "z", "fisher"]


def _scipy_stats() -> Any:
    """scipy.stats on first use: its import costs about 0.6 s that the server start skips."""
    import scipy.stats

    return scipy.stats


@dataclass(frozen=True, slots=True)
class Comparison:
    """The difference between two versions' values of one metric (``b - a``)."""

    test: str  # "two_proportion_z", "fisher_exact" or "welch_t"
    a: float  # version A's rate or mean
    b: float
    n_a: int
    n_b: int
    difference: float  # b - a
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float  # two-sided
    statistic: float  # z, t, or Fisher's sample odds ratio
    df: float | None = None  # Welch's degrees of freedom

    @property
    def significant(self) -> bool:
        """True when the difference is significant at ``1 - confidence`` (two-sided)."""
        return self.p_value < 1.0 - self.confidence

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "a": self.a,
            "b": self.b,
            "n_a": self.n_a,
            "n_b": self.n_b,
            "difference": self.difference,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "confidence": self.confidence,
            "p_value": self.p_value,
            "statistic": self.statistic,
            "df": self.df,
            "significant": self.significant,
        }


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")


def _check_counts(successes: int, n: int, side: str) -> None:
    if n <= 0:
        raise ValueError(f"version {side} has no observations (n_{side} = {n})")
    if not 0 <= successes <= n:
        raise ValueError(f"successes_{side} must be between 0 and n_{side} = {n}, got {successes}")


def _wilson(x: int, n: int, z: float) -> tuple[float, float]:
    """Wilson's score interval for one proportion."""
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def compare_proportions(
    successes_a: int,
    n_a: int,
    successes_b: int,
    n_b: int,
    *,
    confidence: float = 0.95,
    method: ProportionMethod = "auto",
) -> Comparison:
    """Compare two rates ``successes / n`` (e.g. correct predictions out of labelled ones).

    ``method="auto"`` uses Fisher's exact test when an expected count of the 2 x 2 table
    (successes and failures per version under the pooled rate) is below 5, the
    two-proportion z-test otherwise.
    """
    _check_confidence(confidence)
    _check_counts(successes_a, n_a, "a")
    _check_counts(successes_b, n_b, "b")
    st = _scipy_stats()
    pa, pb = successes_a / n_a, successes_b / n_b
    diff = pb - pa
    z_crit = float(st.norm.ppf(0.5 + confidence / 2))
    pooled = (successes_a + successes_b) / (n_a + n_b)
    if method == "auto":
        expected = min(n * share for n in (n_a, n_b) for share in (pooled, 1 - pooled))
        method = "fisher" if expected < 5 else "z"
    if method == "fisher":
        table = [[successes_a, n_a - successes_a], [successes_b, n_b - successes_b]]
        res = st.fisher_exact(table, alternative="two-sided")
        la, ua = _wilson(successes_a, n_a, z_crit)
        lb, ub = _wilson(successes_b, n_b, z_crit)
        low = diff - math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2)
        high = diff + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2)
        return Comparison(
            "fisher_exact", pa, pb, n_a, n_b, diff, low, high, confidence,
            float(min(1.0, res.pvalue)), float(res.statistic),
        )  # fmt: skip
    if method != "z":
        raise ValueError(f"method must be 'auto', 'z' or 'fisher', got {method!r}")
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    z = diff / se0 if se0 > 0 else 0.0
    p_value = float(2 * st.norm.sf(abs(z)))
    se = math.sqrt(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b)
    return Comparison(
        "two_proportion_z", pa, pb, n_a, n_b, diff, diff - z_crit * se, diff + z_crit * se,
        confidence, p_value, z,
    )  # fmt: skip


def compare_means(
    n_a: int,
    sum_a: float,
    sum_squares_a: float,
    n_b: int,
    sum_b: float,
    sum_squares_b: float,
    *,
    confidence: float = 0.95,
) -> Comparison:
    """Welch's t-test on two means given as ``(n, sum, sum of squares)`` of a quantity.

    For MAE pass the absolute errors' sums (``sum |e|`` and ``sum e**2``); for bias the
    signed errors'.  Each side needs at least two observations.  The sample variance is
    ``(sum_squares - sum**2 / n) / (n - 1)``, clipped at 0 against rounding.
    """
    _check_confidence(confidence)
    for n, side in ((n_a, "a"), (n_b, "b")):
        if n < 2:
            raise ValueError(f"version {side} needs at least 2 observations (n_{side} = {n})")
    values = (sum_a, sum_squares_a, sum_b, sum_squares_b)
    if not all(math.isfinite(v) for v in values):
        raise ValueError("sums must be finite numbers")
    st = _scipy_stats()
    mean_a, mean_b = sum_a / n_a, sum_b / n_b
    var_a = max(0.0, (sum_squares_a - sum_a * sum_a / n_a) / (n_a - 1))
    var_b = max(0.0, (sum_squares_b - sum_b * sum_b / n_b) / (n_b - 1))
    va, vb = var_a / n_a, var_b / n_b
    diff = mean_b - mean_a
    se = math.sqrt(va + vb)
    if se == 0.0:  # both samples constant: no spread to test against
        p_value = 1.0 if diff == 0 else 0.0
        stat = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        return Comparison(
            "welch_t", mean_a, mean_b, n_a, n_b, diff, diff, diff, confidence, p_value, stat,
            float(n_a + n_b - 2),
        )  # fmt: skip
    df = (va + vb) ** 2 / (va * va / (n_a - 1) + vb * vb / (n_b - 1))
    t = diff / se
    p_value = float(2 * st.t.sf(abs(t), df))
    half = float(st.t.ppf(0.5 + confidence / 2, df)) * se
    return Comparison(
        "welch_t", mean_a, mean_b, n_a, n_b, diff, diff - half, diff + half, confidence,
        p_value, t, df,
    )  # fmt: skip


#: the metrics :func:`compare_summaries` tests, by task
CLASSIFICATION_COMPARISONS = ("accuracy", "precision", "recall")
REGRESSION_COMPARISONS = ("mae", "mean_error")


def compare_summaries(
    a: ClassificationSummary | RegressionSummary,
    b: ClassificationSummary | RegressionSummary,
    metric: str = "accuracy",
    *,
    positive: str | None = None,
    confidence: float = 0.95,
) -> Comparison:
    """Compare one metric of two versions' (merged) performance summaries.

    Classifiers: ``accuracy`` (correct out of labelled), ``recall`` (of ``positive``,
    correct out of its true rows) and ``precision`` (correct out of the rows predicted
    ``positive``), from the confusion matrices, with :func:`compare_proportions`.
    ``positive`` defaults to the second of two classes.  Regressors: ``mae`` (absolute
    errors: their sum is ``n * mae``, their sum of squares ``n * rmse**2``) and
    ``mean_error`` (signed errors), with :func:`compare_means`.
    """
    from inferwatch.performance._classification import ClassificationSummary
    from inferwatch.performance._regression import RegressionSummary

    if isinstance(a, ClassificationSummary) and isinstance(b, ClassificationSummary):
        if metric not in CLASSIFICATION_COMPARISONS:
            raise ValueError(
                f"metric {metric!r} cannot be compared for classifiers; "
                f"use one of {', '.join(CLASSIFICATION_COMPARISONS)}"
            )
        return compare_proportions(
            *_proportion(a, metric, positive, "a"),
            *_proportion(b, metric, positive, "b"),
            confidence=confidence,
        )
    if isinstance(a, RegressionSummary) and isinstance(b, RegressionSummary):
        if metric not in REGRESSION_COMPARISONS:
            raise ValueError(
                f"metric {metric!r} cannot be compared for regressors; "
                f"use one of {', '.join(REGRESSION_COMPARISONS)}"
            )
        return compare_means(*_sums(a, metric), *_sums(b, metric), confidence=confidence)
    raise TypeError("compare two ClassificationSummary or two RegressionSummary objects")


def _proportion(
    summary: ClassificationSummary, metric: str, positive: str | None, side: str
) -> tuple[int, int]:
    confusion = summary.confusion_matrix()
    if metric == "accuracy":
        return int(confusion.trace()), int(confusion.sum())
    classes = summary.classes
    if positive is None:
        if len(classes) != 2:
            raise ValueError(f"{metric} of a {len(classes)}-class model needs positive=CLASS")
        positive = classes[1]
    if positive not in classes:
        raise ValueError(f"version {side} has no class {positive!r}")
    k = classes.index(positive)
    total = confusion[k, :].sum() if metric == "recall" else confusion[:, k].sum()
    return int(confusion[k, k]), int(total)


def _sums(summary: RegressionSummary, metric: str) -> tuple[int, float, float]:
    n = summary.n_labelled
    values = summary.metrics()
    squares = n * values["rmse"] ** 2
    return n, n * values[metric], squares
