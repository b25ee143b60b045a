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

The second part (``--evaluator``, on by default) times the whole built-in path: a cycle is
sampling registry-shaped data of ``--models`` models (counters, histograms and gauges as
:func:`inferwatch.metrics.registry_samples` hands them: ~12k samples), ``RuleEvaluator``
observing them and judging ``--rules`` rules (about 30 distinct signal/aggregation/window
computations shared among them), then ``AlertEngine.evaluate`` + ``Dispatcher.tick``.  The
anchor, measured in the same run on the same history: the same rules judged naively, each
computing its own signal (nothing shared) and judging every series in Python with
``Rule.severity``.  It also times ``registry_samples`` on a real ``Metrics`` registry
holding 100 models' request counters and histograms.

    .venv/bin/python bench/alert_engine.py [--rules 1000] [--models 100] [--cycles 30]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

from inferwatch.alerting import AlertEngine, Dispatcher, RuleEvaluator, RuleOutcome, Severity
from inferwatch.alerting import _evaluate as evaluate_internals
from inferwatch.metrics import LATENCY_BUCKETS, Metrics, registry_samples
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
    if not args.no_evaluator:
        del plan
        gc.unfreeze()
        gc.collect()
        evaluator_bench(args)


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
    """Registry-shaped data of ``models`` models; models 0-2 misbehave (their rules breach)."""

    def __init__(self, models: int, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.models = [f"model{m:03d}" for m in range(models)]
        self.bad = np.arange(models) < 3
        self.les = [*(repr(float(b)) for b in LATENCY_BUCKETS), "+Inf"]
        n = models
        self.ok = np.zeros(n)
        self.err = np.zeros(n)
        self.hist = {
            "inferwatch_request_duration_seconds": np.zeros((n, len(self.les))),
            "inferwatch_model_inference_duration_seconds": np.zeros((n, len(self.les))),
        }
        self.hsum = {k: np.zeros(n) for k in self.hist}
        self.conf_les = ["0.2", "0.4", "0.6", "0.8", "0.9", "1.0", "+Inf"]
        self.conf = np.zeros((n, len(self.conf_les)))
        self.conf_sum = np.zeros(n)
        self.cpu = 0.0
        bounds = np.array([float(x) for x in self.les])
        self.bounds = bounds

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        rng = self.rng
        n = len(self.models)
        reqs = rng.integers(20, 40, n).astype(float)
        errs = np.where(self.bad, reqs * 0.1, rng.binomial(reqs.astype(int), 0.002))
        self.ok += reqs - errs
        self.err += errs
        out: list[tuple[str, dict[str, str], float]] = []
        for name, cum in self.hist.items():
            lat = rng.exponential(np.where(self.bad, 0.8, 0.05)[:, None], (n, 30))
            cum += (lat[:, None, :] <= self.bounds[None, :, None]).sum(axis=2)
            self.hsum[name] += lat.sum(axis=1)
        conf = rng.beta(np.where(self.bad, 2, 8)[:, None], 2, (n, 30))
        cb = np.array([float(x) for x in self.conf_les])
        self.conf += (conf[:, None, :] <= cb[None, :, None]).sum(axis=2)
        self.conf_sum += conf.sum(axis=1)
        self.cpu += 0.3 * 15
        for m, model in enumerate(self.models):
            mv = {"model": model, "version": "1"}
            out.append(("inferwatch_requests_total", {**mv, "status": "200"}, float(self.ok[m])))
            out.append(("inferwatch_requests_total", {**mv, "status": "500"}, float(self.err[m])))
            for name, cum in self.hist.items():
                row = cum[m].tolist()
                for le, c in zip(self.les, row, strict=True):
                    out.append((f"{name}_bucket", {**mv, "le": le}, c))
                out.append((f"{name}_count", mv, row[-1]))
                out.append((f"{name}_sum", mv, float(self.hsum[name][m])))
            row = self.conf[m].tolist()
            for le, c in zip(self.conf_les, row, strict=True):
                out.append(("inferwatch_prediction_confidence_bucket", {**mv, "le": le}, c))
            out.append(("inferwatch_prediction_confidence_count", mv, row[-1]))
            out.append(("inferwatch_prediction_confidence_sum", mv, float(self.conf_sum[m])))
            bad = bool(self.bad[m])
            for metric in PERF:
                v = (0.8 if bad else 0.95) + rng.uniform(-0.02, 0.02)
                out.append(("inferwatch_model_performance", {**mv, "metric": metric}, v))
                out.append(("inferwatch_model_performance_estimated", {**mv, "metric": metric}, v))
            for f in range(FEATURES):
                feat = {**mv, "feature": f"f{f}"}
                out.append(("inferwatch_drift_score", feat, 0.9 if bad else 0.1))
                out.append(("inferwatch_feature_missing_share", feat, 0.01))
                out.append(
                    ("inferwatch_feature_quality_share", {**feat, "check": "out_of_range"}, 0.01)
                )
            out.append(("inferwatch_drift_score", {**mv, "feature": "confidence"}, 0.1))
            out.append(("inferwatch_dataset_drift_share", mv, 0.6 if bad else 0.0))
            out.append(("inferwatch_label_coverage_ratio", mv, 0.9))
        inst = {"instance": "localhost:8000"}
        out.append(("process_cpu_seconds_total", inst, self.cpu))
        out.append(("process_resident_memory_bytes", inst, 2.0e8))
        return out


def naive_outcomes(ev: RuleEvaluator, now: datetime) -> list[RuleOutcome]:
    """The anchor: each rule computes its own signal and judges each series in Python."""
    out = []
    ms = round(now.timestamp() * 1000)
    for rule in ev.rules:
        cyc = evaluate_internals._Cycle(ev, ms)  # nothing shared between rules
        vals = ev.signal(cyc, rule.spec, rule.aggregation, rule.window)
        for labels, value in zip(vals.labels, vals.values.tolist(), strict=True):
            sev = rule.severity(value)
            if sev is not None:
                out.append(RuleOutcome(rule.name, {**labels, **rule.labels}, sev, value,
                                       rule.for_, {}))  # fmt: skip
    return out


def evaluator_bench(args: argparse.Namespace) -> None:
    rules = evaluator_rules(args.rules)
    ev = RuleEvaluator(rules)
    fleet = Fleet(args.models)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    step = timedelta(seconds=args.step)
    warm = int(600 / args.step) + 2  # fill the longest window (10m)
    for _ in range(warm):
        ev.observe(now, fleet.samples())
        now += step
    engine = AlertEngine(lambda: now)
    dispatcher = Dispatcher(engine, Counting(), group_wait=timedelta(seconds=30))
    sample_t, observe_t, judge_t, engine_t, total_t, naive_t = [], [], [], [], [], []
    n_samples = n_out = 0
    cpu_t: list[float] = []
    for k in range(args.cycles + 3):
        c0 = time.process_time()
        t0 = time.perf_counter()
        samples = fleet.samples()
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
        now += step
    distinct = len(ev.values(now - step))
    series = sum(len(v.keys) for v in ev.values(now - step).values())

    def ms(xs: list[float]) -> float:
        return statistics.median(xs) * 1000

    print()
    print(
        f"built-in path: {args.rules} rules ({distinct} distinct signal computations) over "
        f"{args.models} models, {n_samples:,} samples a cycle, {series:,} signal series, "
        f"{n_out:,} breaching outcomes a cycle"
    )
    print(
        f"cycle (sample + observe + judge + engine): median {ms(total_t):.1f} ms "
        f"(sample {ms(sample_t):.1f}, observe {ms(observe_t):.1f}, judge {ms(judge_t):.1f}, "
        f"engine {ms(engine_t):.1f}) over {len(total_t)} cycles; goal < {GOAL_MS:.0f} ms: "
        f"{ms(total_t) / GOAL_MS:.2f}x the goal; CPU time of the process per cycle: median "
        f"{ms(cpu_t):.1f} ms, min {min(cpu_t) * 1000:.1f} ms (wall time includes waiting "
        f"for a shared CPU)"
    )
    print(
        f"anchor, naive per-rule judging (same history, nothing shared): median "
        f"{ms(naive_t):.0f} ms vs {ms(judge_t):.1f} ms: {ms(naive_t) / ms(judge_t):.0f}x slower"
    )
    metrics = Metrics(process=False)
    for m in range(args.models):
        mm = metrics.for_model(f"model{m:03d}", "1")
        del mm
        metrics.requests.labels(f"model{m:03d}", "1", "200").inc(10)
        metrics.request_duration.labels(f"model{m:03d}", "1").observe(0.1)
        metrics.inference_duration.labels(f"model{m:03d}", "1").observe(0.1)
        metrics.confidence.labels(f"model{m:03d}", "1").observe(0.9)
    times = []
    for _ in range(10):
        t = time.perf_counter()
        got = registry_samples(metrics.registry, ev.sample_names)
        times.append(time.perf_counter() - t)
    print(
        f"registry_samples on a real Metrics registry of {args.models} models "
        f"({len(got):,} samples kept): median {ms(times):.1f} ms"
    )


if __name__ == "__main__":
    main()
