"""``inferwatch export``: the prediction log to CSV, Parquet or JSONL, streamed in chunks.

Rows are read from the store page by page (:meth:`~inferwatch.ports.Store.iter_predictions`,
keyset pagination: memory stays at one chunk however many rows match) and written as
they come, to a temporary file beside the output that replaces it only once complete,
so a failed or interrupted export never leaves half a file under the name asked for.

Two layouts:

- **JSONL** keeps every record as stored: ``inputs`` and ``probabilities`` nested, the
  timestamp in RFC 3339 (``inferwatch report --current F.jsonl --flatten inputs`` reads
  it back).
- **CSV** and **Parquet** are flat, ready for ``inferwatch report`` or a dataframe: one
  column per input feature (named after it; ``inputs.NAME`` where a feature is called
  like a fixed column), then ``output``, ``score``, ``latency_seconds``, ``trace_id`` and
  ``probabilities`` (as JSON text).  Their columns are those of the first chunk (the
  server's validator gives every row of a model version the same features); a feature
  first seen later, and, in Parquet, a value that does not fit the column's type from the
  first chunk, are left out and counted in a warning that names them (``--format jsonl``
  keeps everything).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from inferwatch.cli._app import app, default_config, err_console, fail

if TYPE_CHECKING:
    import pyarrow as pa

    from inferwatch.observation import PredictionRecord
    from inferwatch.ports import Store

__all__ = ["FORMATS", "export"]

#: output formats by name, and the file suffixes that select them
FORMATS: dict[str, tuple[str, ...]] = {
    "csv": (".csv",),
    "parquet": (".parquet", ".pq"),
    "jsonl": (".jsonl", ".ndjson"),
}
CHUNK_ROWS = 5_000  # rows read per query and written per chunk (a Parquet row group)
PROGRESS_MIN_ROWS = 50_000  # show a progress bar from this many rows
FIXED = ("id", "model", "version", "timestamp")
TAIL = ("output", "score", "latency_seconds", "trace_id", "probabilities")


def _format(fmt: str | None, output: Path | None) -> str:
    if fmt is not None:
        if fmt.lower() not in FORMATS:
            fail(f"unknown format {fmt!r}: use {', '.join(FORMATS)}")
        return fmt.lower()
    if output is None:
        fail("writing to stdout (-o -) needs --format csv or --format jsonl")
    suffix = output.suffix.lower()
    for name, suffixes in FORMATS.items():
        if suffix in suffixes:
            return name
    known = ", ".join(s for suffixes in FORMATS.values() for s in suffixes)
    fail(
        f"cannot tell the format of {str(output)!r} from its suffix ({known}); "
        "pass --format csv, parquet or jsonl"
    )


def _time(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 time (a date alone is its midnight) as aware UTC; naive means UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(
            f"{option} {value!r} is not an ISO 8601 time; "
            "e.g. 2026-11-29, 2026-11-29T12:00:00Z or 2026-11-29T13:00:00+01:00"
        )
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _open_store(url: str) -> Store:
    """The store at ``url``, refusing one that does not exist (SQLite would create it)."""
    from inferwatch.config import mask_url
    from inferwatch.store import open_store

    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            fail(f"no store at {path}: the SQLite file does not exist (pass --store URL or -c)")
    store = open_store(url)
    if store.current_revision() is None:
        store.close()
        fail(f"{mask_url(url)} holds no inferwatch tables: nothing was ever logged there")
    return store


def _nothing(store: Store, filters: Mapping[str, Any]) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in filters.items() if v is not None)
    message = f"no predictions match ({shown})" if shown else "the store holds no predictions"
    listing = getattr(store, "list_models", None)
    if shown and callable(listing):
        names = [f"{m['name']}:{m['version']}" for m in listing()]
        if names:
            message += f"; the store has model versions {', '.join(names[:20])}"
    return message + "; no file written"


def _chunks(records: Iterator[PredictionRecord], size: int) -> Iterator[list[PredictionRecord]]:
    chunk: list[PredictionRecord] = []
    for rec in records:
        chunk.append(rec)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _Flat:
    """The flat layout's columns (from the first chunk) and what did not fit them."""

    def __init__(self, first: Sequence[PredictionRecord]) -> None:
        seen: dict[str, None] = {}
        for rec in first:
            seen.update(dict.fromkeys(rec.inputs))
        taken = set(FIXED) | set(TAIL)
        self.inputs = list(seen)
        self.names = [f"inputs.{k}" if k in taken else k for k in self.inputs]
        self.known = frozenset(self.inputs)
        self.unknown: dict[str, int] = {}  # input keys first seen after the first chunk
        self.misfits: dict[str, int] = {}  # Parquet values that did not fit their column

    @property
    def header(self) -> list[str]:
        return [*FIXED, *self.names, *TAIL]

    def note_unknown(self, chunk: Sequence[PredictionRecord]) -> None:
        known = self.known
        for rec in chunk:
            for key in rec.inputs:
                if key not in known:
                    self.unknown[key] = self.unknown.get(key, 0) + 1

    def warnings(self) -> list[str]:
        out = []
        if self.unknown:
            names = ", ".join(f"{k!r} ({n:,} rows)" for k, n in list(self.unknown.items())[:10])
            out.append(
                f"input features first seen after the first {CHUNK_ROWS:,} rows are not in "
                f"the file: {names}; --format jsonl keeps every field"
            )
        if self.misfits:
            names = ", ".join(f"{k!r} ({n:,})" for k, n in list(self.misfits.items())[:10])
            out.append(
                f"values that did not fit their column's type (from the first rows) were "
                f"written as null: {names}; --format jsonl keeps them as stored"
            )
        return out


