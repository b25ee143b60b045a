"""The floor of any exact drift report: read both files, sort every number, count every category.

Any report whose statistics are exact (Wasserstein, KS, quantiles) on every numeric column and
exact category shares on every categorical one must at least read both files, sort each
numeric column and count each categorical column.  This script does only that, as plainly
as pyarrow and numpy allow: each file is read whole (Arrow's multithreaded Parquet reader, no
pandas), each numeric column is converted to float64 and sorted with ``np.sort``, each
other column is counted with ``pyarrow.compute.value_counts``.  Both tables stay in memory
until the end, as a script that loads its data and then works on it would hold them.

It prints one JSON line (the columns it sorted and counted, and its own timing), so
``bench/drift_report.py`` can run it as a whole process beside ``inferwatch report``.

    .venv/bin/python bench/drift_floor.py REFERENCE.parquet CURRENT.parquet
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def _numeric(typ: pa.DataType) -> bool:
    return bool(pa.types.is_integer(typ) or pa.types.is_floating(typ))


def main() -> None:
    t0 = time.perf_counter()
    tables = [pq.ParquetFile(path).read() for path in sys.argv[1:3]]
    read = time.perf_counter() - t0
    sorted_cols = counted = 0
    checksum = 0.0
    for table in tables:
        for name in table.column_names:
            col = table.column(name)
            if _numeric(col.type):
                values = np.sort(col.cast(pa.float64()).to_numpy())  # NaN (null) sorts last
                checksum += float(values[len(values) // 2])  # use the result
                sorted_cols += 1
            else:
                counts = pc.value_counts(col)
                checksum += len(counts)
                counted += 1
    print(
        json.dumps(
            {
                "sorted": sorted_cols,
                "counted": counted,
                "rows": [t.num_rows for t in tables],
                "read_seconds": round(read, 3),
                "seconds": round(time.perf_counter() - t0, 3),
                "checksum": checksum,
            }
        )
    )


if __name__ == "__main__":
    main()
