"""What a drift evaluation returns: per-feature verdicts and quality, and the dataset view.

``DriftReport.to_dict()`` is the JSON contract of ``inferwatch report -o x.json`` and
``inferwatch check``; fields may be added, the documented ones stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from inferwatch._json import plain
from inferwatch.quality import DatasetQuality, FeatureQuality, QualityThresholds
from inferwatch.stats import DriftResult

__all__ = ["ColumnDrift", "DriftOptions", "DriftReport", "MultivariateResult"]


@dataclass(frozen=True, slots=True)
class DriftOptions:
    """How to judge drift.

    ``tests`` maps a feature to a test name (overriding the default rule), ``thresholds``
    a feature to a threshold.  ``correction`` adjusts the p-values of p-value tests across
    features (``bonferroni`` or ``benjamini_hochberg``) before verdicts are taken.
    """

    drift_share: float = 0.5
    tests: Mapping[str, str] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    correction: Literal["bonferroni", "benjamini_hochberg"] | None = None
    quality: QualityThresholds = field(default_factory=QualityThresholds)
    multivariate: bool = False
    seed: int = 0
    workers: int | None = None  # None: 2 threads, each holding the column it evaluates

    @classmethod
    def from_settings(cls, drift: Any, *, multivariate: bool = False) -> DriftOptions:
        """Options from a drift settings section: the one place settings become options.

        ``drift`` is ``config.DriftSettings`` (its ``to_options`` calls this) or a mapping
        of the same keys (command-line flags checked without loading the settings); keys
        it lacks keep their defaults.  Only ``drift_share``, ``tests``, ``thresholds`` and
        ``correction`` are read: the live-window keys are ``live_target``'s parameters.
        """
        if isinstance(drift, Mapping):
            values = dict(drift)
        else:
            keys = ("drift_share", "tests", "thresholds", "correction")
            values = {k: getattr(drift, k) for k in keys if hasattr(drift, k)}
        return cls(
            drift_share=float(values.get("drift_share", 0.5)),
            tests=dict(values.get("tests") or {}),
            thresholds={k: float(v) for k, v in (values.get("thresholds") or {}).items()},
            correction=values.get("correction"),
            multivariate=multivariate,
        )


@dataclass(frozen=True, slots=True)
class ColumnDrift:
    """One column's drift verdict (``result``) or why there is none (``error``)."""

    name: str
    kind: str
    result: DriftResult | None = None
    error: str | None = None
    quality: FeatureQuality | None = None
    role: Literal["feature", "prediction", "target"] = "feature"
    distribution: Mapping[str, Any] | None = None

    @property
    def drift_detected(self) -> bool:
        return self.result is not None and self.result.drift_detected

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "role": self.role,
            "test": r.test if r else None,
            "statistic": r.statistic if r else None,
            "p_value": r.p_value if r else None,
            "threshold": r.threshold if r else None,
            "effect_size": r.effect_size if r else None,
            "drift_detected": self.drift_detected,
            "error": self.error,
            "details": r.to_dict()["details"] if r else {},
            "quality": self.quality.to_dict() if self.quality else None,
            "distribution": dict(self.distribution) if self.distribution else None,
        }
        return dict(plain(out))


@dataclass(frozen=True, slots=True)
class MultivariateResult:
    """Drift of the joint distribution: a domain classifier and PCA reconstruction error."""

    method: str
    statistic: float
    threshold: float
    drift_detected: bool
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(
            plain(
                {
                    "method": self.method,
                    "statistic": self.statistic,
                    "threshold": self.threshold,
                    "drift_detected": self.drift_detected,
                    "details": dict(self.details),
                }
            )
        )


@dataclass(frozen=True, slots=True)
class DriftReport:
    """A batch comparison of current data with the reference."""

    features: tuple[ColumnDrift, ...]
    n_reference: int
    n_current: int
    drift_share_threshold: float
    quality: DatasetQuality
    prediction_drift: ColumnDrift | None = None
    target_drift: ColumnDrift | None = None
    multivariate: tuple[MultivariateResult, ...] = ()
    correction: str | None = None

    @property
    def evaluated(self) -> tuple[ColumnDrift, ...]:
        return tuple(f for f in self.features if f.result is not None)

    @property
    def drifted(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.drift_detected)

    @property
    def drift_share(self) -> float:
        n = len(self.evaluated)
        return len(self.drifted) / n if n else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.evaluated) and self.drift_share >= self.drift_share_threshold

    @property
    def failed(self) -> bool:
        """What makes ``inferwatch check`` exit 1: dataset drift, a quality failure, or a
        multivariate method flagging drift (those run only when asked for)."""
        return (
            self.dataset_drift
            or self.quality.failed
            or any(m.drift_detected for m in self.multivariate)
        )

    def to_dict(self) -> dict[str, Any]:
        q = self.quality.to_dict()
        q.pop("features", None)
        return dict(
            plain(
                {
                    "dataset_drift": self.dataset_drift,
                    "drift_share": self.drift_share,
                    "drift_share_threshold": self.drift_share_threshold,
                    "n_reference": self.n_reference,
                    "n_current": self.n_current,
                    "n_features": len(self.features),
                    "n_drifted": len(self.drifted),
                    "drifted_features": list(self.drifted),
                    "correction": self.correction,
                    "features": [f.to_dict() for f in self.features],
                    "prediction_drift": (
                        self.prediction_drift.to_dict() if self.prediction_drift else None
                    ),
                    "target_drift": self.target_drift.to_dict() if self.target_drift else None,
                    "multivariate": (
                        {m.method: m.to_dict() for m in self.multivariate}
                        if self.multivariate
                        else None
                    ),
                    "quality": q,
                }
            )
        )