_encoder: Any = None


def _json(value: Any) -> str:
    global _encoder
    if _encoder is None:
        import msgspec

        _encoder = msgspec.json.Encoder()
    return str(_encoder.encode(value), "utf-8")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return _json(value)
    return value


class _CsvWriter:
    def __init__(self, out: IO[str]) -> None:
        self.writer = csv.writer(out, lineterminator="\n")
        self.flat: _Flat | None = None

    def write(self, chunk: Sequence[PredictionRecord]) -> None:
        if self.flat is None:
            self.flat = _Flat(chunk)
            self.writer.writerow(self.flat.header)
        else:
            self.flat.note_unknown(chunk)
        keys = self.flat.inputs
        self.writer.writerows(
            [
                rec.id,
                rec.model,
                rec.version,
                rec.timestamp.isoformat(),
                *(_cell(rec.inputs.get(k)) for k in keys),
                _cell(rec.output),
                _cell(rec.score),
                _cell(rec.latency_seconds),
                _cell(rec.trace_id),
                _cell(rec.probabilities),
            ]
            for rec in chunk
        )

    def warnings(self) -> list[str]:
        return [] if self.flat is None else self.flat.warnings()

    def close(self) -> None:
        pass


class _JsonlWriter:
    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def write(self, chunk: Sequence[PredictionRecord]) -> None:
        self.out.writelines(
            _json(
                {
                    "id": rec.id,
                    "model": rec.model,
                    "version": rec.version,
                    "timestamp": rec.timestamp,
                    "inputs": rec.inputs,
                    "output": rec.output,
                    "probabilities": rec.probabilities,
                    "score": rec.score,
                    "latency_seconds": rec.latency_seconds,
                    "trace_id": rec.trace_id,
                }
            )
            + "\n"
            for rec in chunk
        )

    def warnings(self) -> list[str]:
        return []

    def close(self) -> None:
        pass


def _column_type(values: list[Any]) -> pa.DataType:
    """The Arrow type of a column from its first chunk's values: nested values and
    columns of no value (all missing) or of mixed kinds become JSON text."""
    import pyarrow as pa

    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return pa.string()
    if kinds <= {bool}:
        return pa.bool_()
    if kinds <= {int}:
        return pa.int64()
    if kinds <= {int, float}:
        return pa.float64()
    return pa.string()


