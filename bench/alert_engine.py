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

from inferwatch.alerting import AlertEngine, Dispatcher, RuleOutcome, Severity
from inferwatch.observation import Alert

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


if __name__ == "__main__":
    main()
