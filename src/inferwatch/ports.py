"""The Protocols the engine needs; the adapters implement them.

The engine (``monitor``, ``windows``, ``evaluate``, later ``alerting``) talks only to these,
so tests can hand it an in-memory store and a fresh metrics registry.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from inferwatch.observation import (
    Evaluation,
    Label,
    LabelledPrediction,
    Observation,
    PredictionRecord,
)

if TYPE_CHECKING:  # the engine's plain rows; imported for the annotations only
    from inferwatch.alerting import AlertTransition, DeliveryAttempt, Silence, StoredAlert
    from inferwatch.history import ModelRow, ResourceRow

__all__ = [
    "AlertStore",
    "EvaluationSink",
    "HistoryStore",
    "LabelSink",
    "LeaseStore",
    "MetricsHook",
    "ModelAdapter",
    "Prediction",
    "PredictionSink",
    "QuarantineSink",
    "Store",
    "WindowPerformanceStore",
    "WindowProfileStore",
    "WindowSink",
]


@runtime_checkable
class PredictionSink(Protocol):
    """Where the background writer sends batches of prediction rows."""

    def write_predictions(self, records: Sequence[PredictionRecord]) -> int:
        """Insert the rows in one transaction; return how many were written."""
        ...


@runtime_checkable
class QuarantineSink(Protocol):
    """A sink that keeps rows it refused on their own (optional beside ``PredictionSink``)."""

    def quarantine_predictions(self, records: Sequence[PredictionRecord], reason: str) -> int:
        """Keep ``records`` aside with ``reason``; raise ``StoreError`` when down."""
        ...


@runtime_checkable
class EvaluationSink(Protocol):
    """Where the live evaluator writes the evaluation rows of each window it judges."""

    def write_evaluations(self, rows: Sequence[Evaluation]) -> int:
        """Insert the rows in one transaction; return how many were written."""
        ...


@runtime_checkable
class WindowSink(Protocol):
    """What the prediction-log writer feeds each drained batch to (the window profiles)."""

    def add(self, model: str, version: str, records: Sequence[PredictionRecord]) -> None:
        """Fold ``records`` (all of one model version) into their windows' profiles."""
        ...


@runtime_checkable
class LabelSink(Protocol):
    """What the label ingestor feeds each accepted batch of labels to (the performance
    windows): every item joined with its prediction, all of one model version."""

    def add_labels(self, model: str, version: str, labelled: Sequence[LabelledPrediction]) -> None:
        """Fold ``labelled`` into the windows of their predictions' timestamps."""
        ...


