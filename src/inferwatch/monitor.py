"""The observation pipeline: ``Monitor.log`` → live metrics, window profiles and the
write-behind prediction log.

The request path does the cheap part (build records, update metric children, append to
the log's in-memory buffer) and returns; the :class:`~inferwatch.prediction_log.PredictionLog`
thread profiles and writes the rows in batches.  ``Monitor`` is the one object a library
user holds: besides logging it carries the metrics (``render_metrics``, ASGI/WSGI apps),
and, built by :meth:`Monitor.from_reference` or :meth:`Monitor.from_schema`, validation
and live drift with the same pieces the server uses.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict, Unpack

from inferwatch._ids import new_prediction_id, new_prediction_ids
from inferwatch.errors import ValidationError
from inferwatch.labels import LabelRules
from inferwatch.observation import Observation, PredictionRecord
from inferwatch.ports import (
    EvaluationSink,
    LabelSink,
    MetricsHook,
    PredictionSink,
    WindowSink,
)
from inferwatch.prediction_log import MonitorStats, PredictionLog
from inferwatch.windows import WindowFanout

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from inferwatch._typing import Task
    from inferwatch.config import Settings
    from inferwatch.evaluate import CalibrationMode, DriftOptions, EvaluationLoop, LiveTarget
    from inferwatch.labels import LabelIngestor, LabelReport
    from inferwatch.metrics import Metrics
    from inferwatch.performance_windows import PerformanceWindows
    from inferwatch.ports import ModelAdapter, Store
    from inferwatch.schema import InstanceValidator, Schema

#: where ``Monitor.from_reference``/``from_schema`` keep the prediction log by default
DEFAULT_STORE_URL = "sqlite:///inferwatch.db"

__all__ = [
    "DEFAULT_STORE_URL",
    "Monitor",
    "MonitorOptions",
    "MonitorStats",
    "Watched",
    "new_prediction_id",
    "new_prediction_ids",
]

log = logging.getLogger("inferwatch.monitor")


def _utcnow() -> datetime:
    return datetime.now(UTC)


#: the sequences ``Monitor.log`` takes beside ``inputs``, named in its length errors
_LOG_SEQUENCES = ("outputs", "ids", "scores", "probabilities", "timestamps")


class MonitorOptions(TypedDict, total=False):
    """The prediction log's tuning, as :class:`Monitor`'s keyword arguments of that name."""

    queue_size: int
    batch_size: int
    flush_interval: float
    enqueue_timeout: float
    retry_seconds: float
    call_timeout: float | None
    spill_path: str | os.PathLike[str] | None
    spill_max_bytes: int
    durability: Literal["buffered", "strict"]
    drain_timeout: float
    sample_rate: float
    jsonl_path: str | os.PathLike[str] | None
    jsonl_max_bytes: int
    jsonl_backups: int


@dataclass(frozen=True, slots=True)
class Watched:
    """The model version a monitor validates and, with a reference, judges live.

    Built by :meth:`Monitor.from_reference` (``live`` set) or :meth:`Monitor.from_schema`
    (validation only).  ``validator`` is the server's compiled schema check.
    """

    model: str
    version: str
    schema: Schema
    validator: InstanceValidator
    live: LiveTarget | None = None


class Monitor:
    """Records predictions: live metrics now, the store soon after, nothing lost on close.

    Use it inside your own service::

        monitor = Monitor(SQLStore("sqlite:///predictions.db"))
        ids = monitor.log("churn", "3", inputs=[{"age": 41}], outputs=["yes"], scores=[0.81])
        ...
        monitor.close()

    ``metrics`` is inferwatch's Prometheus catalogue by default, on ``registry`` (a new
    registry when None; see :attr:`registry`, :meth:`metrics_asgi_app`,
    :meth:`render_metrics`), None for no live metrics, or any ``MetricsHook``.
    :meth:`from_reference` and :meth:`from_schema` add validation and live drift.

    ``enqueue_timeout`` is how long ``log`` blocks when the buffer holds ``queue_size``
    rows (the store is slower than traffic); rows still without room after that are
    dropped and counted, so a stalled store slows the service down before it loses data.

    ``profiler`` (a :class:`~inferwatch.windows.WindowProfiler` or anything with
    ``add(model, version, records)``) receives every drained batch, split by model
    version, before the batch is written; it is fed even when the store is down, since
    the profiles live in memory.  Its cost is the writer thread's, not the requests'.

    Durability: every store call waits at most ``call_timeout`` seconds (None: no bound;
    a frozen database otherwise holds the writer for as long as it is frozen).  With
    ``spill_path``, rows the store does not take (down, or past the bound) go to that
    append-only file (at most ``spill_max_bytes``; past it they are lost and counted
    failed) and are replayed, exactly once, when it answers again; a spill file left by
    an earlier process is replayed at start (:mod:`inferwatch.spill`).  Without it they
    are retried for ``retry_seconds``, then counted failed.  ``durability="strict"``
    never spills: ``log(..., on_stored=...)`` learns whether its rows were committed.
    :meth:`close` drains the buffer and the spill file within ``drain_timeout``.
    ``sample_rate`` stores only that share of the rows (by a hash of the id; profiles and
    metrics still see them all, a label for a row left out is ``unknown_prediction_id``).
    ``jsonl_path`` keeps a rotating JSON Lines copy of every row
    (:mod:`inferwatch.jsonl_sink`; ``jsonl_max_bytes`` a file, ``jsonl_backups`` old files).
    """

    def __init__(
        self,
        sink: PredictionSink,
        *,
        metrics: MetricsHook | Literal["prometheus"] | None = "prometheus",
        registry: CollectorRegistry | None = None,
        queue_size: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        enqueue_timeout: float = 5.0,
        retry_seconds: float = 30.0,
        clock: Callable[[], datetime] = _utcnow,
        profiler: WindowSink | None = None,
        label_sink: LabelSink | None = None,
        call_timeout: float | None = 10.0,
        spill_path: str | os.PathLike[str] | None = None,
        spill_max_bytes: int = 1 << 30,
        durability: Literal["buffered", "strict"] = "buffered",
        drain_timeout: float = 30.0,
        sample_rate: float = 1.0,
        jsonl_path: str | os.PathLike[str] | None = None,
        jsonl_max_bytes: int = 100 << 20,
        jsonl_backups: int = 5,
    ) -> None:
        if durability not in ("buffered", "strict"):
            raise ValueError(f"durability must be 'buffered' or 'strict', not {durability!r}")
        if metrics == "prometheus":  # the catalogue of inferwatch.metrics (an adapter: lazy)
            from inferwatch.metrics import Metrics

            try:
                metrics = Metrics(registry)
            except ValueError as exc:  # prometheus_client: "Duplicated timeseries ..."
                raise ValueError(
                    "this registry already holds inferwatch's metrics (another Monitor's?): "
                    "share that Monitor, or give each Monitor its own registry"
                ) from exc
        elif registry is not None:
            raise ValueError("registry= is for the default metrics; drop it or metrics=")
        self.metrics: MetricsHook | None = metrics
        self.clock = clock
        spill = None
        if spill_path is not None and spill_max_bytes > 0:
            from inferwatch.spill import SpillFile

            try:
                spill = SpillFile(spill_path, max_bytes=spill_max_bytes)
            except OSError as exc:
                from inferwatch.errors import StoreError

                raise StoreError(f"cannot open the spill file {spill_path}: {exc}") from exc
        jsonl = None
        if jsonl_path is not None:
            from inferwatch.jsonl_sink import RotatingJsonl

            try:
                jsonl = RotatingJsonl(jsonl_path, max_bytes=jsonl_max_bytes, backups=jsonl_backups)
            except OSError as exc:
                from inferwatch.errors import StoreError

                raise StoreError(f"cannot open the JSONL file {jsonl_path}: {exc}") from exc
        #: the write-behind log: buffer, writer thread, retries, quarantine and spill file
        self.prediction_log = PredictionLog(
            sink,
            metrics=metrics,
            profiler=profiler,
            queue_size=queue_size,
            batch_size=batch_size,
            flush_interval=flush_interval,
            enqueue_timeout=enqueue_timeout,
            retry_seconds=retry_seconds,
            call_timeout=call_timeout,
            spill=spill,
            strict=durability == "strict",
            drain_timeout=drain_timeout,
            sample_rate=sample_rate,
            jsonl=jsonl,
        )
        #: the model version validated and judged live (``from_reference``/``from_schema``)
        self.watched: Watched | None = None
        #: the live evaluation thread (``from_reference``), stopped by :meth:`close`
        self.evaluation: EvaluationLoop | None = None
        self._owned_store: Store | None = None  # opened from a URL here: closed by close()
        self._reports: dict[tuple[str, str], Mapping[str, Any]] = {}
        self._publish_to: Callable[[str, str, Mapping[str, Any]], None] | None = None
        #: where :meth:`log_labels` hands stored labels (the performance windows), if any
        self.label_sink: LabelSink | None = label_sink
        #: what a label of each model version must be (``from_reference``/``from_schema``)
        self.label_rules: dict[tuple[str, str], LabelRules] = {}
        self._labels: LabelIngestor | None = None

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_reference(
        cls,
        reference: str | os.PathLike[str] | Mapping[str, Any] | Any,
        *,
        model: str,
        version: str,
        store: str | Store = DEFAULT_STORE_URL,
        schema: Schema | str | os.PathLike[str] | None = None,
        target: str | None = None,
        prediction: str | None = None,
        task: Task | None = None,
        predictor: Any = None,
        registry: CollectorRegistry | None = None,
        drift: DriftOptions | None = None,
        window_seconds: float = 3600.0,
        evaluation_interval: float | None = 60.0,
        min_window_rows: int = 100,
        calibration: CalibrationMode = "reference",
        max_batch: int = 1000,
        allow_extra: bool = False,
        positive_class: str | None = None,
        segments: Sequence[str] = (),
        protected_attribute: str | None = None,
        performance: bool = True,
        **options: Unpack[MonitorOptions],
    ) -> Monitor:
        """A monitor for one model version in your own app: validation, metrics, live drift.

        The same pipeline as ``inferwatch serve``: the schema (given, or inferred from the
        reference with ``target``/``prediction``/``task`` as ``schema infer`` does) gives
        :meth:`validate` the server's validator; the reference's bins and profile give
        windows of ``window_seconds`` (profiled by the log writer thread) that a thread
        judges every ``evaluation_interval`` seconds (None: only when you call
        :meth:`evaluate`), writing to the store's ``evaluations`` and the drift gauges
        of :attr:`registry`.

        ``reference`` is a CSV/Parquet/JSONL path, a pandas DataFrame or a mapping of
        column name to values.  ``predictor`` is your model (anything with ``predict``, a
        scikit-learn estimator or an inferwatch ``ModelAdapter``): it scores the reference
        once so the model's outputs are judged too (prediction drift), and a classifier's
        classes label ``inferwatch_predictions_total``.  ``store`` is a store URL (opened,
        migrated, and closed by :meth:`close`) or a Store.  ``drift`` holds the tests,
        thresholds and drift share (:class:`~inferwatch.evaluate.DriftOptions`);
        ``min_window_rows`` and ``calibration`` are as the ``drift`` config keys.
        With ``predictor`` and the ``target`` column in the reference, model quality is
        tracked as the server tracks it (``performance=False`` turns it off): every logged
        prediction goes into its performance window, :meth:`log_labels` joins labels to
        them by id, the windows are estimated before labels (CBPE/DLE, fitted on the
        reference), reconciled after, and judged with the drift; ``positive_class``,
        ``segments`` and ``protected_attribute`` are as the ``models[]`` config keys.
        :meth:`performance` returns the newest state.

        Raises InputFileError, SchemaError or StoreError before anything starts.
        """
        from inferwatch.evaluate import DriftOptions, live_target, performance_setup

        if evaluation_interval is not None and not evaluation_interval > 0:
            raise ValueError(f"evaluation_interval must be > 0, got {evaluation_interval!r}")
        columns = _reference_columns(reference)
        the_schema = _schema(schema, columns, target=target, prediction=prediction, task=task)
        adapter = _adapter(predictor, the_schema)
        live = live_target(
            model,
            version,
            the_schema,
            columns,
            adapter,
            options=drift if drift is not None else DriftOptions(),
            task=task,
            window_seconds=window_seconds,
            min_window_rows=min_window_rows,
            calibration=calibration,
        )
        windows = None
        if performance and adapter is not None:
            from inferwatch.performance_windows import PerformanceWindows

            setup = performance_setup(
                model, version, the_schema, columns, adapter, task=task,  # type: ignore[arg-type]
                positive=positive_class, segments=segments, protected=protected_attribute,
            )  # fmt: skip
            if setup is not None:
                windows = PerformanceWindows([setup], window_seconds=window_seconds)
        n_rows = len(next(iter(columns.values()))) if columns else 0
        uri = str(reference) if isinstance(reference, str | os.PathLike) else None
        monitor = cls._watching(
            store, registry, model, version, the_schema, adapter, task,
            max_batch=max_batch, allow_extra=allow_extra, live=live,
            reference=(uri, n_rows), options=options, performance=windows,
        )  # fmt: skip
        monitor._start_evaluation(live, evaluation_interval, windows)
        return monitor

    @classmethod
    def from_schema(
        cls,
        schema: Schema | str | os.PathLike[str],
        *,
        model: str,
        version: str,
        store: str | Store = DEFAULT_STORE_URL,
        task: Task | None = None,
        predictor: Any = None,
        registry: CollectorRegistry | None = None,
        max_batch: int = 1000,
        allow_extra: bool = False,
        **options: Unpack[MonitorOptions],
    ) -> Monitor:
        """A monitor that validates one model version's inputs against ``schema`` (a
        :class:`~inferwatch.schema.Schema` or a schema YAML path) and records its
        predictions, with no live drift (that needs a reference: :meth:`from_reference`).
        ``predictor``, when given, only names a classifier's classes for the metrics."""
        the_schema = _schema(schema, {}, task=task)
        adapter = _adapter(predictor, the_schema)
        return cls._watching(
            store, registry, model, version, the_schema, adapter, task,
            max_batch=max_batch, allow_extra=allow_extra, live=None, reference=None,
            options=options,
        )  # fmt: skip

    @classmethod
    def _watching(
        cls,
        store: str | Store,
        registry: CollectorRegistry | None,
        model: str,
        version: str,
        schema: Schema,
        adapter: ModelAdapter | None,
        task: Task | None,
        *,
        max_batch: int,
        allow_extra: bool,
        live: LiveTarget | None,
        reference: tuple[str | None, int] | None,
        options: MonitorOptions,
        performance: PerformanceWindows | None = None,
    ) -> Monitor:
        """Open the store, register the model version there and in the metrics, and
        watch it: its validator and, with ``live``, its windows."""
        from inferwatch.metrics import Metrics
        from inferwatch.schema import InstanceValidator
        from inferwatch.store import open_store

        if not model or not version:
            raise ValueError("model and version must be non-empty strings")
        owned = open_store(store) if isinstance(store, str) else None
        the_store: Store = owned if owned is not None else store  # type: ignore[assignment]
        try:
            if owned is not None:
                owned.upgrade()
            flavor = adapter.flavor if adapter is not None else "custom"
            the_store.register_model(model, version, flavor=flavor)
            if reference is not None:
                uri, n_rows = reference
                the_store.register_reference(
                    model, version, uri=uri, n_rows=n_rows, schema=schema.to_dict()
                )
            sinks: list[WindowSink] = [] if live is None else [live.profiler]
            if performance is not None:
                sinks.append(performance)
            profiler = (sinks[0] if len(sinks) == 1 else WindowFanout(sinks)) if sinks else None
            monitor = cls(
                the_store, registry=registry, profiler=profiler, label_sink=performance, **options
            )
        except BaseException:
            if owned is not None:
                owned.close()
            raise
        monitor._owned_store = owned
        metrics = monitor.metrics
        assert isinstance(metrics, Metrics)
        classes = adapter.classes if adapter is not None else None
        if task is None and schema.task is not None:
            task = schema.task
        metrics.for_model(model, version, classes, task=task)
        validator = InstanceValidator(schema, max_batch=max_batch, allow_extra=allow_extra)
        monitor.watched = Watched(model, version, schema, validator, live)
        monitor.label_rules[(model, version)] = LabelRules.of(schema, classes)
        return monitor

    def _start_evaluation(
        self,
        live: LiveTarget,
        interval: float | None,
        performance: PerformanceWindows | None = None,
    ) -> None:
        """The evaluation loop of ``live`` (and of the ``performance`` windows),
        publishing to the drift and performance gauges and to :meth:`evaluate`'s answers;
        its thread runs every ``interval`` seconds."""
        from inferwatch.evaluate import EvaluationLoop
        from inferwatch.metrics import LiveDriftCollector, PerformanceCollector

        collector = LiveDriftCollector()
        self.registry.register(collector)
        self._publish_to = collector.publish
        quality = None
        if performance is not None:
            quality = PerformanceCollector()
            self.registry.register(quality)
        loop = EvaluationLoop(
            [live],
            interval=interval if interval is not None else 60.0,
            sink=self.sink if isinstance(self.sink, EvaluationSink) else None,
            publish=self._published,
            performance=performance,
            publish_performance=None if quality is None else quality.publish,
        )
        self.evaluation = loop
        if interval is not None:
            loop.start()

    def _published(self, model: str, version: str, report: Mapping[str, Any]) -> None:
        self._reports[(model, version)] = report
        if self._publish_to is not None:
            self._publish_to(model, version, report)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, registry: CollectorRegistry | None = None
    ) -> Monitor:
        """A monitor writing to the configured store, with metrics on ``registry`` (a new
        registry when None)."""
        from inferwatch.metrics import Metrics
        from inferwatch.store import open_store

        store: Store = open_store(settings.store.url)
        if settings.store.auto_migrate:
            store.upgrade()
        return cls(store, metrics=Metrics(registry), **store_options(settings))

    # -- metrics -------------------------------------------------------------------------
    def _prometheus(self) -> Metrics:
        from inferwatch.metrics import Metrics

        if not isinstance(self.metrics, Metrics):
            raise RuntimeError(
                "this Monitor has no Prometheus metrics (it was built with metrics="
                f"{self.metrics!r}); build it with the default metrics='prometheus'"
            )
        return self.metrics

    @property
    def registry(self) -> CollectorRegistry:
        """The Prometheus registry of this monitor's metrics (to push or add collectors to)."""
        return self._prometheus().registry

    def metrics_asgi_app(self) -> Callable[..., Any]:
        """An ASGI app answering Prometheus scrapes: ``app.mount("/metrics", ...)``."""
        return self._prometheus().asgi_app()

    def metrics_wsgi_app(self) -> Callable[..., Any]:
        """A WSGI app answering Prometheus scrapes (Flask: dispatch ``/metrics`` to it)."""
        return self._prometheus().wsgi_app()

    def render_metrics(self, accept: str | None = None) -> tuple[bytes, str]:
        """The metrics as a scrape answer, ``(body, content_type)``, for any framework;
        ``accept`` is the scraper's ``Accept`` header (OpenMetrics when it asks)."""
        return self._prometheus().exposition(accept)

    # -- validation and live drift (from_reference / from_schema) ------------------------
    def validate(self, instances: Any) -> list[dict[str, Any]]:
        """Check a batch of instances (a list of dicts) against the watched schema, with
        the server's validator: return the rows (a missing nullable feature set to None,
        with ``allow_extra`` unknown keys dropped) or raise
        :class:`~inferwatch.errors.ValidationError`, whose ``code`` and ``errors`` name
        each bad field (``to_dict()`` is the server's JSON error).  A refusal is counted
        in ``inferwatch_requests_rejected_total`` and ``inferwatch_validation_errors_total``.
        """
        watched = self._require_watched("validate")
        try:
            return watched.validator.validate(instances)
        except ValidationError as exc:
            reject = getattr(self.metrics, "reject", None)
            if reject is not None:
                reject(watched.model, exc.code, [(e.reason, e.kind) for e in exc.errors])
            raise

    def evaluate(self, timeout: float | None = 30.0) -> dict[str, Any]:
        """Judge the watched model's current window now and return its report.

        Waits for the rows logged so far to be profiled (:meth:`flush`), then judges as
        the evaluation thread does: evaluation rows go to the store, the drift gauges
        update, and the report shown on them is returned (``DriftReport.to_dict()`` with
        a ``window`` entry: ``start``, ``end``, ``rows``, ``judged``; a window under
        ``min_window_rows`` is not judged and its features carry an ``error``).
        """
        watched = self._require_watched("evaluate")
        loop = self.evaluation
        if loop is None or watched.live is None:
            raise RuntimeError("live drift needs a reference: build with Monitor.from_reference")
        self.flush(timeout)
        loop.run_once()
        return dict(self._reports[(watched.model, watched.version)])

    def performance(self, timeout: float | None = 30.0) -> dict[str, Any] | None:
        """Judge the watched model's performance windows now and return the newest state:
        ``realised`` (the newest window with enough labels), ``estimated`` (with its band),
        ``reconciliation``, ``label_coverage``, ``segments``, ``fairness``,
        ``detections``.  None when the model's quality is not tracked (no predictor, or
        no target column in the reference)."""
        watched = self._require_watched("performance")
        loop = self.evaluation
        if loop is None or loop.performance is None:
            return None
        self.flush(timeout)
        out = loop.run_once(watched.model)
        state = out["performance"].get(watched.version)
        return dict(state) if state is not None else None

    def _require_watched(self, what: str) -> Watched:
        if self.watched is None:
            raise RuntimeError(
                f"{what}() needs a schema: build the monitor with Monitor.from_reference "
                "or Monitor.from_schema"
            )
        return self.watched

    # -- request path --------------------------------------------------------------------
    def log(
        self,
        model: str,
        version: str,
        inputs: Sequence[Mapping[str, Any]],
        outputs: Sequence[Any],
        *,
        ids: Sequence[str] | None = None,
        scores: Sequence[float | None] | None = None,
        probabilities: Sequence[Mapping[str, float] | None] | None = None,
        timestamps: Sequence[datetime] | None = None,
        latency_seconds: float | None = None,
        inference_seconds: float | None = None,
        trace_id: str | None = None,
        block: bool = True,
        on_stored: Callable[[bool], None] | None = None,
    ) -> list[str]:
        """Record a batch of predictions; return their ids (generated when not given).

        With the buffer full, ``log`` waits up to ``enqueue_timeout`` for room, then drops
        and counts the rows that do not fit; ``block=False`` never waits (what the server
        does on its event loop).

        ``latency_seconds`` is how long the batch took to answer (your request's time):
        it is stored with every row and observed once in
        ``inferwatch_request_duration_seconds``.  ``inference_seconds`` is the part spent
        inside the model, observed in ``inferwatch_model_inference_duration_seconds``.
        ``on_stored`` (``durability="strict"``) is called from the writer thread with
        whether every row was committed (see :meth:`PredictionLog.enqueue`).
        """
        n = len(inputs)
        given = (outputs, ids, scores, probabilities, timestamps)
        if any(seq is not None and len(seq) != n for seq in given):
            for name, seq in zip(_LOG_SEQUENCES, given, strict=True):
                if seq is not None and len(seq) != n:
                    raise ValueError(f"{name} has {len(seq)} items but inputs has {n}")
        ids = list(ids) if ids is not None else new_prediction_ids(n)
        now = self.clock()
        # positional arguments, in PredictionRecord's field order: this runs per prediction
        records = [
            PredictionRecord(
                ids[i],
                model,
                version,
                now if timestamps is None else timestamps[i],
                inputs[i],
                outputs[i],
                None if scores is None else scores[i],
                latency_seconds,
                trace_id,
                None if probabilities is None else probabilities[i],
            )
            for i in range(n)
        ]
        observation = Observation(model, version, records, latency_seconds, inference_seconds)
        if self.metrics is not None:
            self.metrics.observe(observation)
        self.prediction_log.enqueue(records, block=block, on_stored=on_stored)
        return ids

    def log_labels(
        self, model: str, labels: Sequence[tuple[str, Any]] | Mapping[str, Any]
    ) -> LabelReport:
        """Record ground truth that arrived for earlier predictions of ``model``, by id.

        ``labels`` is ``[(prediction_id, label), ...]`` or ``{prediction_id: label}``.
        The same ingestor as ``POST /v1/models/{name}/feedback``: each item is accepted
        (stored), replaced (an earlier label of that prediction is overwritten) or
        rejected with a code (``unknown_prediction_id``, ``wrong_model``,
        ``duplicate_prediction_id``, ``invalid_label``) in the returned
        :class:`~inferwatch.labels.LabelReport`.  A prediction still in this monitor's
        buffer (not yet flushed) is found.  Labels are stored before this returns, then
        handed to :attr:`label_sink` and counted in ``inferwatch_labels_total`` and
        ``inferwatch_label_delay_seconds``.  Raises ``StoreError`` when the store is
        down (nothing of the call was stored) and TypeError for a sink that is not a
        full store.
        """
        items = list(labels.items()) if isinstance(labels, Mapping) else list(labels)
        return self.label_ingestor.ingest(model, items)

    @property
    def label_ingestor(self) -> LabelIngestor:
        """The :class:`~inferwatch.labels.LabelIngestor` of :meth:`log_labels` (made on
        first use, from :attr:`label_rules`, :attr:`label_sink` and the metrics)."""
        if self._labels is None:
            from inferwatch.labels import LabelIngestor

            store = self.sink
            if not (hasattr(store, "find_predictions") and hasattr(store, "upsert_labels")):
                raise TypeError(
                    f"log_labels needs a store with find_predictions and upsert_labels "
                    f"(SQLStore, MemoryStore); this monitor writes to {type(store).__name__}"
                )
            hook = self.metrics if hasattr(self.metrics, "observe_labels") else None
            self._labels = LabelIngestor(
                store,  # type: ignore[arg-type]
                rules=self.label_rules,
                log=self.prediction_log,
                sink=self.label_sink,
                metrics=hook,  # type: ignore[arg-type]
                clock=self.clock,
            )
        return self._labels

    def log_observation(self, observation: Observation, *, block: bool = True) -> None:
        """Update live metrics and queue the rows for the store (see :meth:`log`)."""
        if self.metrics is not None:
            self.metrics.observe(observation)
        self.prediction_log.enqueue(observation.records, block=block)

    # -- the prediction log --------------------------------------------------------------
    @property
    def sink(self) -> PredictionSink:
        return self.prediction_log.sink

    @property
    def profiler(self) -> WindowSink | None:
        return self.prediction_log.profiler

    @property
    def batch_size(self) -> int:
        return self.prediction_log.batch_size

    @property
    def queue_size(self) -> int:
        return self.prediction_log.queue_size

    @property
    def stats(self) -> MonitorStats:
        """Rows logged, written, dropped, failed, queued and quarantined so far."""
        return self.prediction_log.stats

    def start(self) -> Monitor:
        """Start the background writer now (``log`` starts it on first use anyway)."""
        self.prediction_log.start()
        return self

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every row logged so far is written (or failed); False on timeout."""
        return self.prediction_log.flush(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Write everything still buffered (and replay the spill file), stop the writer
        and the live evaluation, close a store this monitor opened; True if every row was
        written.  Bounded by ``timeout`` (None: the monitor's ``drain_timeout``); rows
        still in the spill file then stay there for the next start."""
        written = self.prediction_log.close(timeout)
        if self.evaluation is not None:
            self.evaluation.stop()
        if self._owned_store is not None:
            self._owned_store.close()
        return written

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def store_options(settings: Settings) -> MonitorOptions:
    """The :class:`Monitor` keywords of the ``store.*`` settings (the server's too)."""
    s = settings.store
    return MonitorOptions(
        queue_size=s.queue_size,
        batch_size=s.batch_size,
        flush_interval=s.flush_interval_seconds,
        enqueue_timeout=s.enqueue_timeout_seconds,
        # a second past the statement timeout: a slow statement ends with PostgreSQL's
        # own error first; only a store that answers nothing at all is cut off here
        call_timeout=s.statement_timeout_seconds + 1.0,
        spill_path=default_spill_path(s.url) if s.spill_path is None else s.spill_path,
        spill_max_bytes=s.spill_max_bytes,
        durability=s.durability,
        drain_timeout=s.drain_timeout_seconds,
        sample_rate=s.sample_rate,
        jsonl_path=s.jsonl_path,
        jsonl_max_bytes=s.jsonl_max_bytes,
        jsonl_backups=s.jsonl_backups,
    )


