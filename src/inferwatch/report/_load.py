"""Read a reference and a current file into the engine's column inputs, fast.

pyarrow does the heavy lifting: only the schema's columns are read, category counts
come from ``pyarrow.compute.value_counts`` (C++, about 25x faster than ``np.unique`` on
a million Python strings), numbers are cast to float64 once, and duplicate-row keys use
dictionary codes.  When no schema file is given, the schema is inferred from the
reference's Arrow types with the same rules as :func:`inferwatch.schema.infer_schema`.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from inferwatch._typing import Task
from inferwatch.errors import InputFileError, SchemaError
from inferwatch.evaluate import CategoricalColumn, ColumnInput, SortedColumn
from inferwatch.io import ColumnSource
from inferwatch.quality import RowHasher, split_numeric
from inferwatch.schema import Feature, InferenceRules, Schema, Target
from inferwatch.stats import Counts

__all__ = ["LazyColumns", "LoadedData", "arrow_schema", "load_pair"]


@dataclass(frozen=True, slots=True)
class LoadedData:
    """Both sides, ready for :func:`inferwatch.evaluate.evaluate_batch` (read lazily)."""

    schema: Schema
    reference: LazyColumns
    current: LazyColumns
    n_reference: int
    n_current: int
    extra_columns: tuple[str, ...]


def _buffer(arr: pa.Array, dtype: type[np.generic]) -> npt.NDArray[Any]:
    """A null-free fixed-width Arrow array as numpy, straight from its data buffer.

    ``to_numpy`` would do, but imports pandas (0.2 s) on the way; the report avoids it.
    """
    if len(arr) == 0:
        return np.empty(0, dtype=dtype)
    data = np.frombuffer(arr.buffers()[1], dtype=dtype, count=arr.offset + len(arr))
    return data[arr.offset :]


def _with_nulls(arr: pa.Array, dtype: type[np.generic], null: float) -> npt.NDArray[Any]:
    """Values of a fixed-width array with nulls set to ``null``, via the validity bitmap.

    (``fill_null`` with a Python value would build an Arrow scalar, and pyarrow imports
    pandas to convert Python objects.)
    """
    data = _buffer(arr, dtype)
    if not arr.null_count:
        return data
    bits = np.frombuffer(arr.buffers()[0], dtype=np.uint8)
    valid = np.unpackbits(bits, bitorder="little", count=arr.offset + len(arr))[arr.offset :]
    out = data.copy()
    out[valid == 0] = null
    return out


def _f64(col: pa.ChunkedArray) -> npt.NDArray[np.float64]:
    return _with_nulls(col.cast(pa.float64()).combine_chunks(), np.float64, np.nan)


def _is_numeric(typ: pa.DataType) -> bool:
    t = pa.types
    return bool(t.is_integer(typ) or t.is_floating(typ) or t.is_decimal(typ))


def _plain(col: pa.ChunkedArray) -> pa.ChunkedArray:
    return col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col


def _finite(value: Any) -> float | None:
    """A range bound for the schema: +/-inf and NaN (a column holding infinities) set none."""
    if value is None:
        return None
    bound = float(value)
    return bound if math.isfinite(bound) else None


def _typed_feature(name: str, typ: pa.DataType) -> Feature | None:
    """A feature whose kind follows from its Arrow type alone (numbers, booleans, times).

    The report needs a column's kind, not its range (quality is judged on the reference's
    values when the column is evaluated), so these columns of a Parquet reference are not
    read twice; ``nullable`` is left open (True) and the range unset.  Strings need their
    distinct count (categorical or text) and are read.
    """
    t = pa.types
    if t.is_boolean(typ):
        return Feature(name, "boolean", nullable=True)
    if _is_numeric(typ):
        return Feature(name, "numeric", nullable=True, integer=t.is_integer(typ))
    if t.is_timestamp(typ) or t.is_date(typ):
        return Feature(name, "datetime", nullable=True)
    return None


def _is_string(typ: pa.DataType) -> bool:
    t = pa.types
    return bool(t.is_string(typ) or t.is_large_string(typ) or t.is_string_view(typ))


def _string_feature(name: str, counts: Counts, rules: InferenceRules) -> Feature:
    """:func:`_arrow_feature`'s rule for strings, on the column's category counts."""
    present = int(counts.counts.sum())
    distinct = len(counts.categories)
    nullable = counts.missing > 0
    if distinct <= rules.max_categories or distinct <= rules.max_category_ratio * present:
        cats = tuple(sorted(counts.categories))
        return Feature(name, "categorical", nullable=nullable, categories=cats)
    return Feature(name, "text", nullable=nullable)


def _arrow_feature(name: str, col: pa.ChunkedArray, rules: InferenceRules) -> Feature | None:
    col = _plain(col)
    typ, t = col.type, pa.types
    nullable = col.null_count > 0
    if t.is_boolean(typ):
        return Feature(name, "boolean", nullable=nullable)
    if _is_numeric(typ):
        mm = pc.min_max(col)
        return Feature(
            name, "numeric", nullable=nullable, integer=t.is_integer(typ),
            min=_finite(mm["min"].as_py()), max=_finite(mm["max"].as_py()),
        )  # fmt: skip
    if t.is_timestamp(typ) or t.is_date(typ):
        return Feature(name, "datetime", nullable=nullable)
    if t.is_string(typ) or t.is_large_string(typ) or t.is_string_view(typ):
        present = len(col) - col.null_count
        distinct = pc.count_distinct(col).as_py()
        if distinct <= rules.max_categories or distinct <= rules.max_category_ratio * present:
            cats = sorted(v for v in pc.unique(pc.drop_null(col)).to_pylist())
            return Feature(name, "categorical", nullable=nullable, categories=tuple(cats))
        return Feature(name, "text", nullable=nullable)
    if t.is_null(typ):
        return None  # an all-empty column: nothing to learn from
    return None  # lists, structs, binary: not features of a tabular report


def arrow_schema(
    columns: dict[str, pa.ChunkedArray],
    *,
    target: str | None = None,
    prediction: str | None = None,
    exclude: Sequence[str] = (),
    rules: InferenceRules = InferenceRules(),
    task: Task | None = None,
) -> Schema:
    """Infer a schema from Arrow columns (types, distinct counts, ranges).

    ``task`` forces the target's and prediction's task; else the prediction follows the
    target's, as in :func:`inferwatch.schema.infer_schema`."""
    skip = {target, prediction, *exclude}
    feats = []
    for name, col in columns.items():
        if name in skip:
            continue
        f = _arrow_feature(name, col, rules)
        if f is not None:
            feats.append(f)
    if not feats:
        raise SchemaError("the reference has no usable feature columns")

    def target_of(name: str | None, forced: Task | None) -> Target | None:
        if name is None:
            return None
        if name not in columns:
            raise SchemaError(f"column {name!r} is not in the reference")
        return _target(name, columns[name], rules, forced)

    tgt = target_of(target, task)
    return Schema(tuple(feats), tgt, target_of(prediction, task or (tgt.task if tgt else None)))


