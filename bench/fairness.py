"""Fairness over 1M rows and 4 groups: inferwatch against fairlearn's MetricFrame, same run.

The same seeded rows (a string group column as pandas or JSON would give it, boolean
labels and predictions whose selection rate differs by group) go to both, ``--runs``
times, alternating, in one process:

- inferwatch: ``GroupCounts().add(groups, y_pred, y_true)`` then ``assess(counts)``: the
  four metrics, each with a 95% bootstrap interval (1,000 resamples) and a verdict;
- fairlearn 0.15: ``MetricFrame(metrics={selection_rate, tpr, fpr})`` plus
  ``demographic_parity_difference`` and ``equalized_odds_difference`` (no intervals).

It prints the median wall and CPU time of each (CPU time is the steadier figure on a
shared machine), the ratios (goal: inferwatch at least 10x faster), and checks that both
give the same values.  ``--boot N`` then times fairlearn's own bootstrap
(``MetricFrame(n_boot=N)``) once, to show what its intervals would cost per resample.

    .venv/bin/python bench/fairness.py --rows 1000000 --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import fairlearn.metrics as fm
import numpy as np

from inferwatch.fairness import GroupCounts, assess

GROUPS = np.array(["female", "male", "non-binary", "undisclosed"], dtype=object)


def make_data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    code = rng.choice(4, size=rows, p=[0.45, 0.45, 0.05, 0.05])
    groups = GROUPS[code]  # one shared str object per value, as pandas gives them
    y_true = rng.random(rows) < 0.4
    y_pred = rng.random(rows) < np.array([0.35, 0.42, 0.38, 0.40])[code] + 0.2 * y_true
    return groups, y_true, y_pred


def ours(groups: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    results = assess(GroupCounts().add(groups, y_pred, y_true), resamples=1000)
    return {r.metric: r.value for r in results}


def fairlearn(groups: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    y, p = y_true.astype(int), y_pred.astype(int)
    frame = fm.MetricFrame(
        metrics={
            "selection_rate": fm.selection_rate,
            "tpr": fm.true_positive_rate,
            "fpr": fm.false_positive_rate,
        },
        y_true=y,
        y_pred=p,
        sensitive_features=groups,
    )
    assert len(frame.by_group) == len(GROUPS)
    return {
        "demographic_parity_difference": fm.demographic_parity_difference(
            y, p, sensitive_features=groups
        ),
        "equalized_odds_difference": fm.equalized_odds_difference(y, p, sensitive_features=groups),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--boot", type=int, default=2, help="fairlearn n_boot to time; 0: skip")
    args = parser.parse_args()
    data = make_data(args.rows)
    times: dict[str, list[float]] = {"inferwatch": [], "fairlearn": []}
    cpu: dict[str, list[float]] = {"inferwatch": [], "fairlearn": []}
    values: dict[str, dict[str, float]] = {}
    for _ in range(args.runs):
        for name, fn in (("inferwatch", ours), ("fairlearn", fairlearn)):
            t0, c0 = time.perf_counter(), time.process_time()
            values[name] = fn(*data)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    print(f"{args.rows:,} rows, 4 groups, {args.runs} runs, medians")
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    for name, ts in times.items():
        spread = ", ".join(f"{t:.3f}" for t in ts)
        print(f"  {name:<10} {med[name]:8.3f} s wall, {med_cpu[name]:8.3f} s CPU  [{spread}]")
    for metric, value in values["fairlearn"].items():
        got = values["inferwatch"][metric]
        same = "same" if abs(got - value) <= 1e-12 else "DIFFERENT"
        print(f"  {metric}: inferwatch {got:.6f}, fairlearn {value:.6f} ({same})")
    ratio = med["fairlearn"] / med["inferwatch"]
    ratio_cpu = med_cpu["fairlearn"] / med_cpu["inferwatch"]
    print(
        f"  inferwatch (4 metrics, 1,000-resample intervals, verdicts) is {ratio:.1f}x "
        f"faster than fairlearn (values only) in wall time, {ratio_cpu:.1f}x in CPU time; "
        f"goal >= 10x: {'met' if min(ratio, ratio_cpu) >= 10 else 'missed'}"
    )
    if args.boot:
        groups, y_true, y_pred = data
        t0 = time.perf_counter()
        fm.MetricFrame(
            metrics={"selection_rate": fm.selection_rate, "tpr": fm.true_positive_rate},
            y_true=y_true.astype(int),
            y_pred=y_pred.astype(int),
            sensitive_features=groups,
            n_boot=args.boot,
            ci_quantiles=[0.025, 0.975],
            random_state=0,
        )
        per = (time.perf_counter() - t0) / args.boot
        print(
            f"  fairlearn's own bootstrap (MetricFrame n_boot={args.boot}): {per:.2f} s per "
            f"resample, about {per * 1000 / 60:.0f} min for 1,000"
        )


if __name__ == "__main__":
    main()
