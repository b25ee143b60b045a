"""Live windows: the writer thread's cost of profiling a drained batch, and of one evaluation.

The prediction log's writer thread calls ``WindowProfiler.add(model, version, records)``
once per drained batch (``store.batch_size``, 500 rows by default), before the batch's
insert.  This measures that call on ``PredictionRecord`` batches built as the server
builds them (JSON-decoded ``inputs`` dicts of plain Python values), split into its two
parts: turning the records into numpy columns, and ``FrameProfile.update``.  Two schemas:
the demo's 8 features (``inferwatch demo``) and the 25-column frame of
``bench/profile_ingest.py``.  Then the cost of ``LiveEvaluator.evaluate`` on a window,
with a cold calibration cache (the first evaluation at a window size) and a warm one.

Single-threaded (BLAS threads pinned to 1); the best of ``--repeat`` runs.

    .venv/bin/python bench/live_windows.py [--batch 500] [--batches 200] [--repeat 3]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from inferwatch.demo import make_customers, to_instances  # noqa: E402
from inferwatch.demo._data import FEATURES  # noqa: E402
from inferwatch.evaluate import LiveEvaluator  # noqa: E402
from inferwatch.observation import PredictionRecord  # noqa: E402
from inferwatch.profile import ReferenceBins, profile  # noqa: E402
from inferwatch.schema import Schema, infer_schema  # noqa: E402
from inferwatch.windows import WindowProfiler, _columns  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from profile_ingest import make_frame  # noqa: E402


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    return value.item() if isinstance(value, np.generic) else value


def rows_of(cols: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    names = list(cols)
    lists = [cols[k].tolist() for k in names]
    rows = zip(*lists, strict=True)
    return [{k: _plain(v) for k, v in zip(names, vals, strict=True)} for vals in rows]


def records(rows: list[dict[str, Any]]) -> list[PredictionRecord]:
    ts = datetime.now(UTC)
    return [PredictionRecord(str(i), "m", "1", ts, r, 0, 0.5, 0.001) for i, r in enumerate(rows)]


def columns_of(frame: Any) -> dict[str, np.ndarray]:
    out = {}
    for k in FEATURES:
        v = frame[k].to_numpy()
        out[k] = v.astype(object) if v.dtype.kind in "OU" else v
    return out


def measure(
    name: str,
    schema: Schema,
    bins: ReferenceBins,
    batches: list[list[PredictionRecord]],
    repeat: int,
) -> None:
    n_rows = sum(len(b) for b in batches)
    best_add = best_cols = float("inf")
    for _ in range(repeat):
        windows = WindowProfiler(bins, schema, window_seconds=3600)
        t0 = time.perf_counter()
        for b in batches:
            windows.add("m", "1", b)
        best_add = min(best_add, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for b in batches:
            _columns(schema, b)
        best_cols = min(best_cols, time.perf_counter() - t0)
    per_batch = best_add / len(batches) * 1e6
    cols = best_cols / len(batches) * 1e6
    print(
        f"{name:28s} {len(schema.features):3d} features  "
        f"{per_batch:8.0f} us/batch of {len(batches[0])}  "
        f"(records->columns {cols:6.0f} us, profile update {per_batch - cols:6.0f} us)  "
        f"{per_batch / len(batches[0]):5.2f} us/row  {n_rows / best_add / 1e6:5.2f} M rows/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    n = args.batch * args.batches

    demo_ref = columns_of(make_customers(5000, rng))
    demo_schema = infer_schema(demo_ref)
    demo_bins = ReferenceBins().fit(demo_ref, demo_schema)
    live = to_instances(make_customers(n, rng, drift=0.3))
    demo_batches = [records(live[i : i + args.batch]) for i in range(0, n, args.batch)]
    measure("demo (8 features)", demo_schema, demo_bins, demo_batches, args.repeat)

    wide_ref = make_frame(100_000, 1, live=False)
    wide_schema = infer_schema(wide_ref)
    wide_bins = ReferenceBins().fit(wide_ref, wide_schema)
    wide_rows = rows_of(make_frame(n, 2, live=True))
    wide_batches = [records(wide_rows[i : i + args.batch]) for i in range(0, n, args.batch)]
    measure("bench frame (25 columns)", wide_schema, wide_bins, wide_batches, args.repeat)

    for label, schema, bins, ref in (
        ("demo", demo_schema, demo_bins, demo_ref),
        ("bench frame", wide_schema, wide_bins, wide_ref),
    ):
        evaluator = LiveEvaluator(profile(ref, bins), schema)
        window = WindowProfiler(bins, schema)
        for b in (demo_batches if label == "demo" else wide_batches)[:20]:
            window.add("m", "1", b)
        _, prof = window.current("m", "1")
        t0 = time.perf_counter()
        evaluator.evaluate(prof)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        evaluator.evaluate(prof)
        warm = time.perf_counter() - t0
        print(
            f"evaluate {label:12s} window of {prof.n_rows} rows: "
            f"{cold * 1e3:6.1f} ms cold (calibration: 200 resamples a feature), "
            f"{warm * 1e3:5.1f} ms warm"
        )


if __name__ == "__main__":
    main()