def _converter(typ: pa.DataType) -> Callable[[Any], tuple[Any, bool]]:
    """value → (value for the column, fits); a value that does not fit becomes None."""
    import pyarrow as pa

    def to_int(v: Any) -> tuple[Any, bool]:
        if isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63:
            return v, True
        if isinstance(v, float) and v.is_integer() and abs(v) < 2**63:
            return int(v), True
        return None, False

    def to_float(v: Any) -> tuple[Any, bool]:
        if isinstance(v, int | float) and not isinstance(v, bool):
            try:
                return float(v), True
            except OverflowError:
                return None, False
        return None, False

    def to_bool(v: Any) -> tuple[Any, bool]:
        return (v, True) if isinstance(v, bool) else (None, False)

    def to_text(v: Any) -> tuple[Any, bool]:
        return (v if isinstance(v, str) else _json(v)), True

    if pa.types.is_int64(typ):
        return to_int
    if pa.types.is_float64(typ):
        return to_float
    if pa.types.is_boolean(typ):
        return to_bool
    return to_text


def _as_column(values: list[Any], typ: pa.DataType) -> pa.Array | None:
    """``values`` as an Arrow array of ``typ`` when Arrow's own inference agrees (the
    fast path: no Python per value), else None.  Arrow's conversion *to* a type is not
    used: it would silently truncate 2.5 into an int64 column."""
    import pyarrow as pa

    try:
        arr = pa.array(values)
        if arr.type == typ:
            return arr
        if pa.types.is_null(arr.type) or (
            pa.types.is_floating(typ) and pa.types.is_integer(arr.type)
        ):
            return arr.cast(typ)  # a safe cast: refuses an int that a float cannot hold
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    return None


def _input(key: str) -> Callable[[PredictionRecord], Any]:
    def get(rec: PredictionRecord) -> Any:
        return rec.inputs.get(key)

    return get


def _output(rec: PredictionRecord) -> Any:
    return rec.output


class _ParquetWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.flat: _Flat | None = None
        self.writer: Any = None
        self.columns: list[tuple[str, Callable[[PredictionRecord], Any], Any, Any]] = []

    def _open(self, chunk: Sequence[PredictionRecord]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        flat = self.flat = _Flat(chunk)
        getters: list[tuple[str, Callable[[PredictionRecord], Any]]] = [
            (name, _input(key)) for name, key in zip(flat.names, flat.inputs, strict=True)
        ]
        getters.append(("output", _output))
        fields = [
            pa.field("id", pa.string(), nullable=False),
            pa.field("model", pa.string(), nullable=False),
            pa.field("version", pa.string(), nullable=False),
            pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        ]
        self.columns = []
        for name, get in getters:
            typ = _column_type([get(rec) for rec in chunk])
            fields.append(pa.field(name, typ))
            self.columns.append((name, get, _converter(typ), typ))
        fields += [
            pa.field("score", pa.float64()),
            pa.field("latency_seconds", pa.float64()),
            pa.field("trace_id", pa.string()),
            pa.field("probabilities", pa.string()),
        ]
        self.schema = pa.schema(fields)
        self.writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")

    def write(self, chunk: Sequence[PredictionRecord]) -> None:
        import pyarrow as pa

        if self.flat is None:
            self._open(chunk)
        else:
            self.flat.note_unknown(chunk)
        assert self.flat is not None
        misfits = self.flat.misfits
        arrays: list[Any] = [
            [rec.id for rec in chunk],
            [rec.model for rec in chunk],
            [rec.version for rec in chunk],
            [rec.timestamp for rec in chunk],
        ]
        for name, get, convert, typ in self.columns:
            raw = [get(rec) for rec in chunk]
            fast = _as_column(raw, typ)
            if fast is not None:
                arrays.append(fast)
                continue
            values: list[Any] = []
            for value in raw:
                if value is None:
                    values.append(None)
                    continue
                value, fits = convert(value)
                if not fits:
                    misfits[name] = misfits.get(name, 0) + 1
                values.append(value)
            arrays.append(values)
        arrays += [
            [rec.score for rec in chunk],
            [rec.latency_seconds for rec in chunk],
            [rec.trace_id for rec in chunk],
            [None if rec.probabilities is None else _json(rec.probabilities) for rec in chunk],
        ]
        table = pa.Table.from_arrays(
            [
                a if isinstance(a, pa.Array) else pa.array(a, type=f.type)
                for a, f in zip(arrays, self.schema, strict=True)
            ],
            schema=self.schema,
        )
        self.writer.write_table(table)

    def warnings(self) -> list[str]:
        return [] if self.flat is None else self.flat.warnings()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@contextlib.contextmanager
def _replacing(output: Path) -> Iterator[Path]:
    """A temporary path beside ``output`` that becomes ``output`` when the block succeeds."""
    folder = output.parent
    if not folder.is_dir():
        fail(f"cannot write {output}: the folder {folder} does not exist")
    fd, name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".part", dir=folder)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # as a plain open() would create it (mkstemp: 0600)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)