def _task(col: pa.ChunkedArray, rules: InferenceRules) -> Task:
    """:func:`inferwatch.schema.infer_task`'s rule on an Arrow column (same verdicts)."""
    typ, t = col.type, pa.types
    present = len(col) - col.null_count
    if t.is_integer(typ):
        return rules.integer_task(pc.count_distinct(col).as_py(), present)
    if t.is_floating(typ):
        finite = pc.drop_null(col)
        integral = present > 0 and pc.all(pc.equal(pc.floor(finite), finite)).as_py()
        if col.null_count and integral:  # an integer column with gaps (see infer_task)
            return rules.integer_task(pc.count_distinct(finite).as_py(), present)
        return "regression"
    if t.is_decimal(typ):
        return "regression"
    return "classification"


def _target(
    name: str, col: pa.ChunkedArray, rules: InferenceRules, task: Task | None = None
) -> Target:
    col = _plain(col)
    if (task or _task(col, rules)) == "regression":
        return Target(name, "regression")
    labels = sorted(str(v) for v in pc.unique(pc.drop_null(col)).to_pylist())
    return Target(name, "classification", tuple(labels))


def _sorted_split(values: npt.NDArray[np.float64]) -> SortedColumn:
    """:func:`~inferwatch.quality.split_numeric` with one sort and no masks: numpy sorts
    -inf first and +inf then NaN last, so the finite values are a slice of the sorted
    array, found by binary search (five passes over the column fewer)."""
    s = np.sort(values)
    end = int(np.searchsorted(s, np.nan, side="left"))  # NaN sorts (and searches) last
    lo = int(np.searchsorted(s[:end], -np.inf, side="right"))
    hi = int(np.searchsorted(s[:end], np.inf, side="left"))
    return SortedColumn(s[lo:hi], len(s) - end, lo + (end - hi))


