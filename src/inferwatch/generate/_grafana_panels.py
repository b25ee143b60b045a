"""Every panel of the generated Grafana dashboards, and its PromQL, in one table.

The dashboards (:mod:`inferwatch.generate._grafana`) are built from :data:`PANELS` and
nothing else, so a test can walk every query: parse it with ``promtool`` and ask a real
Prometheus scraping a live server for it.  Expressions use Grafana's template variables
``$model`` and ``$version`` (multi-value, so matched with ``=~``; "All" is ``.*``) and
``$__rate_interval`` (four scrape intervals at least: the datasource's ``timeInterval``).

A query that has data only in some conditions (a GPU, a firing alert, fairness
configured) still answers with an empty result otherwise, never an error; ``when`` says
which condition, and the panel's ``noValue`` text says so on the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from inferwatch.evaluate._performance import HEADLINE_METRICS

__all__ = [
    "DASHBOARDS",
    "PANELS",
    "VARIABLES",
    "PanelSpec",
    "Query",
    "Variable",
    "queries",
]

PanelKind = Literal["timeseries", "stat", "heatmap", "table", "statetimeline"]
DashboardKey = Literal["overview", "model"]

#: dashboard key -> (file stem and uid, title)
DASHBOARDS: Final[dict[DashboardKey, tuple[str, str]]] = {
    "overview": ("inferwatch-overview", "inferwatch / overview"),
    "model": ("inferwatch-model", "inferwatch / model"),
}

_MV = 'model=~"$model", version=~"$version"'
#: the performance panels show the headline metrics (the ones also estimated), not all 15
_HEADLINE = "|".join(dict.fromkeys(m for ms in HEADLINE_METRICS.values() for m in ms))
_PERF = f'{_MV}, metric=~"{_HEADLINE}"'
_M = 'model=~"$model"'
_RI = "$__rate_interval"
#: the scrape job ``generate prometheus`` writes: prometheus_client's process_* series
#: carry no inferwatch prefix, so the job tells them from other exporters'
_JOB = 'job="inferwatch"'


def _rate(metric: str, selector: str = _MV, by: str = "") -> str:
    grouping = f"sum by ({by}) " if by else "sum "
    return f"{grouping}(rate({metric}{{{selector}}}[{_RI}]))"


def _quantile(q: float, metric: str, by: str = "") -> str:
    keys = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({keys}) (rate({metric}_bucket{{{_MV}}}[{_RI}])))"


def _error_ratio(statuses: str, by: str) -> str:
    """Share of requests answered with these statuses; 0 (not empty) while there are
    none, since a status series only exists once a request got it."""
    errors = _rate("inferwatch_requests_total", f'{_MV}, status=~"{statuses}"', by)
    total = _rate("inferwatch_requests_total", _MV, by)
    return f"({errors} or {total} * 0) / {total}"


@dataclass(frozen=True)
class Query:
    """One target: ``expr`` over a range (or at the newest instant, ``instant``), in
    Grafana's ``format``; ``exemplar`` also asks Prometheus for the exemplars (trace ids)."""

    expr: str
    legend: str = ""
    instant: bool = False
    format: Literal["time_series", "table", "heatmap"] = "time_series"
    exemplar: bool = False
    #: a unit other than the panel's: this query's series go on a right-hand axis
    unit: str = ""


@dataclass(frozen=True)
class PanelSpec:
    """One panel: where it goes (dashboard, row), how it draws, what it queries."""

    key: str
    dashboard: DashboardKey
    row: str
    title: str
    kind: PanelKind
    unit: str
    description: str
    queries: tuple[Query, ...]
    width: int = 12
    height: int = 8
    min: float | None = None
    max: float | None = None
    #: the condition without which the panel is empty ("" for none)
    when: str = ""
    #: stat panels: value -> text (the health mapping)
    mapping: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class Variable:
    """A query variable: the values of ``label`` on ``metric`` (``label_values``)."""

    name: str
    label: str
    metric: str
    multi: bool


VARIABLES: Final[dict[DashboardKey, tuple[Variable, ...]]] = {
    "overview": (
        Variable("model", "model", "inferwatch_model_info", multi=True),
        Variable("version", "version", 'inferwatch_model_info{model=~"$model"}', multi=True),
    ),
    "model": (
        Variable("model", "model", "inferwatch_model_info", multi=False),
        Variable("version", "version", 'inferwatch_model_info{model=~"$model"}', multi=True),
    ),
}