def default_spill_path(url: str) -> Path | None:
    """Where the spill file of the store at ``url`` goes when ``store.spill_path`` is not
    set: beside a SQLite file (``FILE.spill``), else ``inferwatch-spill.bin`` in the
    working directory; None (no spill) for an in-memory store."""
    if url.startswith("memory:") or ":memory:" in url or url.rstrip("/") in ("sqlite:",):
        return None
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1].split("?", 1)[0] if ":///" in url else ""
        if path:
            return Path(path + ".spill")
    return Path("inferwatch-spill.bin")


# -- helpers of from_reference / from_schema (adapters imported lazily: engine layer) ----


def _reference_columns(reference: Any) -> dict[str, Any]:
    """The reference's columns as numpy arrays: from a file, a DataFrame or a mapping."""
    import numpy as np

    if isinstance(reference, str | os.PathLike):
        from inferwatch.io import read_columns

        return dict(read_columns(Path(reference)))
    if hasattr(reference, "columns") and hasattr(reference, "to_numpy"):  # a DataFrame
        return {str(c): reference[c].to_numpy() for c in reference.columns}
    if isinstance(reference, Mapping):
        columns = {str(k): np.asarray(v) for k, v in reference.items()}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"the reference's columns differ in length: {sorted(lengths)}")
        return columns
    raise TypeError(
        "reference must be a file path, a pandas DataFrame or a mapping of columns, "
        f"not {type(reference).__name__}"
    )


def _schema(
    schema: Any,
    columns: Mapping[str, Any],
    *,
    target: str | None = None,
    prediction: str | None = None,
    task: Task | None = None,
) -> Schema:
    """The given schema (or its YAML file), else the schema inferred from ``columns``."""
    from inferwatch.schema import Schema, infer_schema

    if isinstance(schema, Schema):
        found = schema
    elif isinstance(schema, str | os.PathLike):
        from inferwatch.io import load_schema

        found = load_schema(Path(schema))
    elif schema is None:
        found = infer_schema(columns, target=target, prediction=prediction, task=task)
    else:
        raise TypeError(f"schema must be a Schema or a YAML path, not {type(schema).__name__}")
    return found.with_task(task) if task is not None and found.task != task else found


def _adapter(predictor: Any, schema: Schema) -> ModelAdapter | None:
    """``predictor`` behind the model port: a ModelAdapter as is, anything with
    ``predict`` (a scikit-learn estimator) in the scikit-learn adapter."""
    from inferwatch.ports import ModelAdapter

    if predictor is None or isinstance(predictor, ModelAdapter):
        return predictor
    from inferwatch.models import SklearnAdapter

    return SklearnAdapter(predictor, feature_names=schema.names)
