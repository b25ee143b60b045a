"""``build_report``: files in, a :class:`DriftReport` and its JSON form out (the shared path
of ``inferwatch report`` and ``inferwatch check``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inferwatch._typing import Task
from inferwatch._version import __version__
from inferwatch.errors import ConfigError
from inferwatch.evaluate import DriftOptions, DriftReport, MultivariateResult, evaluate_batch
from inferwatch.quality import dataset_quality
from inferwatch.report._load import LoadedData, load_pair
from inferwatch.schema import Schema

__all__ = ["build_report", "check_overrides", "report_dict"]


def build_report(
    reference: Path,
    current: Path,
    *,
    schema: Schema | None = None,
    target: str | None = None,
    prediction: str | None = None,
    flatten: Sequence[str] = (),
    options: DriftOptions = DriftOptions(),
    on_loaded: Callable[[LoadedData], None] | None = None,
    progress: Callable[[str], None] | None = None,
    task: Task | None = None,
) -> DriftReport:
    """Read both files and evaluate every column (``progress`` is called per column).

    ``task`` forces the target's and prediction's task: a regression target or
    prediction is judged with the numeric tests, a classification one as classes.

    With ``options.multivariate`` the joint distribution is compared too (a domain
    classifier and PCA reconstruction error on a row sample; seconds, not milliseconds).
    """
    data = load_pair(
        reference, current, schema=schema, target=target, prediction=prediction,
        flatten=flatten, task=task,
    )  # fmt: skip
    check_overrides(data.schema, options)
    if on_loaded is not None:
        on_loaded(data)
    report = evaluate_batch(
        data.schema,
        data.reference,
        data.current,
        n_reference=data.n_reference,
        n_current=data.n_current,
        options=options,
        extra_columns=data.extra_columns,
        progress=progress,
    )
    # the current columns fed the duplicate hash and the freshness as they were read;
    # columns without a drift test (text, datetime) are read now for the same purpose
    data.current.touch_unevaluated()
    q = report.quality
    quality = dataset_quality(
        q.n_rows,
        q.features,
        duplicates=data.current.hasher.duplicates() if data.current.hasher else 0,
        missing_columns=q.missing_columns,
        extra_columns=q.extra_columns,
        newest_timestamp=data.current.newest,
        now=time.time(),
        thresholds=options.quality,
    )
    joint: tuple[MultivariateResult, ...] = ()
    if options.multivariate:  # scikit-learn's world: imported only when asked for
        from inferwatch.report._multivariate import multivariate

        joint = multivariate(data, seed=options.seed)
    return replace(report, quality=quality, multivariate=joint)


def check_overrides(schema: Schema, options: DriftOptions) -> None:
    """Refuse per-column tests and thresholds that cannot apply, before any column is read.

    A test or threshold for a column the schema lacks would be ignored silently, and a
    test that cannot compare the column's kind (``ks`` on categories) would leave the
    column without a verdict and the check passing; both are the user's typo to fix.
    """
    from inferwatch.stats import REGISTRY, get

    kinds = {f.name: str(f.kind) for f in schema.features}
    for spec in (schema.prediction, schema.target):
        if spec is not None:
            kinds[spec.name] = "categorical" if spec.task == "classification" else "numeric"

    def unknown(flag: str, feature: str) -> ConfigError:
        shown = ", ".join(list(kinds)[:30]) + (", ..." if len(kinds) > 30 else "")
        return ConfigError(f"{flag}: there is no column {feature!r} to judge; columns: {shown}")

    for feature, name in options.tests.items():
        flag = f"--test {feature}={name}"
        if feature not in kinds:
            raise unknown(flag, feature)
        if name not in REGISTRY:
            raise ConfigError(
                f"{flag}: no drift test named {name!r}; available: {', '.join(REGISTRY)}"
            )
        kind = kinds[feature]
        if kind not in ("numeric", "categorical", "boolean"):
            raise ConfigError(
                f"{flag}: {feature!r} is a {kind} column, which has no drift test yet"
            )
        if kind != "numeric" and kind not in get(name).kinds:
            fits = ", ".join(t for t in REGISTRY if kind in get(t).kinds)
            raise ConfigError(
                f"{flag}: {name} compares numeric columns and {feature!r} is {kind}; "
                f"tests for {kind} columns: {fits}"
            )
    for feature, value in options.thresholds.items():
        if feature not in kinds:
            raise unknown(f"--threshold {feature}={value:g}", feature)


def report_dict(
    report: DriftReport, *, reference: Path, current: Path, started: float
) -> dict[str, Any]:
    """The JSON contract plus a ``meta`` block (inputs, version, timing)."""
    out = report.to_dict()
    out["meta"] = {
        "reference": str(reference),
        "current": str(current),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "inferwatch_version": __version__,
        "duration_seconds": round(time.perf_counter() - started, 3),
    }
    return out
