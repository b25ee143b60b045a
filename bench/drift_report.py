"""``inferwatch report`` against Evidently 0.7 and a naive numpy/scipy script, whole processes.

For each size it generates the seeded data (bench/drift_data.py), then runs each tool as a
separate process (imports and file reading included), ``--runs`` times, alternating
tools so that machine noise hits all alike, and prints the median wall time, the peak
resident memory (``wait4``'s ru_maxrss) and the verdicts compared with the known drifted
columns.  Evidently runs from bench/.venv-anchors (``bash bench/setup_anchors.sh``); it
is skipped with a note when that is missing.

    .venv/bin/python bench/drift_report.py --rows 100000 1000000 --runs 3
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


def verdicts(tool: str, stdout: str, json_path: Path) -> set[str]:
    if tool == "inferwatch":
        return set(json.loads(json_path.read_text())["drifted_features"])
    data = json.loads(stdout.strip().splitlines()[-1])
    return {k for k, v in data.items() if v["drift"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, default=HERE / "data")
    args = parser.parse_args()
    py = sys.executable
    inferwatch = str(Path(py).with_name("inferwatch"))
    for rows in args.rows:
        ref, cur = write(rows, args.data)
        out_json = Path(tempfile.gettempdir()) / f"inferwatch_bench_{rows}.json"
        tools: dict[str, list[str]] = {
            "inferwatch": [
                inferwatch,
                "report",
                "-r",
                str(ref),
                "--current",
                str(cur),
                "-o",
                str(out_json),
            ],
            "naive": [py, str(HERE / "naive_drift.py"), str(ref), str(cur)],
        }
        if ANCHOR_PY.exists():
            tools["evidently"] = [
                str(ANCHOR_PY),
                str(HERE / "evidently_drift.py"),
                str(ref),
                str(cur),
            ]
        results: dict[str, list[tuple[float, float]]] = {t: [] for t in tools}
        found: dict[str, set[str]] = {}
        for _ in range(args.runs):
            for tool, cmd in tools.items():
                wall, rss, stdout = run(cmd)
                results[tool].append((wall, rss))
                found[tool] = verdicts(tool, stdout, out_json)
        print(f"\n{rows:,} rows x 25 columns, {args.runs} runs, medians")
        med = {t: statistics.median(w for w, _ in r) for t, r in results.items()}
        peak = {t: max(m for _, m in r) for t, r in results.items()}
        for tool in tools:
            right = found[tool] == set(DRIFTED)
            print(
                f"  {tool:<11} {med[tool]:7.2f} s  peak {peak[tool]:7.0f} MB  "
                f"verdicts {'match the known drift' if right else sorted(found[tool])}"
            )
        for anchor in ("evidently", "naive"):
            if anchor in med:
                print(
                    f"  speed-up vs {anchor}: {med[anchor] / med['inferwatch']:.1f}x   "
                    f"memory: {peak['inferwatch'] / peak[anchor]:.2f} of {anchor}'s peak"
                )
        if "evidently" not in tools:
            print("  (Evidently not measured: run bash bench/setup_anchors.sh first)")


if __name__ == "__main__":
    main()
