"""Data files in and out: CSV, Parquet and JSONL as numpy columns or frames, and schema YAML."""

from __future__ import annotations

from inferwatch.io._profile_file import (
    SavedProfile,
    load_profile,
    n_unique_finite,
    profile_columns,
    save_profile,
)
from inferwatch.io._readers import (
    ColumnSource,
    read_columns,
    read_frame,
    write_frame,
)
from inferwatch.io._schema_file import infer_schema_from_file, load_schema, save_schema

__all__ = [
    "ColumnSource",
    "SavedProfile",
    "infer_schema_from_file",
    "load_profile",
    "load_schema",
    "n_unique_finite",
    "profile_columns",
    "read_columns",
    "read_frame",
    "save_profile",
    "save_schema",
    "write_frame",
]
