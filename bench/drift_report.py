"""``inferwatch report`` against its floor, Evidently 0.7 and a naive script, whole processes.

For each size it generates the seeded data (bench/drift_data.py), then runs each tool as a
separate process (imports and file reading included), ``--runs`` times, alternating the
tools so that machine noise hits all alike, and prints the median wall time, the peak
resident memory (``wait4``'s ru_maxrss, the median over runs) and the verdicts compared
with the known drifted columns.  Then the ratios, each against an anchor measured in the
same run:

- ``floor`` (bench/drift_floor.py): read both files, sort every numeric column, count every
  categorical one; what any exact report must at least do.  Goal: inferwatch at most 1.25x
  its time, with a lower peak memory (the floor holds both tables).
- ``evidently``: Evidently 0.7's ``DataDriftPreset`` from bench/.venv-anchors
  (``bash bench/setup_anchors.sh evidently``; skipped with a note when missing).  Goal at
  100k rows: at least 15x faster.
- ``naive``: a plain pandas/scipy script (bench/naive_drift.py).
- start-up: ``inferwatch report --help`` beside ``python -c pass``.  Goal: under 0.25 s.

    .venv/bin/python bench/drift_report.py --rows 100000 --runs 5
    .venv/bin/python bench/drift_report.py --rows 1000000 --runs 3 --tools inferwatch floor
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from drift_data import DRIFTED, write  # noqa: E402

ANCHOR_PY = HERE / ".venv-anchors" / "bin" / "python"
TOOLS = ("inferwatch", "floor", "naive", "evidently")


def run(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB, stdout of one process."""
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) not in (0, 1):
            sys.exit(f"failed: {' '.join(cmd)}")
        out.seek(0)
        return wall, usage.ru_maxrss / 1024, out.read().decode()


def verdicts(tool: str, stdout: str, json_path: Path) -> set[str] | None:
    if tool == "floor":
        return None  # no verdicts: it only reads, sorts and counts
    if tool == "inferwatch":
        return set(json.loads(json_path.read_text())["drifted_features"])
    data = json.loads(stdout.strip().splitlines()[-1])
    return {k for k, v in data.items() if v["drift"]}


def startup(inferwatch: str, runs: int) -> None:
    """``inferwatch report --help`` and a bare interpreter, alternated, whole processes."""
    cmds = {
        "inferwatch report --help": [inferwatch, "report", "--help"],
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            times[name].append(run(cmd)[0])
    print(f"\nstart-up, {runs} runs, medians")
    for name, ts in times.items():
        print(f"  {name:<26} {statistics.median(ts):6.3f} s  (min {min(ts):.3f})")
    med = statistics.median(times["inferwatch report --help"])
    print(f"  start-up {'meets' if med < 0.25 else 'misses'} the 0.25 s goal ({med:.3f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS))
    parser.add_argument("--startup-runs", type=int, default=15, help="0 to skip")
    parser.add_argument("--data", type=Path, default=HERE / "data")
    args = parser.parse_args()
    py = sys.executable
    inferwatch = str(Path(py).with_name("inferwatch"))
    if args.startup_runs:
        startup(inferwatch, args.startup_runs)
    for rows in args.rows:
        ref, cur = write(rows, args.data)
        out_json = Path(tempfile.gettempdir()) / f"inferwatch_bench_{rows}.json"
        commands: dict[str, list[str]] = {
            "inferwatch": [
                inferwatch, "report", "-r", str(ref), "--current", str(cur), "-o", str(out_json)
            ],
            "floor": [py, str(HERE / "drift_floor.py"), str(ref), str(cur)],
            "naive": [py, str(HERE / "naive_drift.py"), str(ref), str(cur)],
            "evidently": [str(ANCHOR_PY), str(HERE / "evidently_drift.py"), str(ref), str(cur)],
        }  # fmt: skip
        tools = [t for t in TOOLS if t in args.tools]
        if "evidently" in tools and not ANCHOR_PY.exists():
            tools.remove("evidently")
            print("  (Evidently not measured: run bash bench/setup_anchors.sh evidently first)")
        results: dict[str, list[tuple[float, float]]] = {t: [] for t in tools}
        found: dict[str, set[str] | None] = {}
        for _ in range(args.runs):
            for tool in tools:
                wall, rss, stdout = run(commands[tool])
                results[tool].append((wall, rss))
                found[tool] = verdicts(tool, stdout, out_json)
        print(f"\n{rows:,} rows x 25 columns, {args.runs} runs, medians")
        med = {t: statistics.median(w for w, _ in r) for t, r in results.items()}
        peak = {t: statistics.median(m for _, m in r) for t, r in results.items()}
        for tool in tools:
            got = found[tool]
            said = (
                "no verdicts (reads, sorts, counts)"
                if got is None
                else "verdicts match the known drift"
                if got == set(DRIFTED)
                else f"verdicts {sorted(got)}"
            )
            spread = ", ".join(f"{w:.2f}" for w, _ in results[tool])
            print(f"  {tool:<11} {med[tool]:7.2f} s  peak {peak[tool]:6.0f} MB  {said}  [{spread}]")
        if "inferwatch" not in med:
            continue
        if "floor" in med:
            ratio = med["inferwatch"] / med["floor"]
            mem = peak["inferwatch"] / peak["floor"]
            # each run's pair ran back to back: their ratio sees the same machine load
            pairs = zip(results["inferwatch"], results["floor"], strict=True)
            paired = statistics.median(a / b for (a, _), (b, _) in pairs)
            print(
                f"  vs floor: {ratio:.2f}x its time (median of the runs' ratios {paired:.2f}x; "
                f"goal <= 1.25x: {'met' if ratio <= 1.25 else 'missed'}), {mem:.2f} of its "
                f"peak memory (goal < 1: {'met' if mem < 1 else 'missed'})"
            )
        for anchor in ("evidently", "naive"):
            if anchor in med:
                print(
                    f"  vs {anchor}: {med[anchor] / med['inferwatch']:.1f}x faster, "
                    f"{peak['inferwatch'] / peak[anchor]:.2f} of its peak memory"
                )


if __name__ == "__main__":
    main()
