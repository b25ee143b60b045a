"""Live drift: judge a window profile against the reference profile, at any window size.

:class:`LiveEvaluator` is the batch engine's counterpart for the server's windows.  It
never sees raw rows, only two :class:`~inferwatch.profile.FrameProfile` on the same
reference bins, so every statistic is a ``binned`` or ``counts`` form (``mode="binned"``
for numbers):

* numeric features: the default rule picks the test from the reference's size and
  distinct values, as in the batch engine.  KS and Wasserstein read the fine histogram
  (500 reference-quantile bins: within one bin's share of the exact values, see
  ``profile/_bins.py``); PSI, Jensen-Shannon, KL and Hellinger read the coarse 10-bin
  histogram, the same reference-quantile bins their exact forms use on raw arrays.
  A numeric column with at most 5 distinct reference values is judged as categories,
  one per reference bin;
* categorical and boolean features: the ``counts`` forms on the reference's frequencies
  against the window's, unseen values as categories of their own (those past the
  profile's cap pooled as ``(other unseen)``), missing as an entry;
* data quality from the same profiles: missing share against the reference's, unseen
  share and the most frequent unseen values, out of range (the under/overflow bins),
  outliers beyond Tukey's fences on the reference quartiles (located inside a bin by
  linear interpolation), summary statistics; each share judged against the reference
  profile's own by ``quality.with_problems``, as ``check`` judges it (a rise beyond
  what sampling explains, ``quality/_limits.py``).

A window with fewer than ``min_window_rows`` rows is not judged: each feature carries an
``error`` saying so, and there is no verdict to publish.

Calibrated thresholds (``calibration="reference"``, the default for live windows)
------------------------------------------------------------------------------------
A fixed threshold means different things at different window sizes.  A distance with a
fixed cut-off (Wasserstein >= 0.1, Jensen-Shannon >= 0.1) flags sampling noise as drift
in small windows; a p-value at 0.05 flags one window in twenty on every feature even
when nothing moved, whatever the size; and the default rule itself switches from
p-values to distances at 1,000 reference rows.  So each feature's threshold is
calibrated on the reference, at the window's size: the statistic's no-drift distribution
is estimated from ``calibration_resamples`` parametric resamples of the reference, and
drift is a statistic above its ``calibration_quantile`` quantile (0.99: one false alarm
per feature in a hundred windows, at any size).  For a p-value test the *statistic* is
compared (its size, for the signed Z), not the p-value.

One resample is two multinomial draws from the reference's shares (its histogram on the
same bins, or its category counts): a pseudo-reference of the reference's size and a
pseudo-window of the window's size, compared with the same test.  No raw data is needed
and a resample costs one call of the test on two count vectors.  Drawing the reference
side too is deliberate: the real reference is itself a sample, and when the window is
as large as the reference or larger its noise dominates; comparing draws with the fixed
reference histogram would miss that and flag it as drift (the same reason the
chi-square test here is the two-sample one, see ``stats/_chi2.py``).  The pseudo-window
also puts ``1 / (n_reference + 1)`` of its mass below and above the reference range (the
chance that a new value from the reference's distribution falls outside the range of
``n_reference`` values), because the real reference cannot fall there by construction.
Unseen categories are not modelled: a category the reference never had is drift.

Calibrations are cached per (feature, test, window size rounded *down* to a power of
two) and computed at the rounded size, which errs towards no drift (a smaller size has
a wider no-drift distribution) by at most a factor 2 in size.  Resampling is seeded per
cache entry (``numpy.random.default_rng((seed, crc32(feature), size))``), so a given
window always gets the same verdict.  The result's ``threshold`` is then the calibrated
one, on the statistic's scale; its details keep the test's nominal threshold and verdict
(``nominal_threshold``, ``nominal_drift_detected``), the calibrated p-value (the share
of resamples at least as large) and the calibration's parameters.  The effect size is
the test's own (KS ``D``, Cramér's V, Cohen's h, the distance itself).

A feature with its own threshold in ``options.thresholds`` is judged on it, as set
(the user's explicit cut-off wins over calibration).  With calibration, a
multiple-testing ``correction`` is not applied (the verdicts are not p-values); raise
``calibration_quantile`` for models with many features.

Mind what calibration trades: the false-alarm rate is ``1 - calibration_quantile`` at
every window size, but sensitivity still grows with the sizes, as for any significance
test.  With a 5,000-row reference and 200,000-row windows the calibrated Wasserstein
threshold is about 0.04 reference standard deviations, where the fixed one is 0.1; with a
1,000-row reference the reference's own noise keeps it near the two-sample KS critical
value at 1,000 rows whatever the window size.

Prediction drift
----------------
When the reference profile has the model's output columns (``prediction``: the predicted
class of a classifier, categorical, or the predicted value of a regressor, numeric and
binned on the reference's predictions; ``confidence``: the score, numeric; see
:func:`inferwatch.windows.output_features`), they are judged like features (default
rule, calibration, user tests and thresholds by name) but kept out of ``features``,
which stay the model's inputs, and out of the dataset drift share.  The report has one
``prediction_drift`` slot: it holds the prediction's verdict, and the confidence
verdict goes in its result's ``details["confidence"]`` (``DriftResult.to_dict()``); the
metrics collectors publish that one as ``feature="confidence"``.  A model with scores
but no predicted class (no class column profiled) gets the confidence verdict itself in
the slot.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final, Literal

import numpy as np

from inferwatch._binned import Binned
from inferwatch.evaluate._batch import CATEGORICAL_KINDS, _bars, _correct
from inferwatch.evaluate._calibration import Calibration, CalibrationMode, bucket, calibrate
from inferwatch.evaluate._results import ColumnDrift, DriftOptions, DriftReport
from inferwatch.evaluate._window_quality import (
    OTHER_UNSEEN,
    bins_as_counts,
    numeric_window_quality,
    reference_counts,
    window_counts,
)
from inferwatch.profile import FrameProfile, coarsen
from inferwatch.quality import (
    CategoricalReference,
    FeatureQuality,
    categorical_quality,
    dataset_quality,
)
from inferwatch.schema import Schema
from inferwatch.stats import Counts, DriftInputError, DriftResult, DriftTest, default_test, get

__all__ = [
    "COARSE_TESTS",
    "OTHER_UNSEEN",
    "Calibration",
    "CalibrationMode",
    "LiveEvaluator",
]

#: tests whose exact forms bin raw values on 10 reference quantiles: read the coarse bins
COARSE_TESTS: Final = frozenset({"psi", "jensen_shannon", "kl_divergence", "hellinger"})


@dataclass(frozen=True, slots=True)
class _Plan:
    """How one feature is judged: its test and form, and the reference side ready to use."""

    name: str
    kind: str
    test: DriftTest | None = None
    form: Literal["binned", "coarse", "counts"] = "binned"
    reference: Binned | Counts | None = None
    error: str | None = None


class LiveEvaluator:
    """Judges window profiles against a reference profile (see the module docstring).

    ``reference`` is the reference's profile on the bins the windows use; ``schema``
    names the features to judge (the bins' schema when None).  ``n_unique`` gives the
    reference's distinct values per numeric feature for the default rule; without it
    the number of distinct fine edges is used, exact up to 500 distinct values.
    Parameters are stored as given; the per-feature plan is built (and the parameters
    checked) on the first :meth:`evaluate`, and calibrations are cached as windows ask
    for them.  Not thread-safe: one evaluation thread uses it (the server's loop).
    """

    def __init__(
        self,
        reference: FrameProfile,
        schema: Schema | None = None,
        *,
        options: DriftOptions = DriftOptions(),
        min_window_rows: int = 100,
        calibration: CalibrationMode = "reference",
        calibration_quantile: float = 0.99,
        calibration_resamples: int = 200,
        seed: int = 0,
        n_unique: Mapping[str, int] | None = None,
        prediction: str | None = None,
        confidence: str | None = None,
    ) -> None:
        self.reference = reference
        self.schema = schema
        self.options = options
        self.min_window_rows = min_window_rows
        self.calibration = calibration
        self.calibration_quantile = calibration_quantile
        self.calibration_resamples = calibration_resamples
        self.seed = seed
        self.n_unique = n_unique
        self.prediction = prediction
        self.confidence = confidence
        self._plans: dict[str, _Plan] | None = None
        self._outputs: dict[str, _Plan] = {}
        self._calibrations: dict[tuple[str, str, int], Calibration] = {}

    # -- the plan -----------------------------------------------------------------------

    def _check(self) -> None:
        checks = (
            (
                self.calibration in ("reference", "fixed"),
                "calibration must be 'reference' or 'fixed'",
            ),
            (0.5 < self.calibration_quantile < 1, "calibration_quantile must be in (0.5, 1)"),
            (self.calibration_resamples >= 20, "calibration_resamples must be >= 20"),
            (self.min_window_rows >= 1, "min_window_rows must be >= 1"),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(f"{message}; got {self!r}")

    def _plan_all(self) -> dict[str, _Plan]:
        if self._plans is None:
            self._check()
            schema = self.schema if self.schema is not None else self.reference.bins.schema_
            self._plans = {f.name: self._plan(f.name, f.kind) for f in schema.features}
            # the prediction's kind is the one its bins were fitted with: categorical for
            # a classifier's classes, numeric for a regressor's values
            fitted = {f.name: f.kind for f in self.reference.bins.schema_}
            pred_kind = fitted.get(self.prediction or "", "categorical")
            outputs = ((self.prediction, pred_kind), (self.confidence, "numeric"))
            self._outputs = {
                name: self._plan(name, kind)
                for name, kind in outputs
                if name is not None and name not in self._plans and name in self.reference.columns
            }
        return self._plans

    def _plan(self, name: str, kind: str) -> _Plan:
        if name not in self.reference.columns:
            return _Plan(name, kind, error=f"feature {name!r} is not profiled")
        try:
            if kind in CATEGORICAL_KINDS:
                ref_counts = reference_counts(self.reference.categorical(name))
                n_ref = int(ref_counts.counts.sum())
                n_unique = int(np.count_nonzero(ref_counts.counts))
                test_name = self.options.tests.get(name) or default_test(
                    "categorical", n_ref, n_unique
                )
                return self._with_form(name, kind, get(test_name), ref_counts)
            if kind != "numeric":
                return _Plan(name, kind, error=f"drift of {kind} columns is not computed yet")
            prof = self.reference.numeric(name)
            hist = prof.histogram
            n_unique = (self.n_unique or {}).get(name, len(hist.edges))
            test_name = self.options.tests.get(name) or default_test(
                "numeric", prof.n_finite, n_unique
            )
            test = get(test_name)
            if "numeric" in test.kinds and test.binned is not None:
                if test_name in COARSE_TESTS:
                    coarse = coarsen(hist, self.reference.bins.coarse_edges_[name])
                    return _Plan(name, kind, test, "coarse", coarse)
                return _Plan(name, kind, test, "binned", hist)
            return self._with_form(name, kind, test, bins_as_counts(hist))
        except (DriftInputError, LookupError) as exc:
            message = exc.args[0] if exc.args else str(exc)
            return _Plan(name, kind, error=str(message))

    def _with_form(self, name: str, kind: str, test: DriftTest, ref: Counts) -> _Plan:
        if test.counts is None:
            return _Plan(name, kind, error=f"{test.name} has no counts form; live windows need one")
        return _Plan(name, kind, test, "counts", ref)

    # -- evaluating ---------------------------------------------------------------------

    def evaluate(self, window: FrameProfile) -> DriftReport:
        """The drift report of ``window`` (a profile on the reference's bins)."""
        plans = self._plan_all()
        options = self.options
        if window.n_rows < self.min_window_rows:
            why = (
                f"window has {window.n_rows} rows; at least {self.min_window_rows} are "
                "needed to judge drift (drift.min_window_rows)"
            )
            features = tuple(ColumnDrift(p.name, p.kind, error=why) for p in plans.values())
            quality = dataset_quality(window.n_rows, [], thresholds=options.quality)
            return DriftReport(
                features=features,
                n_reference=self.reference.n_rows,
                n_current=window.n_rows,
                drift_share_threshold=options.drift_share,
                quality=quality,
                prediction_drift=self._prediction_drift(window, error=why),
            )
        columns = [self._column(plan, window) for plan in plans.values()]
        correction = None
        if options.correction is not None and self.calibration == "fixed":
            columns, correction = _correct(columns, options.correction), options.correction
        quality = dataset_quality(
            window.n_rows,
            [c.quality for c in columns if c.quality is not None],
            thresholds=options.quality,
        )
        return DriftReport(
            features=tuple(columns),
            n_reference=self.reference.n_rows,
            n_current=window.n_rows,
            drift_share_threshold=options.drift_share,
            quality=quality,
            correction=correction,
            prediction_drift=self._prediction_drift(window),
        )

    def _prediction_drift(
        self, window: FrameProfile, error: str | None = None
    ) -> ColumnDrift | None:
        """The predicted class's verdict, the confidence's in its details (module docstring)."""
        found = [
            replace(
                ColumnDrift(p.name, p.kind, error=error) if error else self._column(p, window),
                role="prediction",
            )
            for p in self._outputs.values()
        ]
        if not found:
            return None
        pred = found[0]
        if len(found) == 1 or pred.result is None:
            return pred
        conf = found[1]
        summary = conf.result.to_dict() if conf.result is not None else {"error": conf.error}
        details = {**pred.result.details, "confidence": summary}
        return replace(pred, result=replace(pred.result, details=details))

    def _column(self, plan: _Plan, window: FrameProfile) -> ColumnDrift:
        name, kind = plan.name, plan.kind
        quality = self._quality(name, kind, window)
        if plan.error is not None or plan.test is None or plan.reference is None:
            return ColumnDrift(name, kind, error=plan.error, quality=quality)
        current = self._current(plan, window)
        threshold = self.options.thresholds.get(name)
        try:
            result = plan.test.compare(plan.reference, current, kind=kind, threshold=threshold)
            if self.calibration == "reference" and threshold is None:
                result = self._calibrated(plan, result, current)
        except (DriftInputError, LookupError) as exc:
            message = exc.args[0] if exc.args else str(exc)
            return ColumnDrift(name, kind, error=str(message), quality=quality)
        shares = self._shares(plan, window)
        return ColumnDrift(name, kind, result, None, quality, distribution=shares)

    def _shares(self, plan: _Plan, window: FrameProfile) -> dict[str, object] | None:
        """The window's distribution beside the reference's, for a chart (the dashboard's
        feature view): the batch report's ``bars`` for categories; for numbers the shares
        on the reference's coarse edges (the PSI bins, ~10 quantile bins: a chart of
        the 500 fine bins would be noise), values outside the reference's range counted
        in the end bins.  Small (a few dozen numbers) and never stored with the
        evaluation rows: only the published report carries it."""
        name = plan.name
        try:
            if plan.kind in CATEGORICAL_KINDS:
                ref_counts = reference_counts(self.reference.categorical(name))
                return _bars(ref_counts, window_counts(window.categorical(name)))
            edges = self.reference.bins.coarse_edges_.get(name)
            ref = self.reference.numeric(name).histogram
            cur = window.numeric(name).histogram
            if edges is not None:
                ref, cur = coarsen(ref, edges), coarsen(cur, edges)
        except (DriftInputError, LookupError, ValueError):
            return None

        def shares(b: Binned) -> list[float]:
            c = b.counts.astype(np.float64)
            inner = c[1:-1].copy()
            inner[0] += c[0]
            inner[-1] += c[-1]
            total = float(inner.sum())
            return (inner / total).tolist() if total > 0 else [0.0] * len(inner)

        return {
            "type": "histogram",
            "edges": ref.edges.tolist(),
            "reference": shares(ref),
            "current": shares(cur),
        }

    def _current(self, plan: _Plan, window: FrameProfile) -> Binned | Counts:
        if plan.kind in CATEGORICAL_KINDS:
            return window_counts(window.categorical(plan.name))
        hist = window.numeric(plan.name).histogram
        if plan.form == "coarse":
            return coarsen(hist, self.reference.bins.coarse_edges_[plan.name])
        if plan.form == "counts":
            return bins_as_counts(hist)
        return hist

    def _quality(self, name: str, kind: str, window: FrameProfile) -> FeatureQuality | None:
        if name not in window.columns:
            return None
        if kind == "numeric":
            return numeric_window_quality(
                name, kind, window.numeric(name), self.reference.numeric(name), self.options
            )
        if kind in CATEGORICAL_KINDS:
            cur = window.categorical(name)
            ref = CategoricalReference.fit(reference_counts(self.reference.categorical(name)))
            return categorical_quality(
                name, window_counts(cur), ref, self.options.quality, kind=kind,
                type_violations=cur.invalid,
            )  # fmt: skip
        return None

    # -- calibration --------------------------------------------------------------------

    def _calibrated(
        self, plan: _Plan, result: DriftResult, current: Binned | Counts
    ) -> DriftResult:
        cal = self.calibrate(plan.name, current.total)
        statistic = abs(result.statistic)
        details = {
            **result.details,
            "verdict": f"statistic > its {cal.quantile} no-drift quantile (calibrated)",
            "nominal_threshold": result.threshold,
            "nominal_drift_detected": result.drift_detected,
            "calibrated_threshold": cal.threshold,
            "p_value_calibrated": cal.p_value(statistic),
            "calibration": cal.to_dict(),
        }
        return replace(
            result,
            threshold=cal.threshold,
            drift_detected=bool(statistic > cal.threshold),
            details=details,
        )

    def calibrate(self, feature: str, n_current: int) -> Calibration:
        """The calibrated threshold of ``feature`` for a window of ``n_current`` rows."""
        plan = self._plan_all().get(feature) or self._outputs[feature]
        if plan.test is None or plan.reference is None:
            raise DriftInputError(plan.error or f"feature {feature!r} is not judged")
        n = bucket(n_current)
        key = (feature, plan.test.name, n)
        found = self._calibrations.get(key)
        if found is None:
            found = self._calibrations[key] = self._resample(plan, n)
        return found

    def _resample(self, plan: _Plan, n: int) -> Calibration:
        assert plan.test is not None
        assert plan.reference is not None
        rng = np.random.default_rng((self.seed, zlib.crc32(plan.name.encode()), n))
        return calibrate(
            plan.test,
            plan.reference,
            n,
            resamples=self.calibration_resamples,
            quantile=self.calibration_quantile,
            rng=rng,
        )

    def __repr__(self) -> str:
        return (
            f"LiveEvaluator(calibration={self.calibration!r}, "
            f"calibration_quantile={self.calibration_quantile!r}, "
            f"calibration_resamples={self.calibration_resamples!r}, "
            f"min_window_rows={self.min_window_rows!r}, reference_rows={self.reference.n_rows})"
        )
