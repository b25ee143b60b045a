"""The rule spec: signals, rules, durations and alert templates.

One :class:`Rule` drives both alert paths: the built-in engine reads a rule's signal from
our own evaluations and live metrics, and :mod:`inferwatch.rules._promql` writes the same
rule as PromQL for a real Prometheus.  The one place the two meet is :data:`SIGNALS`: each
signal says which metric it reads (as a PromQL template over the names defined in
:mod:`inferwatch.metrics`), its unit, which direction is bad and which labels identify
one series of it, so the two paths cannot drift apart by each keeping its own mapping.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, Literal

from inferwatch.rules._band import Band

__all__ = [
    "AGGREGATIONS",
    "COMPARISONS",
    "SIGNALS",
    "Comparison",
    "Rule",
    "Signal",
    "format_duration",
    "go_float",
    "parse_duration",
    "render_template",
    "template_problems",
]

Comparison = Literal[">", ">=", "<", "<="]
Direction = Literal["above", "below", "either"]
Kind = Literal["histogram", "ratio", "rate", "gauge"]

COMPARISONS: Final[tuple[Comparison, ...]] = (">", ">=", "<", "<=")

#: aggregations by signal kind: what a rule may ask of the signal over its window
AGGREGATIONS: Final[dict[Kind, tuple[str, ...]]] = {
    "histogram": ("p50", "p90", "p95", "p99", "mean"),
    "ratio": ("ratio",),
    "rate": ("rate",),
    "gauge": ("last", "avg", "min", "max"),
}
_QUANTILES: Final = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
_OVER_TIME: Final = {"avg": "avg_over_time", "min": "min_over_time", "max": "max_over_time"}


@dataclass(frozen=True)
class Signal:
    """What one signal name reads.

    ``metric`` is the Prometheus family (a histogram's base name, a counter's ``_total``
    name, or a gauge); ``selector`` the label matchers inside its braces; ``per`` the
    labels that identify one series of the signal after aggregation (``model``, and
    ``feature`` for per-feature signals; ``instance`` for process-wide ones).  A gauge
    with several versions of one model is reduced to the worst version (``max`` when
    high is bad, ``min`` when low is), so one alert speaks for one model.
    """

    name: str
    kind: Kind
    metric: str
    unit: str
    bad: Direction
    per: tuple[str, ...]
    description: str
    selector: str = ""
    #: ratio signals: the matchers of the numerator (the denominator is ``selector``)
    numerator: str = ""

    @property
    def default_aggregation(self) -> str:
        return "p99" if self.kind == "histogram" else AGGREGATIONS[self.kind][0]

    def expr(self, aggregation: str, window_seconds: float) -> str:
        """The PromQL expression of this signal aggregated over ``window_seconds``."""
        w = format_duration(window_seconds)
        by = ", ".join(self.per)
        sel = f"{{{self.selector}}}" if self.selector else ""
        if self.kind == "histogram":
            if aggregation == "mean":
                return (
                    f"sum by ({by}) (rate({self.metric}_sum{sel}[{w}]))"
                    f" / sum by ({by}) (rate({self.metric}_count{sel}[{w}]))"
                )
            q = _QUANTILES[aggregation]
            return (
                f"histogram_quantile({q}, sum by ({by}, le) (rate({self.metric}_bucket{sel}[{w}])))"
            )
        if self.kind == "ratio":
            num = ", ".join(m for m in (self.selector, self.numerator) if m)
            return (
                f"sum by ({by}) (rate({self.metric}{{{num}}}[{w}]))"
                f" / sum by ({by}) (rate({self.metric}{sel}[{w}]))"
            )
        if self.kind == "rate":
            return f"sum by ({by}) (rate({self.metric}{sel}[{w}]))"
        worst = "min" if self.bad == "below" else "max"
        if aggregation == "last":
            return f"{worst} by ({by}) ({self.metric}{sel})"
        return f"{worst} by ({by}) ({_OVER_TIME[aggregation]}({self.metric}{sel}[{w}]))"


def _perf(metric: str, unit: str, bad: Direction, what: str) -> list[Signal]:
    """A performance metric's realised and estimated signals."""
    sel = f'metric="{metric}"'
    return [
        Signal(
            metric, "gauge", "inferwatch_model_performance", unit, bad, ("model",),
            f"realised {what} of the newest window with enough labels", sel,
        ),
        Signal(
            f"{metric}_estimated", "gauge", "inferwatch_model_performance_estimated", unit,
            bad, ("model",), f"{what} estimated without labels (CBPE / direct loss estimation)",
            sel,
        ),
    ]  # fmt: skip


_M: Final = ("model",)
_MF: Final = ("model", "feature")

