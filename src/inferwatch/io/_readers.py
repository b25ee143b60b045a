"""Read CSV, Parquet and JSONL files into numpy columns or pandas frames, and write frames.

Why pyarrow: its CSV, JSON and Parquet readers are multithreaded C++, and they read only
the columns asked for (Parquet skips the other column chunks on disk; CSV skips converting
them).  That is most of the drift report's time budget at a million rows.  pyarrow's
submodules and pandas are imported when a function needs them, so that importing this
package stays cheap.

Each Arrow type becomes one numpy dtype (see ``_to_numpy``): integers → int64 (float64 with
NaN when there are nulls), floats and decimals → float64, booleans → bool (object with None
when there are nulls), strings → object arrays of str/None (datetime64[ns] when a sample of
the values is all ISO-8601 dates), timestamps and dates → datetime64[ns] in UTC, lists →
object arrays of lists (embeddings), anything else → object arrays of Python values.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from inferwatch.errors import InputFileError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["read_columns", "read_frame", "write_frame"]

Format = Literal["csv", "parquet", "jsonl"]
PathLike = str | Path

_SUFFIXES: dict[str, Format] = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
    ".ndjson": "jsonl",
    ".ndjson.gz": "jsonl",
}
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")  # what pandas.to_parquet adds for an index
_ISO_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)
_DATE_SAMPLE = 200  # non-null values looked at to decide that a string column holds dates
_MAX_LISTED = 40  # available columns named in an error message

# output column name -> (top-level column, index of the struct child or None)
_Plan = dict[str, tuple[str, int | None]]


def _format_of(path: Path) -> Format:
    name = path.name.lower()
    for suffix, fmt in _SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    raise InputFileError(
        f"{path}: unsupported file type; inferwatch reads {', '.join(_SUFFIXES)} files"
    )


def _listing(names: Iterable[str]) -> str:
    names = list(names)
    shown = ", ".join(names[:_MAX_LISTED])
    more = len(names) - _MAX_LISTED
    return f"{shown}, ... ({more} more)" if more > 0 else shown or "(none)"


# --- reading Arrow tables -------------------------------------------------------------------


def _head(batches: Iterable[pa.RecordBatch], schema: pa.Schema, limit: int) -> pa.Table:
    """The first ``limit`` rows of a stream of record batches, reading no further."""
    taken: list[pa.RecordBatch] = []
    rows = 0
    if limit > 0:
        for batch in batches:
            taken.append(batch)
            rows += batch.num_rows
            if rows >= limit:
                break
    return pa.Table.from_batches(taken, schema=schema).slice(0, limit)


def _read_csv(path: Path, columns: list[str] | None, limit: int | None) -> pa.Table:
    import pyarrow.csv as pacsv

    convert = pacsv.ConvertOptions(include_columns=columns or [], strings_can_be_null=True)
    try:
        if limit is None:
            table = pacsv.read_csv(path, convert_options=convert)
        else:
            with pacsv.open_csv(path, convert_options=convert) as reader:
                table = _head(reader, reader.schema, limit)
    except pa.ArrowKeyError:  # a column in include_columns is not in the header
        with pacsv.open_csv(path) as reader:
            names = reader.schema.names
        missing = [c for c in columns or () if c not in names]
        raise _missing_columns(path, missing, names) from None
    for field in table.schema:
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            raise InputFileError(
                f"{path}: column {field.name!r} is not valid UTF-8 text; "
                "re-encode the file as UTF-8"
            )
    return table


def _read_jsonl(path: Path, limit: int | None) -> pa.Table:
    import pyarrow.json as pajson

    if limit is None:
        return pajson.read_json(path)
    with pajson.open_json(path) as reader:
        return _head(reader, reader.schema, limit)


def _read_parquet(
    path: Path, columns: list[str] | None, limit: int | None, flatten: tuple[str, ...]
) -> pa.Table:
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as pf:
        schema = pf.schema_arrow
        tops = None
        if columns is not None:  # read only the top-level columns the request needs
            plan = _plan(path, schema, flatten)
            _check_present(path, schema, columns, plan)
            tops = list(dict.fromkeys(plan[c][0] for c in columns))
        if limit is None:
            return pf.read(columns=tops)
        projected = pa.schema([schema.field(t) for t in (tops or schema.names)])
        batch_size = min(max(limit, 1), 65_536)
        return _head(pf.iter_batches(batch_size, columns=tops), projected, limit)


def _check_unique(path: Path, names: Sequence[str]) -> None:
    """A column is found by its name, so two columns may not share one."""
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    twice = [n for n, k in counts.items() if k > 1]
    if twice:
        which = ", ".join(repr(n) for n in twice[:_MAX_LISTED])
        raise InputFileError(
            f"{path}: the column name {which} appears more than once in the header; "
            "give every column its own name"
            if len(twice) == 1
            else f"{path}: the column names {which} appear more than once in the header; "
            "give every column its own name"
        )


def _plan(path: Path, schema: pa.Schema, flatten: tuple[str, ...]) -> _Plan:
    """Name every output column, replacing each ``flatten`` struct column by its fields."""
    names = [n for n in schema.names if not _PANDAS_INDEX.fullmatch(n)]
    _check_unique(path, names)
    absent = [f for f in flatten if f not in names]
    if absent:
        raise _missing_columns(path, absent, names, what="to flatten")
    plan: _Plan = {}
    for name in names:
        typ = schema.field(name).type
        outputs: list[tuple[str, tuple[str, int | None]]]
        if name in flatten:
            if not pa.types.is_struct(typ):
                raise InputFileError(
                    f"{path}: cannot flatten column {name!r}: it holds {typ}, not objects"
                )
            outputs = [(typ.field(i).name, (name, i)) for i in range(typ.num_fields)]
        else:
            outputs = [(name, (name, None))]
        for out, source in outputs:
            if out in plan:
                raise InputFileError(
                    f"{path}: column {out!r} appears twice once {', '.join(flatten)} "
                    "is flattened; read it without flattening"
                )
            plan[out] = source
    return plan


def _missing_columns(
    path: Path, missing: Sequence[str], available: Iterable[str], what: str = ""
) -> InputFileError:
    which = ", ".join(repr(m) for m in missing)
    noun = "column" if len(missing) == 1 else "columns"
    what = f" {what}" if what else ""
    return InputFileError(f"{path}: no {noun} {which}{what}; the file has: {_listing(available)}")


def _check_present(path: Path, schema: pa.Schema, columns: Sequence[str], plan: _Plan) -> None:
    missing = [c for c in columns if c not in plan]
    if not missing:
        return
    error = _missing_columns(path, missing, plan)
    nested = [  # a missing column may sit inside a struct that was not flattened
        f.name
        for f in schema
        if f.name in plan
        and pa.types.is_struct(f.type)
        and any(f.type.get_field_index(m) >= 0 for m in missing)
    ]
    if nested:
        error = InputFileError(f"{error} (pass flatten={nested!r} to read nested fields)")
    raise error


def _select(
    path: Path, table: pa.Table, columns: list[str] | None, flatten: tuple[str, ...]
) -> dict[str, pa.ChunkedArray]:
    plan = _plan(path, table.schema, flatten)
    if columns is None:
        columns = list(plan)
    _check_present(path, table.schema, columns, plan)
    children: dict[str, list[pa.ChunkedArray]] = {}
    out: dict[str, pa.ChunkedArray] = {}
    for name in columns:
        top, index = plan[name]
        column = table.column(top)
        if index is not None:
            if top not in children:
                children[top] = column.flatten()  # a null parent makes its fields null
            column = children[top][index]
        out[name] = column
    return out


def _read_arrow(
    path: PathLike,
    columns: Sequence[str] | None,
    limit: int | None,
    flatten: str | Sequence[str],
) -> tuple[Path, dict[str, pa.ChunkedArray]]:
    p = Path(path)
    fmt = _format_of(p)
    if not p.is_file():
        raise InputFileError(f"{p}: no such file" if not p.exists() else f"{p}: not a file")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be a number of rows >= 0, got {limit}")
    wanted = None if columns is None else list(dict.fromkeys(columns))
    flat = (flatten,) if isinstance(flatten, str) else tuple(flatten)
    try:
        if fmt == "parquet":
            table = _read_parquet(p, wanted, limit, flat)
        elif fmt == "csv":
            table = _read_csv(p, None if flat else wanted, limit)
        else:
            table = _read_jsonl(p, limit)
    except (pa.ArrowException, OSError, UnicodeDecodeError, EOFError) as exc:
        raise InputFileError(f"{p}: cannot read it as {fmt.upper()}: {exc}") from None
    return p, _select(p, table, wanted, flat)


# --- Arrow to numpy --------------------------------------------------------------------------


def _objects(values: list[Any]) -> npt.NDArray[np.object_]:
    return np.fromiter(values, dtype=object, count=len(values))


def _strings_as_datetimes(column: pa.ChunkedArray) -> npt.NDArray[Any] | None:
    """datetime64[ns] if a sample of the strings is all ISO-8601 and they all convert."""
    import pyarrow.compute as pc

    sample = pc.drop_null(column.slice(0, 4 * _DATE_SAMPLE)).slice(0, _DATE_SAMPLE).to_pylist()
    if not sample or not all(_ISO_DATETIME.fullmatch(v) for v in sample):
        return None
    for typ in (pa.timestamp("ns"), pa.timestamp("ns", tz="UTC")):  # naive, then with offsets
        try:
            return _timestamps(column.cast(typ))
        except pa.ArrowException:
            continue
    return None  # a later value is no date, or naive and zoned values are mixed: keep strings


def _timestamps(column: pa.ChunkedArray) -> npt.NDArray[Any]:
    # zoned timestamps are stored in UTC; casting away the zone keeps those UTC values
    return np.asarray(column.cast(pa.timestamp("ns")).to_numpy(), dtype="datetime64[ns]")


def _to_numpy(column: pa.ChunkedArray) -> npt.NDArray[Any]:
    types = pa.types
    typ = column.type
    if types.is_dictionary(typ):
        column = column.cast(typ.value_type)
        typ = column.type
    if types.is_boolean(typ):  # with nulls, arrow gives an object array of True/False/None
        return np.asarray(column.to_numpy(), dtype=object if column.null_count else np.bool_)
    if types.is_integer(typ):
        if column.null_count:
            return np.asarray(column.to_numpy(), dtype=np.float64)
        ints: npt.NDArray[Any] = column.to_numpy()
        if typ == pa.uint64() and ints.size and ints.max() > np.iinfo(np.int64).max:
            return ints.astype(np.float64)
        return ints.astype(np.int64, copy=False)
    if types.is_floating(typ) or types.is_decimal(typ):
        return np.asarray(column.cast(pa.float64()).to_numpy(), dtype=np.float64)
    if types.is_timestamp(typ) or types.is_date(typ):
        return _timestamps(column)
    if types.is_string(typ) or types.is_large_string(typ) or types.is_string_view(typ):
        dates = _strings_as_datetimes(column)
        return dates if dates is not None else np.asarray(column.to_numpy(), dtype=object)
    if types.is_null(typ):
        return np.full(len(column), None, dtype=object)
    return _objects(column.to_pylist())  # lists (embeddings), structs (dicts), binary ...


# --- public API ------------------------------------------------------------------------------


def read_columns(
    path: PathLike,
    columns: Sequence[str] | None = None,
    *,
    limit: int | None = None,
    flatten: str | Sequence[str] = (),
) -> dict[str, npt.NDArray[Any]]:
    """Read a CSV, Parquet or JSONL file into numpy arrays keyed by column name.

    ``columns`` picks (and orders) the columns to read; the others are not converted, and a
    Parquet file does not even read them.  ``limit`` reads only the first rows.  ``flatten``
    names struct columns (nested JSON objects) to replace by their fields, one level deep:
    ``flatten="inputs"`` reads a prediction log's ``{"inputs": {"age": 3}}`` as a column
    ``age``.  Raises :class:`~inferwatch.errors.InputFileError` for an unknown file type, a
    missing file, a missing column or content that cannot be parsed.
    """
    p, arrays = _read_arrow(path, columns, limit, flatten)
    out: dict[str, npt.NDArray[Any]] = {}
    for name, column in arrays.items():
        try:
            out[name] = _to_numpy(column)
        except pa.ArrowException as exc:
            raise InputFileError(f"{p}: cannot convert column {name!r}: {exc}") from None
    return out


def read_frame(
    path: PathLike,
    columns: Sequence[str] | None = None,
    *,
    limit: int | None = None,
    flatten: str | Sequence[str] = (),
) -> pd.DataFrame:
    """Read a file as a pandas DataFrame, with the same columns and dtypes as ``read_columns``."""
    import pandas as pd

    return pd.DataFrame(read_columns(path, columns, limit=limit, flatten=flatten))


def write_frame(frame: pd.DataFrame | Mapping[str, npt.NDArray[Any]], path: PathLike) -> Path:
    """Write a DataFrame (or numpy columns) as CSV, Parquet or JSONL, chosen by the extension.

    A ``.gz`` suffix compresses CSV and JSONL.  JSONL floats are written exactly (``repr``),
    NaN and NaT as ``null`` and datetimes as ISO-8601.  Returns the path written.
    """
    import pandas as pd

    p = Path(path)
    fmt = _format_of(p)
    df = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(dict(frame))
    try:
        if fmt == "csv":
            df.to_csv(p, index=False)
        elif fmt == "parquet":
            df.to_parquet(p, index=False)
        else:
            _write_jsonl(df, p)
    except OSError as exc:
        raise InputFileError(f"{p}: cannot write it: {exc}") from None
    return p


def _write_jsonl(df: pd.DataFrame, path: Path) -> None:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as fh:
        for row in df.to_dict(orient="records"):
            clean = {str(k): _json_value(v) for k, v in row.items()}
            fh.write(json.dumps(clean, default=_json_default, ensure_ascii=False) + "\n")


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; pyarrow would refuse it
    return value


def _json_default(value: Any) -> Any:
    import pandas as pd

    if value is pd.NaT:
        return None
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return _json_value(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot write a {type(value).__name__} to JSON")


class ColumnSource:
    """Columns of one file, read one at a time where the format allows it (Parquet).

    The batch report converts and sorts each column and drops its Arrow form before the
    next is read, so peak memory holds one raw column, not the whole table.  CSV and JSONL
    have no column access: their table is read once and handed out column by column.
    """

    def __init__(
        self,
        path: PathLike,
        *,
        flatten: str | Sequence[str] = (),
        flatten_if_present: bool = False,
    ) -> None:
        """``flatten_if_present``: flatten only the ``flatten`` columns this file has (a
        flat reference beside a prediction log); ``flatten`` then lists those applied."""
        self.path = Path(path)
        wanted = (flatten,) if isinstance(flatten, str) else tuple(flatten)
        fmt = _format_of(self.path)
        if not self.path.is_file():
            raise InputFileError(
                f"{self.path}: no such file"
                if not self.path.exists()
                else f"{self.path}: not a file"
            )
        self._table: dict[str, pa.ChunkedArray] | None = None
        self._local = threading.local()
        self.names: tuple[str, ...]
        if fmt == "parquet":
            import pyarrow.parquet as pq

            try:
                pf = pq.ParquetFile(self.path)
                self._schema = pf.schema_arrow
                self._rows = int(pf.metadata.num_rows)
            except (pa.ArrowException, OSError) as exc:
                raise InputFileError(f"{self.path}: cannot read it as PARQUET: {exc}") from None
            top = [n for n in self._schema.names if not _PANDAS_INDEX.fullmatch(n)]
            self.flatten = tuple(f for f in wanted if f in top) if flatten_if_present else wanted
            if not self.flatten:  # column by column, as the engine asks
                _check_unique(self.path, top)
                self.names = tuple(top)
                return
            self._table = _read_arrow(self.path, None, None, self.flatten)[1]
        else:
            self._table = _read_arrow(self.path, None, None, ())[1]  # no column access
            self.flatten = (
                tuple(f for f in wanted if f in self._table) if flatten_if_present else wanted
            )
            if self.flatten:
                self._table = _select(self.path, pa.table(self._table), None, self.flatten)
        self.names = tuple(self._table)
        self._rows = len(next(iter(self._table.values()))) if self._table else 0

    @property
    def n_rows(self) -> int:
        return self._rows

    @property
    def lazy(self) -> bool:
        """Whether a column is read from disk when asked (Parquet), not held in memory."""
        return self._table is None

    def arrow_type(self, name: str) -> pa.DataType:
        """A column's Arrow type, from the file's schema: no data is read."""
        if name not in self.names:
            raise _missing_columns(self.path, [name], list(self.names))
        if self._table is not None:
            return self._table[name].type
        return self._schema.field(name).type

    def read(self, name: str) -> pa.ChunkedArray:
        """One column (raises :class:`InputFileError` naming the available ones)."""
        if name not in self.names:
            raise _missing_columns(self.path, [name], list(self.names))
        if self._table is not None:
            return self._table[name]
        import pyarrow.parquet as pq

        # One open ParquetFile per thread: ``pq.read_table`` would import pyarrow.dataset
        # (and pandas with it, 0.3 s) and re-parse the footer for every column.
        try:
            pf = getattr(self._local, "file", None)
            if pf is None:
                pf = self._local.file = pq.ParquetFile(self.path)
            return pf.read(columns=[name], use_threads=False).column(0)
        except (pa.ArrowException, OSError) as exc:
            raise InputFileError(f"{self.path}: cannot read column {name!r}: {exc}") from None
