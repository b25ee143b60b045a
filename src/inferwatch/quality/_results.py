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

__all__ = ["DatasetQuality", "FeatureQuality", "QualityThresholds"]


@dataclass(frozen=True, slots=True)
class QualityThresholds:
    """When a quality measure counts as a problem (defaults suit most tabular models).

    ``max_missing_increase`` is absolute: 0.10 means the missing share may rise by ten
    percentage points over the reference's.  Outliers use Tukey's fences
    (``iqr_factor`` times the IQR beyond the reference quartiles); a normal column puts 0.7% of
    its values there, hence the 5% default.  Duplicated rows are reported, and only fail
    the check when ``max_duplicate_share`` is set below 1.
    """

    max_missing_increase: float = 0.10
    max_out_of_range_share: float = 0.05
    max_unseen_share: float = 0.05
    max_outlier_share: float = 0.05
    iqr_factor: float = 1.5
    near_constant_share: float = 0.95
    max_duplicate_share: float = 1.0
    max_staleness_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class FeatureQuality:
    """Quality of one feature in the current data, against the reference."""

    name: str
    kind: str
    n: int
    missing: int
    missing_share: float
    reference_missing_share: float
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
