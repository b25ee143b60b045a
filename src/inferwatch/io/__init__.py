"""Data files in and out: CSV, Parquet and JSONL as numpy columns or frames, and schema YAML."""

from __future__ import annotations

from inferwatch.io._readers import (
    ColumnSource,
    read_columns,
    read_frame,
    write_frame,
)
from inferwatch.io._schema_file import infer_schema_from_file, load_schema, save_schema

__all__ = [
    "ColumnSource",
    "infer_schema_from_file",
    "load_schema",
    "read_columns",
    "read_frame",
    "save_schema",
    "write_frame",
]