#: every signal a rule may name (:data:`SIGNALS` by name).  ``cpu`` and ``memory`` are
#: the server process's own (``process_*`` from prometheus_client, per ``instance``);
#: ``host_cpu`` and the GPU signals come from :mod:`inferwatch.resources` (psutil and
#: NVML at scrape time), per ``instance`` and, for GPUs, per ``gpu`` index.
_CATALOGUE: Final[list[Signal]] = [
    Signal("latency", "histogram", "inferwatch_request_duration_seconds", "seconds",
           "above", _M, "time to answer a prediction request"),
    Signal("inference_latency", "histogram", "inferwatch_model_inference_duration_seconds",
           "seconds", "above", _M, "time inside the model's predict call"),
    Signal("error_rate", "ratio", "inferwatch_requests_total", "ratio", "above", _M,
           "share of prediction requests answered with a 5xx status",
           numerator='status=~"5.."'),
    Signal("requests", "rate", "inferwatch_requests_total", "requests per second",
           "either", _M, "prediction requests answered per second"),
    Signal("rejections", "rate", "inferwatch_requests_rejected_total",
           "requests per second", "above", _M, "requests refused before prediction"),
    Signal("confidence_mean", "histogram", "inferwatch_prediction_confidence", "ratio",
           "below", _M, "mean prediction confidence (top class probability)"),
    Signal("confidence_drift", "gauge", "inferwatch_drift_score", "score", "above", _M,
           "drift of the live confidence distribution against the reference's",
           'feature="confidence"'),
    Signal("drift", "gauge", "inferwatch_drift_score", "score", "above", _MF,
           "a feature's drift statistic against the reference"),
    Signal("dataset_drift_share", "gauge", "inferwatch_dataset_drift_share", "ratio",
           "above", _M, "share of features whose drift test flags drift"),
    Signal("missing_share", "gauge", "inferwatch_feature_missing_share", "ratio", "above",
           _MF, "share of missing values of a feature"),
    Signal("out_of_range_share", "gauge", "inferwatch_feature_quality_share", "ratio",
           "above", _MF, "share of a feature's values outside the reference range",
           'check="out_of_range"'),
    Signal("label_coverage", "gauge", "inferwatch_label_coverage_ratio", "ratio", "below",
           _M, "share of the newest window's predictions that have a label"),
    Signal("log_queue", "gauge", "inferwatch_prediction_log_queue_rows", "rows", "above",
           ("instance",), "prediction rows waiting to be written to the store"),
    Signal("cpu", "rate", "process_cpu_seconds_total", "cores", "above", ("instance",),
           "CPU the server process uses (seconds per second)"),
    Signal("memory", "gauge", "process_resident_memory_bytes", "bytes", "above",
           ("instance",), "resident memory of the server process"),
    Signal("host_cpu", "gauge", "inferwatch_host_cpu_utilization_ratio", "ratio", "above",
           ("instance",), "busy share of all the host's CPUs"),
    Signal("gpu_utilization", "gauge", "inferwatch_gpu_utilization_ratio", "ratio",
           "above", ("instance", "gpu"), "share of time a kernel ran on the GPU (NVML)"),
    Signal("gpu_memory", "gauge", "inferwatch_gpu_memory_used_bytes", "bytes", "above",
           ("instance", "gpu"), "GPU memory in use (NVML)"),
    *_perf("accuracy", "ratio", "below", "accuracy"),
    *_perf("balanced_accuracy", "ratio", "below", "balanced accuracy"),
    *_perf("f1", "ratio", "below", "F1"),
    *_perf("roc_auc", "ratio", "below", "ROC AUC"),
    *_perf("mae", "target units", "above", "mean absolute error"),
    *_perf("rmse", "target units", "above", "root mean squared error"),
]  # fmt: skip
SIGNALS: Final[dict[str, Signal]] = {s.name: s for s in _CATALOGUE}


