"""Live profiling: rows per second per core ingested into a FrameProfile, in 1,000-row batches.

A seeded 25-column frame (20 numeric: normal, lognormal, uniform, integer counts, one
normal with ~5 % NaN; 5 categorical with 3, 5, 10, 20 and 50 categories, the live side of
one of them holding a category unseen in the reference) is generated as numpy columns, as
``inferwatch.io`` would hand them over (float64, int64, object arrays of str).  Reference
bins are fitted on 100k rows, then at least 1M live rows are fed to ``FrameProfile.update``
in batches of 1,000 rows; the best of ``--repeat`` runs is reported.

The process is single-threaded (BLAS threads pinned to 1 below, and the CPU time of the
process is printed beside the wall time), so rows/second is rows/second per core.  Memory:
the profile's traced size (tracemalloc) after 100k and after 1M rows, and the shape of its
``to_dict()``, are identical.

``--whylogs-python PATH`` runs whylogs (in a throwaway virtualenv of its own: it is not a
dependency of inferwatch) on the same live rows and batches, for the anchor ratio.

    .venv/bin/python bench/profile_ingest.py [--rows 1000000] [--repeat 3]
        [--whylogs-python bench/.venv-whylogs/bin/python]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads: np.dot must not spread over cores

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from inferwatch.profile import FrameProfile, fit_bins  # noqa: E402
from inferwatch.schema import infer_schema  # noqa: E402

TARGET_ROWS_PER_S = 1_500_000
CATEGORY_COUNTS = (3, 5, 10, 20, 50)


def make_frame(
    n: int, seed: int, *, live: bool, distinct_strings: bool = False
) -> dict[str, np.ndarray]:
    """The 25 benchmark columns, ``n`` rows, reproducible from ``seed``.

    Categorical values are picked from a label array, so equal values share one str
    object; with ``distinct_strings`` every row gets its own str object, as pyarrow's
    ``to_numpy`` and JSON decoding hand them over (hashing then costs more).
    """
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    for i in range(5):
        cols[f"normal_{i}"] = rng.normal(loc=10.0 * i, scale=1.0 + i, size=n)
    for i in range(5):
        cols[f"lognormal_{i}"] = rng.lognormal(mean=0.2 * i, sigma=0.5 + 0.25 * i, size=n)
    for i in range(4):
        cols[f"uniform_{i}"] = rng.uniform(-i, 1.0 + 10.0 * i, size=n)
    for i in range(5):
        cols[f"count_{i}"] = rng.poisson(lam=(1.0, 3.0, 10.0, 50.0, 500.0)[i], size=n)
    with_nan = rng.normal(size=n)
    with_nan[rng.random(n) < 0.05] = np.nan
    cols["normal_nan"] = with_nan
    for k in CATEGORY_COUNTS:
        labels = np.array([f"c{k}_{j}" for j in range(k)] + [f"c{k}_new"], dtype=object)
        p = np.full(k + 1, 1.0 / k)
        unseen = live and k == 10
        p[-1] = 0.02 if unseen else 0.0  # one live column holds a category unseen in reference
        picked = labels[rng.choice(k + 1, size=n, p=p / p.sum())]
        if distinct_strings:
            # "".join copies: a new str object per row with the same value
            picked = np.array([v.join(("", "")) for v in picked.tolist()], dtype=object)
        cols[f"cat_{k}"] = picked
    return cols


def batches(cols: dict[str, np.ndarray], size: int) -> list[dict[str, np.ndarray]]:
    n = len(next(iter(cols.values())))
    return [{k: v[i : i + size] for k, v in cols.items()} for i in range(0, n, size)]


def ingest(bins: Any, parts: list[dict[str, np.ndarray]]) -> tuple[float, float, FrameProfile]:
    prof = FrameProfile(bins)
    wall, cpu = time.perf_counter(), time.process_time()
    for part in parts:
        prof.update(part)
    return time.perf_counter() - wall, time.process_time() - cpu, prof


def per_kind(prof: FrameProfile, parts: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Seconds spent in each column kind's ``update_many`` over all batches."""
    out: dict[str, float] = {}
    for name, col in prof.columns.items():
        kind = type(col).__name__
        fresh = col.copy()
        start = time.perf_counter()
        for part in parts:
            fresh.update_many(part[name])
        out[kind] = out.get(kind, 0.0) + time.perf_counter() - start
    return out


