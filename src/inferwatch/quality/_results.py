"""Data-quality results and thresholds: frozen dataclasses with a JSON form.

A feature's ``problems`` are stable codes (``missing_increase``, ``out_of_range``,
``unseen_categories``, ``outliers``, ``constant``, ``non_finite``, ``type_violations``)
so that reports, ``inferwatch check`` and (later) alert rules key on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from inferwatch._json import plain
from inferwatch.quality._limits import DEFAULT_QUANTILE, DEFAULT_RELATIVE_TOLERANCE

__all__ = ["DatasetQuality", "FeatureQuality", "QualityThresholds"]


@dataclass(frozen=True, slots=True)
class QualityThresholds:
    """When a quality measure counts as a problem (defaults suit most tabular models).

    Missing, out-of-range, outlier and unseen-category shares are judged against the
    reference's own (``quality/_limits.py``): a share fails when it passes the
    ``quantile`` of the counts that drawing the current rows from the reference's
    distribution would give (0.9999: one chance in 10,000 per share), and, for missing
    values and outliers, the reference's share plus ``relative_tolerance`` of it.
    Outliers lie beyond Tukey's fences (``iqr_factor`` times the IQR beyond the reference
    quartiles).  Duplicated rows are reported, and only fail the check when
    ``max_duplicate_share`` is set below 1.
    """

    quantile: float = DEFAULT_QUANTILE
    relative_tolerance: float = DEFAULT_RELATIVE_TOLERANCE
    iqr_factor: float = 1.5
    near_constant_share: float = 0.95
    max_duplicate_share: float = 1.0
    max_staleness_seconds: float | None = None

    def __post_init__(self) -> None:
        if not 0.5 <= self.quantile < 1:
            raise ValueError(f"quality quantile must be in [0.5, 1), got {self.quantile}")
        if not self.relative_tolerance >= 0:
            raise ValueError(f"relative_tolerance must be >= 0, got {self.relative_tolerance}")


@dataclass(frozen=True, slots=True)
class FeatureQuality:
    """Quality of one feature in the current data, against the reference."""

    name: str
    kind: str
    n: int
    missing: int
    missing_share: float
    reference_missing_share: float
    reference_outlier_share: float = 0.0
    non_finite: int = 0
    type_violations: int = 0
    out_of_range: int = 0
    out_of_range_share: float = 0.0
    outliers: int = 0
    outlier_share: float = 0.0
    unseen_categories: Mapping[str, int] = field(default_factory=dict)
    unseen_share: float = 0.0
    n_unique: int | None = None
    top_share: float | None = None
    constant: bool = False
    near_constant: bool = False
    summary: Mapping[str, float | str | None] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    #: the largest share that is not a problem, keyed by the share's field name
    #: (``missing_share``, ``out_of_range_share``, ``outlier_share``, ``unseen_share``);
    #: filled by the checks, for reports and the ``/metrics`` gauges
    limits: Mapping[str, float] = field(default_factory=dict)

    @property
    def missing_share_change(self) -> float:
        return self.missing_share - self.reference_missing_share

    @property
    def failed(self) -> bool:
        return bool(self.problems)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["missing_share_change"] = self.missing_share_change
        out["problems"] = list(self.problems)
        out["limits"] = dict(self.limits)
        return dict(plain(out))


@dataclass(frozen=True, slots=True)
class DatasetQuality:
    """Dataset-level quality plus every feature's."""

    n_rows: int
    features: tuple[FeatureQuality, ...]
    duplicate_rows: int = 0
    missing_columns: tuple[str, ...] = ()
    extra_columns: tuple[str, ...] = ()
    newest_timestamp: float | None = None
    staleness_seconds: float | None = None
    problems: tuple[str, ...] = ()

    @property
    def duplicate_share(self) -> float:
        return self.duplicate_rows / self.n_rows if self.n_rows else 0.0

    @property
    def failed(self) -> bool:
        return bool(self.problems) or any(f.failed for f in self.features)

    def to_dict(self) -> dict[str, Any]:
        return dict(
            plain(
                {
                    "n_rows": self.n_rows,
                    "duplicate_rows": self.duplicate_rows,
                    "duplicate_share": self.duplicate_share,
                    "missing_columns": list(self.missing_columns),
                    "extra_columns": list(self.extra_columns),
                    "newest_timestamp": self.newest_timestamp,
                    "staleness_seconds": self.staleness_seconds,
                    "problems": list(self.problems),
                    "failed": self.failed,
                    "features": [f.to_dict() for f in self.features],
                }
            )
        )
