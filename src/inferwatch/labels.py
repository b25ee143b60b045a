"""Late ground truth: the label ingestor joins labels to their predictions by id.

:class:`LabelIngestor` is what ``POST /v1/models/{name}/feedback``, ``inferwatch ingest
labels`` and :meth:`Monitor.log_labels` share.  For one request it rejects, per item,
what cannot be a label of that model (``unknown_prediction_id``, ``wrong_model``,
``duplicate_prediction_id``, ``invalid_label``), stores the rest in one transaction
(a repeated label replaces the stored one, never duplicates it), hands them to the
performance windows (a :class:`~inferwatch.ports.LabelSink`) with the value each
replaced, and counts every outcome and each label's delay.

Predictions are looked up in the prediction log's not-yet-committed rows first (its
buffer and the batch being written), then in the store: a label may arrive before its
prediction row is flushed.  Engine layer: no adapter is imported here.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from inferwatch.observation import LabelledPrediction, PredictionRecord
from inferwatch.ports import LabelSink

if TYPE_CHECKING:
    from inferwatch.prediction_log import PredictionLog
    from inferwatch.schema import Schema

__all__ = [
    "LABEL_OUTCOMES",
    "REJECT_CODES",
    "LabelIngestor",
    "LabelMetricsHook",
    "LabelReport",
    "LabelResult",
    "LabelRules",
    "LabelStore",
    "normalise_label",
]

log = logging.getLogger("inferwatch.labels")

Outcome = Literal[
    "accepted",
    "replaced",
    "unknown_prediction_id",
    "wrong_model",
    "duplicate_prediction_id",
    "invalid_label",
]
#: every outcome a label can have (the bounded ``outcome`` label of ``inferwatch_labels_total``)
LABEL_OUTCOMES: Final = (
    "accepted",
    "replaced",
    "unknown_prediction_id",
    "wrong_model",
    "duplicate_prediction_id",
    "invalid_label",
)
#: the outcomes that reject an item
REJECT_CODES: Final = frozenset(LABEL_OUTCOMES[2:])


class LabelStore(Protocol):
    """What the ingestor needs of the store (``SQLStore`` and ``MemoryStore`` have it)."""

    def find_predictions(self, ids: Sequence[str]) -> dict[str, PredictionRecord]: ...

    def upsert_labels(self, labelled: Sequence[LabelledPrediction]) -> dict[str, Any]: ...


class LabelMetricsHook(Protocol):
    """Where outcomes and delays are counted (``inferwatch.metrics.Metrics`` has it)."""

    def observe_labels(
        self, model: str, outcomes: Mapping[str, int], delays: Sequence[float]
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class LabelRules:
    """What a label of one model version must be.

    ``task`` ``classification``: a class; with ``classes`` given, one of them.
    ``regression``: a finite number.  None: decided per prediction from its output (a
    float output is a regressor's, anything else a classifier's, with no class set).
    """

    task: Literal["classification", "regression"] | None = None
    classes: tuple[str, ...] | None = None

    @classmethod
    def of(cls, schema: Schema | None, classes: Sequence[str] | None = None) -> LabelRules:
        """The rules from a schema's target (task, classes) and the model's own classes
        (the model's win: they are what its predictions are logged as)."""
        target = None
        if schema is not None:
            target = schema.target or schema.prediction
        found = target.task if target is not None else None
        task: Literal["classification", "regression"] | None = (
            found if found in ("classification", "regression") else None
        )
        if classes:
            return cls("classification" if task is None else task, tuple(map(str, classes)))
        if target is not None and target.classes:
            return cls(task, tuple(target.classes))
        return cls(task, None)


def normalise_label(value: Any, rules: LabelRules, output: Any = None) -> tuple[Any, str | None]:
    """``(label, None)`` in the target's type, or ``(None, why)`` when it cannot be one.

    Classes are compared as strings, as predicted classes are logged (see
    ``windows.output_labels``): a string is taken as is; an integer (or an integral
    float: ``1.0``) as its decimal form, so ``1``, ``1.0`` and ``"1"`` are the same class;
    a boolean as ``"True"``/``"False"``, only when the class set has it.  A regressor's
    label is a finite number other than a boolean, as a float; a string is refused, even
    ``"3.5"`` (a typed JSON value is expected, as for features).  None, NaN and infinities
    are never labels.
    """
    task = rules.task
    if task is None:
        is_float = isinstance(output, float) and not isinstance(output, bool)
        task = "regression" if is_float else "classification"
    if value is None:
        return None, "the label is null"
    if isinstance(value, float) and not math.isfinite(value):
        return None, f"the label is not a finite number ({value})"
    if task == "regression":
        if isinstance(value, bool) or not isinstance(value, Real):
            return None, (
                f"a regressor's label must be a number, got {_kind(value)} {_shown(value)}"
            )
        try:
            number = float(value)
        except OverflowError:  # an integer past float's range
            number = math.inf
        if not math.isfinite(number):
            return None, f"the label is not a finite number ({value})"
        return number, None
    if isinstance(value, str):
        label = value
    elif isinstance(value, bool):
        label = str(value)
        if rules.classes is None or label not in rules.classes:
            return None, f"a boolean is not one of this classifier's classes ({_classes(rules)})"
    elif isinstance(value, Integral) or (isinstance(value, Real) and float(value).is_integer()):
        label = str(int(float(value)) if not isinstance(value, Integral) else int(value))
    else:
        return None, f"a classifier's label must be a class, got {_kind(value)} {_shown(value)}"
    if rules.classes is not None and label not in rules.classes:
        return None, f"{_shown(label)} is not one of the model's classes ({_classes(rules)})"
    return label, None


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        str: "a string",
        list: "a list",
        dict: "an object",
        float: "the number",
        int: "the number",
    }.get(type(value), f"a {type(value).__name__}")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _classes(rules: LabelRules) -> str:
    classes = rules.classes or ()
    shown = ", ".join(repr(c) for c in classes[:10])
    return shown + (f" and {len(classes) - 10} more" if len(classes) > 10 else "")


