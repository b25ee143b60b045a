"""``inferwatch push``: a training or batch job's scores and run time to a Pushgateway."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from inferwatch.cli._app import app, err_console, fail

__all__ = ["push"]

_FROM_JSON_HELP = (
    'JSON file: {"metrics": {...}, "duration_seconds": S, "grouping": {...}} '
    "or a flat {name: number}; the flags win."
)


def _pairs(items: list[str], flag: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"{flag} {item!r}: expected KEY=VALUE")
        out.append((key.strip(), value.strip()))
    return out


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        fail(f"{what}: {text!r} is not a number")
    if not math.isfinite(value):
        fail(f"{what}: {text!r} is not a finite number")
    return value


def _from_json(path: Path) -> tuple[dict[str, Any], float | None, dict[str, str]]:
    """``{"metrics": {...}, "duration_seconds": S, "grouping": {...}}`` or a flat
    ``{name: number}`` object: the job's own summary file."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        fail(f"--from-json {path}: cannot read it ({exc.strerror or exc})")
    except ValueError as exc:
        fail(f"--from-json {path}: not valid JSON ({exc})")
    if not isinstance(data, dict):
        fail(f"--from-json {path}: expected a JSON object")
    if "metrics" not in data:
        return data, None, {}
    unknown = sorted(set(data) - {"metrics", "duration_seconds", "grouping"})
    if unknown:
        fail(f"--from-json {path}: unknown key(s) {', '.join(unknown)}; "
             "expected metrics, duration_seconds, grouping")  # fmt: skip
    metrics, duration, grouping = (
        data["metrics"],
        data.get("duration_seconds"),
        data.get("grouping"),
    )
    if not isinstance(metrics, dict):
        fail(f"--from-json {path}: 'metrics' must be an object of name: number")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int | float)
    ):
        fail(f"--from-json {path}: 'duration_seconds' must be a number")
    if grouping is not None and not (
        isinstance(grouping, dict) and all(isinstance(v, str | int) for v in grouping.values())
    ):
        fail(f"--from-json {path}: 'grouping' must be an object of label: string")
    return metrics, duration, {str(k): str(v) for k, v in (grouping or {}).items()}


@app.command()
def push(
    gateway: Annotated[str, typer.Option(help="Pushgateway URL, e.g. http://127.0.0.1:9091.")],
    job: Annotated[str, typer.Option(help="The job label of the pushed group.")],
    grouping: Annotated[
        list[str] | None,
        typer.Option("--grouping", "-g", help="KEY=VALUE added to the grouping key (repeat)."),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", help="NAME=VALUE pushed as inferwatch_job_metric (repeat)."),
    ] = None,
    duration_seconds: Annotated[
        float | None, typer.Option(help="The job's run time: inferwatch_job_duration_seconds.")
    ] = None,
    from_json: Annotated[
        Path | None,
        typer.Option(
            help='JSON file: {"metrics": {...}, "duration_seconds": S, "grouping": {...}}'
            " or a flat {name: number}; the flags win."
        ),
    ] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="The run failed: set the failure timestamp instead.")
    ] = False,
    add: Annotated[
        bool, typer.Option("--add", help="POST: replace only the pushed families, not the group.")
    ] = False,
    delete: Annotated[bool, typer.Option("--delete", help="Delete the group instead.")] = False,
) -> None:
    """Push a training or batch job's scores and run time to a Prometheus Pushgateway.

    Exit 0 when pushed, 1 when the gateway cannot be reached or refuses, 2 on bad
    arguments (nothing is sent).
    """
    from inferwatch.push import PushError, check_gateway, delete_job, push_job

    try:
        check_gateway(gateway)
    except ValueError as exc:
        fail(f"--gateway: {exc}")
    scores: dict[str, Any] = {}
    group: dict[str, str] = {}
    if from_json is not None:
        scores, file_duration, group = _from_json(from_json)
        duration_seconds = duration_seconds if duration_seconds is not None else file_duration
    group.update(_pairs(grouping or [], "--grouping"))
    for name, value in _pairs(metric or [], "--metric"):
        scores[name] = _number(value, f"--metric {name}")
    if delete and (scores or duration_seconds is not None or failed):
        fail("--delete removes the group: give no --metric, --duration-seconds or --failed")
    where = f"{gateway} (job {job}" + "".join(f", {k}={v}" for k, v in group.items()) + ")"
    try:
        if delete:
            delete_job(gateway, job, grouping_key=group)
            err_console.print(f"deleted {where}", highlight=False)
            return
        push_job(
            gateway, job, scores, duration_seconds=duration_seconds, grouping_key=group,
            succeeded=not failed, mode="add" if add else "replace",
        )  # fmt: skip
    except PushError as exc:
        fail(str(exc), 1)
    except ValueError as exc:
        fail(str(exc))
    err_console.print(f"pushed {len(scores)} metric(s) to {where}", highlight=False)
