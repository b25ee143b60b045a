"""Rules from the YAML config, every problem reported at once with its key path, and the
default pack.

A bad rule has to stop ``serve`` and ``rules validate`` before anything runs, and one
error per start would make fixing a config a loop of restarts; so :func:`load_rules`
collects every problem (``alerting.rules[3].critical: must be below warning for '<'``)
and raises them together.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

from inferwatch.rules._band import DAY, SEASONALITIES, Band
from inferwatch.rules._spec import (
    AGGREGATIONS,
    COMPARISONS,
    SIGNALS,
    Comparison,
    Rule,
    format_duration,
    parse_duration,
    template_problems,
)

__all__ = [
    "BAND_LEVELS",
    "RuleError",
    "band_from_dict",
    "default_rules",
    "load_rules",
    "record_name",
    "rule_from_dict",
    "rule_to_dict",
]

_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYS: Final = frozenset(
    {"name", "signal", "aggregation", "window", "comparison", "warning", "critical", "for",
     "labels", "summary", "description", "unusual"}
)  # fmt: skip
_BAND_KEYS: Final = frozenset({"history", "step", "seasonality", "min_history", "min_mad"})
#: a band rule's default z-score levels: (warning, critical) for ``>``; negated for ``<``
BAND_LEVELS: Final = (3.0, 5.0)
#: the most points one band keeps per series (7d at 1m is 10,080)
_MAX_POINTS: Final = 100_000
#: the fewest history points a band judges by (daily: two days of three points)
_MIN_POINTS: Final = 6
#: labels a rule may not set: the alert's own identity, which the rule or series give
RESERVED_LABELS: Final = frozenset({"alertname", "severity", "model", "feature", "instance"})
DEFAULT_WINDOW: Final = 300.0


class RuleError(ValueError):
    """Invalid rules; ``problems`` lists each as ``path: what is wrong``."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def _number(value: Any, path: str, problems: list[str]) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(f"{path}: must be a number, not {value!r}")
        return None
    if not math.isfinite(value):
        problems.append(f"{path}: must be finite")
        return None
    return float(value)