def _numeric_input(
    col: pa.ChunkedArray, f64: npt.NDArray[np.float64] | None = None
) -> SortedColumn:
    """``f64``: the column as float64 when the caller has it already (the row hash)."""
    col = _plain(col)
    if _is_numeric(col.type) or pa.types.is_boolean(col.type):
        return _sorted_split(_f64(col) if f64 is None else f64)
    if pa.types.is_null(col.type):
        return SortedColumn(np.empty(0), len(col), 0)
    # strings where numbers were expected: parse what parses, count the rest as violations
    import pandas as pd

    raw = pd.Series(col.to_numpy(zero_copy_only=False), dtype=object)
    parsed = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    violations = int((~raw.isna() & np.isnan(parsed)).sum())
    finite, missing, non_finite = split_numeric(parsed)
    return SortedColumn(finite, missing - violations, non_finite, violations)


def _categorical_input(col: pa.ChunkedArray) -> CategoricalColumn:
    col = _plain(col)
    labels = {"true": "True", "false": "False"} if pa.types.is_boolean(col.type) else {}
    if pa.types.is_boolean(col.type):
        col = col.cast(pa.string())  # "true"/"false", renamed below as counts_from_values does
    elif pa.types.is_floating(col.type):
        col = pc.if_else(pc.equal(pc.floor(col), col), col.cast(pa.int64(), safe=False), col)
        col = col.cast(pa.string())
    elif not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        col = col.cast(pa.string())
    vc = pc.value_counts(col)
    values = vc.field("values").to_pylist()
    counts = _buffer(vc.field("counts"), np.int64)
    keep = [i for i, v in enumerate(values) if v is not None]
    cats = tuple(labels.get(str(values[i]), str(values[i])) for i in keep)
    return CategoricalColumn(Counts(cats, np.asarray(counts[keep], dtype=np.int64), col.null_count))


def _convert(
    col: pa.ChunkedArray, kind: str, key: npt.NDArray[Any] | None = None
) -> ColumnInput | None:
    if kind == "numeric":
        # a numeric column's row key is its float64 values: convert once, not twice
        return _numeric_input(col, key if key is not None and key.dtype == np.float64 else None)
    if kind in ("categorical", "boolean"):
        return _categorical_input(col)
    return None  # text, datetime, embedding: no drift input yet


def _row_key(col: pa.ChunkedArray) -> npt.NDArray[Any]:
    """What the duplicate-row hash reads of a column: float bits or dictionary codes."""
    col = _plain(col)
    if _is_numeric(col.type) or pa.types.is_boolean(col.type):
        return _f64(col)
    if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
        ints = col.cast(pa.timestamp("us")).cast(pa.int64()).combine_chunks()
        return _with_nulls(ints, np.int64, -(2**63))
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        col = col.cast(pa.string())
    enc = pc.dictionary_encode(col)
    codes = pa.chunked_array([c.indices for c in enc.chunks], type=pa.int32())
    return _with_nulls(codes.combine_chunks(), np.int32, -1).astype(np.int64)