_HEALTH = (
    f'(max by (model) (ALERTS{{alertstate="firing", severity="critical", {_M}}}) * 2)'
    f' or max by (model) (ALERTS{{alertstate="firing", severity="warning", {_M}}})'
    f" or (max by (model) (inferwatch_model_info{{{_MV}}}) * 0)"
)

PANELS: Final[tuple[PanelSpec, ...]] = (
    # ---- overview: one line per model --------------------------------------------------
    PanelSpec(
        "health", "overview", "Fleet", "Health", "stat", "none",
        "ok, warning or critical: the most severe alert firing for the model in Prometheus "
        "(the generated rules).",
        (Query(_HEALTH, "{{model}}", instant=True),),
        width=6, height=5,
        mapping=(("0", "ok", "green"), ("1", "warning", "orange"), ("2", "critical", "red")),
    ),
    PanelSpec(
        "traffic_now", "overview", "Fleet", "Requests per second", "stat", "reqps",
        "Prediction requests answered per second, every status.",
        (Query(_rate("inferwatch_requests_total", by="model"), "{{model}}"),),
        width=6, height=5,
    ),
    PanelSpec(
        "errors_now", "overview", "Fleet", "Error ratio (5xx)", "stat", "percentunit",
        "Share of requests the server failed to answer (model errors, timeouts, overload).",
        (Query(_error_ratio("5..", "model"), "{{model}}"),),
        width=6, height=5, min=0, max=1,
    ),
    PanelSpec(
        "p99_now", "overview", "Fleet", "p99 latency", "stat", "s",
        "99th percentile of the time to answer a prediction request.",
        (Query(_quantile(0.99, "inferwatch_request_duration_seconds", "model"), "{{model}}"),),
        width=6, height=5,
    ),
    PanelSpec(
        "drift_share_now", "overview", "Fleet", "Drifted features (share)", "stat",
        "percentunit",
        "Share of features whose drift test flags drift in the newest live window.",
        (Query(f"max by (model) (inferwatch_dataset_drift_share{{{_MV}}})", "{{model}}"),),
        width=6, height=5, min=0, max=1,
    ),
    PanelSpec(
        "performance_now", "overview", "Fleet", "Performance: realised / estimated", "stat",
        "none",
        "Headline metric of the newest window with enough labels, beside the estimate "
        "made without labels.",
        (
            Query(f"max by (model, metric) (inferwatch_model_performance{{{_PERF}}})",
                  "{{model}} {{metric}} realised"),
            Query(f"max by (model, metric) (inferwatch_model_performance_estimated{{{_PERF}}})",
                  "{{model}} {{metric}} estimated"),
        ),
        width=12, height=5,
    ),
    PanelSpec(
        "alerts_now", "overview", "Fleet", "Alerts firing", "stat", "none",
        "Alerts firing in Prometheus for the selected models.",
        (Query(f'count(ALERTS{{alertstate="firing", {_M}}}) or vector(0)', "firing"),),
        width=6, height=5,
    ),
    PanelSpec(
        "traffic_by_model", "overview", "Traffic", "Requests per second by model",
        "timeseries", "reqps", "Prediction requests answered per second.",
        (Query(_rate("inferwatch_requests_total", by="model"), "{{model}}"),),
    ),
    PanelSpec(
        "errors_by_model", "overview", "Traffic", "Error ratio by model", "timeseries",
        "percentunit",
        "Share of requests answered 5xx (server) and 4xx (refused input) by model.",
        (
            Query(_error_ratio("5..", "model"), "{{model}} 5xx"),
            Query(_error_ratio("4..", "model"), "{{model}} 4xx"),
        ),
        min=0,
    ),
    PanelSpec(
        "alerts_table", "overview", "Alerts", "Firing alerts", "table", "none",
        "Every alert firing in Prometheus for the selected models, with its labels.",
        (Query(f'ALERTS{{alertstate="firing", {_M}}}', instant=True, format="table"),),
        width=24, when="a firing alert",
    ),
    # ---- model: one model in depth -----------------------------------------------------
    PanelSpec(
        "versions", "model", "Traffic", "Versions (1 = live)", "stat", "none",
        "Versions loaded: 1 for the one answering requests, 0 for one kept for a rollback.",
        (Query(f"max by (version) (inferwatch_model_live{{{_M}}})", "{{version}}",
               instant=True),),
        width=6, height=8,
    ),
    PanelSpec(
        "traffic", "model", "Traffic", "Requests per second by status", "timeseries", "reqps",
        "Prediction requests answered per second, by version and HTTP status.",
        (Query(_rate("inferwatch_requests_total", by="version, status"),
               "{{version}} {{status}}"),),
        width=9,
    ),
    PanelSpec(
        "rejected", "model", "Traffic", "Requests refused by reason", "timeseries", "reqps",
        "Requests refused before prediction (invalid input, unknown model, overload).",
        (Query(_rate("inferwatch_requests_rejected_total", _M, "reason"), "{{reason}}"),),
        width=9, when="a refused request",
    ),
    PanelSpec(
        "latency", "model", "Latency", "Request latency p50 / p95 / p99", "timeseries", "s",
        "Quantiles of the time to answer a prediction request; the dots are exemplars, "
        "each linked to its trace (trace_id) and prediction (prediction_id).",
        tuple(
            Query(_quantile(q, "inferwatch_request_duration_seconds"), f"p{round(q * 100)}",
                  exemplar=True)
            for q in (0.5, 0.95, 0.99)
        ),
    ),
    PanelSpec(
        "inference_latency", "model", "Latency", "Model call p99 and queue wait p95",
        "timeseries", "s",
        "Time inside the model's predict call, and time a request waited for the "
        "model's worker before its call began.",
        (
            Query(_quantile(0.99, "inferwatch_model_inference_duration_seconds"),
                  "model call p99"),
            Query(_quantile(0.95, "inferwatch_queue_duration_seconds"), "queue wait p95"),
        ),
    ),
    PanelSpec(
        "batch_size", "model", "Latency", "Rows per model call and per request",
        "timeseries", "none",
        "Mean rows per model call (requests batched together) and per request.",
        (
            Query(f"{_rate('inferwatch_model_batch_size_sum')}"
                  f" / {_rate('inferwatch_model_batch_size_count')}", "per model call"),
            Query(f"{_rate('inferwatch_request_instances_sum')}"
                  f" / {_rate('inferwatch_request_instances_count')}", "per request"),
        ),
        width=24, height=6,
    ),
    PanelSpec(
        "confidence", "model", "Outputs", "Confidence distribution", "heatmap", "none",
        "Predictions per confidence bucket (the top class probability) over time.",
        (Query(f"sum by (le) (increase(inferwatch_prediction_confidence_bucket{{{_MV}}}"
               f"[{_RI}]))", "{{le}}", format="heatmap"),),
        when="a classifier",
    ),
    PanelSpec(
        "classes", "model", "Outputs", "Predicted classes", "timeseries", "percentunit",
        "Share of predictions per predicted class.",
        (Query(f"{_rate('inferwatch_predictions_total', by='predicted_class')}"
               f" / ignoring(predicted_class) group_left"
               f" {_rate('inferwatch_predictions_total')}", "{{predicted_class}}"),),
        min=0, max=1, when="a classifier",
    ),
    PanelSpec(
        "drift_scores", "model", "Drift", "Drift score per feature", "heatmap", "none",
        "Each feature's drift statistic against the reference in the live windows "
        "(its test is in the series' test label).",
        (Query(f"max by (feature) (inferwatch_drift_score{{{_MV}}})", "{{feature}}"),),
    ),
    PanelSpec(
        "drift_detected", "model", "Drift", "Drifted features", "statetimeline", "none",
        "1 (red) while a feature's drift test flags drift.",
        (Query(f"max by (feature) (inferwatch_drift_detected{{{_MV}}})", "{{feature}}"),),
        mapping=(("0", "ok", "green"), ("1", "drift", "red")),
    ),
    PanelSpec(
        "drift_share", "model", "Drift", "Dataset drift share", "timeseries", "percentunit",
        "Share of drifted features, and the share at which the dataset counts as drifted.",
        (
            Query(f"max by (version) (inferwatch_dataset_drift_share{{{_MV}}})",
                  "{{version}} share"),
            Query(f"max by (version) (inferwatch_dataset_drift_share_threshold{{{_MV}}})",
                  "{{version}} threshold"),
        ),
        min=0, max=1,
    ),
    PanelSpec(
        "missing", "model", "Data quality", "Missing values per feature", "timeseries",
        "percentunit", "Share of missing values of each feature in the live window.",
        (Query(f"max by (feature) (inferwatch_feature_missing_share{{{_MV}}})",
               "{{feature}}"),),
        min=0,
    ),
    PanelSpec(
        "quality", "model", "Data quality", "Quality checks (latest)", "table",
        "percentunit",
        "Share of each feature's values caught by each check (missing, out_of_range, "
        "outlier, unseen) in the newest live window.",
        (Query(f"max by (feature, check) (inferwatch_feature_quality_share{{{_MV}}})",
               instant=True, format="table"),),
    ),
    PanelSpec(
        "performance", "model", "Performance", "Realised beside estimated", "timeseries",
        "none",
        "Realised metrics (labels joined by prediction id) beside the estimate made "
        "without labels and its band.",
        (
            Query(f"inferwatch_model_performance{{{_PERF}}}", "{{version}} {{metric}} realised"),
            Query(f"inferwatch_model_performance_estimated{{{_PERF}}}",
                  "{{version}} {{metric}} estimated"),
            Query(f"inferwatch_model_performance_estimated_lower{{{_PERF}}}",
                  "{{version}} {{metric}} lower"),
            Query(f"inferwatch_model_performance_estimated_upper{{{_PERF}}}",
                  "{{version}} {{metric}} upper"),
        ),
    ),
    PanelSpec(
        "labels", "model", "Performance", "Label coverage and labels received",
        "timeseries", "percentunit",
        "Share of the newest window's predictions that have a label, and labels "
        "received per second by outcome (right axis).",
        (
            Query(f"inferwatch_label_coverage_ratio{{{_MV}}}", "{{version}} coverage"),
            Query(_rate("inferwatch_labels_total", _M, "outcome"), "{{outcome}} /s",
                  unit="reqps"),
        ),
    ),
    PanelSpec(
        "fairness", "model", "Performance", "Fairness gaps", "timeseries", "none",
        "Fairness gap per protected attribute (fairlearn's definitions).",
        (Query(f"inferwatch_fairness{{{_MV}}}", "{{attribute}} {{metric}}"),),
        width=24, height=6, when="protected attributes configured",
    ),
    PanelSpec(
        "model_alerts", "model", "Alerts", "Firing alerts", "table", "none",
        "Alerts firing in Prometheus for this model.",
        (Query(f'ALERTS{{alertstate="firing", {_M}}}', instant=True, format="table"),),
        width=24, height=6, when="a firing alert",
    ),
    PanelSpec(
        "cpu", "model", "Resources", "CPU", "timeseries", "percentunit",
        "Busy share of the host's CPUs, and CPU seconds per second of the inferwatch "
        "process (1 = one core).",
        (
            Query("inferwatch_host_cpu_utilization_ratio", "host {{instance}}"),
            Query(f"rate(process_cpu_seconds_total{{{_JOB}}}[{_RI}])", "process {{instance}}"),
        ),
        width=8,
    ),
    PanelSpec(
        "memory", "model", "Resources", "Memory", "timeseries", "bytes",
        "Resident memory of the inferwatch process and memory in use on the host.",
        (
            Query(f"process_resident_memory_bytes{{{_JOB}}}", "process {{instance}}"),
            Query("inferwatch_host_memory_used_bytes", "host used {{instance}}"),
        ),
        width=8,
    ),
    PanelSpec(
        "gpu", "model", "Resources", "GPU", "timeseries", "percentunit",
        "Share of time a kernel ran and share of memory in use, per GPU (NVML).",
        (
            Query("inferwatch_gpu_utilization_ratio", "GPU {{gpu}} busy"),
            Query("inferwatch_gpu_memory_used_bytes / inferwatch_gpu_memory_total_bytes",
                  "GPU {{gpu}} memory"),
        ),
        width=8, when="a GPU visible to NVML",
    ),
)  # fmt: skip


def queries() -> list[tuple[PanelSpec, str, Query]]:
    """Every ``(panel, refId, query)`` of :data:`PANELS`, refIds A, B, ... per panel."""
    return [
        (panel, chr(ord("A") + i), query)
        for panel in PANELS
        for i, query in enumerate(panel.queries)
    ]