def _duration(value: Any, path: str, problems: list[str], default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        problems.append(f"{path}: must be a duration like 5m, not {value!r}")
        return default
    if isinstance(value, int | float):  # plain seconds
        seconds = float(value)
    else:
        try:
            seconds = parse_duration(value)
        except ValueError as e:
            problems.append(f"{path}: {e}")
            return default
    if seconds < 0 or not math.isfinite(seconds):
        problems.append(f"{path}: must not be negative")
        return default
    return seconds


def _default_summary(signal: str, band: bool = False) -> str:
    per = SIGNALS[signal].per
    who = " ".join(f"{{{{ $labels.{p} }}}}" for p in per)
    if band:
        return f"{signal} of {who} is {{{{ $value }}}}, unusual for its history"
    return f"{signal} of {who} is {{{{ $value }}}}"


def band_from_dict(data: Any, path: str, problems: list[str]) -> Band | None:
    """A rule's ``unusual`` mapping (``true`` or ``{}``: every default), appending what is
    wrong to ``problems``."""
    if data is True:
        data = {}
    if not isinstance(data, Mapping):
        problems.append(
            f"{path}: must be true or a mapping of history, step, seasonality, min_history, min_mad"
        )
        return None
    before = len(problems)
    for key in sorted(set(map(str, data)) - _BAND_KEYS):
        problems.append(f"{path}.{key}: unknown key (allowed: {', '.join(sorted(_BAND_KEYS))})")
    seasonality = data.get("seasonality", "none")
    if seasonality not in SEASONALITIES:
        problems.append(
            f"{path}.seasonality: must be one of {', '.join(SEASONALITIES)} (got {seasonality!r})"
        )
        seasonality = "none"
    daily = seasonality == "daily"
    history = _duration(data.get("history"), f"{path}.history", problems, 7 * DAY)
    step = _duration(data.get("step"), f"{path}.step", problems, 300.0)
    if step < 60 or step % 60:
        problems.append(f"{path}.step: must be a whole number of minutes, at least 1m")
    elif daily and DAY % step:
        problems.append(f"{path}.step: must divide a day (1m, 5m, 15m, 1h) for daily seasonality")
    elif daily and step > 3600:
        problems.append(f"{path}.step: at most 1h for daily seasonality (it reads +-step)")
    elif history < 2 * step:
        problems.append(f"{path}.history: must cover at least two steps ({2 * step:g}s)")
    elif history / step > _MAX_POINTS:
        problems.append(f"{path}.history: more than {_MAX_POINTS} steps; use a longer step")
    if daily and history < 2 * DAY:
        problems.append(f"{path}.history: must be at least 2d for daily seasonality")
    default_min = min(3 * DAY if daily else DAY, history)
    min_history = _duration(data.get("min_history"), f"{path}.min_history", problems, default_min)
    if min_history <= 0:
        problems.append(f"{path}.min_history: must be positive")
    elif min_history > history:
        problems.append(f"{path}.min_history: must not be longer than history")
    elif len(problems) == before and _points(history, step, seasonality, min_history) < _MIN_POINTS:
        least = "2d" if daily else format_duration(_MIN_POINTS * step)
        problems.append(
            f"{path}.min_history: must cover at least {_MIN_POINTS} points ({least}): the "
            "median and MAD of fewer are too unsteady to judge by"
        )
    min_mad = _number(data.get("min_mad"), f"{path}.min_mad", problems) or 0.0
    if min_mad < 0:
        problems.append(f"{path}.min_mad: must not be negative")
    if len(problems) > before:
        return None
    return Band(history, step, seasonality, min_history, min_mad)


def _points(history: float, step: float, seasonality: Any, min_history: float) -> int:
    return Band(history, step, seasonality, min_history).min_points()


def record_name(rule_name: str) -> str:
    """A rule name in snake case, as its band's recording rules name it
    (``RequestsUnusual`` -> ``requests_unusual``)."""
    out = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", rule_name)
    out = re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", out)
    return out.lower()


def rule_from_dict(data: Any, path: str, problems: list[str]) -> Rule | None:
    """One rule from its YAML mapping, appending what is wrong to ``problems``."""
    if not isinstance(data, Mapping):
        problems.append(f"{path}: must be a mapping with name, signal, thresholds")
        return None
    before = len(problems)
    for key in sorted(set(map(str, data)) - _KEYS):
        problems.append(f"{path}.{key}: unknown key (allowed: {', '.join(sorted(_KEYS))})")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        problems.append(f"{path}.name: required, letters, digits and '_' (got {name!r})")
    signal = data.get("signal")
    spec = SIGNALS.get(signal) if isinstance(signal, str) else None
    if spec is None:
        problems.append(
            f"{path}.signal: unknown signal {signal!r} (known: {', '.join(sorted(SIGNALS))})"
        )
    aggregation = data.get("aggregation")
    if spec is not None:
        allowed = AGGREGATIONS[spec.kind]
        if aggregation is None:
            aggregation = spec.default_aggregation
        elif aggregation not in allowed:
            problems.append(
                f"{path}.aggregation: {aggregation!r} does not apply to {signal!r} "
                f"(one of: {', '.join(allowed)})"
            )
    window = _duration(data.get("window"), f"{path}.window", problems, DEFAULT_WINDOW)
    if window == 0:
        problems.append(f"{path}.window: must be positive")
    for_ = _duration(data.get("for"), f"{path}.for", problems, 0.0)
    band = None
    unusual = data.get("unusual") is not None and data.get("unusual") is not False
    if unusual:
        band = band_from_dict(data["unusual"], f"{path}.unusual", problems)
    if band is not None and band.seasonality == "none" and band.history < 4 * (for_ + band.step):
        problems.append(
            f"{path}.unusual.history: must be at least 4 x (for + step) = "
            f"{format_duration(4 * (for_ + band.step))}, or an anomaly that lasts 'for' "
            "fills the history it is judged against before it fires"
        )
    comparison = data.get("comparison")
    if comparison is None and spec is not None and spec.bad != "either":
        comparison = ">" if spec.bad == "above" else "<"
    if comparison is None and spec is None:
        pass  # the unknown signal is the problem; no default to name
    elif comparison not in COMPARISONS:
        problems.append(
            f"{path}.comparison: must be one of {', '.join(COMPARISONS)} (got {comparison!r})"
        )
    elif spec is not None and spec.bad != "either":
        upward = comparison in (">", ">=")
        if upward != (spec.bad == "above"):
            problems.append(
                f"{path}.comparison: {signal!r} is bad when {spec.bad} its threshold, "
                f"so {comparison!r} would alert on the good side"
            )
    warning = _number(data.get("warning"), f"{path}.warning", problems)
    critical = _number(data.get("critical"), f"{path}.critical", problems)
    if unusual and data.get("warning") is None and data.get("critical") is None:
        if comparison in COMPARISONS:  # z-score levels: 3 and 5 on the rule's side
            sign = 1.0 if comparison in (">", ">=") else -1.0
            warning, critical = sign * BAND_LEVELS[0], sign * BAND_LEVELS[1]
    elif data.get("warning") is None and data.get("critical") is None:
        problems.append(f"{path}: needs a warning or a critical threshold (or both)")
    if unusual and comparison in COMPARISONS:
        up = comparison in (">", ">=")
        for key, level in (("warning", warning), ("critical", critical)):
            if level is not None and (level <= 0 if up else level >= 0):
                problems.append(
                    f"{path}.{key}: a z-score level for {comparison!r} must be "
                    f"{'positive' if up else 'negative'} (it is how many robust standard "
                    "deviations from the median)"
                )
    if warning is not None and critical is not None and comparison in COMPARISONS:
        if comparison in (">", ">=") and not critical > warning:
            problems.append(f"{path}.critical: must be above warning for {comparison!r}")
        if comparison in ("<", "<=") and not critical < warning:
            problems.append(f"{path}.critical: must be below warning for {comparison!r}")
    labels = data.get("labels") or {}
    if not isinstance(labels, Mapping):
        problems.append(f"{path}.labels: must be a mapping of label name to value")
        labels = {}
    for key, value in labels.items():
        if not isinstance(key, str) or not _NAME.fullmatch(key) or key.startswith("__"):
            problems.append(f"{path}.labels.{key}: not a Prometheus label name")
        elif key in RESERVED_LABELS:
            problems.append(f"{path}.labels.{key}: reserved (set by the rule or the series)")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            problems.append(f"{path}.labels.{key}: value must be a string")
    texts: dict[str, str] = {}
    for key in ("summary", "description"):
        text = data.get(key)
        if text is None:
            if key == "summary" and spec is not None:
                text = _default_summary(spec.name, band=band is not None)
            else:
                text = ""
        if not isinstance(text, str):
            problems.append(f"{path}.{key}: must be a string")
            text = ""
        problems.extend(f"{path}.{key}: {p}" for p in template_problems(text))
        texts[key] = text
    if len(problems) > before:
        return None
    return Rule(
        name=cast(str, name),
        signal=cast(str, signal),
        aggregation=cast(str, aggregation),
        window=window,
        comparison=cast(Comparison, comparison),
        warning=warning,
        critical=critical,
        for_=for_,
        labels={str(k): str(v) for k, v in labels.items()},
        summary=texts["summary"],
        description=texts["description"],
        band=band,
    )


def load_rules(data: Mapping[str, Any] | None, *, prefix: str = "alerting") -> list[Rule]:
    """The rules of an ``alerting`` config section: the default pack when
    ``default_pack`` is true (a configured rule of the same name replaces the default's),
    then ``rules`` in order.  Raises :class:`RuleError` listing every problem.
    """
    data = data or {}
    problems: list[str] = []
    if not isinstance(data, Mapping):
        raise RuleError([f"{prefix}: must be a mapping"])
    for key in sorted(set(map(str, data)) - {"rules", "default_pack"}):
        problems.append(f"{prefix}.{key}: unknown key (allowed: default_pack, rules)")
    pack = data.get("default_pack", False)
    if not isinstance(pack, bool):
        problems.append(f"{prefix}.default_pack: must be true or false")
    raw = data.get("rules") or []
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        problems.append(f"{prefix}.rules: must be a list of rules")
        raw = []
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    records: dict[str, int] = {}  # band rules' recording-rule names
    for i, item in enumerate(raw):
        path = f"{prefix}.rules[{i}]"
        rule = rule_from_dict(item, path, problems)
        if rule is not None and rule.band is not None:
            record = record_name(rule.name)
            if record in records and records[record] != i:
                problems.append(
                    f"{path}.name: its band records as inferwatch:{record}:*, as does "
                    f"{prefix}.rules[{records[record]}]'s; rename one"
                )
            records.setdefault(record, i)
        name = item.get("name") if isinstance(item, Mapping) else None
        if isinstance(name, str):
            if name in seen:
                problems.append(
                    f"{path}.name: {name!r} is already the name of {prefix}.rules[{seen[name]}]"
                )
            else:
                seen[name] = i
        if rule is not None:
            rules.append(rule)
    if problems:
        raise RuleError(problems)
    if pack is True:
        own = {r.name for r in rules}
        rules = [r for r in default_rules() if r.name not in own] + rules
    return rules


def rule_to_dict(rule: Rule) -> dict[str, Any]:
    """A rule as its YAML mapping (what :func:`rule_from_dict` reads back)."""
    out: dict[str, Any] = {
        "name": rule.name,
        "signal": rule.signal,
        "aggregation": rule.aggregation,
        "window": format_duration(rule.window),
        "comparison": rule.comparison,
    }
    if rule.warning is not None:
        out["warning"] = rule.warning
    if rule.critical is not None:
        out["critical"] = rule.critical
    out["for"] = format_duration(rule.for_)
    if rule.labels:
        out["labels"] = dict(rule.labels)
    out["summary"] = rule.summary
    if rule.description:
        out["description"] = rule.description
    if rule.band is not None:
        band: dict[str, Any] = {
            "history": format_duration(rule.band.history),
            "step": format_duration(rule.band.step),
            "seasonality": rule.band.seasonality,
            "min_history": format_duration(rule.band.min_history),
        }
        if rule.band.min_mad:
            band["min_mad"] = rule.band.min_mad
        out["unusual"] = band
    return out


#: the default pack as YAML-shaped data, validated by the same code as a user's rules
_PACK: Final[list[dict[str, Any]]] = [
    {"name": "HighLatencyP99", "signal": "latency", "aggregation": "p99", "window": "5m",
     "warning": 0.5, "critical": 1.0, "for": "5m",
     "summary": "p99 latency of {{ $labels.model }} is {{ $value }} s"},
    {"name": "HighErrorRate", "signal": "error_rate", "window": "5m",
     "warning": 0.01, "critical": 0.05, "for": "5m",
     "summary": "{{ $labels.model }} answers {{ $value }} of requests with a 5xx"},
    {"name": "AccuracyLow", "signal": "accuracy", "aggregation": "last",
     "warning": 0.92, "critical": 0.85, "for": "10m",
     "summary": "realised accuracy of {{ $labels.model }} is {{ $value }}"},
    {"name": "EstimatedAccuracyLow", "signal": "accuracy_estimated", "aggregation": "last",
     "warning": 0.92, "critical": 0.85, "for": "10m",
     "summary": "estimated accuracy of {{ $labels.model }} is {{ $value }}"},
    {"name": "DatasetDrift", "signal": "dataset_drift_share", "aggregation": "last",
     "warning": 0.25, "critical": 0.5, "for": "15m",
     "summary": "{{ $value }} of {{ $labels.model }}'s features drifted"},
    {"name": "FeatureDrift", "signal": "drift", "aggregation": "last",
     "warning": 0.5, "for": "30m",
     "summary": "feature {{ $labels.feature }} of {{ $labels.model }} drifted "
                "(score {{ $value }})"},
    {"name": "ConfidenceDrift", "signal": "confidence_drift", "aggregation": "last",
     "warning": 0.5, "for": "30m",
     "summary": "confidence of {{ $labels.model }} moved away from the reference's "
                "(score {{ $value }})"},
    {"name": "MissingValuesSurge", "signal": "missing_share", "aggregation": "last",
     "warning": 0.1, "critical": 0.3, "for": "10m",
     "summary": "{{ $value }} of {{ $labels.model }}'s {{ $labels.feature }} is missing"},
    {"name": "OutOfRangeSurge", "signal": "out_of_range_share", "aggregation": "last",
     "warning": 0.05, "critical": 0.2, "for": "10m",
     "summary": "{{ $value }} of {{ $labels.model }}'s {{ $labels.feature }} is out of range"},
    {"name": "NoTraffic", "signal": "requests", "window": "10m", "comparison": "<=",
     "warning": 0, "for": "5m",
     "summary": "{{ $labels.model }} answered no requests in 10 minutes"},
    {"name": "LabelCoverageLow", "signal": "label_coverage", "aggregation": "last",
     "warning": 0.5, "critical": 0.2, "for": "1h",
     "summary": "only {{ $value }} of {{ $labels.model }}'s predictions have a label"},
    {"name": "HighCPU", "signal": "cpu", "window": "5m",
     "warning": 0.8, "critical": 0.95, "for": "10m",
     "summary": "inferwatch on {{ $labels.instance }} uses {{ $value }} CPU cores"},
    {"name": "HighMemory", "signal": "memory", "aggregation": "last",
     "warning": 2147483648, "critical": 4294967296, "for": "10m",
     "summary": "inferwatch on {{ $labels.instance }} holds {{ $value }} bytes resident"},
    {"name": "HighGPU", "signal": "gpu_utilization", "window": "5m", "aggregation": "avg",
     "warning": 0.8, "critical": 0.95, "for": "10m",
     "summary": "GPU {{ $labels.gpu }} on {{ $labels.instance }} is {{ $value }} busy"},
]  # fmt: skip


def default_rules() -> list[Rule]:
    """The default pack: the issue's seeds, on the signals whose metrics exist today.

    p99 latency (warning 0.5 s, critical 1 s for 5m), 5xx error rate, realised and
    estimated accuracy (warning 0.92, critical 0.85 for 10m), dataset drift share,
    per-feature drift score (above 0.5 for 30m), confidence drift against the reference,
    missing-value and out-of-range surges, no traffic, label coverage falling, the
    server process's CPU and memory, and each GPU's utilisation averaged over 5 minutes
    (warning 0.8, critical 0.95 for 10m; no series, so never firing, without a GPU).
    """
    problems: list[str] = []
    rules = [rule_from_dict(d, f"default_pack[{i}]", problems) for i, d in enumerate(_PACK)]
    if problems:  # a bug in the pack itself, caught by the tests
        raise RuleError(problems)
    return [r for r in rules if r is not None]
