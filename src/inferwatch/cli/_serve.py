"""``inferwatch serve``: load the config (or a model and a reference) and run the server."""

from __future__ import annotations

import gc
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from inferwatch.cli._app import app, default_config, err_console, fail

if TYPE_CHECKING:
    import uvicorn

    from inferwatch.config import ServerSettings
    from inferwatch.server._connections import ConnectionGuard, QuietLogFilter

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
    *,
    drift_window: float | None = None,
    drift_interval: float | None = None,
    flavor: str | None = None,
    classes: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if model is not None:
        if reference is None and schema is None:
            fail("--model needs --reference (to infer the schema) or --schema")
        # a python model is module:attribute: named after its module's last part
        stem = model.name.split(":")[0].rsplit(".", 1)[-1] if flavor == "python" else model.stem
        path = str(model.resolve())
        if str(model).startswith("models:"):  # MLflow's models:/name/version: not a file
            path = str(model)
            stem = str(model).removeprefix("models:").strip("/").split("/")[0].split("@")[0]
        entry: dict[str, Any] = {"name": name or stem, "path": path}
        if flavor is not None:
            entry["flavor"] = flavor
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
        if classes is not None:
            entry["classes"] = [c.strip() for c in classes.split(",") if c.strip()]
        out["models"] = [entry]
    elif reference or schema or target or prediction or name or task or flavor or classes:
        fail(
            "--reference, --schema, --target, --prediction, --task, --name, --flavor and "
            "--classes go with --model"
        )
    server = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if server:
        out["server"] = server
    if store is not None:
        out["store"] = {"url": store}
    drift = {
        k: v
        for k, v in (
            ("window_seconds", drift_window),
            ("evaluation_interval_seconds", drift_interval),
        )
        if v is not None
    }
    if drift:
        out["drift"] = drift
    return out


@app.command()
def serve(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="inferwatch.yaml.")] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            help="Quick start: a model file to serve (.joblib/.pkl: sklearn, .onnx: onnx, "
            ".pt: torchscript, .keras/.h5: keras, an MLmodel folder or models:/NAME/VERSION: "
            "mlflow), "
            "or module:attribute with --flavor python."
        ),
    ] = None,
    flavor: Annotated[
        str | None,
        typer.Option(
            help="Model adapter: sklearn, onnx, torchscript, keras, mlflow or python "
            "(default: from the path)."
        ),
    ] = None,
    classes: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated class names of a torchscript, keras or mlflow model's "
            "output columns, in order (those files do not record them; default 0, 1, ...)."
        ),
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
    drift_window: Annotated[
        float | None,
        typer.Option(
            "--drift-window",
            metavar="SECONDS",
            help="Live drift window length (drift.window_seconds, default 3600).",
        ),
    ] = None,
    drift_interval: Annotated[
        float | None,
        typer.Option(
            "--drift-interval",
            metavar="SECONDS",
            help="How often the current window is judged "
            "(drift.evaluation_interval_seconds, default 60).",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=256,
            help="Worker processes (server.workers, default 1); /metrics on any sums them all.",
        ),
    ] = None,
) -> None:
    """Serve models behind a monitored HTTP API.

    With --model and --reference no config file is needed: the schema is inferred and
    predictions go to ./inferwatch.db.
    """
    import uvicorn

    try:  # the connection guard is a subclass of uvicorn's httptools protocol
        import httptools  # noqa: F401
    except ImportError:
        fail(
            "inferwatch serve needs httptools (header and body timeouts and the connection "
            "limit live in its protocol): pip install httptools"
        )
    from inferwatch.config import check_settings, load_settings, mask_url
    from inferwatch.server import build_app, check_bind

    overrides = _overrides(
        model,
        reference,
        schema,
        target,
        prediction,
        name,
        host,
        port,
        store,
        task,
        drift_window=drift_window,
        drift_interval=drift_interval,
        flavor=flavor,
        classes=classes,
    )
    if workers is not None:
        overrides.setdefault("server", {})["workers"] = workers
    settings = load_settings(None if model is not None else default_config(config), overrides)
    if not settings.models:
        fail(
            "no model to serve: give --config FILE with a 'models' list, or --model and --reference"
        )
    check_bind(settings.server.host, settings.auth)
    # the checks `config validate` makes (the models themselves are loaded once, below)
    problems = check_settings(settings, load_models=False)
    if problems:
        where = f" in {config}" if config is not None and model is None else ""
        fail(f"invalid configuration{where}:\n  " + "\n  ".join(problems))
    level = settings.logging.level
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":  # Alembic's INFO lines (plugins, "Context impl") say nothing a user needs
        logging.getLogger("alembic").setLevel(logging.WARNING)
    n_workers = settings.server.workers
    # N workers: each builds its own app in its own process (server._workers)
    application = build_app(settings) if n_workers == 1 else None
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
    open_health = settings.auth.open_health or not settings.auth.enabled
    if n_workers > 1:
        from inferwatch.server._workers import run_workers

        err_console.print(f"{n_workers} worker processes", highlight=False)
        run_workers(settings, level, n_workers)
        return
    server = uvicorn.Server(
        _uvicorn_config(application, settings.server, level, open_health=open_health)[0]
    )
    _stop_gracefully_on_every_signal(server)
    # what start-up made (models, references, bins, imported modules) lives as long as the
    # process: out of the collector's generations, a full collection no longer walks it
    # (the alert cycle's pauses, bench/alert_engine.py)
    gc.collect()
    gc.freeze()
    server.run()


