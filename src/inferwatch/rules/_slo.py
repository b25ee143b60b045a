"""SLO burn-rate alerts: multi-window, multi-burn-rate, as the SRE workbook defines them.

An objective (say 99.9% of requests answered without a 5xx over 30 days) leaves an error
budget of 0.1%.  The burn rate is the error ratio over a window divided by that budget; a
burn rate of 1 spends the budget exactly over the period.  The workbook's alerts
(chapter 5, "Alerting on SLOs", table 5-8), for a 30-day period:

- page when the burn rate is above 14.4 over 1h **and** 5m (2% of the budget in an hour),
  or above 6 over 6h and 30m (5% in six hours);
- ticket when it is above 3 over 1d and 2h (10% in a day), or above 1 over 3d and 6h.

The long window makes an alert significant, the short one makes it stop soon after the
errors stop.  A ``period`` other than 30 days scales every window with it (the demo's and
the tests' short periods), the factors stay.  The error ratio per window is a recording
rule, so each is computed once and shared by the alerts.

SLIs: ``availability`` (the 5xx share of ``inferwatch_requests_total``), ``latency``
(the share of requests slower than ``threshold`` seconds, one of the request-duration
histogram's bucket bounds) and ``accuracy`` (1 minus the realised accuracy averaged over
the window: a model-quality objective burns its budget too; the error ratio is the
window's, not per prediction).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from inferwatch.rules._load import _NAME, RuleError
from inferwatch.rules._spec import format_duration, parse_duration

__all__ = ["BURN_WINDOWS", "SLO", "load_slos", "slo_promtool_tests", "slo_rules"]

Sli = Literal["availability", "latency", "accuracy"]
SLIS: Final[tuple[Sli, ...]] = ("availability", "latency", "accuracy")
_PERIOD: Final = 30 * 86400.0
#: (severity, burn-rate factor, long window, short window) for a 30-day period
BURN_WINDOWS: Final = (
    ("critical", 14.4, 3600.0, 300.0),
    ("critical", 6.0, 21600.0, 1800.0),
    ("warning", 3.0, 86400.0, 7200.0),
    ("warning", 1.0, 259200.0, 21600.0),
)
RECORD: Final = "model:inferwatch_slo_errors:ratio_rate"
_KEYS: Final = frozenset({"name", "sli", "objective", "threshold", "period"})


@dataclass(frozen=True)
class SLO:
    """An objective on one SLI, per model: ``objective`` of the good events over ``period``."""

    name: str
    sli: Sli
    objective: float
    threshold: float | None = None  # latency: seconds a good request stays within
    period: float = _PERIOD

    @property
    def budget(self) -> float:
        """The error budget, ``1 - objective`` (rounded: 1 - 0.999 is 0.001, not 0.0010...09)."""
        return round(1.0 - self.objective, 12)

    def windows(self) -> list[tuple[str, float, float, float]]:
        """The burn-rate windows for this period: ``(severity, factor, long, short)``."""
        scale = self.period / _PERIOD
        return [(sev, f, long * scale, short * scale) for sev, f, long, short in BURN_WINDOWS]

    def error_ratio(self, window: float) -> str:
        """PromQL: the share of bad events of each model over ``window``."""
        w = format_duration(window)
        if self.sli == "availability":
            return (
                f'sum by (model) (rate(inferwatch_requests_total{{status=~"5.."}}[{w}]))'
                f" / sum by (model) (rate(inferwatch_requests_total[{w}]))"
            )
        if self.sli == "latency":
            le = repr(float(self.threshold or 0.0))
            return (
                "1 - sum by (model) (rate(inferwatch_request_duration_seconds_bucket"
                f'{{le="{le}"}}[{w}])) / sum by (model) '
                f"(rate(inferwatch_request_duration_seconds_count[{w}]))"
            )
        return (
            "1 - min by (model) (avg_over_time("
            f'inferwatch_model_performance{{metric="accuracy"}}[{w}]))'
        )


def _record(window: float) -> str:
    return f"{RECORD}{format_duration(window)}"


def load_slos(
    data: Any, *, prefix: str = "alerting.slos", latency_bounds: Sequence[float] = ()
) -> list[SLO]:
    """SLOs from their YAML list, every problem at once with its key path.

    ``latency_bounds``: the request-duration histogram's bucket bounds; a latency
    threshold must be one of them (the SLI counts the requests in that bucket).
    """
    if data is None:
        return []
    if not isinstance(data, Sequence) or isinstance(data, str):
        raise RuleError([f"{prefix}: must be a list of objectives"])
    problems: list[str] = []
    out: list[SLO] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(data):
        path = f"{prefix}[{i}]"
        if not isinstance(item, Mapping):
            problems.append(f"{path}: must be a mapping with name, sli, objective")
            continue
        before = len(problems)
        for key in sorted(set(map(str, item)) - _KEYS):
            problems.append(f"{path}.{key}: unknown key (allowed: {', '.join(sorted(_KEYS))})")
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            problems.append(f"{path}.name: required, letters, digits and '_' (got {name!r})")
        elif name in seen:
            problems.append(f"{path}.name: {name!r} is already the name of {prefix}[{seen[name]}]")
        else:
            seen[name] = i
        sli = item.get("sli")
        if sli not in SLIS:
            problems.append(f"{path}.sli: must be one of {', '.join(SLIS)} (got {sli!r})")
        objective = item.get("objective")
        if (
            isinstance(objective, bool)
            or not isinstance(objective, int | float)
            or not 0 < objective < 1
        ):
            problems.append(f"{path}.objective: must be a fraction between 0 and 1, like 0.999")
        threshold = item.get("threshold")
        if sli == "latency":
            if isinstance(threshold, bool) or not isinstance(threshold, int | float):
                problems.append(f"{path}.threshold: a latency objective needs seconds")
            elif latency_bounds and not any(math.isclose(threshold, b) for b in latency_bounds):
                bounds = ", ".join(f"{b:g}" for b in latency_bounds)
                problems.append(
                    f"{path}.threshold: must be a latency bucket bound ({bounds}) "
                    "so the histogram can count the requests within it"
                )
            else:
                threshold = min(latency_bounds, key=lambda b: abs(b - threshold), default=threshold)
        elif threshold is not None:
            problems.append(f"{path}.threshold: only a latency objective has one")
        period = _PERIOD
        raw = item.get("period")
        if raw is not None:
            try:
                period = parse_duration(str(raw))
                if period <= 0:
                    raise ValueError("must be positive")
            except ValueError as e:
                problems.append(f"{path}.period: {e}")
        if len(problems) == before:
            out.append(
                SLO(str(name), sli, float(objective), threshold and float(threshold), period)  # type: ignore[arg-type]
            )
    if problems:
        raise RuleError(problems)
    return out


def slo_rules(slos: Sequence[SLO], *, group: str = "inferwatch_slo") -> dict[str, Any]:
    """Prometheus rule groups: one group per SLO with its error-ratio recording rules (one
    per window) and its page (``critical``) and ticket (``warning``) burn-rate alerts."""
    groups = []
    for slo in slos:
        rules: list[dict[str, Any]] = []
        windows = sorted({w for _, _, long, short in slo.windows() for w in (long, short)})
        for w in windows:
            rules.append(
                {"record": _record(w), "expr": slo.error_ratio(w), "labels": {"slo": slo.name}}
            )
        sel = f'{{slo="{slo.name}"}}'
        for severity in ("critical", "warning"):
            parts = []
            for sev, factor, long, short in slo.windows():
                if sev != severity:
                    continue
                limit = f"({factor!r} * {slo.budget!r})"
                parts.append(
                    f"({_record(long)}{sel} > {limit} and {_record(short)}{sel} > {limit})"
                )
            kind = "page" if severity == "critical" else "ticket"
            rules.append(
                {
                    "alert": f"{slo.name}_ErrorBudgetBurn",
                    "expr": " or ".join(parts),
                    "labels": {"severity": severity, "slo": slo.name},
                    "annotations": {"summary": _summary(slo, "{{ $labels.model }}", kind)},
                }
            )
        groups.append({"name": f"{group}_{slo.name}", "rules": rules})
    return {"groups": groups}


def slo_promtool_tests(slos: Sequence[SLO], *, rule_file: str = "slo.yml") -> dict[str, Any]:
    """A ``promtool test rules`` file for :func:`slo_rules` (availability and accuracy SLIs).

    Per SLO, over a steady hour and a half: ``hot`` burns at 1.5 x 14.4 (page and ticket),
    ``warm`` at 4 (ticket only), ``calm`` at 0.5 (nothing), and ``recovered`` burned at
    50 x its budget for the first hour, then had no errors: the long windows still see the
    burn but the short ones have cleared, so it neither pages nor tickets on the 1h/5m and
    6h/30m pairs, and tickets on 1d/2h.
    """
    tests = []
    for slo in slos:
        if slo.sli == "latency":
            continue  # same PromQL shape as availability; the bucket series add nothing
        step = 60
        minutes = 150
        series: list[dict[str, str]] = []
        burns = {"hot": 1.5 * 14.4, "warm": 4.0, "calm": 0.5}
        for who, burn in burns.items():
            series += _slo_series(slo, who, [min(1.0, burn * slo.budget)] * (minutes + 1))
        recovered = [min(1.0, 50 * slo.budget)] * 60 + [0.0] * (minutes + 1 - 60)
        series += _slo_series(slo, "recovered", recovered)
        alert = f"{slo.name}_ErrorBudgetBurn"

        tests.append(
            {
                "name": slo.name,
                "interval": f"{step}s",
                "input_series": series,
                "alert_rule_test": [
                    {
                        "eval_time": f"{minutes}m",
                        "alertname": alert,
                        "exp_alerts": [
                            _expected(slo, "hot", "critical"),
                            _expected(slo, "hot", "warning"),
                            _expected(slo, "warm", "warning"),
                            _expected(slo, "recovered", "warning"),
                        ],
                    }
                ],
            }
        )
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": tests}


def _summary(slo: SLO, model: str, kind: str) -> str:
    return (
        f"{model} burns its {slo.name} error budget "
        f"({slo.sli}, objective {slo.objective:g}) too fast: {kind}"
    )


def _expected(slo: SLO, who: str, severity: str) -> dict[str, Any]:
    kind = "page" if severity == "critical" else "ticket"
    return {
        "exp_labels": {"model": who, "severity": severity, "slo": slo.name},
        "exp_annotations": {"summary": _summary(slo, who, kind)},
    }


def _slo_series(slo: SLO, who: str, ratios: Sequence[float]) -> list[dict[str, str]]:
    """Series whose error ratio in each minute is ``ratios[i]`` (1,000 events a minute)."""
    ident = f'model="{who}",version="1"'
    if slo.sli == "accuracy":
        values = " ".join(repr(1.0 - r) for r in ratios)
        return [{"series": f'inferwatch_model_performance{{metric="accuracy",{ident}}}',
                 "values": values}]  # fmt: skip
    bad, good, total_bad, total_good = [], [], 0, 0
    for r in ratios:
        b = round(r * 1000)
        bad.append(str(total_bad))
        good.append(str(total_good))
        total_bad += b
        total_good += 1000 - b
    return [
        {"series": f'inferwatch_requests_total{{{ident},status="500"}}', "values": " ".join(bad)},
        {"series": f'inferwatch_requests_total{{{ident},status="200"}}', "values": " ".join(good)},
    ]
