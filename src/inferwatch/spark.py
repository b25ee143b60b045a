"""Profiles of data larger than one machine: a Spark DataFrame profiled as a map-reduce.

Profiles are mergeable (:mod:`inferwatch.profile`): on bins fixed once by a reference,
the profile of A and B together is the profile of A plus the profile of B, exactly
(counts exactly; means and variances to rounding).  So a DataFrame of any size is
profiled where it lies:

1. **bins**: for a reference, its bins are fitted on the driver from the rows, or from a
   seeded sample of ``max_bin_rows`` of them when there are more (the quantile edges of
   a large sample; the categories are then those of the sample, a category the sample
   missed is counted as unseen); the distinct values of each numeric feature are
   counted by Spark, exactly.  A current DataFrame takes its reference's bins;
2. **map**: each partition profiles its Arrow record batches on those bins
   (``mapInArrow``), converting columns as :func:`inferwatch.io.read_columns` converts a
   file's, and sends back one serialised profile (a few kB, whatever its rows);
3. **reduce**: the driver merges the partitions' profiles (:meth:`FrameProfile.merge`).

The result is the :class:`~inferwatch.io.SavedProfile` that ``inferwatch profile`` writes
for a file, and ``inferwatch report --reference-profile R --current-profile C`` judges two
of them.  With at most ``max_bin_rows`` reference rows, the profiles -- and so the
report's verdicts and statistics -- equal the single-process ones on the same data
(``tests/test_spark.py``).

Adapter layer; ``pyspark`` is imported only by the functions that need it (the ``spark``
extra: ``pip install 'inferwatch[spark]'``, and a Java 17+ runtime).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from inferwatch.io._profile_file import SavedProfile, n_unique_finite
from inferwatch.profile import FrameProfile, ReferenceBins, fit_bins
from inferwatch.schema import Schema, infer_schema

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

__all__ = ["DEFAULT_MAX_BIN_ROWS", "fit_dataframe_bins", "profile_dataframe"]

#: reference rows the bins are fitted on, at most (a seeded sample of a larger DataFrame)
DEFAULT_MAX_BIN_ROWS: Final = 1_000_000
_PROFILE_COLUMN: Final = "profile"
_TEXT_KINDS: Final = frozenset({"categorical", "text"})


def _to_numpy(column: pa.ChunkedArray | pa.Array, kind: str | None) -> npt.NDArray[Any]:
    """A column as ``read_columns`` converts it; a categorical or text feature's strings
    stay strings (``read_columns`` decides "dates" on a sample of the file, which a
    partition would decide on its own sample: the schema has decided already)."""
    import pyarrow as pa

    from inferwatch.io._readers import _to_numpy as arrow_to_numpy

    chunked = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
    typ = chunked.type
    if kind in _TEXT_KINDS and (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        return np.asarray(chunked.to_numpy(), dtype=object)
    return arrow_to_numpy(chunked)


def _collect_columns(df: DataFrame, names: Sequence[str]) -> dict[str, npt.NDArray[Any]]:
    """The DataFrame's columns on the driver, converted as a file's are."""
    selected = df.select(*names)
    if hasattr(selected, "toArrow"):  # pyspark >= 4.0
        table = selected.toArrow()
    else:  # pragma: no cover - pyspark 3.5
        import pyarrow as pa

        table = pa.Table.from_pandas(selected.toPandas(), preserve_index=False)
    return {name: _to_numpy(table.column(name), None) for name in names}


def _n_unique(df: DataFrame, names: Sequence[str]) -> dict[str, int]:
    """Distinct finite values of each numeric column, counted by Spark (one job)."""
    if not names:
        return {}
    from pyspark.sql import functions as F

    def finite(name: str) -> Any:
        col = F.col(name).cast("double")
        ok = col.isNotNull() & ~F.isnan(col) & (F.abs(col) != F.lit(float("inf")))
        return F.count_distinct(F.when(ok, col)).alias(name)

    row = df.agg(*(finite(n) for n in names)).collect()[0]
    return {name: int(row[name]) for name in names}


def fit_dataframe_bins(
    df: DataFrame,
    schema: Schema | None = None,
    *,
    target: str | None = None,
    prediction: str | None = None,
    max_bin_rows: int = DEFAULT_MAX_BIN_ROWS,
    seed: int = 0,
) -> tuple[ReferenceBins, dict[str, int]]:
    """The reference bins of ``df`` and its numeric features' distinct-value counts.

    The bins are fitted on the driver from all rows when there are at most
    ``max_bin_rows``, else from a seeded sample of about that many; ``schema`` (default:
    inferred from those rows, ``target`` and ``prediction`` left out of the features).
    """
    if max_bin_rows < 1:
        raise ValueError(f"max_bin_rows must be >= 1, got {max_bin_rows}")
    n = df.count()
    sample = df if n <= max_bin_rows else df.sample(fraction=min(1.0, 1.1 * max_bin_rows / n),
                                                    seed=seed).limit(max_bin_rows)  # fmt: skip
    if schema is None:
        columns = _collect_columns(sample, df.columns)
        schema = infer_schema(columns, target=target, prediction=prediction)
    else:
        present = [f.name for f in schema.features if f.name in df.columns]
        columns = _collect_columns(sample, present)
    bins = fit_bins(columns, schema)
    numeric = [f.name for f in schema.features if f.kind == "numeric" and f.name in df.columns]
    if n <= max_bin_rows:  # every row is on the driver already: count there, no Spark job
        return bins, {name: n_unique_finite(columns[name]) for name in numeric}
    return bins, _n_unique(df, numeric)


def _partition_profiler(
    bins_json: str, kinds: dict[str, str]
) -> Any:  # a function Spark pickles to the executors
    def profile_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        bins = ReferenceBins.from_dict(json.loads(bins_json))
        prof = FrameProfile(bins)
        for batch in batches:
            if batch.num_rows == 0:
                continue
            columns = {
                name: _to_numpy(batch.column(i), kinds.get(name))
                for i, name in enumerate(batch.schema.names)
            }
            prof.update(columns)
        payload = json.dumps(prof.to_dict(include_bins=False), separators=(",", ":"))
        yield pa.RecordBatch.from_arrays([pa.array([payload])], names=[_PROFILE_COLUMN])

    return profile_partition


def profile_dataframe(
    df: DataFrame,
    *,
    reference: SavedProfile | None = None,
    schema: Schema | None = None,
    target: str | None = None,
    prediction: str | None = None,
    max_bin_rows: int = DEFAULT_MAX_BIN_ROWS,
    seed: int = 0,
    source: str = "",
) -> SavedProfile:
    """Profile a Spark DataFrame: per partition with ``mapInArrow``, merged on the driver.

    With a ``reference`` profile, ``df`` is profiled on its bins (a current profile);
    without, ``df`` is a reference and its bins are fitted first
    (:func:`fit_dataframe_bins`).  Save the result with :func:`inferwatch.io.save_profile`.
    """
    if reference is not None:
        bins, n_unique = reference.profile.bins, dict[str, int]()
    else:
        bins, n_unique = fit_dataframe_bins(
            df, schema, target=target, prediction=prediction, max_bin_rows=max_bin_rows,
            seed=seed,
        )  # fmt: skip
    kinds: dict[str, str] = {f.name: f.kind for f in bins.schema_.features}
    # only the profiled features travel; a feature the DataFrame lacks is counted missing
    names = [
        f.name for f in bins.schema_.features if f.kind != "embedding" and f.name in df.columns
    ]
    if not names:  # nothing to read: count the rows, every feature missing
        merged = FrameProfile(bins)
        merged.update({"_rows": np.zeros(df.count())})
        return SavedProfile(merged, n_unique, source)
    profiler = _partition_profiler(json.dumps(bins.to_dict()), kinds)
    parts = df.select(*names).mapInArrow(profiler, f"{_PROFILE_COLUMN} string").collect()
    merged = FrameProfile(bins)
    for row in parts:
        merged += FrameProfile.from_dict(json.loads(row[_PROFILE_COLUMN]), bins)
    return SavedProfile(merged, n_unique, source)