def _uvicorn_config(
    application: Any, server: ServerSettings, level: str, *, open_health: bool = True
) -> tuple[uvicorn.Config, ConnectionGuard, QuietLogFilter]:
    """uvicorn's settings: httptools under the connection guard, uvloop when installed.

    The guard (``server._connections``) closes connections whose headers or body do not
    arrive in time, caps open connections, and counts what it closes in the app's
    metrics; a filter on uvicorn's and asyncio's loggers keeps a flood of bad
    connections to a few lines and a summary.  h11 is not offered: its protocol has no
    such limits.  ``open_health``: ``/healthz`` needs no API key, so the guard may answer
    it without the app.  Returns the guard and the log filter too (tests read them).
    """
    import uvicorn

    from inferwatch.server._connections import (
        ConnectionGuard,
        ConnectionLimits,
        QuietLogFilter,
        fit_to_fd_limit,
    )

    limits = ConnectionLimits(
        header_timeout=server.header_timeout_seconds,
        body_timeout=server.body_timeout_seconds,
        max_connections=fit_to_fd_limit(server.max_connections),
    )
    metrics = getattr(application.state, "metrics", None)
    closed, open_now = metrics.connection_metrics() if metrics is not None else (None, None)
    quiet = QuietLogFilter()
    guard = ConnectionGuard(
        limits,
        closed=closed,
        open_gauge=open_now,
        on_sweep=quiet.flush,
        fast_health=open_health,
    )
    config = uvicorn.Config(
        application,
        host=server.host,
        port=server.port,
        http=guard.protocol(),
        # no WebSocket routes: an upgraded connection would leave the guard's count behind
        ws="none",
        log_level=level.lower(),
        access_log=server.access_log,
        # uvicorn only hands it to loop.call_later: a float works
        timeout_keep_alive=server.keepalive_timeout_seconds,  # type: ignore[arg-type]
        timeout_graceful_shutdown=30,
    )
    quiet.attach()  # after uvicorn configured its loggers (uvicorn.Config does, above)
    return config, guard, quiet


#: Signals that stop the server.  uvicorn handles SIGINT and SIGTERM; the default action of
#: SIGHUP (a closed terminal, a supervisor's stop) and SIGQUIT is to die on the spot, which
#: lost the write-behind buffer (7.6% of answered predictions in a test under load).
_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGHUP", "SIGQUIT") if hasattr(signal, name)
)


def _stop_gracefully_on_every_signal(server: Any) -> None:
    """Route every catchable stop signal to uvicorn's graceful shutdown.

    In-flight requests finish and the lifespan drains the prediction log, whatever the
    signal.  uvicorn re-raises SIGINT/SIGTERM after shutting down; a no-op handler makes
    that clean shutdown exit 0, as gunicorn does, instead of dying by the signal.
    SIGKILL cannot be caught: it loses what the write-behind buffer holds (README).
    """

    def stop(signum: int, frame: Any) -> None:
        server.handle_exit(signal.SIGTERM, frame)

    for signum in _STOP_SIGNALS:
        signal.signal(signum, stop)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
