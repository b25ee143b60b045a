"""``inferwatch ingest labels FILE``: late ground truth from a CSV, Parquet or JSONL file.

The same :class:`~inferwatch.labels.LabelIngestor` as the feedback route, on the
configured store: each row's label is joined to its prediction by id, validated against
the model's target (its schema and, when the model file loads, its classes), and stored
(a repeated label replaces).  The file is one request: an id that appears on several of
its rows is rejected on all of them (``duplicate_prediction_id``).  Rows go to the store
in chunks, each one transaction; a re-run after a failure is harmless (stored labels
replace themselves).  A server's predictions still in its memory buffer are not visible
from here: label them through the feedback route, or after the server flushed them.

With ``--url`` the labels go to a running server's ``POST /v1/models/{name}/feedback``
instead, in requests of ``HTTP_CHUNK`` labels: the server validates and stores them and,
unlike a direct write to the store, folds them into its live performance windows at once
(a server only sees the labels that pass through it; one that is running while labels are
written to its store directly shows them when the window is recomputed).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from inferwatch.cli._app import app, console, default_config, err_console, fail
from inferwatch.errors import InferwatchError, StoreError

if TYPE_CHECKING:
    from rich.progress import Progress

    from inferwatch.config import ModelSettings, Settings
    from inferwatch.labels import LabelResult, LabelRules

__all__ = ["ingest_app"]

ingest_app = typer.Typer(help="Bring late ground truth into the store.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")

CHUNK = 10_000  # labels per store transaction
HTTP_CHUNK = 1_000  # labels per feedback request (--url)
SHOWN = 5  # rejected rows printed at the end
PROGRESS_MIN_ROWS = 20_000


@ingest_app.command("labels")
def ingest_labels(
    file: Annotated[Path, typer.Argument(help="Labels: CSV, Parquet or JSONL.")],
    id_column: Annotated[
        str, typer.Option("--id-column", help="The column of prediction ids.")
    ] = "prediction_id",
    label_column: Annotated[
        str, typer.Option("--label-column", help="The column of labels (ground truth).")
    ] = "label",
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="The model the predictions belong to (default: the configuration's only model).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="inferwatch.yaml (default: ./inferwatch.yaml)."),
    ] = None,
    store_url: Annotated[
        str | None, typer.Option("--store", help="Store URL (overrides the config).")
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Progress bar (default: large files)."),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Send the labels to this running server's feedback route instead of the "
            "store, so its live performance windows count them.",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="INFERWATCH_API_KEY",
            show_envvar=True,
            help="With --url: an API key with the 'feedback' role.",
        ),
    ] = None,
) -> None:
    """Store labels for earlier predictions, joined by prediction id.

    Exit 0 when every label was stored, 1 when some rows were rejected (the first few
    are printed, with per-reason counts), 2 on a usage error or a store that is down.
    """
    from inferwatch.config import load_settings
    from inferwatch.io import read_columns
    from inferwatch.labels import LabelIngestor, LabelResult
    from inferwatch.store import open_store

    if url is not None:
        found = default_config(config)
        if model is None and found is None:
            fail("--model is required with --url (or a configuration naming one model)")
        chosen_name = model
        model_task = None
        if found is not None:
            settings = load_settings(found)
            picked = _model(settings, model)
            chosen_name, model_task = picked.name, picked.task
        assert chosen_name is not None
        columns = read_columns(file, [id_column, label_column])
        ids = [_text_id(v) for v in columns[id_column].tolist()]
        text = file.name.lower().endswith((".csv", ".csv.gz")) and model_task == "regression"
        labels = [_plain(v, numeric_text=text) for v in columns[label_column].tolist()]
        results, pending = _split_duplicates(ids, labels, file.name)
        with _progress(len(ids), progress) as bar:
            task_id = bar.add_task("labels", total=len(ids))
            bar.advance(task_id, len(results))
            results += _send(url, api_key, chosen_name, pending, lambda n: bar.advance(task_id, n))
        _report(file, chosen_name, results)
        return
    overrides: dict[str, Any] = {"store": {"url": store_url}} if store_url else {}
    settings = load_settings(default_config(config), overrides)
    chosen = _model(settings, model)
    columns = read_columns(file, [id_column, label_column])
    ids = [_text_id(v) for v in columns[id_column].tolist()]
    rule = _rules(chosen)
    # CSV holds text: a label column with one non-number in it is read as strings, so a
    # regressor's numeric strings are numbers again (JSONL and Parquet keep their types)
    text = file.name.lower().endswith((".csv", ".csv.gz")) and rule.task == "regression"
    labels = [_plain(v, numeric_text=text) for v in columns[label_column].tolist()]
    rules = {(chosen.name, chosen.version): rule}
    store = open_store(settings.store.url)
    try:
        if settings.store.auto_migrate:
            store.upgrade()
        ingestor = LabelIngestor(store, rules=rules)
        results, pending = _split_duplicates(ids, labels, file.name)
        stored = 0
        with _progress(len(ids), progress) as bar:
            task = bar.add_task("labels", total=len(ids))
            bar.advance(task, len(results))
            for start in range(0, len(pending), CHUNK):
                chunk = pending[start : start + CHUNK]
                try:
                    report = ingestor.ingest(chosen.name, [(pid, v) for _, pid, v in chunk])
                except StoreError as exc:
                    fail(
                        f"{exc}; {stored} labels were stored before it (running the "
                        "command again is safe: a stored label replaces itself)"
                    )
                for (row, _, _), r in zip(chunk, report.results, strict=True):
                    results.append(LabelResult(row, r.prediction_id, r.outcome, r.message))
                stored += report.accepted + report.replaced
                bar.advance(task, len(chunk))
    except InferwatchError as exc:
        fail(str(exc))
    finally:
        store.close()
    _report(file, chosen.name, results)


def _split_duplicates(
    ids: list[str], labels: list[Any], name: str
) -> tuple[list[LabelResult], list[tuple[int, str, Any]]]:
    """Rows whose id is on several rows (rejected: the file is ambiguous), and the rest."""
    from inferwatch.labels import LabelResult

    seen = Counter(ids)
    results: list[LabelResult] = []
    pending: list[tuple[int, str, Any]] = []
    for i, (pid, label) in enumerate(zip(ids, labels, strict=True)):
        if seen[pid] > 1:
            message = f"row {i + 1}: prediction id {pid!r} is on {seen[pid]} rows of {name}"
            results.append(LabelResult(i, pid, "duplicate_prediction_id", message))
        else:
            pending.append((i, pid, label))
    return results, pending


def _send(
    url: str,
    api_key: str | None,
    model: str,
    pending: list[tuple[int, str, Any]],
    advance: Any,
) -> list[LabelResult]:
    """POST ``pending`` to the server's feedback route in chunks; a result per row."""
    import httpx

    from inferwatch.labels import LabelResult

    if not url.startswith(("http://", "https://")):
        fail(f"--url must be an http:// or https:// URL, got {url!r}")
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    out: list[LabelResult] = []
    sent = 0
    try:
        client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=60.0)
    except (httpx.InvalidURL, ValueError) as exc:
        fail(f"--url {url!r} is not a valid URL: {exc}")
    with client:
        for start in range(0, len(pending), HTTP_CHUNK):
            chunk = pending[start : start + HTTP_CHUNK]
            body = {"labels": [{"prediction_id": pid, "label": v} for _, pid, v in chunk]}
            try:
                resp = client.post(f"/v1/models/{model}/feedback", json=body)
            except httpx.HTTPError as exc:
                fail(
                    f"could not reach {url} ({exc}); {sent} labels were stored before it "
                    "(running the command again is safe: a stored label replaces itself)"
                )
            if resp.status_code not in (200, 207, 404, 422):
                fail(f"{url} answered {resp.status_code}: {resp.text[:300]}")
            payload = resp.json()
            if "errors" not in payload:  # the request itself was refused (no per-item list)
                fail(f"{url} refused the labels: {resp.text[:300]}")
            rejected = {int(e["index"]): e for e in payload["errors"]}
            # the answer counts new and replaced labels without naming them: the counts
            # are right, which stored row was new is not said
            new = int(payload.get("accepted", 0))
            for j, (row, pid, _) in enumerate(chunk):
                e = rejected.get(j)
                if e is not None:
                    out.append(LabelResult(row, pid, e["code"], e["message"]))
                else:
                    out.append(LabelResult(row, pid, "accepted" if new > 0 else "replaced", ""))
                    new -= 1
            sent += int(payload.get("accepted", 0)) + int(payload.get("replaced", 0))
            advance(len(chunk))
    return out