@dataclass(frozen=True, slots=True)
class LabelResult:
    """What happened to one item of a request (``index`` is its position)."""

    index: int
    prediction_id: str
    outcome: Outcome
    message: str | None = None
    version: str | None = None

    @property
    def rejected(self) -> bool:
        return self.outcome in REJECT_CODES

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "prediction_id": self.prediction_id,
            "code": self.outcome,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class LabelReport:
    """The outcome of every item of one request, in the request's order."""

    model: str
    results: Sequence[LabelResult] = field(default_factory=tuple)

    @property
    def counts(self) -> dict[str, int]:
        """Items per outcome (every outcome present, zeros included)."""
        found = Counter(r.outcome for r in self.results)
        return {outcome: found.get(outcome, 0) for outcome in LABEL_OUTCOMES}

    @property
    def accepted(self) -> int:
        """Labels stored for a prediction that had none."""
        return sum(1 for r in self.results if r.outcome == "accepted")

    @property
    def replaced(self) -> int:
        """Labels stored in place of an earlier one."""
        return sum(1 for r in self.results if r.outcome == "replaced")

    @property
    def rejected(self) -> int:
        return sum(1 for r in self.results if r.rejected)

    def rejections(self) -> list[LabelResult]:
        return [r for r in self.results if r.rejected]

    def to_dict(self) -> dict[str, Any]:
        """The feedback route's body: counts, per-reason counts and each rejected item."""
        return {
            "model": self.model,
            "accepted": self.accepted,
            "replaced": self.replaced,
            "rejected": self.rejected,
            "counts": {k: v for k, v in self.counts.items() if k in REJECT_CODES and v},
            "errors": [r.to_dict() for r in self.rejections()],
        }


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class LabelIngestor:
    """Validates labels, joins them to their predictions, stores them, feeds the windows.

    ``rules`` maps ``(model, version)`` to :class:`LabelRules` (a version without rules
    decides by each prediction's output).  ``log`` is the prediction log whose unflushed
    rows are looked up first; ``sink`` receives every stored batch, per version, as
    :class:`~inferwatch.observation.LabelledPrediction` with the value it replaced;
    ``metrics`` counts outcomes and delays.  Thread-safe: it keeps no state of its own.
    """

    def __init__(
        self,
        store: LabelStore,
        *,
        rules: Mapping[tuple[str, str], LabelRules] | None = None,
        log: PredictionLog | None = None,
        sink: LabelSink | None = None,
        metrics: LabelMetricsHook | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.store = store
        self.rules = dict(rules or {})
        self.log = log
        self.sink = sink
        self.metrics = metrics
        self.clock = clock

    def ingest(self, model: str, items: Iterable[tuple[str, Any]]) -> LabelReport:
        """Take ``(prediction_id, label)`` pairs for ``model``; return each one's outcome.

        Accepted labels are stored (one transaction) before this returns, then handed to
        the sink, then counted.  A store that is down raises
        :class:`~inferwatch.errors.StoreError` before anything is stored, fed or counted:
        the caller answers 503 and the client sends the whole request again (replaying
        stored labels is harmless: they replace themselves).
        """
        pairs = [(str(pid), value) for pid, value in items]
        ids = [pid for pid, _ in pairs]
        seen = Counter(ids)
        unique = [pid for pid in seen if seen[pid] == 1]
        found = self.log.find(unique) if self.log is not None else {}
        missing = [pid for pid in unique if pid not in found]
        if missing:
            found.update(self.store.find_predictions(missing))
        now = self.clock()
        results: list[LabelResult | None] = []
        accepted: list[tuple[int, LabelledPrediction]] = []
        for index, (pid, value) in enumerate(pairs):
            if seen[pid] > 1:
                results.append(
                    LabelResult(
                        index,
                        pid,
                        "duplicate_prediction_id",
                        f"prediction id {_shown(pid)} appears {seen[pid]} times in this request: "
                        "send one label per prediction",
                    )
                )
                continue
            record = found.get(pid)
            if record is None:
                results.append(
                    LabelResult(
                        index, pid, "unknown_prediction_id", f"no prediction with id {_shown(pid)}"
                    )
                )
                continue
            if record.model != model:
                results.append(
                    LabelResult(
                        index,
                        pid,
                        "wrong_model",
                        f"prediction {_shown(pid)} was made by model {record.model!r}, "
                        f"not {model!r}",
                        record.version,
                    )
                )
                continue
            rules = self.rules.get((model, record.version), LabelRules())
            label, why = normalise_label(value, rules, record.output)
            if why is not None:
                results.append(LabelResult(index, pid, "invalid_label", why, record.version))
                continue
            results.append(None)  # accepted or replaced: known once stored
            accepted.append((index, LabelledPrediction(record, label, now)))
        previous = self.store.upsert_labels([item for _, item in accepted]) if accepted else {}
        stored: list[LabelledPrediction] = []
        for index, item in accepted:
            pid = item.prediction.id
            old = previous.get(pid)
            if old is not None:
                item = LabelledPrediction(item.prediction, item.label, now, old)
            stored.append(item)
            outcome: Outcome = "replaced" if old is not None else "accepted"
            results[index] = LabelResult(index, pid, outcome, None, item.prediction.version)
        self._feed(model, stored)
        report = LabelReport(model, tuple(r for r in results if r is not None))
        self._count(model, report, stored, now)
        return report

    def _feed(self, model: str, stored: Sequence[LabelledPrediction]) -> None:
        """Hand the stored labels to the sink, one call per model version."""
        if self.sink is None or not stored:
            return
        by_version: dict[str, list[LabelledPrediction]] = {}
        for item in stored:
            by_version.setdefault(item.prediction.version, []).append(item)
        for version, batch in by_version.items():
            try:
                self.sink.add_labels(model, version, batch)
            except Exception:  # the labels are stored: a window bug must not fail the request
                log.exception(
                    "feeding %d labels of %s:%s to the windows failed", len(batch), model, version
                )

    def _count(
        self, model: str, report: LabelReport, stored: Sequence[LabelledPrediction], now: datetime
    ) -> None:
        if self.metrics is None:
            return
        delays = [
            max((now - _aware(item.prediction.timestamp)).total_seconds(), 0.0) for item in stored
        ]
        try:
            self.metrics.observe_labels(model, report.counts, delays)
        except Exception:
            log.exception("counting labels of %s failed", model)
