"""Seeded benchmark data for the drift report: reference and current frames with known drift.

25 columns: 20 numeric (normal, lognormal, uniform, integer counts; ``num_05`` has ~10%
missing values) and 5 categorical (3 to 50 categories; ``cat_4`` gains a category that
the reference never shows).  The current frame drifts in exactly the columns listed in
:data:`DRIFTED`; every other column is drawn from the same distribution as the reference.

    .venv/bin/python bench/drift_data.py --rows 100000 --out bench/data
writes ``reference_100000.parquet`` and ``current_100000.parquet`` (and prints the drifted
columns).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

DRIFTED = ("num_00", "num_07", "num_12", "num_16", "cat_1", "cat_4")
N_CATS = (3, 5, 10, 20, 50)


def numeric(i: int, n: int, rng: np.random.Generator, drift: bool) -> np.ndarray:
    family = i % 4
    if family == 0:  # normal: location shift
        return rng.normal(1.0 * drift * 0.5, 1.0, n)
    if family == 1:  # lognormal: scale shift
        return rng.lognormal(0.0 + 0.3 * drift, 0.5, n)
    if family == 2:  # uniform: widened range
        return rng.uniform(0.0, 1.0 + 0.4 * drift, n)
    return rng.poisson(3.0 + 1.0 * drift, n).astype(np.float64)  # integer counts


def categorical(j: int, n: int, rng: np.random.Generator, drift: bool, current: bool) -> np.ndarray:
    k = N_CATS[j]
    labels = np.array([f"c{j}_{v:02d}" for v in range(k)], dtype=object)
    weights = np.linspace(1.0, 2.0, k)
    if drift:
        weights = weights[::-1] ** 2  # mass moves to the other end
    p = weights / weights.sum()
    out = labels[rng.choice(k, n, p=p)]
    if current and j == 4:  # a category the reference never saw, in 5% of rows
        out[rng.random(n) < 0.05] = "c4_new"
    return out


def make_frame(n: int, seed: int, current: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    for i in range(20):
        name = f"num_{i:02d}"
        values = numeric(i, n, rng, current and name in DRIFTED)
        if i == 5:
            values[rng.random(n) < 0.10] = np.nan
        cols[name] = values
    for j in range(5):
        name = f"cat_{j}"
        cols[name] = categorical(j, n, rng, current and name in DRIFTED, current)
    return pd.DataFrame(cols)


def write(rows: int, out: Path, seed: int = 2026) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    ref = out / f"reference_{rows}.parquet"
    cur = out / f"current_{rows}.parquet"
    if not ref.exists():
        make_frame(rows, seed, current=False).to_parquet(ref, index=False)
    if not cur.exists():
        make_frame(rows, seed + 1, current=True).to_parquet(cur, index=False)
    return ref, cur


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path("bench/data"))
    args = parser.parse_args()
    ref, cur = write(args.rows, args.out)
    print(f"reference {ref}\ncurrent   {cur}\ndrifted   {', '.join(DRIFTED)}")


if __name__ == "__main__":
    main()
