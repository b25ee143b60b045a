"""The built-in alert engine: one evaluation cycle over 1,000 rules on 100 models.

100,000 series (every rule on every model) are judged each cycle; ``--breach`` of them
(3 % by default) hold their condition, some warning and some critical, and ``--churn`` of the
series change their verdict each cycle (start or stop breaching), so alerts go pending, fire,
resolve and get inhibited as they would in a server.  A cycle is ``AlertEngine.evaluate``
on the cycle's outcomes plus ``Dispatcher.tick`` (grouping by alertname and model, a
notifier that takes everything).  The outcomes are built before the clock starts: producing
them is the rule evaluator's cost, not the engine's; the script prints that cost too, for
all 100,000 outcomes and for the breaching ones only (a series whose condition does not
hold may be left out: the engine reads absent as "does not hold").  Goal: median cycle
< 50 ms.

The second part (``--evaluator``, on by default) times the whole built-in path as the
server runs it (``AlertingService._outcomes`` + ``AlertRunner``): a cycle is
:func:`inferwatch.metrics.registry_samples` reading a real registry of ``--models`` models
(the app's ``Metrics`` with request counters, latency and confidence histograms and the
process collector, plus the live drift and performance collectors; ~9.6k samples kept),
``RuleEvaluator.observe`` and ``outcomes`` judging ``--rules`` rules (~60 distinct
signal/aggregation/window computations shared among them), then ``AlertEngine.evaluate`` +
``Dispatcher.tick``.  The traffic and the drift/performance evaluations that fill the
registry are played between cycles, outside the clock (the evaluations every 60 s of
15 s cycles, as the default intervals are: the cycles after one re-read changed gauges,
which the p90/max show).  The anchor, measured in the same run on the same history: the
same rules judged naively, each computing its own signal (nothing shared) and judging
every series in Python with ``Rule.severity``.

    .venv/bin/python bench/alert_engine.py [--rules 1000] [--models 100] [--cycles 30]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from inferwatch.alerting import AlertEngine, Dispatcher, RuleEvaluator, RuleOutcome, Severity
from inferwatch.alerting import _evaluate as evaluate_internals
from inferwatch.metrics import (
    LiveDriftCollector,
    Metrics,
    PerformanceCollector,
    registry_samples,
)
from inferwatch.observation import Alert
from inferwatch.rules import Rule, load_rules

GOAL_MS = 50.0


class Counting:
    def __init__(self) -> None:
        self.notifications = 0
        self.alerts = 0

    def send(self, receiver: str, group_key: str, alerts: Sequence[Alert]) -> None:
        self.notifications += 1
        self.alerts += len(alerts)


def cycles(
    rules: int, models: int, n: int, breach: float, churn: float, seed: int
) -> list[list[RuleOutcome]]:
    rng = random.Random(seed)
    series = [
        (f"Rule{r:04d}", {"model": f"model{m:03d}"}) for r in range(rules) for m in range(models)
    ]
    total = len(series)
    verdict: list[Severity | None] = [None] * total
    for i in rng.sample(range(total), int(total * breach)):
        verdict[i] = "critical" if rng.random() < 0.3 else "warning"
    annotations = {"summary": "value above threshold"}
    out = []
    for _ in range(n):
        # keep the breaching share steady: as many series stop as start
        flips = int(total * churn)
        on = [i for i in rng.sample(range(total), flips * 4) if verdict[i] is None][:flips]
        off = [i for i in rng.sample(range(total), flips * 40) if verdict[i] is not None][:flips]
        for i in on:
            verdict[i] = "critical" if rng.random() < 0.3 else "warning"
        for i in off:
            verdict[i] = None
        out.append(
            [
                RuleOutcome(rule, labels, verdict[i], 0.9, 60.0, annotations)
                for i, (rule, labels) in enumerate(series)
            ]
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--cycles", type=int, default=30)
    ap.add_argument("--breach", type=float, default=0.03)
    ap.add_argument("--churn", type=float, default=0.001)
    ap.add_argument("--step", type=float, default=15.0, help="seconds between cycles")
    ap.add_argument("--no-evaluator", action="store_true", help="only the engine part")
    args = ap.parse_args()
    engine_bench(args)
    if not args.no_evaluator:
        # nothing of the engine part stays alive: its 100k-outcome fixture would make the
        # collector's full passes in the second part cost what no server pays
        gc.unfreeze()
        gc.collect()
        evaluator_bench(args)


def engine_bench(args: argparse.Namespace) -> None:
    warmup = 5
    plan = cycles(args.rules, args.models, args.cycles + warmup, args.breach, args.churn, 0)
    # the plan is 3.5M objects no server holds: move them out of the collector's way so its
    # full collections time the engine's own garbage, not the benchmark's fixture
    gc.collect()
    gc.freeze()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    engine = AlertEngine(lambda: now)
    notifier = Counting()
    dispatcher = Dispatcher(engine, notifier, group_wait=timedelta(seconds=30))
    times = []
    transitions = 0
    for k, outcomes in enumerate(plan):
        t = time.perf_counter()
        rows = engine.evaluate(outcomes, now)
        dispatcher.tick(now)
        dt = time.perf_counter() - t
        if k >= warmup:
            times.append(dt)
            transitions += len(rows)
        now += timedelta(seconds=args.step)
    # what a rule evaluator pays to hand the engine one cycle (not in the cycle figure)
    last = plan[-1]
    t = time.perf_counter()
    _ = [
        RuleOutcome(o.rule, o.labels, o.severity, o.value, o.for_seconds, o.annotations)
        for o in last
    ]
    build_all = time.perf_counter() - t
    hot = [o for o in last if o.severity is not None]
    del _
    gc.collect()
    t = time.perf_counter()
    _ = [
        RuleOutcome(o.rule, o.labels, o.severity, o.value, o.for_seconds, o.annotations)
        for o in hot
    ]
    build_hot = time.perf_counter() - t
    t = time.perf_counter()
    for _k in range(5):
        engine.evaluate(hot, now)
        dispatcher.tick(now)
    hot_cycle = (time.perf_counter() - t) / 5
    series = args.rules * args.models
    median_ms = statistics.median(times) * 1000
    print(
        f"{args.rules} rules x {args.models} models = {series:,} series a cycle, "
        f"{args.breach:.0%} breaching, {args.churn:.1%} changing verdict a cycle"
    )
    print(
        f"alerts in state {len(engine):,}, transitions {transitions / len(times):.0f}/cycle, "
        f"notifications {notifier.notifications} ({notifier.alerts:,} alerts), "
        f"groups {len(dispatcher.groups()):,}"
    )
    print(
        f"cycle (evaluate + dispatch): median {median_ms:.1f} ms, "
        f"min {min(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms "
        f"over {len(times)} cycles; goal < {GOAL_MS:.0f} ms: {median_ms / GOAL_MS:.2f}x the goal"
    )
    print(
        f"building the outcomes (rule evaluator's side): {build_all * 1000:.1f} ms for all "
        f"{len(last):,}, {build_hot * 1000:.1f} ms for the {len(hot):,} breaching ones; "
        f"a cycle handed only those: {hot_cycle * 1000:.1f} ms"
    )


# ----------------------------------------------------------------------------- evaluator

FEATURES = 10
PERF = ("accuracy", "f1", "roc_auc")
#: rule templates: (signal, aggregation, comparison, warning, critical)
TEMPLATES = [
    ("latency", "p99", ">", 0.5, 1.0), ("latency", "p50", ">", 0.2, 0.5),
    ("latency", "p95", ">", 0.4, 0.8), ("latency", "mean", ">", 0.2, 0.5),
    ("inference_latency", "p99", ">", 0.4, 0.9), ("error_rate", "ratio", ">", 0.01, 0.05),
    ("requests", "rate", "<", 0.5, 0.1), ("confidence_mean", "mean", "<", 0.6, 0.4),
    ("accuracy", "last", "<", 0.92, 0.85), ("accuracy", "avg", "<", 0.92, 0.85),
    ("accuracy_estimated", "last", "<", 0.92, 0.85), ("f1", "min", "<", 0.8, 0.7),
    ("drift", "last", ">", 0.5, 0.8), ("drift", "max", ">", 0.6, 0.9),
    ("confidence_drift", "last", ">", 0.5, 0.8), ("dataset_drift_share", "last", ">", 0.25, 0.5),
    ("missing_share", "last", ">", 0.1, 0.3), ("out_of_range_share", "avg", ">", 0.05, 0.2),
    ("label_coverage", "last", "<", 0.5, 0.2), ("cpu", "rate", ">", 0.8, 0.95),
    ("memory", "last", ">", 2.0**31, 2.0**32),
]  # fmt: skip
WINDOWS = ("1m", "5m", "10m")


def evaluator_rules(n: int) -> list[Rule]:
    """``n`` rules over the templates; windows vary, so ~30 distinct computations."""
    out = []
    for i in range(n):
        signal, agg, cmp, warn, crit = TEMPLATES[i % len(TEMPLATES)]
        window = WINDOWS[(i // len(TEMPLATES)) % len(WINDOWS)]
        out.append(
            {"name": f"Rule{i:04d}", "signal": signal, "aggregation": agg, "window": window,
             "comparison": cmp, "warning": warn, "critical": crit, "for": "1m",
             "summary": "{{ $labels.model }}{{ $labels.instance }} at {{ $value }}"}
        )  # fmt: skip
    return load_rules({"rules": out})


class Fleet:
    """A real server registry of ``models`` models; models 0-2 misbehave (their rules breach).

    The registry is what the server's alerting cycle reads: the app's :class:`Metrics`
    (request counters, latency and confidence histograms, the process collector) plus the
    :class:`LiveDriftCollector` and :class:`PerformanceCollector` the evaluation loop
    publishes to.  :meth:`advance` plays one interval of traffic and evaluations into it
    (outside the timed cycle: that is the server's request path, not the alert engine):
    requests every cycle, the drift and performance evaluations every ``evaluate_every``
    cycles (``drift.evaluation_interval_seconds`` 60 s over ``alerting.evaluation_interval``
    15 s by default).
    """

    def __init__(self, models: int, seed: int = 0, evaluate_every: int = 4) -> None:
        self.evaluate_every = evaluate_every
        self.ticks = 0
        self.rng = np.random.default_rng(seed)
        self.models = [f"model{m:03d}" for m in range(models)]
        self.bad = np.arange(models) < 3
        self.metrics = Metrics()  # with the process collector: the cpu/memory rules read it
        self.drift = LiveDriftCollector()
        self.quality = PerformanceCollector()
        self.metrics.registry.register(self.drift)
        self.metrics.registry.register(self.quality)
        m = self.metrics
        self.children = [
            (
                m.requests.labels(model, "1", "200"),
                m.requests.labels(model, "1", "500"),
                m.request_duration.labels(model, "1"),
                m.inference_duration.labels(model, "1"),
                m.confidence.labels(model, "1"),
            )
            for model in self.models
        ]
        self.start = 0.0

    @property
    def registry(self) -> CollectorRegistry:
        return self.metrics.registry

    def advance(self) -> None:
        rng = self.rng
        n = len(self.models)
        reqs = rng.integers(20, 40, n)
        errs = np.where(self.bad, reqs // 10, rng.binomial(reqs, 0.002))
        lat = rng.exponential(np.where(self.bad, 0.8, 0.05)[:, None], (2, n, 30))
        conf = rng.beta(np.where(self.bad, 2, 8)[:, None], 2, (n, 30))
        self.start += 15.0
        evaluate = self.ticks % self.evaluate_every == 0
        self.ticks += 1
        for i, (ok, err, dur, inf, cnf) in enumerate(self.children):
            ok.inc(int(reqs[i] - errs[i]))
            if errs[i]:
                err.inc(int(errs[i]))
            for x in lat[0, i].tolist():
                dur.observe(x)
            for x in lat[1, i].tolist():
                inf.observe(x)
            for x in conf[i].tolist():
                cnf.observe(x)
            if not evaluate:
                continue
            bad = bool(self.bad[i])
            self.drift.publish(self.models[i], "1", self._report(bad))
            perf = {name: (0.8 if bad else 0.95) + float(rng.uniform(-0.02, 0.02)) for name in PERF}
            self.quality.publish(
                self.models[i],
                "1",
                {
                    "realised": {**perf, "labelled": 900, "label_coverage": 0.9},
                    "estimated": {
                        k: {"value": v, "lower": v - 0.02, "upper": v + 0.02}
                        for k, v in perf.items()
                    },
                    "label_coverage": 0.9,
                },
            )

    def _report(self, bad: bool) -> dict[str, Any]:
        """A live drift report as ``DriftReport.to_dict()`` plus ``window`` shapes it."""
        score = 0.9 if bad else 0.1
        quality = {
            "kind": "numeric", "missing_share": 0.01, "out_of_range_share": 0.01,
            "outlier_share": 0.0, "problems": [],
            "limits": {"missing_share": 0.05, "out_of_range_share": 0.05, "outlier_share": 0.05},
        }  # fmt: skip
        features = [
            {"name": f"f{f}", "test": "psi", "statistic": score, "p_value": None,
             "threshold": 0.2, "drift_detected": bad, "quality": quality}
            for f in range(FEATURES)
        ]  # fmt: skip
        confidence = {"test": "ks", "statistic": 0.1, "p_value": 0.5, "threshold": 0.05,
                      "drift_detected": False}  # fmt: skip
        return {
            "features": features,
            "prediction_drift": {"name": "prediction", "test": "psi", "statistic": 0.05,
                                 "p_value": None, "threshold": 0.2, "drift_detected": False,
                                 "details": {"confidence": confidence}},
            "drift_share": 0.6 if bad else 0.0, "dataset_drift": bad,
            "drift_share_threshold": 0.5, "window": {"rows": 1000, "start": self.start},
        }  # fmt: skip


def naive_outcomes(ev: RuleEvaluator, now: datetime) -> list[RuleOutcome]:
    """The anchor: each rule computes its own signal and judges each series in Python."""
    out = []
    ms = round(now.timestamp() * 1000)
    for rule in ev.rules:
        cyc = evaluate_internals._Cycle(ev, ms)  # nothing shared between rules
        vals = ev.signal(cyc, rule.spec, rule.aggregation, rule.window)
        for labels, value in zip(vals.labels, vals.values.tolist(), strict=True):
            sev: Severity | None = rule.severity(value)  # type: ignore[assignment]
            if sev is not None:
                out.append(RuleOutcome(rule.name, {**labels, **rule.labels}, sev, value,
                                       rule.for_, {}))  # fmt: skip
    return out


def evaluator_bench(args: argparse.Namespace) -> None:
    rules = evaluator_rules(args.rules)
    ev = RuleEvaluator(rules)
    fleet = Fleet(args.models, evaluate_every=max(1, round(60 / args.step)))
    names = ev.sample_names
    instance = {"instance": "localhost:8000"}
    now = datetime(2026, 1, 1, tzinfo=UTC)
    step = timedelta(seconds=args.step)
    warm = int(600 / args.step) + 2  # fill the longest window (10m)
    # as `inferwatch serve` does once start-up is done (models, collectors, modules): the
    # history, the alerts and the cycles' garbage below stay in the collector's way
    gc.collect()
    gc.freeze()
    for _ in range(warm):
        fleet.advance()
        ev.observe(now, registry_samples(fleet.registry, names, labels=instance))
        now += step
    engine = AlertEngine(lambda: now)
    dispatcher = Dispatcher(engine, Counting(), group_wait=timedelta(seconds=30))
    sample_t, observe_t, judge_t, engine_t, total_t, naive_t = [], [], [], [], [], []
    n_samples = n_out = 0
    cpu_t: list[float] = []
    gc_t: list[float] = []
    in_gc = [0.0, 0.0]  # start of the running collection, total this cycle

    def collector(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            in_gc[0] = time.perf_counter()
        else:
            in_gc[1] += time.perf_counter() - in_gc[0]

    gc.callbacks.append(collector)
    for k in range(args.cycles + 3):
        fleet.advance()  # the server's traffic and evaluations: not the alerting cycle
        in_gc[1] = 0.0
        # what AlertingService._outcomes + AlertRunner do each cycle, timed part by part
        c0 = time.process_time()
        t0 = time.perf_counter()
        samples = registry_samples(fleet.registry, names, labels=instance)
        t1 = time.perf_counter()
        ev.observe(now, samples)
        t2 = time.perf_counter()
        outcomes = ev.outcomes(now)
        t3 = time.perf_counter()
        engine.evaluate(outcomes, now)
        dispatcher.tick(now)
        t4 = time.perf_counter()
        c4 = time.process_time()
        if k >= 3:
            gc_t.append(in_gc[1])
            cpu_t.append(c4 - c0)
            sample_t.append(t1 - t0)
            observe_t.append(t2 - t1)
            judge_t.append(t3 - t2)
            engine_t.append(t4 - t3)
            total_t.append(t4 - t0)
            n_samples, n_out = len(samples), len(outcomes)
            if k < 3 + min(args.cycles, 5):
                t5 = time.perf_counter()
                naive = naive_outcomes(ev, now)
                naive_t.append(time.perf_counter() - t5)
                assert len(naive) == len(outcomes), (len(naive), len(outcomes))
        del samples, outcomes
        now += step
    gc.callbacks.remove(collector)
    if os.environ.get("BENCH_CYCLES"):  # one line per cycle, for a closer look
        for row in zip(total_t, sample_t, observe_t, judge_t, engine_t, gc_t, strict=True):
            print(" ".join(f"{x * 1000:6.1f}" for x in row))
    distinct = len(ev.values(now - step))
    series = sum(len(v.keys) for v in ev.values(now - step).values())

    def ms(xs: list[float]) -> float:
        return statistics.median(xs) * 1000

    def p90(xs: list[float]) -> float:
        return statistics.quantiles(xs, n=10)[-1] * 1000

    print()
    print(
        f"built-in path: {args.rules} rules ({distinct} distinct signal computations) over "
        f"{args.models} models, a real registry (Metrics + live drift + performance "
        f"collectors): {n_samples:,} samples a cycle, {series:,} signal series, "
        f"{n_out:,} breaching outcomes a cycle"
    )
    print(
        f"cycle (registry_samples + observe + judge + engine): median {ms(total_t):.1f} ms "
        f"(registry_samples {ms(sample_t):.1f}, observe {ms(observe_t):.1f}, judge "
        f"{ms(judge_t):.1f}, engine {ms(engine_t):.1f}) over {len(total_t)} cycles, p90 "
        f"{p90(total_t):.1f} ms, max {max(total_t) * 1000:.1f} ms, of which garbage collection "
        f"median {ms(gc_t):.1f} ms; goal < "
        f"{GOAL_MS:.0f} ms: {ms(total_t) / GOAL_MS:.2f}x the goal; CPU time of the process "
        f"per cycle: median {ms(cpu_t):.1f} ms, min {min(cpu_t) * 1000:.1f} ms (wall time "
        f"includes waiting for a shared CPU)"
    )
    print(
        f"anchor, naive per-rule judging (same history, nothing shared): median "
        f"{ms(naive_t):.0f} ms vs {ms(judge_t):.1f} ms: {ms(naive_t) / ms(judge_t):.0f}x slower"
    )


if __name__ == "__main__":
    main()