def shape(obj: Any) -> Any:
    """The structure of a to_dict(): list lengths and key sets, values replaced by types."""
    if isinstance(obj, dict):
        return {k: shape(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return ("list", len(obj))
    return type(obj).__name__


def memory(bins: Any, parts: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    """Memory held (tracemalloc: everything allocated since the profile was made and still
    alive) after 10%, 50% and 100% of the rows, the peak, and the to_dict structure."""
    checkpoints = {len(parts) // 10: 0, len(parts) // 2: 0, len(parts): 0}
    tracemalloc.start()
    prof = FrameProfile(bins)
    for i, part in enumerate(parts, start=1):
        prof.update(part)
        if i in checkpoints:  # recording allocates only the int it records
            checkpoints[i] = tracemalloc.get_traced_memory()[0]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    shapes: dict[int, tuple[Any, int]] = {}
    prof = FrameProfile(bins)  # again, untraced, for the serialised form
    for i, part in enumerate(parts, start=1):
        prof.update(part)
        if i in checkpoints:
            data = prof.to_dict(include_bins=False)
            shapes[i] = (shape(data), len(json.dumps(data)))
    rows = len(parts[0]["normal_0"])
    return {
        "held": {i * rows: held for i, held in checkpoints.items()},
        "shapes": {i * rows: shp for i, shp in shapes.items()},
        "peak": peak,
    }


WHYLOGS_SCRIPT = r"""
import sys, time, numpy as np, pandas as pd, whylogs as why
data = np.load(sys.argv[1], allow_pickle=True)
frame = pd.DataFrame({k: data[k] for k in data.files})
size = int(sys.argv[2])
parts = [frame.iloc[i:i + size] for i in range(0, len(frame), size)]
start = time.perf_counter()
profile = why.log(parts[0]).profile()
for part in parts[1:]:
    profile.track(pandas=part)
elapsed = time.perf_counter() - start
print(len(frame) / elapsed)
"""


def whylogs_rate(python: str, cols: dict[str, np.ndarray], size: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "live.npz"
        np.savez(path, allow_pickle=True, **cols)
        script = Path(tmp) / "wl.py"
        script.write_text(WHYLOGS_SCRIPT)
        out = subprocess.run(
            [python, str(script), str(path), str(size)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "WHYLOGS_NO_ANALYTICS": "True"},
        )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--whylogs-python", default=None)
    parser.add_argument("--whylogs-rows", type=int, default=100_000)
    args = parser.parse_args()

    reference = make_frame(args.reference_rows, seed=1, live=False)
    live = make_frame(args.rows, seed=2, live=True)
    schema = infer_schema(reference)
    start = time.perf_counter()
    bins = fit_bins(reference, schema)
    fit_s = time.perf_counter() - start
    parts = batches(live, args.batch)

    runs = [ingest(bins, parts) for _ in range(args.repeat)]
    wall, cpu, prof = min(runs, key=lambda r: r[0])
    rate = args.rows / wall
    kinds = per_kind(prof, parts)
    mem = memory(bins, parts)
    distinct = batches(make_frame(args.rows, seed=2, live=True, distinct_strings=True), args.batch)
    d_wall = min(ingest(bins, distinct)[0] for _ in range(args.repeat))
    d_kinds = per_kind(prof, distinct)
    del distinct

    print(
        f"frame: {len(schema)} columns ({sum(1 for f in schema if f.kind == 'numeric')} "
        f"numeric, {sum(1 for f in schema if f.kind == 'categorical')} categorical); "
        f"bins fitted on {args.reference_rows:,} rows in {fit_s:.2f} s "
        f"({bins.n_bins} fine bins)"
    )
    print(
        f"ingest: {args.rows:,} rows in batches of {args.batch:,}, best of {args.repeat}: "
        f"{wall:.3f} s wall, {cpu:.3f} s CPU (single-threaded process)"
    )
    print(
        f"rate: {rate:,.0f} rows/s per core; target {TARGET_ROWS_PER_S:,} rows/s: "
        f"ratio {rate / TARGET_ROWS_PER_S:.2f}x"
    )
    per_batch = 1e6 * wall / len(parts)
    print(f"per batch: {per_batch:.0f} us; by column kind (update_many alone, all batches):")
    for kind, secs in kinds.items():
        n = sum(1 for c in prof.columns.values() if type(c).__name__ == kind)
        print(f"  {kind:<20} {n:>2} columns  {1e6 * secs / len(parts) / n:6.1f} us/column/batch")
    d_rate = args.rows / d_wall
    d_cat = d_kinds["CategoricalProfile"] / len(parts) / len(CATEGORY_COUNTS)
    print(
        f"with one str object per row (as pyarrow/JSON decoding give them): "
        f"{d_rate:,.0f} rows/s, ratio {d_rate / TARGET_ROWS_PER_S:.2f}x "
        f"(categorical {1e6 * d_cat:.1f} us/column/batch)"
    )
    tables = 0
    for name in bins.edges_:
        locator = bins._lookup(name)._locator  # private: the table its profiles share
        tables += 0 if locator is None else int(locator.lut.nbytes)
    print(f"bin look-up tables: {tables:,} B per reference, built once, shared by its profiles")
    print("memory held by the profile (tracemalloc, all allocations since it was made):")
    for rows, held in mem["held"].items():
        print(f"  after {rows:>9,} rows: {held:>9,} B; to_dict JSON {mem['shapes'][rows][1]:,} B")
    print(f"  peak while ingesting (batch temporaries included): {mem['peak']:,} B")
    structures = [shp for shp, _ in mem["shapes"].values()]
    print(
        f"  to_dict structure identical at every checkpoint: "
        f"{all(s == structures[0] for s in structures)} "
        "(the JSON grows only by the digits of the counts)"
    )
    if args.whylogs_python:
        wl_rows = {k: v[: args.whylogs_rows] for k, v in live.items()}
        wl = whylogs_rate(args.whylogs_python, wl_rows, args.batch)
        print(
            f"whylogs (same batches, first {args.whylogs_rows:,} rows): {wl:,.0f} rows/s; "
            f"inferwatch/whylogs: {rate / wl:.1f}x"
        )
    else:
        print("whylogs: not measured (pass --whylogs-python to a virtualenv that has it)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
