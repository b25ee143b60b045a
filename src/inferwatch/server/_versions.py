"""Model versions side by side: shadow versions and A/B splits (``models[].shadow_of``,
``models[].ab_group`` / ``traffic_share``).

A **shadow** scores a copy of its primary's validated rows *after* the primary's answer
has been sent: the predict route hands the work to Starlette's background task, which
runs it in the thread pool once the response is written, so a slow or failing shadow
never delays or fails the answer.  At most :data:`MAX_PENDING_BATCHES` batches per
shadow wait or run at once; past that a batch is dropped (and counted), so a shadow
slower than the traffic cannot pile up work.  Its outputs are logged under its own
name and version with ids derived from the primary's (:func:`shadow_prediction_id`),
and compared with the primary's outputs in
``inferwatch_shadow_predictions_total{model,version,outcome}``.

An **A/B split** is a name of its own, ``/v1/models/{ab_group}/predict``: each request
goes to one member, drawn at random in proportion to ``traffic_share``; the answer's
``model`` and ``version`` fields (and the ``X-Model-Name``/``X-Model-Version`` headers)
say which member answered, and its predictions are logged under that member, so labels
go to ``/v1/models/{member}/feedback`` and each version's performance windows fill on
their own.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, cast

from prometheus_client import Counter

from inferwatch.config import ModelSettings
from inferwatch.errors import ConfigError
from inferwatch.labels import LabelIngestor, LabelReport
from inferwatch.metrics import SHADOW_OUTCOMES, Metrics
from inferwatch.monitor import Monitor
from inferwatch.server._served import ServedModel

__all__ = [
    "MAX_PENDING_BATCHES",
    "Shadow",
    "Split",
    "Versions",
    "ShadowLabels",
    "build_versions",
    "shadow_labels",
    "shadow_prediction_id",
]

log = logging.getLogger("inferwatch.server")

#: batches one shadow may hold waiting or running; more are dropped and counted
MAX_PENDING_BATCHES = 16
_SHADOW_NAMESPACE = uuid.UUID("6f3c1f0e-58a4-4a4e-9a57-3b1f5a8e2c11")


def shadow_prediction_id(primary_id: str, shadow_model: str) -> str:
    """The id of ``shadow_model``'s prediction of the row the primary answered as
    ``primary_id``: a UUID-5 of both, so a label for the primary's prediction can be
    sent for the shadow's too (``POST /v1/models/{shadow}/feedback``)."""
    return str(uuid.uuid5(_SHADOW_NAMESPACE, f"{shadow_model}\x00{primary_id}"))


@dataclass(eq=False)
class Shadow:
    """One shadow version of one primary, with its metric children and its limiter."""

    served: ServedModel
    primary_task: str | None
    tolerance: float
    monitor: Monitor
    counters: Mapping[str, Counter]
    _slots: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(MAX_PENDING_BATCHES)
    )

    def reserve(self, n: int) -> bool:
        """Take a slot for a batch of ``n`` rows (on the request's thread); False, and the
        rows counted as dropped, when the shadow already holds its maximum."""
        if self._slots.acquire(blocking=False):
            return True
        self.counters["dropped"].inc(n)
        return False

    def _agrees(self, primary: Any, shadow: Any) -> bool:
        if self.primary_task == "regression":
            try:
                return abs(float(primary) - float(shadow)) <= self.tolerance
            except (TypeError, ValueError):
                return False
        return str(primary) == str(shadow)

    def run(
        self,
        rows: Sequence[Mapping[str, Any]],
        primary_ids: Sequence[str],
        primary_outputs: Sequence[Any],
        trace_id: str | None,
    ) -> None:
        """Score, compare and log one batch (in the thread pool, after the answer)."""
        try:
            names = self.served.schema.names
            inputs = [{k: row[k] for k in names if k in row} for row in rows]
            t0 = time.perf_counter()
            predictions = self.served.adapter.predict(inputs)
            inference = time.perf_counter() - t0
            if len(predictions) != len(inputs):
                raise RuntimeError(f"{len(predictions)} predictions for {len(inputs)} instances")
            outputs = [p.value for p in predictions]
            agree = sum(self._agrees(a, b) for a, b in zip(primary_outputs, outputs, strict=True))
            self.monitor.log(
                self.served.name,
                self.served.version,
                inputs,
                outputs,
                ids=[shadow_prediction_id(pid, self.served.name) for pid in primary_ids],
                scores=[p.score for p in predictions],
                probabilities=[p.probabilities for p in predictions],
                inference_seconds=inference,
                trace_id=trace_id,
            )
        except Exception:
            log.exception(
                "shadow model %s version %s failed on a batch of %d",
                self.served.name,
                self.served.version,
                len(rows),
            )
            self.counters["error"].inc(len(rows))
            return
        finally:
            self._slots.release()
        if agree:
            self.counters["agree"].inc(agree)
        if len(rows) - agree:
            self.counters["disagree"].inc(len(rows) - agree)


