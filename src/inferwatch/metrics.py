"""The Prometheus metric catalogue: every ``inferwatch_*`` metric is defined here, once.

The registry is passed in (a fresh ``CollectorRegistry`` per app and per test, as
prometheus_client's own tests do).  Label values are bounded: ``model`` is a configured
model name or ``unknown``; ``predicted_class`` one of the model's classes (first
:data:`MAX_CLASSES`; for a model that names none, its first distinct outputs) or
``other``; ``status`` an HTTP status code; ``reason``/``kind``, ``check``
(:data:`QUALITY_CHECKS`) and ``scale`` fixed vocabularies; ``feature`` and ``test`` the
schema's features and the registered tests.  Per-model children are resolved once
(:meth:`Metrics.for_model`) so the request path never calls ``labels()``.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    make_asgi_app,
    make_wsgi_app,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString

from inferwatch._hotmetrics import (
    HotCounter,
    HotCounterFamily,
    HotGaugeFamily,
    HotHistogram,
    HotHistogramFamily,
)
from inferwatch._typing import Task
from inferwatch._version import __version__
from inferwatch.labels import LABEL_OUTCOMES
from inferwatch.observation import Observation

if TYPE_CHECKING:
    from inferwatch.resources import ResourceCollector

__all__ = [
    "CONFIDENCE_BUCKETS",
    "DriftCollector",
    "LABEL_DELAY_BUCKETS",
    "LATENCY_BUCKETS",
    "LiveDriftCollector",
    "MAX_CLASSES",
    "MAX_JOB_METRICS",
    "MAX_MODEL_VERSIONS",
    "OTHER",
    "PerformanceCollector",
    "REJECT_REASONS",
    "SHADOW_OUTCOMES",
    "UNKNOWN_MODEL",
    "Metrics",
    "ModelMetrics",
    "class_label",
    "job_registry",
    "registry_samples",
    "workers_family",
]

MAX_CLASSES = 50
#: (model, version) pairs that get series of their own; later ones share OTHER's, so a
#: library caller logging under unbounded model names cannot grow the exposition
MAX_MODEL_VERSIONS = 200
#: the label value that stands for every value past a label's budget
OTHER = "__other__"
UNKNOWN_MODEL = "unknown"
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
#: waits for a model worker: tens of microseconds when idle, up to the model's timeout
QUEUE_BUCKETS = (0.0001, 0.00025, *LATENCY_BUCKETS)
#: label delay (label time minus prediction time): a second to four weeks
LABEL_DELAY_BUCKETS = (
    1, 10, 60, 300, 900, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400,
    3 * 86400, 7 * 86400, 14 * 86400, 28 * 86400,
)  # fmt: skip
REJECT_REASONS = (
    "malformed_json",
    "invalid_body",
    "invalid_unicode",
    "unsupported_media_type",
    "body_too_large",
    "empty_batch",
    "batch_too_large",
    "missing_feature",
    "unknown_feature",
    "wrong_type",
    "non_finite",
    "null_not_allowed",
    "unknown_model",
    "invalid_record",
    "unauthorized",
    "forbidden",
)


def class_label(output: Any) -> str | None:
    """The ``predicted_class`` label of a model output, or None when it is not a class.

    Strings, booleans and integers (Python or numpy) are classes; a float is never a
    class (a regressor's output), nor are None, lists or mappings.
    """
    if isinstance(output, str):
        return output
    if isinstance(output, bool | int):
        return str(output)
    if isinstance(output, np.bool_ | np.integer):
        return str(output.item())
    return None


class ModelMetrics:
    """Children of every per-model metric, resolved once for one model version.

    Predicted classes are counted in ``inferwatch_predictions_total``:

    - ``classes`` given (a classifier's own classes): those (the first
      :data:`MAX_CLASSES`), anything else as ``other``;
    - ``task="regression"``: nothing is counted (the outputs are numbers, not classes);
    - otherwise the classes are learned from the outputs: the first :data:`MAX_CLASSES`
      distinct class-like outputs (see :func:`class_label`: floats are never classes)
      get their own series, later ones count as ``other``.

    Counting a known class is a dict lookup and ``inc()``; ``labels()`` runs once per
    new class, under a lock, so threads that log at once create each series once.
    """

    def __init__(
        self,
        owner: Metrics,
        model: str,
        version: str,
        classes: Sequence[str] | None = None,
        *,
        task: Task | None = None,
    ) -> None:
        self.owner = owner
        self.model = model
        self.version = version
        self.task = task
        m, o = (model, version), owner
        self.duration = o.request_duration.labels(*m)
        self.inference = o.inference_duration.labels(*m)
        self.instances = o.request_instances.labels(*m)
        self.confidence = o.confidence.labels(*m)
        self.inflight = o.inflight.labels(model)
        self._status: dict[int, HotCounter] = {}
        self._lock = threading.Lock()
        self._other = o.predictions.labels(*m, OTHER)
        self.classes: tuple[str, ...] = tuple(str(c) for c in classes or ())
        self.learning = not self.classes and task != "regression"
        self._full = False
        self.counting = bool(self.classes) or self.learning
        self._class_counters: dict[str, HotCounter] = {
            c: o.predictions.labels(*m, c) for c in self.classes[:MAX_CLASSES]
        }
        o.model_info.labels(*m).set(1)

    @functools.cached_property
    def batch_size(self) -> HotHistogram:
        """Rows per model call (served models only: a library caller runs its own model)."""
        return self.owner.model_batch_size.labels(self.model, self.version)

    @functools.cached_property
    def live(self) -> Gauge:
        """1 while this version answers its model's requests, 0 while it is kept for a
        rollback (served models only: ``server._registry`` sets it)."""
        return self.owner.model_live.labels(self.model, self.version)

    @functools.cached_property
    def queue(self) -> HotHistogram:
        """Waits for the model's worker (served models only)."""
        return self.owner.queue_duration.labels(self.model, self.version)

    def request(
        self,
        status: int,
        seconds: float | None = None,
        exemplar: Mapping[str, str] | None = None,
    ) -> None:
        """Count an answered request; ``seconds`` (when given) is its duration.
        ``exemplar`` (trace and request ids of a failed request) goes on the status
        counter and the duration bucket, shown in the OpenMetrics exposition."""
        counter = self._status.get(status)
        if counter is None:
            counter = self._status[status] = self.owner.requests.labels(
                self.model, self.version, str(status)
            )
        counter.inc(1.0, exemplar)
        if seconds is not None:
            self.duration.observe(seconds, exemplar)

    def _learn(self, label: str) -> HotCounter:
        """The counter of a class not seen before: its own while there is room, else other."""
        with self._lock:
            counters = self._class_counters
            found = counters.get(label)
            if found is not None:
                return found
            if len(counters) >= MAX_CLASSES:
                self._full = True  # unknown outputs are OTHER from now on, lock-free
                self.owner.label_overflow.labels("predicted_class").inc()
                return self._other
            counter = self.owner.predictions.labels(self.model, self.version, label)
            # copy on write: readers on other threads look up a dict nobody mutates
            self._class_counters = {**counters, label: counter}
            self.classes = (*self.classes, label)
            return counter

    def _count(self, outputs: Iterable[Any]) -> None:
        counters, other = self._class_counters, self._other
        if not self.learning:  # fixed classes: anything else is "other"
            for out in outputs:
                counters.get(out if isinstance(out, str) else str(out), other).inc()
            return
        for out in outputs:
            label = class_label(out)
            if label is None:
                continue
            counter = counters.get(label)
            if counter is None:
                if self._full:
                    counter = other
                    self.owner.label_overflow.labels("predicted_class").inc()
                else:
                    counter = self._learn(label)
                counters = self._class_counters
            counter.inc()

    def observe(self, observation: Observation) -> None:
        """One logged batch: its size, predicted classes, confidences, and durations
        (``latency_seconds`` → the request duration, ``inference_seconds`` → the model's)."""
        records = observation.records
        self.instances.observe(len(records))
        if observation.latency_seconds is not None:
            first = records[0] if records else None
            if first is not None and first.trace_id:
                # an exemplar links the latency bucket to the trace and the prediction
                # (OpenMetrics exposition only; 89 of the 128 characters allowed)
                exemplar = {"trace_id": first.trace_id[:32], "prediction_id": first.id[:36]}
                self.duration.observe(observation.latency_seconds, exemplar)
            else:
                self.duration.observe(observation.latency_seconds)
        if observation.inference_seconds is not None:
            self.inference.observe(observation.inference_seconds)
        if self.counting:
            self._count(rec.output for rec in records)
        confidence = self.confidence
        for rec in records:
            if rec.score is not None:
                confidence.observe(rec.score)


class Metrics:
    """All of inferwatch's live metrics on one registry.

    ``process`` registers prometheus_client's process and platform collectors;
    ``resources`` (by default as ``process``) an :class:`inferwatch.resources.
    ResourceCollector`: host CPU, memory, disk and network I/O, threads, uptime and GPUs
    (NVML), read at scrape time.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        process: bool = True,
        resources: bool | None = None,
        max_model_versions: int = MAX_MODEL_VERSIONS,
    ):
        self.registry = registry if registry is not None else CollectorRegistry()
        self.max_model_versions = max_model_versions
        r = self.registry
        mv = ["model", "version"]
        self.label_overflow = Counter(
            "inferwatch_label_overflow",
            "Values past a label's budget, counted under __other__ instead of a series of "
            "their own: label is model (a model version past max_model_versions) or "
            "predicted_class (a class past the first 50).",
            ["label"],
            registry=r,
        )
        Info("inferwatch_build", "inferwatch build information.", registry=r).info(
            {"version": __version__}
        )
        self.model_info = Gauge(
            "inferwatch_model_info", "Model versions loaded and serving (always 1).", mv, registry=r
        )
        self.model_live = Gauge(
            "inferwatch_model_live",
            "1 for the version of a served model that answers its requests, 0 for a "
            "version kept loaded for a rollback.",
            mv,
            registry=r,
        )
        self.inflight = HotGaugeFamily(
            "inferwatch_inflight_requests",
            "Prediction requests being answered now, by model.",
            ["model"],
            registry=r,
        )
        self.requests = HotCounterFamily(
            "inferwatch_requests",
            "Prediction requests answered, by model, version and HTTP status code.",
            [*mv, "status"],
            registry=r,
        )
        self.request_duration = HotHistogramFamily(
            "inferwatch_request_duration_seconds",
            "Time to answer a prediction request, validation and model included.",
            mv,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_duration = HotHistogramFamily(
            "inferwatch_model_inference_duration_seconds",
            "Time spent inside the model's predict call, per call (one call may answer "
            "several requests batched together).",
            mv,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_batch_size = HotHistogramFamily(
            "inferwatch_model_batch_size",
            "Instances per model call: the rows of every request batched into it.",
            mv,
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.queue_duration = HotHistogramFamily(
            "inferwatch_queue_duration_seconds",
            "Time a prediction request waited for the model's worker before its call began.",
            mv,
            buckets=QUEUE_BUCKETS,
            registry=r,
        )
        self.request_instances = HotHistogramFamily(
            "inferwatch_request_instances",
            "Instances per prediction request.",
            mv,
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.predictions = HotCounterFamily(
            "inferwatch_predictions",
            "Predictions made, by predicted class (classifiers; 'other' past the class cap).",
            [*mv, "predicted_class"],
            registry=r,
        )
        self.confidence = HotHistogramFamily(
            "inferwatch_prediction_confidence",
            "Confidence of each prediction (the top class probability for classifiers).",
            mv,
            buckets=CONFIDENCE_BUCKETS,
            registry=r,
        )
        self.rejected = Counter(
            "inferwatch_requests_rejected",
            "Requests refused before prediction, by model and reason.",
            ["model", "reason"],
            registry=r,
        )
        self.validation_errors = Counter(
            "inferwatch_validation_errors",
            "Invalid fields in rejected requests, by model, reason and feature kind.",
            ["model", "reason", "kind"],
            registry=r,
        )
        self.log_queue_depth = Gauge(
            "inferwatch_prediction_log_queue_rows",
            "Prediction rows waiting to be written to the store.",
            registry=r,
        )
        self.log_rows = Counter(
            "inferwatch_prediction_log_rows",
            "Prediction rows handled by the log writer, by outcome "
            "(written, dropped, failed, quarantined, sampled: left out by store.sample_rate).",
            ["outcome"],
            registry=r,
        )
        self._log_outcomes = {
            o: self.log_rows.labels(o)
            for o in ("written", "dropped", "failed", "quarantined", "sampled")
        }
        self.window_share_errors = Counter(
            "inferwatch_window_share_errors",
            "Failed writes or reads of the window profiles shared through the store "
            "(fleet.share_windows); the next round retries.",
            registry=r,
        )
        self.evaluator_leader = Gauge(
            "inferwatch_evaluator_leader",
            "1 while this replica holds the evaluator lease (it judges windows and runs "
            "the alert engine), else 0.",
            registry=r,
        )
        self.log_spill_bytes = Gauge(
            "inferwatch_prediction_log_spill_bytes",
            "Bytes in the spill file: rows the store did not take (down or past "
            "store.statement_timeout_seconds), waiting to be replayed.",
            registry=r,
        )
        self.log_spilled_rows = Counter(
            "inferwatch_prediction_log_spilled_rows",
            "Prediction rows appended to the spill file while the store was unreachable.",
            registry=r,
        )
        self.log_replayed_rows = Counter(
            "inferwatch_prediction_log_replayed_rows",
            "Prediction rows replayed from the spill file to the store (also counted "
            "written or quarantined in inferwatch_prediction_log_rows_total).",
            registry=r,
        )
        self.labels = Counter(
            "inferwatch_labels",
            "Labels received, by model and outcome (accepted, replaced, or the reason "
            "the item was rejected: unknown_prediction_id, wrong_model, "
            "duplicate_prediction_id, invalid_label).",
            ["model", "outcome"],
            registry=r,
        )
        self.label_delay = Histogram(
            "inferwatch_label_delay_seconds",
            "Time from a prediction to the label stored for it (label time minus "
            "prediction time), per stored label.",
            ["model"],
            buckets=LABEL_DELAY_BUCKETS,
            registry=r,
        )
        self.shadow_predictions = Counter(
            "inferwatch_shadow_predictions",
            "Rows a shadow (candidate) version scored beside its primary, by outcome: agree "
            "or disagree with the primary's output, error (the shadow failed), dropped "
            "(its queue was full).",
            [*mv, "outcome"],
            registry=r,
        )
        self.actions = Counter(
            "inferwatch_actions",
            "Automated actions (alerting.actions) by action name, kind (rollback, retrain, "
            "scale) and outcome (ok, error, skipped: inside its cooldown or nothing to do).",
            ["action", "kind", "outcome"],
            registry=r,
        )
        self.desired_replicas = Gauge(
            "inferwatch_desired_replicas",
            "Replicas a scale action asks for, by model (a Kubernetes HPA reads it as an "
            "external metric through prometheus-adapter).",
            ["model"],
            registry=r,
        )
        self.history_operations = Counter(
            "inferwatch_history_operations",
            "The server's own history (history.*) by operation (write: one interval's rows, "
            "fold: raw rows rolled up, prune: old rollups deleted) and outcome (ok, failed: "
            "the store refused or was down; a failed write's interval is dropped, never "
            "buffered).",
            ["operation", "outcome"],
            registry=r,
        )
        if process:
            try:
                ProcessCollector(registry=r)
                PlatformCollector(registry=r)
            except ValueError:  # the registry has them already (prometheus_client.REGISTRY)
                pass
        # host, process and GPU resources (psutil, NVML) read at scrape time; on with the
        # process collector unless asked otherwise
        self.resources: ResourceCollector | None = None
        if process if resources is None else resources:
            from inferwatch.resources import ResourceCollector  # psutil: only when asked

            self.resources = ResourceCollector()
            try:
                r.register(self.resources)
            except ValueError:  # already there (a second Metrics on prometheus_client.REGISTRY)
                self.resources = None
        self._models: dict[tuple[str, str], ModelMetrics] = {}
        self._models_lock = threading.Lock()
        self._other_model: ModelMetrics | None = None
        self._connections: tuple[Counter, Gauge] | None = None

    def for_model(
        self,
        model: str,
        version: str,
        classes: Sequence[str] | None = None,
        *,
        task: Task | None = None,
    ) -> ModelMetrics:
        """The resolved children for one model version (created on first use).

        ``classes`` and ``task`` decide how predicted classes are counted (see
        :class:`ModelMetrics`); they apply when the children are created, so give them
        before the first prediction is logged.
        """
        key = (model, version)
        found = self._models.get(key)
        if found is None:
            with self._models_lock:
                found = self._models.get(key)
                if found is None:
                    if len(self._models) >= self.max_model_versions:
                        # past the budget: one shared set of series, counted
                        self.label_overflow.labels("model").inc()
                        return self._overflow(task)
                    found = ModelMetrics(self, model, version, classes, task=task)
                    self._models = {**self._models, key: found}
        return found

    def _overflow(self, task: Task | None) -> ModelMetrics:
        """The children every model version past the budget shares (called under the lock)."""
        if self._other_model is None:
            self._other_model = ModelMetrics(self, OTHER, OTHER, task=task)
        return self._other_model

    def connection_metrics(self) -> tuple[Counter, Gauge]:
        """``inferwatch serve``'s connection guard's metrics, registered on first call.

        Only the server has connections of its own to count; a library caller's
        ``Metrics`` (inside someone else's server) would only show zeros.
        """
        if self._connections is None:
            closed = Counter(
                "inferwatch_connections_closed",
                "Connections the server closed on its own, by reason: header_timeout and "
                "body_timeout (408 when a request had begun), refused (503: at "
                "server.max_connections with every connection busy), evicted (the "
                "connection that had waited longest for its request, closed to admit a new "
                "one at the limit), invalid_http (400: not HTTP).",
                ["reason"],
                registry=self.registry,
            )
            open_now = Gauge(
                "inferwatch_open_connections",
                "HTTP connections open now (at most server.max_connections).",
                registry=self.registry,
            )
            self._connections = (closed, open_now)
        return self._connections

    # -- exposition --------------------------------------------------------------------
    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The registry's metrics as a scrape answer: ``(body, content_type)``.

        ``accept`` is the scraper's ``Accept`` header: OpenMetrics when it asks for it,
        else the Prometheus text format (prometheus_client's own choice of encoder).
        """
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def asgi_app(self) -> Callable[..., Any]:
        """An ASGI app serving these metrics (mount it at ``/metrics`` in FastAPI/Starlette)."""
        return make_asgi_app(self.registry)

    def wsgi_app(self) -> Callable[..., Any]:
        """A WSGI app serving these metrics (dispatch ``/metrics`` to it in Flask)."""
        return make_wsgi_app(self.registry)

    def reject(self, model: str, reason: str, fields: Sequence[tuple[str, str]] = ()) -> None:
        """Count a refused request and its bad fields as (reason, kind) pairs."""
        reason = reason if reason in REJECT_REASONS else "invalid_body"
        self.rejected.labels(model, reason).inc()
        for field_reason, kind in fields:
            field_reason = field_reason if field_reason in REJECT_REASONS else "invalid_body"
            self.validation_errors.labels(model, field_reason, kind).inc()

    def observe_labels(
        self, model: str, outcomes: Mapping[str, int], delays: Sequence[float]
    ) -> None:
        """Count one request's labels by outcome and observe each stored label's delay
        (``model`` is a served model's name: the route refuses unknown ones first)."""
        for outcome, n in outcomes.items():
            if n and outcome in LABEL_OUTCOMES:
                self.labels.labels(model, outcome).inc(n)
        if delays:
            histogram = self.label_delay.labels(model)
            for delay in delays:
                histogram.observe(delay)

    # -- MetricsHook -------------------------------------------------------------------
    def observe(self, observation: Observation) -> None:
        self.for_model(observation.model, observation.version).observe(observation)

    def watch_log_queue(self, depth: Callable[[], int]) -> None:
        """Read ``inferwatch_prediction_log_queue_rows`` from ``depth()`` at each scrape.

        The prediction-log writer passes its buffer's length, so the gauge follows rows
        as they are queued, also during a store outage, without a gauge update per request.
        """
        self.log_queue_depth.set_function(depth)

    def watch_spill(self, size: Callable[[], int]) -> None:
        """Read ``inferwatch_prediction_log_spill_bytes`` from ``size()`` at each scrape."""
        self.log_spill_bytes.set_function(size)

    def log_sampled(self, rows: int) -> None:
        """Count rows left out of the store by ``store.sample_rate``."""
        self._log_outcomes["sampled"].inc(rows)

    def log_spill(self, *, spilled: int, replayed: int) -> None:
        """Count rows appended to and replayed from the spill file."""
        if spilled:
            self.log_spilled_rows.inc(spilled)
        if replayed:
            self.log_replayed_rows.inc(replayed)

    def log_queue(
        self, *, depth: int, written: int, dropped: int, failed: int, quarantined: int = 0
    ) -> None:
        self.log_queue_depth.set(depth)
        for outcome, n in (
            ("written", written),
            ("dropped", dropped),
            ("failed", failed),
            ("quarantined", quarantined),
        ):
            if n:
                self._log_outcomes[outcome].inc(n)


#: outcomes of ``inferwatch_shadow_predictions_total``
SHADOW_OUTCOMES = ("agree", "disagree", "error", "dropped")
#: most scores one ``inferwatch push`` sends (``inferwatch_job_metric{name}`` stays bounded)
MAX_JOB_METRICS = 100


def job_registry(
    scores: Mapping[str, float],
    *,
    duration_seconds: float | None = None,
    succeeded: bool = True,
    timestamp: float,
) -> CollectorRegistry:
    """The gauges one training or batch job pushes to a Pushgateway (a fresh registry).

    ``inferwatch_job_metric{name}`` holds each score (``name`` is one of at most
    :data:`MAX_JOB_METRICS` names, checked by :mod:`inferwatch.push`);
    ``inferwatch_job_duration_seconds`` the job's run time; a successful run sets
    ``inferwatch_job_last_success_timestamp_seconds``, a failed one
    ``inferwatch_job_last_failure_timestamp_seconds`` (so an alert can compare the two).
    """
    r = CollectorRegistry()
    if scores:
        gauge = Gauge(
            "inferwatch_job_metric", "A score reported by a training or batch job.", ["name"],
            registry=r,
        )  # fmt: skip
        for name, value in scores.items():
            gauge.labels(name).set(value)
    if duration_seconds is not None:
        Gauge(
            "inferwatch_job_duration_seconds", "How long the job ran.", registry=r
        ).set(duration_seconds)  # fmt: skip
    if succeeded:
        Gauge(
            "inferwatch_job_last_success_timestamp_seconds",
            "Unix time of the job's last successful run.",
            registry=r,
        ).set(timestamp)
    else:
        Gauge(
            "inferwatch_job_last_failure_timestamp_seconds",
            "Unix time of the job's last failed run.",
            registry=r,
        ).set(timestamp)
    return r


_SUFFIXES: Final = ("_total", "_bucket", "_sum", "_count")
Triple = tuple[str, dict[str, str], float]


def registry_samples(
    registry: CollectorRegistry,
    names: Iterable[str] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
) -> list[Triple]:
    """The registry's current samples as plain ``(sample_name, labels, value)`` triples:
    what a scrape would read, for the built-in rule evaluator (no text round trip).

    Counters come as their ``*_total`` sample, histograms as ``*_bucket`` (``le`` as the
    exposition writes it), ``*_sum`` and ``*_count``, gauges by name; ``*_created``
    samples are left out.  ``names``: keep only these sample names (collectors none of
    them belongs to are not even asked).  ``labels``: added to every sample, as Prometheus
    adds its target labels (``instance``), a sample's own label winning.

    Why not just ``registry.collect()``: for 100 models' histograms it spends ~25-45 ms a
    cycle building ``Sample`` tuples and formatting bucket bounds, most of the built-in
    engine's 50 ms budget.  Plain ``Counter``/``Gauge``/``Histogram`` objects are read
    directly (their children's values, under the metric's lock as prometheus_client
    does), 5-10x faster; anything else (process and custom collectors, a gauge with
    ``set_function``) goes through its ``collect()``.  Both paths give the same triples
    (tests/test_registry_samples.py); if prometheus_client's internals change shape, the
    direct read falls back to ``collect()`` for that collector.
    """
    wanted = None if names is None else frozenset(names)
    extra = dict(labels or {})
    out: list[Triple] = []
    with registry._lock:
        collectors = dict(registry._collector_to_names)
    previous = _FILTERED.get(registry, {})
    kept: dict[int, _Filtered] = {}
    for collector, produced in collectors.items():
        if wanted is not None and produced and wanted.isdisjoint(produced):
            continue  # (a collector without describe() names nothing: it is asked)
        size = len(out)
        try:
            if _read_direct(collector, wanted, extra, out):
                continue
        except AttributeError:  # internals moved: the public way below, from scratch
            del out[size:]
        _read_collected(collector, wanted, extra, out, previous, kept)
    _FILTERED[registry] = kept  # only this call's families: the cache never grows
    return out


#: a family's filtered triples, kept while a collector hands out the very same family
#: object (the drift and performance collectors keep theirs until the next publish, so
#: most cycles find them here instead of walking ~17k samples again)
_Filtered = tuple[Any, "frozenset[str] | None", tuple[tuple[str, str], ...], list[Triple]]
_FILTERED: weakref.WeakKeyDictionary[CollectorRegistry, dict[int, _Filtered]] = (
    weakref.WeakKeyDictionary()
)


def _read_collected(
    collector: Any,
    wanted: frozenset[str] | None,
    extra: dict[str, str],
    out: list[Triple],
    previous: dict[int, _Filtered],
    kept: dict[int, _Filtered],
) -> None:
    extra_key = tuple(extra.items())
    for family in collector.collect():
        hit = previous.get(id(family))
        if hit is not None and hit[0] is family and hit[1] == wanted and hit[2] == extra_key:
            out.extend(hit[3])
            kept[id(family)] = hit
            continue
        triples = [
            (s.name, {**extra, **s.labels} if extra else s.labels, s.value)
            for s in family.samples
            if not s.name.endswith("_created") and (wanted is None or s.name in wanted)
        ]
        out.extend(triples)
        kept[id(family)] = (family, wanted, extra_key, triples)


_LE_TEXT: dict[float, str] = {}


def _le(bound: float) -> str:
    text = _LE_TEXT.get(bound)
    if text is None:
        text = _LE_TEXT[bound] = str(floatToGoString(bound))  # type: ignore[no-untyped-call]
    return text


def _read_direct(
    metric: Any, wanted: frozenset[str] | None, extra: dict[str, str], out: list[Triple]
) -> bool:
    """Read a plain Counter/Gauge/Histogram's children; False for anything else."""
    kind = type(metric)
    if kind not in (Counter, Gauge, Histogram):
        return False
    if metric._is_parent():
        with metric._lock:
            children = list(metric._metrics.items())
    else:
        children = [((), metric)]
    if kind is Gauge and any("_child_samples" in vars(c) for _, c in children):
        return False  # set_function: its value comes from a callback
    name = metric._name
    names = metric._labelnames
    if kind is Counter:
        total = f"{name}_total"
        if wanted is None or total in wanted:
            for values, child in children:
                lab = dict(zip(names, values, strict=True))
                out.append((total, {**extra, **lab} if extra else lab, child._value.get()))
    elif kind is Gauge:
        if wanted is None or name in wanted:
            for values, child in children:
                lab = dict(zip(names, values, strict=True))
                out.append((name, {**extra, **lab} if extra else lab, child._value.get()))
    else:
        bucket, count, total = f"{name}_bucket", f"{name}_count", f"{name}_sum"
        keep = [wanted is None or n in wanted for n in (bucket, count, total)]
        for values, child in children:
            lab = dict(zip(names, values, strict=True))
            if extra:
                lab = {**extra, **lab}
            acc = 0.0
            for bound, b in zip(child._upper_bounds, child._buckets, strict=True):
                acc += b.get()
                if keep[0]:
                    out.append((bucket, {**lab, "le": _le(bound)}, acc))
            if keep[1]:
                out.append((count, lab, acc))
            if keep[2] and child._upper_bounds[0] >= 0:
                out.append((total, lab, child._sum.get()))
    return True


def _drift_families(
    reports: Iterable[tuple[str, str, Mapping[str, Any]]], *, live: bool = False
) -> list[Metric]:
    """The drift and data-quality gauges of ``(model, version, report_dict)`` triples.

    ``live``: also the window gauges, and no dataset gauges for a report that judged no
    feature (a window too small to judge has no verdict to show).
    """
    fv = ["model", "version", "feature"]
    score = GaugeMetricFamily(
        "inferwatch_drift_score",
        "Drift statistic of a feature against the reference, by test.",
        labels=[*fv, "test"],
    )
    p_value = GaugeMetricFamily(
        "inferwatch_drift_p_value",
        "p-value of a feature's drift test (p-value tests only).",
        labels=[*fv, "test"],
    )
    detected = GaugeMetricFamily(
        "inferwatch_drift_detected",
        "1 when the feature's drift test flags drift, else 0.",
        labels=fv,
    )
    missing = GaugeMetricFamily(
        "inferwatch_feature_missing_share",
        "Share of missing values of a feature in the current data.",
        labels=fv,
    )
    share = GaugeMetricFamily(
        "inferwatch_dataset_drift_share",
        "Share of features whose drift test flags drift.",
        labels=["model", "version"],
    )
    dataset = GaugeMetricFamily(
        "inferwatch_dataset_drift",
        "1 when the share of drifted features reaches the threshold, else 0.",
        labels=["model", "version"],
    )
    threshold = GaugeMetricFamily(
        "inferwatch_drift_threshold",
        "Threshold of a feature's drift verdict: drift when the score passes it "
        '(scale="statistic") or the p-value falls below it (scale="p_value").',
        labels=[*fv, "test", "scale"],
    )
    nominal = GaugeMetricFamily(
        "inferwatch_drift_nominal_threshold",
        "The drift test's own fixed threshold (a batch report's), before any calibration.",
        labels=[*fv, "test", "scale"],
    )
    share_threshold = GaugeMetricFamily(
        "inferwatch_dataset_drift_share_threshold",
        "Share of drifted features at which the dataset counts as drifted.",
        labels=["model", "version"],
    )
    q_share = GaugeMetricFamily(
        "inferwatch_feature_quality_share",
        "Share of a feature's current values caught by a quality check "
        "(missing, out_of_range, outlier, unseen).",
        labels=[*fv, "check"],
    )
    q_threshold = GaugeMetricFamily(
        "inferwatch_feature_quality_threshold",
        "Share above which a feature's quality check reports a problem.",
        labels=[*fv, "check"],
    )
    q_problem = GaugeMetricFamily(
        "inferwatch_feature_quality_problem",
        "1 when a feature's quality check reports a problem, else 0.",
        labels=[*fv, "check"],
    )
    out: list[Metric] = [
        score, p_value, detected, threshold, nominal, missing, q_share, q_threshold, q_problem,
        share, share_threshold, dataset,
    ]  # fmt: skip
    if live:
        rows = GaugeMetricFamily(
            "inferwatch_drift_window_rows",
            "Rows in the live window the drift gauges describe.",
            labels=["model", "version"],
        )
        start = GaugeMetricFamily(
            "inferwatch_drift_window_start_seconds",
            "Start of the live window the drift gauges describe (Unix time).",
            labels=["model", "version"],
        )
        out += [rows, start]
    for model, version, report in reports:
        mv = [model, version]
        columns = list(report.get("features", []))
        for extra in ("prediction_drift", "target_drift"):
            if report.get(extra):
                columns.append(report[extra])
        columns += _confidence(report.get("prediction_drift"))
        judged = False
        for f in columns:
            name = str(f["name"])
            if f.get("test") and f.get("statistic") is not None:
                judged = True
                score.add_metric([*mv, name, f["test"]], float(f["statistic"]))
                detected.add_metric([*mv, name], 1.0 if f.get("drift_detected") else 0.0)
                if f.get("p_value") is not None:
                    p_value.add_metric([*mv, name, f["test"]], float(f["p_value"]))
                for family, (value, scale) in zip(
                    (threshold, nominal), _thresholds(f), strict=True
                ):
                    if value is not None:
                        family.add_metric([*mv, name, f["test"], scale], value)
            quality = f.get("quality") or {}
            if quality.get("missing_share") is not None:
                missing.add_metric([*mv, name], float(quality["missing_share"]))
            for check, value, limit, problem in _quality_checks(quality):
                q_share.add_metric([*mv, name, check], value)
                q_problem.add_metric([*mv, name, check], 1.0 if problem else 0.0)
                if limit is not None:
                    q_threshold.add_metric([*mv, name, check], limit)
        if judged or not live:
            share.add_metric(mv, float(report.get("drift_share") or 0.0))
            dataset.add_metric(mv, 1.0 if report.get("dataset_drift") else 0.0)
            if report.get("drift_share_threshold") is not None:
                share_threshold.add_metric(mv, float(report["drift_share_threshold"]))
        window = report.get("window")
        if live and isinstance(window, Mapping):
            rows.add_metric(mv, float(window.get("rows") or 0))
            if window.get("start") is not None:
                start.add_metric(mv, float(window["start"]))
    return out


def workers_family(live: int) -> GaugeMetricFamily:
    """``inferwatch_workers``: the worker processes whose samples a scrape summed
    (``serve --workers``; a worker being replaced is counted from its saved state, not
    here)."""
    return GaugeMetricFamily(
        "inferwatch_workers",
        "Worker processes that answered this scrape (serve --workers N; each adds its counts).",
        value=live,
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _thresholds(column: Mapping[str, Any]) -> tuple[tuple[float | None, str], ...]:
    """``(threshold, scale), (nominal threshold, scale)`` of one judged column.

    A calibrated verdict (``details.calibrated_threshold``, see ``evaluate/_live.py``)
    compares the statistic with its threshold even for a p-value test, whose nominal
    threshold stays on the p-value scale; an uncalibrated one uses the test's own.
    """
    details = column.get("details") or {}
    own = "p_value" if column.get("p_value") is not None else "statistic"
    calibrated = details.get("calibrated_threshold") is not None
    value = _number(column.get("threshold"))
    nominal = _number(details["nominal_threshold"]) if calibrated else value
    return ((value, "statistic" if calibrated else own), (nominal, own))


#: quality check → (share key in ``FeatureQuality.to_dict()``, its problem code)
QUALITY_CHECKS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        "missing": ("missing_share", "missing_increase"),
        "out_of_range": ("out_of_range_share", "out_of_range"),
        "outlier": ("outlier_share", "outliers"),
        "unseen": ("unseen_share", "unseen_categories"),
    }
)
_CATEGORY_KINDS: Final = frozenset({"categorical", "boolean"})


def _quality_checks(
    quality: Mapping[str, Any],
) -> Iterator[tuple[str, float, float | None, bool]]:
    """``(check, share, limit, problem)`` of one feature's quality dict.

    Categories are checked for missing and unseen values, everything else for missing,
    out-of-range and outlying ones.  The limits come from the quality's ``limits``
    (keyed by share, e.g. ``"missing_share"``); a report without them (written before
    quality was judged against the reference) gives no limit.
    """
    if not quality:
        return
    kind = quality.get("kind")
    checks = ("missing", "unseen") if kind in _CATEGORY_KINDS else (
        "missing", "out_of_range", "outlier"
    )  # fmt: skip
    limits = quality.get("limits") or {}
    problems = set(quality.get("problems") or ())
    for check in checks:
        key, code = QUALITY_CHECKS[check]
        value = _number(quality.get(key))
        if value is None:
            continue
        yield check, value, _number(limits.get(key)), code in problems


def _confidence(prediction: Any) -> list[Mapping[str, Any]]:
    """A live report's confidence verdict (in its prediction drift's details, see
    ``evaluate/_live.py``) as one more column named ``confidence``."""
    if not isinstance(prediction, Mapping):
        return []
    found = (prediction.get("details") or {}).get("confidence")
    if not isinstance(found, Mapping) or found.get("test") is None:
        return []
    return [{**found, "name": "confidence"}]


class _FamilyCache:
    """The metric families a collector built from its published reports, kept until the
    next publish.

    Building them walks every model's report (about 40 ms for 100 models with 10
    features each), and both ``/metrics`` and the built-in alert engine's evaluation
    read them, between publishes that come once per evaluation interval.  A build that a
    publish overtakes is not kept (the generation moved), so a reader never gets stale
    families after a publish returned.
    """

    __slots__ = ("_families", "_generation")

    def __init__(self) -> None:
        self._generation = 0
        self._families: tuple[int, list[Metric]] | None = None

    def invalidate(self) -> None:
        """Called under the owner's lock by ``publish``."""
        self._generation += 1
        self._families = None

    def get(self, lock: threading.Lock, build: Callable[[], list[Metric]]) -> list[Metric]:
        with lock:
            cached, generation = self._families, self._generation
        if cached is not None and cached[0] == generation:
            return cached[1]
        families = build()
        with lock:
            if self._generation == generation:
                self._families = (generation, families)
        return families


class DriftCollector:
    """Drift and data-quality gauges computed from one report when Prometheus collects.

    Takes the report's JSON form (``DriftReport.to_dict()``), so batch checks (pushed to a
    Pushgateway) and live window evaluations (:class:`LiveDriftCollector`) expose the same
    names.  Prediction and target drift are published as features named after their
    columns; a live report's confidence drift (in ``prediction_drift.details``) as
    ``feature="confidence"``.  ``feature`` label values come from the schema, a bounded set.

    Each verdict comes with the threshold it was judged on (``inferwatch_drift_threshold``,
    calibrated for live windows) and the test's own (``..._nominal_threshold``, what a
    batch report uses), and each quality share with its limit and problem flag, so a
    reader of ``/metrics`` can tell why a feature is or is not flagged.
    """

    def __init__(self, report: Mapping[str, Any], *, model: str, version: str) -> None:
        self.report = report
        self.model = model
        self.version = version

    def describe(self) -> list[Metric]:
        return []  # computed at collect time; nothing to register ahead

    def collect(self) -> Iterator[Metric]:
        yield from _drift_families([(self.model, self.version, self.report)])


class LiveDriftCollector:
    """The drift gauges of every model version's newest live evaluation, in one collector.

    Registered once on the app's registry; the evaluation loop hands it each new report
    (:meth:`publish`) and Prometheus reads them all when it scrapes (STYLE lesson 4: the
    gauges come from the latest evaluations, nothing sets them one by one).  Besides the
    :class:`DriftCollector` gauges it yields ``inferwatch_drift_window_rows`` and
    ``inferwatch_drift_window_start_seconds`` from the report's ``window`` entry.  A
    report that judged nothing (a window under ``drift.min_window_rows``) yields no drift
    or dataset gauges.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reports: dict[tuple[str, str], Mapping[str, Any]] = {}
        self._families = _FamilyCache()

    def publish(self, model: str, version: str, report: Mapping[str, Any]) -> None:
        """Make ``report`` (``DriftReport.to_dict()`` plus ``window``) the one shown."""
        with self._lock:
            self._reports[(model, version)] = report
            self._families.invalidate()

    def report(self, model: str, version: str) -> Mapping[str, Any] | None:
        """The newest report of one model version (None before its first evaluation)."""
        with self._lock:
            return self._reports.get((model, version))

    def reports(self) -> dict[tuple[str, str], Mapping[str, Any]]:
        """The newest report of each model version."""
        with self._lock:
            return dict(self._reports)

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield from self._families.get(self._lock, self._build)

    def _build(self) -> list[Metric]:
        current = sorted(self.reports().items())
        return list(_drift_families(((m, v, r) for (m, v), r in current), live=True))


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)


class PerformanceCollector:
    """Model-quality gauges of every model version, from the live evaluator's newest state.

    Registered once on the app's registry; the evaluation loop hands it each model
    version's state (:meth:`publish`): the newest window's realised metrics (labels joined
    by prediction id, by prediction time), the estimate of the newest estimated window with
    its band, the reconciliation of the two (realised minus the estimate of the same
    labelled rows; 1 in ``inferwatch_concept_drift_suspected`` when the realised value left
    the band), the label coverage, per-segment metrics, fairness gaps and the stream
    detectors' detection counts.  Label values are bounded: metric names come from a fixed
    list, segments from at most ``performance.max_segment_values`` values per configured
    column, fairness attributes from the configuration.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str], Mapping[str, Any]] = {}
        self._families = _FamilyCache()

    def publish(self, model: str, version: str, state: Mapping[str, Any]) -> None:
        with self._lock:
            self._states[(model, version)] = dict(state)
            self._families.invalidate()

    def state(self, model: str, version: str) -> Mapping[str, Any] | None:
        with self._lock:
            return self._states.get((model, version))

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield from self._families.get(self._lock, self._build)

    def _build(self) -> list[Metric]:
        return list(self._families_of_states())

    def _families_of_states(self) -> Iterator[Metric]:
        with self._lock:
            states = sorted(self._states.items())
        mv = ["model", "version"]
        realised = GaugeMetricFamily(
            "inferwatch_model_performance",
            "Realised model performance of the newest window with enough labels "
            "(labels joined by prediction id; windows by prediction time).",
            labels=[*mv, "metric"],
        )
        estimated = GaugeMetricFamily(
            "inferwatch_model_performance_estimated",
            "Performance estimated without labels for the newest window "
            "(confidence-based for classifiers, direct loss estimation for regressors).",
            labels=[*mv, "metric"],
        )
        lower = GaugeMetricFamily(
            "inferwatch_model_performance_estimated_lower",
            "Lower end of the estimate's band.",
            labels=[*mv, "metric"],
        )
        upper = GaugeMetricFamily(
            "inferwatch_model_performance_estimated_upper",
            "Upper end of the estimate's band.",
            labels=[*mv, "metric"],
        )
        gap = GaugeMetricFamily(
            "inferwatch_model_performance_estimate_gap",
            "Realised minus estimated performance of the same labelled predictions.",
            labels=[*mv, "metric"],
        )
        suspected = GaugeMetricFamily(
            "inferwatch_concept_drift_suspected",
            "1 when the realised value fell outside the estimate's band (P(y|x) changed).",
            labels=[*mv, "metric"],
        )
        coverage = GaugeMetricFamily(
            "inferwatch_label_coverage_ratio",
            "Share of the newest window's predictions that have a label.",
            labels=mv,
        )
        segment = GaugeMetricFamily(
            "inferwatch_segment_performance",
            "Realised headline metrics per value of a segment column (column=value).",
            labels=[*mv, "metric", "segment"],
        )
        fairness = GaugeMetricFamily(
            "inferwatch_fairness",
            "Fairness gap across a protected attribute (fairlearn's definitions).",
            labels=[*mv, "metric", "attribute"],
        )
        unfair = GaugeMetricFamily(
            "inferwatch_fairness_unfair",
            "1 when the fairness verdict is unfair.",
            labels=[*mv, "metric", "attribute"],
        )
        detections = CounterMetricFamily(
            "inferwatch_concept_drift_detections",
            "Stream detector detections on the per-prediction error stream.",
            labels=[*mv, "detector"],
        )
        for (model, version), st in states:
            for name, value in (st.get("realised") or {}).items():
                if name not in {"labelled", "label_coverage"} and _finite_number(value):
                    realised.add_metric([model, version, name], float(value))
            for name, est in (st.get("estimated") or {}).items():
                if _finite_number(est.get("value")):
                    estimated.add_metric([model, version, name], float(est["value"]))
                    if _finite_number(est.get("lower")):
                        lower.add_metric([model, version, name], float(est["lower"]))
                    if _finite_number(est.get("upper")):
                        upper.add_metric([model, version, name], float(est["upper"]))
            for name, rec in (st.get("reconciliation") or {}).items():
                if _finite_number(rec.get("gap")):
                    gap.add_metric([model, version, name], float(rec["gap"]))
                    suspected.add_metric(
                        [model, version, name], float(bool(rec.get("concept_drift_suspected")))
                    )
            if _finite_number(st.get("label_coverage")):
                coverage.add_metric([model, version], float(st["label_coverage"]))
            for column, values in (st.get("segments") or {}).items():
                for value, entry in values.items():
                    for name, x in (entry.get("realised") or {}).items():
                        if _finite_number(x):
                            segment.add_metric(
                                [model, version, name, f"{column}={value}"], float(x)
                            )
            fair = st.get("fairness")
            if fair:
                for r in fair.get("results", []):
                    if _finite_number(r.get("value")):
                        labels = [model, version, r["metric"], fair["attribute"]]
                        fairness.add_metric(labels, float(r["value"]))
                        unfair.add_metric(labels, float(r.get("verdict") == "unfair"))
            for detector, n in (st.get("detections") or {}).items():
                detections.add_metric([model, version, detector], float(n))
        yield from (realised, estimated, lower, upper, gap, suspected, coverage, segment)
        yield from (fairness, unfair, detections)