def _progress(total: int, show: bool | None) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    enabled = total >= PROGRESS_MIN_ROWS if show is None else show
    return Progress(
        TextColumn("[bold]export[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not enabled,
    )


_Writer = _CsvWriter | _JsonlWriter | _ParquetWriter


def _run(
    store: Store,
    writer: _Writer,
    *,
    total: int,
    filters: Mapping[str, Any],
    limit: int | None,
    show_progress: bool | None,
) -> int:
    records = store.iter_predictions(
        filters["model"],
        filters["version"],
        limit,
        since=filters["since"],
        until=filters["until"],
        page_size=CHUNK_ROWS,
    )
    written = 0
    with _progress(total, show_progress) as progress:
        task = progress.add_task("export", total=total)
        for chunk in _chunks(records, CHUNK_ROWS):
            writer.write(chunk)
            written += len(chunk)
            progress.update(task, completed=written)
    writer.close()
    return written


@app.command()
def export(
    output: Annotated[
        str,
        typer.Option(
            "--output", "-o", help="File to write (.csv, .parquet, .jsonl), or - for stdout."
        ),
    ],
    fmt: Annotated[
        str | None,
        typer.Option("--format", "-f", help="csv, parquet or jsonl (default: from the suffix)."),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    version: Annotated[str | None, typer.Option(help="Only this model version.")] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only predictions at or after this ISO 8601 time (UTC if no offset)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Only predictions before this ISO 8601 time (UTC if no offset)."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most this many rows (the oldest).")
    ] = None,
    store_url: Annotated[
        str | None, typer.Option("--store", help="Store URL (overrides the config).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="inferwatch.yaml (its store.url is read)."),
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help=f"Show a progress bar (default: from {PROGRESS_MIN_ROWS:,} rows).",
        ),
    ] = None,
) -> None:
    """Export the prediction log to CSV, Parquet or JSONL, oldest first.

    Exits 0 with the file written, 1 when no prediction matches (no file is written),
    2 on bad input.
    """
    from inferwatch.config import load_settings, mask_url

    to_stdout = output == "-"
    path = None if to_stdout else Path(output)
    name = _format(fmt, path)
    if to_stdout and name == "parquet":
        fail("Parquet cannot be written to stdout: pass -o FILE.parquet")
    start, end = _time(since, "--since"), _time(until, "--until")
    if start is not None and end is not None and start >= end:
        fail(f"--since ({start.isoformat()}) must be before --until ({end.isoformat()})")
    if version is not None and model is None:
        fail("--version needs --model")
    if store_url is None:
        settings = load_settings(default_config(config))
        store_url = settings.store.url
    filters = {"model": model, "version": version, "since": start, "until": end}
    store = _open_store(store_url)
    try:
        total = store.count_predictions(model, version, since=start, until=end)
        if limit is not None:
            total = min(total, limit)
        if total == 0:
            shown = {**filters, "since": since, "until": until}
            err_console.print(_nothing(store, shown), highlight=False, soft_wrap=True)
            raise typer.Exit(1)

        def run(writer: _Writer) -> int:
            return _run(
                store, writer, total=total, filters=filters, limit=limit, show_progress=progress
            )

        writer: _Writer
        if path is None:
            out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
            writer = _CsvWriter(out) if name == "csv" else _JsonlWriter(out)
            n = run(writer)
            out.flush()
            out.detach()
        else:
            with _replacing(path) as tmp:
                if name == "parquet":
                    writer = _ParquetWriter(tmp)
                    n = run(writer)
                else:
                    with tmp.open("w", encoding="utf-8", newline="") as fh:
                        writer = _CsvWriter(fh) if name == "csv" else _JsonlWriter(fh)
                        n = run(writer)
    finally:
        store.close()
    for warning in writer.warnings():
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    where = "stdout" if path is None else str(path)
    err_console.print(
        f"exported {n:,} predictions from {mask_url(store_url)} to {where} ({name})",
        highlight=False,
        soft_wrap=True,
    )