def _report(file: Path, model: str, results: list[LabelResult]) -> None:
    """Per-outcome counts, the first rejected rows, exit 1 when any was rejected."""
    from inferwatch.labels import LABEL_OUTCOMES, REJECT_CODES

    counts = Counter(r.outcome for r in results)
    summary = ", ".join(f"{k} {counts[k]}" for k in LABEL_OUTCOMES if counts.get(k))
    console.print(f"{file}: {len(results)} row(s) for model {model!r}: {summary}", highlight=False)
    rejected = sorted((r for r in results if r.outcome in REJECT_CODES), key=lambda r: r.index)
    if rejected:
        for r in rejected[:SHOWN]:
            err_console.print(
                f"  row {r.index + 1}: {r.outcome}: {r.message}", highlight=False, soft_wrap=True
            )
        if len(rejected) > SHOWN:
            err_console.print(
                f"  ... and {len(rejected) - SHOWN} more rejected rows", highlight=False
            )
        raise typer.Exit(1)


def _model(settings: Settings, name: str | None) -> ModelSettings:
    names = [m.name for m in settings.models]
    if name is None:
        if len(settings.models) != 1:
            fail(
                f"--model is required: the configuration has {len(names)} models "
                f"({', '.join(names) or 'none'})"
            )
        return settings.models[0]
    for m in settings.models:
        if m.name == name:
            return m
    fail(f"no model named {name!r} in the configuration; models: {', '.join(names) or 'none'}")