@dataclass(frozen=True)
class Rule:
    """One alert rule: ``signal`` aggregated over ``window`` compared with thresholds.

    ``warning`` and ``critical`` (either may be ``None``, not both) are ordered with the
    comparison: for ``>`` the critical level is the higher one, for ``<`` the lower.
    ``window`` and ``for_`` are seconds; ``for_`` is how long the condition must hold
    before the alert fires (Prometheus' ``for``).  ``summary``/``description`` are
    Prometheus templates (``{{ $labels.model }}``, ``{{ $value }}``), rendered by
    :func:`render_template` in the built-in engine and by Prometheus in generated rules.

    With a ``band`` (YAML ``unusual:``) the rule is threshold-free: the levels apply to the
    signal's robust z-score against its own history (:mod:`inferwatch.rules._band`), not
    to the signal itself; ``{{ $value }}`` stays the signal's value.
    """

    name: str
    signal: str
    aggregation: str
    window: float
    comparison: Comparison
    warning: float | None
    critical: float | None
    for_: float = 0.0
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    summary: str = ""
    description: str = ""
    band: Band | None = None

    @property
    def spec(self) -> Signal:
        return SIGNALS[self.signal]

    def levels(self) -> list[tuple[str, float]]:
        """``(severity, threshold)`` pairs, critical first."""
        out = [("critical", self.critical), ("warning", self.warning)]
        return [(s, t) for s, t in out if t is not None]

    def breaches(self, value: float, threshold: float) -> bool:
        """Whether ``value`` passes ``threshold`` the way this rule's comparison says."""
        if math.isnan(value):
            return False
        match self.comparison:
            case ">":
                return value > threshold
            case ">=":
                return value >= threshold
            case "<":
                return value < threshold
            case "<=":
                return value <= threshold

    def severity(self, value: float) -> str | None:
        """The most severe level ``value`` breaches, or ``None``."""
        for sev, threshold in self.levels():
            if self.breaches(value, threshold):
                return sev
        return None

    def expr(self) -> str:
        """The PromQL expression of this rule's signal (without the comparison)."""
        return self.spec.expr(self.aggregation, self.window)


# ----------------------------------------------------------------------------- durations

_UNITS: Final = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION: Final = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration (``30s``, ``5m``, ``1h30m``, ``1d``).

    Prometheus' syntax, units largest first each at most once, so every duration a rule
    accepts is one Prometheus accepts too.  Raises :class:`ValueError` otherwise.
    """
    text = text.strip()
    pos = 0
    total = 0.0
    seen: list[str] = []
    if not text:
        raise ValueError("empty duration")
    while pos < len(text):
        m = _DURATION.match(text, pos)
        if m is None:
            raise ValueError(f"{text!r} is not a duration like 30s, 5m, 1h or 1d")
        unit = m.group(2)
        if seen and _UNITS[unit] >= _UNITS[seen[-1]]:
            raise ValueError(f"{text!r}: units must go from largest to smallest, once each")
        seen.append(unit)
        total += int(m.group(1)) * _UNITS[unit]
        pos = m.end()
    return total


def format_duration(seconds: float) -> str:
    """The shortest Prometheus duration for ``seconds`` (``300`` -> ``5m``)."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000), ("ms", 1)):
        n, ms = divmod(ms, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


# ----------------------------------------------------------------------------- templates

#: the template forms both paths render identically: ``$value``, ``$labels.NAME`` and
#: ``printf "%.Nf" $value``.  Anything else is refused at validation, so a summary never
#: reads one way in the built-in engine and another from Prometheus.
_ACTION: Final = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_LABEL: Final = re.compile(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)")
_PRINTF: Final = re.compile(r'printf\s+"%\.(\d)f"\s+\$value')


def template_problems(text: str) -> list[str]:
    """What in ``text`` the renderer does not support (empty when fine)."""
    problems = []
    for m in _ACTION.finditer(text):
        body = m.group(1)
        if body == "$value" or _LABEL.fullmatch(body) or _PRINTF.fullmatch(body):
            continue
        problems.append(
            f"unsupported template action {m.group(0)!r} (use {{{{ $value }}}}, "
            f'{{{{ $labels.NAME }}}} or {{{{ printf "%.2f" $value }}}})'
        )
    rest = _ACTION.sub("", text)
    if "{{" in rest or "}}" in rest:
        problems.append("unbalanced '{{' or '}}'")
    return problems


def go_float(value: float) -> str:
    """``value`` as Go's ``fmt`` prints a float64 with ``%v`` (what ``{{ $value }}`` shows).

    The shortest digits that round-trip, in ``%e`` form when the exponent is below -4 or at
    least 6 (Go's ``%v`` rule for floats), else plain: ``0.85``, ``123456``, ``1e+06``,
    ``1e-05``.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    t = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, t.digits))
    assert isinstance(t.exponent, int)
    exp = len(digits) + t.exponent - 1
    if exp < -4 or exp >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    point = exp + 1
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def render_template(text: str, labels: dict[str, str], value: float) -> str:
    """``text`` with its template actions filled in, as Prometheus would render them.

    A missing label renders empty, as in Prometheus (``$labels`` is a map).
    """

    def action(m: re.Match[str]) -> str:
        body = m.group(1)
        if body == "$value":
            return go_float(value)
        lab = _LABEL.fullmatch(body)
        if lab:
            return labels.get(lab.group(1), "")
        pf = _PRINTF.fullmatch(body)
        if pf:  # Go prints +Inf, -Inf and NaN whatever the precision
            return f"{value:.{int(pf.group(1))}f}" if math.isfinite(value) else go_float(value)
        raise ValueError(f"unsupported template action {m.group(0)!r}")

    return _ACTION.sub(action, text)