@dataclass(frozen=True)
class Split:
    """An A/B group: its members and their cumulative shares (percent)."""

    name: str
    members: tuple[ServedModel, ...]
    cumulative: tuple[float, ...]
    _random: random.Random = field(default_factory=random.Random, compare=False)

    def choose(self) -> ServedModel:
        """A member drawn in proportion to its share."""
        i = bisect_right(self.cumulative, self._random.random() * self.cumulative[-1])
        return self.members[min(i, len(self.members) - 1)]


@dataclass(frozen=True)
class Versions:
    """The shadows of each primary (by name) and the A/B splits (by group name)."""

    shadows: Mapping[str, tuple[Shadow, ...]] = field(default_factory=dict)
    splits: Mapping[str, Split] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.shadows or self.splits)


def build_versions(
    settings: Sequence[ModelSettings],
    served: Sequence[ServedModel],
    monitor: Monitor,
    metrics: Metrics,
) -> Versions:
    """The shadows and splits the settings configure, checked against the loaded schemas
    (a shadow needs a subset of its primary's features; a group's members the same
    features).  Raises ConfigError naming the model."""
    by_name = {s.name: s for s in served}
    shadows: dict[str, list[Shadow]] = {}
    groups: dict[str, list[tuple[ServedModel, float]]] = {}
    for i, m in enumerate(settings):
        model = by_name[m.name]
        if m.shadow_of is not None:
            primary = by_name[m.shadow_of]
            missing = [n for n in model.schema.names if n not in primary.schema.names]
            if missing:
                raise ConfigError(
                    f"models[{i}].shadow_of: {m.name!r} needs feature(s) "
                    f"{', '.join(map(repr, missing[:5]))} that {primary.name!r} does not receive"
                )
            counters = {
                o: metrics.shadow_predictions.labels(model.name, model.version, o)
                for o in SHADOW_OUTCOMES
            }
            shadows.setdefault(primary.name, []).append(
                Shadow(model, primary.task, m.shadow_tolerance, monitor, counters)
            )
        if m.ab_group is not None:
            groups.setdefault(m.ab_group, []).append((model, float(m.traffic_share or 0.0)))
    splits: dict[str, Split] = {}
    for group, members in groups.items():
        first = set(members[0][0].schema.names)
        for model, _ in members[1:]:
            if set(model.schema.names) != first:
                raise ConfigError(
                    f"ab_group {group!r}: {model.name!r} and {members[0][0].name!r} take "
                    "different features; an A/B split needs the same request schema"
                )
        splits[group] = Split(
            group,
            tuple(model for model, _ in members),
            tuple(accumulate(share for _, share in members)),
        )
    return Versions({k: tuple(v) for k, v in shadows.items()}, splits)


class ShadowLabels:
    """The feedback route's ingestor, passing each label a primary accepts on to the
    primary's shadows, for their prediction of the same row (:func:`shadow_prediction_id`).

    The answer is the primary's report.  A shadow's label is judged like any other: for
    a batch the shadow dropped, failed on or has not logged yet it is an
    ``unknown_prediction_id`` in ``inferwatch_labels_total{model=SHADOW}``; a shadow whose
    store write fails is logged and never fails the primary's answer.
    """

    def __init__(self, inner: LabelIngestor, shadows: Mapping[str, Sequence[str]]) -> None:
        self.inner = inner
        self.shadows = shadows

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def ingest(self, model: str, items: Any) -> LabelReport:
        pairs = [(str(pid), value) for pid, value in items]
        report = self.inner.ingest(model, pairs)
        names = self.shadows.get(model, ())
        if not names:
            return report
        taken = [pairs[r.index] for r in report.results if not r.rejected]
        for shadow in names:
            try:
                self.inner.ingest(shadow, [(shadow_prediction_id(p, shadow), v) for p, v in taken])
            except Exception:
                log.exception("labels for shadow %s were not stored", shadow)
        return report


def shadow_labels(ingestor: LabelIngestor, versions: Versions) -> LabelIngestor:
    """``ingestor``, or a :class:`ShadowLabels` over it when some model has shadows."""
    if not versions.shadows:
        return ingestor
    names = {p: tuple(s.served.name for s in shadows) for p, shadows in versions.shadows.items()}
    return cast("LabelIngestor", ShadowLabels(ingestor, names))
