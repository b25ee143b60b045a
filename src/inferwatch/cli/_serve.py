"""``inferwatch serve``: load the config (or a model and a reference) and run the server."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from inferwatch.cli._app import app, default_config, err_console, fail

__all__ = ["serve"]


def _overrides(
    model: Path | None,
    reference: Path | None,
    schema: Path | None,
    target: str | None,
    prediction: str | None,
    name: str | None,
    host: str | None,
    port: int | None,
    store: str | None,
    task: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if model is not None:
        if reference is None and schema is None:
            fail("--model needs --reference (to infer the schema) or --schema")
        entry: dict[str, Any] = {"name": name or model.stem, "path": str(model.resolve())}
        if reference is not None:
            entry["reference"] = str(reference.resolve())
        if schema is not None:
            entry["schema"] = str(schema.resolve())
        if target is not None:
            entry["target"] = target
        if prediction is not None:
            entry["prediction"] = prediction
        if task is not None:
            entry["task"] = task
        out["models"] = [entry]
    elif reference or schema or target or prediction or name or task:
        fail("--reference, --schema, --target, --prediction, --task and --name go with --model")
    server = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if server:
        out["server"] = server
    if store is not None:
        out["store"] = {"url": store}
    return out


@app.command()
def serve(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="inferwatch.yaml.")] = None,
    model: Annotated[
        Path | None, typer.Option(help="Quick start: a model file (joblib) to serve.")
    ] = None,
    reference: Annotated[
        Path | None, typer.Option(help="Quick start: reference data the schema is inferred from.")
    ] = None,
    schema: Annotated[Path | None, typer.Option(help="Quick start: a schema YAML.")] = None,
    target: Annotated[str | None, typer.Option(help="Target column in the reference.")] = None,
    prediction: Annotated[
        str | None, typer.Option(help="Prediction column in the reference (not a feature).")
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            help="classification or regression (default: inferred from the target; "
            "floats and many-valued integers are regression)."
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Model name in URLs (default: the file's stem).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    store: Annotated[
        str | None, typer.Option(help="Store URL (default sqlite:///inferwatch.db).")
    ] = None,
) -> None:
    """Serve models behind a monitored HTTP API.

    With --model and --reference no config file is needed: the schema is inferred and
    predictions go to ./inferwatch.db.
    """
    import uvicorn

    from inferwatch.config import load_settings, mask_url
    from inferwatch.server import build_app, check_bind

    overrides = _overrides(
        model, reference, schema, target, prediction, name, host, port, store, task
    )
    settings = load_settings(None if model is not None else default_config(config), overrides)
    if not settings.models:
        fail(
            "no model to serve: give --config FILE with a 'models' list, or --model and --reference"
        )
    check_bind(settings.server.host, settings.auth)
    level = settings.logging.level
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    application = build_app(settings)
    base = f"http://{settings.server.host}:{settings.server.port}"
    for m in settings.models:
        err_console.print(
            f"serving [bold]{m.name}[/] v{m.version}: POST {base}/v1/models/{m.name}/predict",
            highlight=False,
        )
    err_console.print(
        f"metrics {base}/metrics · docs {base}/docs · store {mask_url(settings.store.url)}",
        highlight=False,
    )
    # uvicorn shuts down gracefully on SIGTERM (in-flight requests finish, the lifespan drains
    # the prediction log), then re-raises the signal; a no-op handler makes that clean
    # shutdown exit 0, as gunicorn does, instead of dying by the signal.
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(
        application,
        host=settings.server.host,
        port=settings.server.port,
        log_level=level.lower(),
        timeout_graceful_shutdown=30,
    )
