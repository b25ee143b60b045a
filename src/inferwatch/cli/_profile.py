"""``inferwatch profile DATA --output P.json``: save a mergeable profile of a data file.

Without ``--reference-profile`` the file is a reference: its bins are fitted on it (the
schema given, else inferred) and its numeric features' distinct values counted.  With
one, the file is profiled on that reference's bins, ready for ``inferwatch report
--reference-profile R --current-profile P``.  A Spark DataFrame is profiled into the same
file format by :func:`inferwatch.spark.profile_dataframe`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from inferwatch.cli._app import app, err_console, fail

__all__ = ["profile_command"]


@app.command("profile")
def profile_command(
    data: Annotated[Path, typer.Argument(help="Data to profile: CSV, Parquet or JSONL.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The profile file to write (JSON).")
    ],
    reference_profile: Annotated[
        Path | None,
        typer.Option(
            help="Profile DATA on this reference profile's bins (a current profile); "
            "without it DATA is a reference and its bins are fitted on it."
        ),
    ] = None,
    schema: Annotated[
        Path | None,
        typer.Option(help="Schema YAML of a reference (default: inferred from DATA)."),
    ] = None,
    target: Annotated[str | None, typer.Option(help="Target column (not a feature).")] = None,
    prediction: Annotated[
        str | None, typer.Option(help="Prediction column (not a feature).")
    ] = None,
) -> None:
    """Save a mergeable profile of DATA (a reference's, or a current one on its bins)."""
    import time

    from inferwatch.io import (
        load_profile,
        load_schema,
        profile_columns,
        read_columns,
        save_profile,
    )

    if output.suffix.lower() != ".json":
        fail(f"--output must end in .json, got {output.name!r}")
    if reference_profile is not None and schema is not None:
        fail("--schema applies to a reference; a current profile takes its reference's schema")
    started = time.perf_counter()
    reference = load_profile(reference_profile) if reference_profile is not None else None
    columns = read_columns(data)
    saved = profile_columns(
        columns,
        reference=reference,
        schema=load_schema(schema) if schema is not None else None,
        target=target,
        prediction=prediction,
        source=str(data),
    )
    save_profile(saved, output)
    kind = "current" if reference is not None else "reference"
    err_console.print(
        f"wrote {output}: {kind} profile of {saved.profile.n_rows:,} rows, "
        f"{len(saved.profile.columns)} features in {time.perf_counter() - started:.2f}s",
        highlight=False,
    )