@runtime_checkable
class AlertStore(Protocol):
    """What alerting keeps across restarts: the history of alert state changes, every
    delivery attempt, the silences, and the record of every automated action.

    Reads are newest first; ``since <= at < until``; naive datetimes are UTC.
    """

    def write_alert_transitions(self, rows: Sequence[AlertTransition]) -> int:
        """Insert one history row per state change in one transaction; return how many."""
        ...

    def query_alert_history(
        self,
        *,
        model: str | None = None,
        alertname: str | None = None,
        fingerprint: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """History rows (id, fingerprint, alertname, severity, model, labels, from_state,
        to_state, at, value), newest first, at most ``limit``."""
        ...

    def write_delivery_attempts(self, rows: Sequence[DeliveryAttempt]) -> int:
        """Insert one row per try to deliver a group to a receiver; return how many."""
        ...

    def query_delivery_attempts(
        self,
        *,
        receiver: str | None = None,
        group_key: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Delivery attempt rows (id, receiver, group_key, attempt, at, outcome, alerts,
        error, retry_at), newest first, at most ``limit``."""
        ...

    def query_active_alerts(self, *, limit: int = 10_000) -> list[StoredAlert]:
        """The alerts whose newest state change left them pending or firing, newest
        first, at most ``limit`` (what a new evaluator leader's engine restores)."""
        ...

    def query_last_deliveries(
        self, *, since: datetime | None = None, limit: int = 10_000
    ) -> dict[tuple[str, str], datetime]:
        """The newest successful delivery per (receiver, group key) at or after
        ``since``, at most ``limit`` groups (what a new leader counts as told)."""
        ...

    def save_silence(self, silence: Silence) -> None:
        """Insert or update a silence by id (expiring one early is an update of its end)."""
        ...

    def load_silences(
        self, *, include_expired: bool = False, now: datetime | None = None
    ) -> list[Silence]:
        """The stored silences (by default those not ended at ``now``), by start time."""
        ...

    def write_action_record(
        self,
        *,
        action: str,
        kind: str,
        model: str | None,
        at: datetime,
        outcome: str,
        version: str | None = None,
        fingerprint: str | None = None,
        detail: str = "",
        evidence: Mapping[str, Any] | None = None,
    ) -> int:
        """Record one execution (or skip) of an automated action; return its id."""
        ...

    def query_action_records(
        self,
        *,
        action: str | None = None,
        kind: str | None = None,
        model: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Action records (id, action, kind, model, version, fingerprint, at, outcome,
        detail, evidence), newest first, at most ``limit``."""
        ...

    def prune_alert_history(self, before: datetime) -> dict[str, int]:
        """Delete history rows, delivery attempts and silences that ended before
        ``before``; return the number of rows deleted by table."""
        ...


@runtime_checkable
class HistoryStore(Protocol):
    """What the server's own history (``inferwatch.history``) keeps: per-interval rows
    (level 0) and the rollups older ones are folded into (level 1).  Times are Unix
    seconds; reads are ordered by start; ``since <= start < until``."""

    def write_history(self, models: Sequence[ModelRow], resources: Sequence[ResourceRow]) -> int:
        """Insert the rows in one transaction; return how many."""
        ...

    def query_model_history(
        self, model: str, *, version: str | None = None, since: float, until: float
    ) -> list[ModelRow]:
        """A model's rows of every level (one version, or all), by start."""
        ...

    def query_resource_history(self, *, since: float, until: float) -> list[ResourceRow]:
        """The resource rows of every level, by start."""
        ...

    def raw_history_before(
        self, before: float, *, limit: int | None = None
    ) -> tuple[list[ModelRow], list[ResourceRow]]:
        """The level-0 rows that start before ``before`` (what a fold replaces), oldest
        first, at most ``limit`` of each table."""
        ...

    def fold_history(
        self,
        before: float,
        models: Sequence[ModelRow],
        resources: Sequence[ResourceRow],
        *,
        expected: int | None = None,
    ) -> int:
        """In one transaction: delete the level-0 rows that start before ``before`` and
        insert the rollup rows made of them; return the number of raw rows deleted.  With
        ``expected`` (the raw rows read), a delete of any other number writes nothing and
        returns 0 (another replica folded them)."""
        ...

    def prune_history(self, level: int, before: float) -> int:
        """Delete the rows of ``level`` that start before ``before``; return how many."""
        ...


@runtime_checkable
class LeaseStore(Protocol):
    """Leases (``inferwatch.lease``): which replica runs the evaluator and alert engine."""

    def acquire_lease(
        self, name: str, holder: str, ttl_seconds: float, *, now: datetime | None = None
    ) -> bool:
        """Take or renew ``name`` for ``holder`` until ``now + ttl_seconds``; False when
        another holder's lease has not expired."""
        ...

    def release_lease(self, name: str, holder: str) -> bool:
        """Give ``name`` up if ``holder`` holds it; True when it did."""
        ...

    def query_lease(self, name: str) -> dict[str, Any] | None:
        """The lease's row (name, holder, acquired_at, renewed_at, expires_at), or None."""
        ...


class WindowProfileStore(Protocol):
    """Each replica's share of the live drift windows (``inferwatch.shared_windows``)."""

    def save_window_profiles(self, holder: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Upsert ``holder``'s window profiles (model, version, window_start, profile, rows)."""
        ...

    def load_window_profiles(
        self, model: str, version: str, window_start: float, *, exclude_holder: str | None = None
    ) -> list[dict[str, Any]]:
        """The stored profiles of one window, every holder's but ``exclude_holder``'s."""
        ...

    def prune_window_profiles(self, before: float) -> int:
        """Delete the profiles of windows starting before ``before``; how many."""
        ...


class WindowPerformanceStore(Protocol):
    """Each replica's share of the live performance windows (``inferwatch.shared_windows``)."""

    def save_window_performance(self, holder: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Upsert ``holder``'s window states (model, version, window_start, state, changes)."""
        ...

    def load_window_performance(
        self, model: str, version: str, window_start: float, *, exclude_holder: str | None = None
    ) -> list[dict[str, Any]]:
        """The stored states of one window, every holder's but ``exclude_holder``'s."""
        ...

    def list_window_performance(
        self, since: float, *, exclude_holder: str | None = None
    ) -> list[dict[str, Any]]:
        """(model, version, window_start, holder, changes) of the stored states of windows
        starting at ``since`` or later, without the states: what changed is seen cheaply."""
        ...

    def prune_window_performance(self, before: float) -> int:
        """Delete the states of windows starting before ``before``; how many."""
        ...


@runtime_checkable
class Store(
    PredictionSink,
    EvaluationSink,
    AlertStore,
    HistoryStore,
    LeaseStore,
    WindowProfileStore,
    WindowPerformanceStore,
    Protocol,
):
    """The persistent store (SQLite or PostgreSQL, or in memory for tests)."""

    def upgrade(self) -> None:
        """Create or migrate the schema to the newest version."""
        ...

    def current_revision(self) -> str | None:
        """The migration the database is at (None when it has none yet)."""
        ...

    def ping(self) -> bool:
        """True when the store answers a trivial query."""
        ...

    def register_model(
        self, name: str, version: str, *, flavor: str, uri: str | None = None
    ) -> None:
        """Record a model version (idempotent)."""
        ...

    def register_reference(
        self,
        model: str,
        version: str,
        *,
        uri: str | None,
        n_rows: int,
        schema: Mapping[str, Any],
    ) -> None:
        """Record the reference dataset a model version is compared with."""
        ...

    def write_labels(self, labels: Sequence[Label]) -> int:
        """Upsert bare late labels (one per prediction id: a repeated label replaces);
        return how many rows were written."""
        ...

    def upsert_labels(self, labelled: Sequence[LabelledPrediction]) -> dict[str, Any]:
        """Store labels with their predictions (model, version, prediction time, delay) in
        one transaction, each replacing a stored label; return the replaced values by
        prediction id (ids without one are absent).  Ids are distinct within a call."""
        ...

    def find_predictions(self, ids: Sequence[str]) -> dict[str, PredictionRecord]:
        """The stored predictions among ``ids``, by id (ids not stored are absent)."""
        ...

    def count_labels(
        self,
        model: str | None = None,
        version: str | None = None,
        *,
        received_since: datetime | None = None,
    ) -> int:
        """Number of stored labels, optionally of one model (and version) and received at
        or after ``received_since``."""
        ...

    def labelled_columns(
        self,
        model: str,
        version: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int = 100_000,
        columns: Sequence[str] = ("id", "ts", "output", "score", "probabilities", "label"),
    ) -> Iterator[dict[str, list[Any]]]:
        """Labelled predictions of a model version with ``since <= prediction time <
        until``, ordered by prediction time, as pages of the ``columns`` asked for (some
        of ``id``, ``ts`` (Unix seconds), ``output``, ``score``, ``probabilities``,
        ``label``)."""
        ...

    def count_predictions(
        self,
        model: str | None = None,
        version: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """Number of stored predictions, optionally for one model (and version) and with
        ``since <= timestamp < until``."""
        ...

    def iter_predictions(
        self,
        model: str | None = None,
        version: str | None = None,
        limit: int | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int = 1000,
    ) -> Iterator[PredictionRecord]:
        """Stored predictions (filtered as :meth:`count_predictions`, at most ``limit``)
        ordered by timestamp then id, read ``page_size`` rows at a time: memory stays
        at one page whatever the store holds (``inferwatch export`` streams this)."""
        ...

    def get_prediction(self, prediction_id: str) -> PredictionRecord | None:
        """One stored prediction by id, or None."""
        ...

    def query_evaluations(
        self,
        model: str,
        *,
        version: str | None = None,
        metric: str | None = None,
        test: str | None = None,
        feature: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Evaluation rows of a model, newest first, filtered by the given fields and by
        ``since <= window_start < until``, at most ``limit``."""
        ...

    def drift_windows(
        self, model: str, version: str, *, since: datetime, until: datetime, limit: int = 500
    ) -> list[dict[str, Any]]:
        """The ``drift`` and ``dataset_drift_share`` rows of the newest evaluation of each
        window overlapping ``[since, until)`` (the newest ``limit`` windows), by window
        start then id."""
        ...

    def latest_evaluations(self, model: str, version: str) -> list[dict[str, Any]]:
        """The rows of the newest evaluation of a model version (one ``evaluated_at``),
        as dicts with the :class:`~inferwatch.observation.Evaluation` fields and ``id``;
        empty when it has none."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class MetricsHook(Protocol):
    """Live metrics updated for every logged batch (the Prometheus catalogue implements it)."""

    def observe(self, observation: Observation) -> None: ...

    def log_queue(
        self, *, depth: int, written: int, dropped: int, failed: int, quarantined: int = 0
    ) -> None:
        """Report the prediction-log writer's progress (deltas for counts, depth absolute)."""
        ...


class Prediction(Protocol):
    """What a model adapter returns for one instance."""

    @property
    def value(self) -> Any: ...

    @property
    def probabilities(self) -> Mapping[str, float] | None: ...

    @property
    def score(self) -> float | None: ...


@runtime_checkable
class ModelAdapter(Protocol):
    """A loaded model behind a uniform call: a batch of instances in, predictions out."""

    flavor: str

    @property
    def classes(self) -> Sequence[str] | None:
        """Class labels (as strings) for a classifier, else None."""
        ...

    def predict(self, instances: Sequence[Mapping[str, Any]]) -> Sequence[Prediction]: ...