def _rules(m: ModelSettings) -> LabelRules:
    """The model's label rules: its schema's target and, when the file loads, its classes."""
    from inferwatch.labels import LabelRules
    from inferwatch.models import load_model
    from inferwatch.server._build import _schema_and_reference

    schema, _ = _schema_and_reference(m)
    schema = schema.with_task(m.task) if m.task is not None else schema
    try:
        adapter = load_model(
            m.path,
            m.flavor,
            feature_names=schema.names,
            trusted_hashes=m.trusted_model_hashes,
            classes=m.classes,
            tracking_uri=m.tracking_uri,
        )
        classes = adapter.classes
    except InferwatchError as exc:
        err_console.print(
            f"[yellow]warning:[/] classes unknown ({exc}); labels are checked "
            "against the schema's target only",
            highlight=False,
        )
        classes = None
    return LabelRules.of(schema, classes if m.task != "regression" else None)


def _text_id(value: Any) -> str:
    """A prediction id as text (a CSV reader may have typed numeric-looking ids)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _plain(value: Any, *, numeric_text: bool = False) -> Any:
    """A file value as the JSON value the route would get: NaN (a missing cell) is None;
    with ``numeric_text``, a string that is a finite number is that number."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if numeric_text and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    return value


def _progress(total: int, show: bool | None) -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    enabled = total >= PROGRESS_MIN_ROWS if show is None else show
    return Progress(
        TextColumn("[bold]ingest[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("labels"),
        console=err_console,
        transient=True,
        disable=not enabled,
    )