def _newest(col: pa.ChunkedArray) -> float | None:
    col = _plain(col)
    if not (pa.types.is_timestamp(col.type) or pa.types.is_date(col.type)):
        return None
    value = pc.max(col.cast(pa.timestamp("us", tz="UTC"))).as_py()
    return None if value is None else float(value.timestamp())


def _role_kind(spec: Target) -> str:
    return "categorical" if spec.task == "classification" else "numeric"


class LazyColumns(Mapping[str, ColumnInput]):
    """The engine's inputs for one file, read and converted when the engine asks.

    Nothing is cached: a column's Arrow data and its converted form live only while the
    worker evaluating it holds them.  For the current file each read also feeds the
    duplicate-row hash and the newest timestamp, so no second pass is needed.
    """

    def __init__(
        self,
        source: ColumnSource,
        kinds: Mapping[str, str],
        *,
        hasher: RowHasher | None = None,
        positions: Mapping[str, int] | None = None,
        counted: Mapping[str, CategoricalColumn] | None = None,
    ) -> None:
        """``counted``: category counts already taken while inferring the schema (a few
        hundred bytes each), handed out instead of reading those columns again."""
        self.source = source
        self.counted = dict(counted or {})
        self.kinds = {n: k for n, k in kinds.items() if n in source.names}
        self.hasher = hasher
        self.positions = positions or {}
        self.newest: float | None = None
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> ColumnInput:
        if name not in self.kinds:
            raise KeyError(name)
        if name in self.counted and self.hasher is None:
            return self.counted[name]
        col = self.source.read(name)
        kind = self.kinds[name]
        key = None
        if self.hasher is not None and name in self.positions:
            key = _row_key(col)
            self.hasher.update(key, self.positions[name])
        if kind == "datetime":
            ts = _newest(col)
            if ts is not None:
                with self._lock:
                    self.newest = ts if self.newest is None else max(self.newest, ts)
        converted = _convert(col, kind, key)
        del col, key  # the Arrow data and the key go before the engine gets the column
        if converted is None:
            raise KeyError(name)  # no drift input for this kind (text, datetime, embedding)
        return converted

    def __contains__(self, name: object) -> bool:
        return name in self.kinds

    def __iter__(self) -> Iterator[str]:
        return iter(self.kinds)

    def __len__(self) -> int:
        return len(self.kinds)

    def touch_unevaluated(self) -> None:
        """Read the columns the engine does not evaluate (for the hash and freshness)."""
        for name, kind in self.kinds.items():
            if _convert_kind(kind) is None:
                with contextlib.suppress(KeyError):
                    self[name]


def _convert_kind(kind: str) -> str | None:
    return kind if kind in ("numeric", "categorical", "boolean") else None


