"""``inferwatch demo``: train a model, serve it, send it traffic, and show what is recorded."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from inferwatch.cli._app import app, console, err_console, fail

__all__ = ["demo"]

SUMMARY_EVERY = 5.0


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _start_server(application: Any, port: int) -> tuple[Any, threading.Thread, int]:
    import uvicorn

    config = uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="inferwatch-demo-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            fail(f"the server did not start on 127.0.0.1:{port}")
        time.sleep(0.05)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, int(bound)


@app.command()
def demo(
    duration: Annotated[
        float | None,
        typer.Option(help="Stop after this many seconds (default: run until Ctrl-C)."),
    ] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 8000,
    workdir: Annotated[
        Path,
        typer.Option(help="Where the config, model, reference data and SQLite store go."),
    ] = Path("inferwatch-demo"),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the final summary as one JSON line.")
    ] = False,
    rate: Annotated[float, typer.Option(help="Requests per second to send.")] = 20.0,
    drift_after: Annotated[
        float | None,
        typer.Option(help="Seconds before inputs start to drift (default: half the duration)."),
    ] = None,
    alert_webhook: Annotated[
        str | None,
        typer.Option(
            help="Also send the demo's alerts to this URL (Alertmanager's webhook payload)."
        ),
    ] = None,
) -> None:
    """Train a demo churn model, serve it on 127.0.0.1 and send it realistic traffic."""
    from inferwatch.config import load_settings
    from inferwatch.demo import DEMO_MODEL, TrafficGenerator, prepare_workdir
    from inferwatch.server import build_app
    from inferwatch.store import open_store

    if duration is not None and duration <= 0:
        fail("--duration must be positive")
    if rate <= 0:
        fail("--rate must be positive")
    if alert_webhook is not None and not alert_webhook.startswith(("http://", "https://")):
        fail(f"--alert-webhook must be an http:// or https:// URL, got {alert_webhook!r}")
    if port != 0 and not _port_free(port):
        err_console.print(f"port {port} is busy; using a free port instead", highlight=False)
        port = 0
    workdir = workdir.resolve()
    err_console.print(f"preparing {workdir} (training the demo model) ...", highlight=False)
    config_path = prepare_workdir(workdir, port=port, alert_webhook=alert_webhook)
    settings = load_settings(config_path)
    application = build_app(settings)
    server, thread, bound = _start_server(application, port)
    base = f"http://127.0.0.1:{bound}"
    if drift_after is None:
        drift_after = duration / 2 if duration else 30.0
    traffic = TrafficGenerator(base, DEMO_MODEL, rate=rate, drift_after=drift_after)
    sender = threading.Thread(target=traffic.run, name="inferwatch-demo-traffic", daemon=True)
    _print_where(base, workdir, settings.store.url, drift_after)

    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    store = open_store(settings.store.url)
    started = time.monotonic()
    sender.start()
    try:
        next_summary = started + SUMMARY_EVERY
        while not stop.is_set():
            now = time.monotonic()
            if duration is not None and now - started >= duration:
                break
            if now >= next_summary:
                _print_running(now - started, traffic.snapshot(), store.count_predictions())
                next_summary += SUMMARY_EVERY
            stop.wait(0.2)
    finally:
        traffic.stop.set()
        sender.join(15)
        server.should_exit = True
        thread.join(60)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    summary = traffic.snapshot()
    latest = store.latest_evaluations(DEMO_MODEL, "1")
    accuracy = store.query_evaluations(DEMO_MODEL, metric="accuracy", limit=200)
    realised = next((r["value"] for r in accuracy if r["test"] == "realised"), None)
    estimated = next((r["value"] for r in accuracy if r["test"] == "cbpe"), None)
    fired: dict[str, list[str]] = {}  # alert name -> its levels, in firing order
    for r in reversed(store.query_alert_history(limit=10_000)):
        levels = fired.setdefault(r["alertname"], [])
        if r["to_state"] == "firing" and r["severity"] not in levels:
            levels.append(r["severity"])
    summary.update(
        drifted_features=sorted(
            {r["feature"] for r in latest if r["metric"] == "drift" and r["status"] == "critical"}
        ),
        stored=store.count_predictions(),
        accuracy_realised=None if realised is None else round(realised, 4),
        accuracy_estimated=None if estimated is None else round(estimated, 4),
        alerts_fired=[f"{name} ({', '.join(levels)})" for name, levels in fired.items() if levels],
        duration_seconds=round(time.monotonic() - started, 1),
        workdir=str(workdir),
        store=settings.store.url,
        url=base,
    )
    store.close()
    _print_final(summary, as_json)
    if thread.is_alive():
        fail("the server did not shut down within 60 s")


def _print_where(base: str, workdir: Path, store_url: str, drift_after: float) -> None:
    err_console.print(
        f"""
[bold]inferwatch demo[/] is serving the churn model at [cyan]{base}[/]
  dashboard {base}/ui/  (open it in a browser)
  predict   POST {base}/v1/models/churn/predict
  metrics   {base}/metrics
  API docs  {base}/docs
  models    {base}/v1/models
  alerts    {base}/v1/alerts  (inferwatch alerts list --url {base})
  store     {store_url}
  config    {workdir / "inferwatch.yaml"}
Sending traffic (about 8% malformed); inputs start drifting after {drift_after:.0f}s.
Press Ctrl-C to stop.
""",
        highlight=False,
    )


def _print_running(elapsed: float, snap: dict[str, Any], stored: int) -> None:
    p50 = snap["latency_p50_ms"]
    err_console.print(
        f"[{elapsed:5.0f}s] requests {snap['requests']:>6}  accepted {snap['accepted']:>6}  "
        f"rejected {snap['rejected']:>5}  errors {snap['errors']:>3}  stored {stored:>6}  "
        f"p50 {p50 if p50 is not None else '-'} ms  drift {snap['drift']:.2f}  "
        f"labels {snap['labels_accepted']}",
        highlight=False,
    )


def _print_final(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, sort_keys=True), flush=True)
        return
    from rich.table import Table

    table = Table(title="inferwatch demo: final summary", show_header=False)
    for key in ("requests", "ok_requests", "accepted", "rejected", "errors", "stored"):
        table.add_row(key, str(summary[key]))
    table.add_row(
        "labels sent / accepted", f"{summary['labels_sent']} / {summary['labels_accepted']}"
    )
    table.add_row(
        "accuracy realised / estimated (newest window)",
        f"{summary['accuracy_realised']} / {summary['accuracy_estimated']}",
    )
    table.add_row("rejected by code", json.dumps(summary["rejected_by_code"]))
    table.add_row("drifted features (last window)", ", ".join(summary["drifted_features"]) or "-")
    table.add_row("alerts fired", ", ".join(summary["alerts_fired"]) or "-")
    table.add_row(
        "latency p50 / p95", f"{summary['latency_p50_ms']} / {summary['latency_p95_ms']} ms"
    )
    table.add_row("store", summary["store"])
    console.print(table)