def load_pair(
    reference: Path,
    current: Path,
    *,
    schema: Schema | None = None,
    target: str | None = None,
    prediction: str | None = None,
    flatten: Sequence[str] = (),
    rules: InferenceRules = InferenceRules(),
    task: Task | None = None,
) -> LoadedData:
    """Open both files and (without a schema) infer it from the reference's columns.

    ``task`` forces the target's and prediction's task (classes or numbers), over the
    inference rule and over ``schema``'s.

    The returned mappings read each column when the engine asks for it; see
    :class:`LazyColumns`.
    """
    # each file is flattened where it has the column: a flat reference file beside a
    # prediction log ({"inputs": {...}}) is the usual pair
    ref_src = ColumnSource(reference, flatten=flatten, flatten_if_present=True)
    cur_src = ColumnSource(current, flatten=flatten, flatten_if_present=True)
    unused = [f for f in flatten if f not in ref_src.flatten + cur_src.flatten]
    if unused:
        which = ", ".join(repr(f) for f in unused)
        raise InputFileError(
            f"no column {which} to flatten in {reference} or {current} "
            f"(the reference has: {', '.join(ref_src.names[:20])})"
        )
    if ref_src.n_rows == 0:
        raise InputFileError(f"{reference}: no rows (the reference is empty)")
    if cur_src.n_rows == 0:
        raise InputFileError(f"{current}: no rows to compare (the current data is empty)")
    for name in (target, prediction):
        if name is not None and name not in ref_src.names:
            raise SchemaError(f"column {name!r} is not in the reference ({reference})")
    counted: dict[str, CategoricalColumn] = {}
    if schema is None:
        schema, counted = _infer(ref_src, target, prediction, rules, task)
    elif not any(n in ref_src.names for n in schema.names):
        raise InputFileError(
            f"{reference}: none of the schema's features are in it "
            f"(e.g. {schema.names[0]!r}; it has {', '.join(ref_src.names[:10])})"
        )
    else:
        schema = schema.with_task(task)
    kinds = _kinds(schema)
    positions = {name: i for i, name in enumerate(schema.names)}
    return LoadedData(
        schema=schema,
        reference=LazyColumns(ref_src, kinds, counted=counted),
        current=LazyColumns(cur_src, kinds, hasher=RowHasher(), positions=positions),
        n_reference=ref_src.n_rows,
        n_current=cur_src.n_rows,
        extra_columns=tuple(n for n in cur_src.names if n not in kinds),
    )


def _kinds(schema: Schema) -> dict[str, str]:
    kinds: dict[str, str] = {f.name: str(f.kind) for f in schema.features}
    for spec in (schema.prediction, schema.target):
        if spec is not None:
            kinds[spec.name] = _role_kind(spec)
    return kinds


def _infer(
    src: ColumnSource,
    target: str | None,
    prediction: str | None,
    rules: InferenceRules,
    task: Task | None = None,
) -> tuple[Schema, dict[str, CategoricalColumn]]:
    """Infer the schema from the reference, one column read at a time (the target first:
    the prediction follows its task unless ``task`` forces one).

    Also returns the category counts of the categorical features: counting is how a
    string column's kind is decided, and the report needs the same counts.
    """
    specs: dict[str, Target] = {}
    counted: dict[str, CategoricalColumn] = {}
    if target is not None:
        specs[target] = _target(target, src.read(target), rules, task)
        task = task or specs[target].task
    found: dict[str, Feature | None] = {}
    unread: list[str] = []
    for name in src.names:
        if name == target:
            continue
        typed = None
        if name != prediction and src.lazy:
            typed = _typed_feature(name, src.arrow_type(name))
        if typed is not None:  # known without reading: the report reads it once, later
            found[name] = typed
        else:
            found[name] = None
            unread.append(name)

    def inspect(name: str) -> tuple[str, Feature | Target | None, CategoricalColumn | None]:
        col = src.read(name)
        if name == prediction:
            return name, _target(name, col, rules, task), None
        if _is_string(_plain(col).type):
            counts = _categorical_input(col)
            feat = _string_feature(name, counts.counts, rules)
            return name, feat, counts if feat.kind == "categorical" else None
        return name, _arrow_feature(name, col, rules), None

    # the columns whose kind needs their values are read and counted on two threads (Arrow
    # reads and counts release the GIL), as the report's workers read theirs later
    if len(unread) > 1:
        with ThreadPoolExecutor(2, thread_name_prefix="inferwatch-infer") as pool:
            inspected = list(pool.map(inspect, unread))
    else:
        inspected = [inspect(name) for name in unread]
    for name, spec, counts in inspected:
        if isinstance(spec, Target):
            specs[name] = spec
            del found[name]
        else:
            found[name] = spec
            if counts is not None:
                counted[name] = counts
    features = [f for f in found.values() if f is not None]
    if not features:
        raise SchemaError(f"{src.path}: the reference has no usable feature columns")
    schema = Schema(
        tuple(features),
        specs.get(target) if target else None,
        specs.get(prediction) if prediction else None,
    )
    return schema, counted
