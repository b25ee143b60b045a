"""``inferwatch generate [WHAT...] --config F --out DIR``: monitoring as code.

Reads the config exactly as ``serve`` does and writes ``prometheus.yml``,
``rules/*.yml`` (with their ``promtool test rules`` files), ``alertmanager.yml``,
``grafana/`` (dashboards and provisioning) and ``k8s/*.yaml`` (Deployment, Service,
ServiceMonitor, PrometheusRule) (see :mod:`inferwatch.generate`); one line per file
written, then the notes the user must act on (a secret file to create).  A bad config or
usage exits 2, naming the key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from inferwatch.cli._app import ConfigOpt, app, console, default_config, err_console, fail

__all__ = ["generate_command"]

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?$")


def _version(text: str) -> tuple[int, int]:
    m = _VERSION.match(text.strip())
    if m is None:
        fail(f"--alertmanager-version: {text!r} is not a version like 0.25 or 0.27.0")
    return int(m.group(1)), int(m.group(2))


def _seconds(text: str, option: str) -> float:
    from inferwatch.rules import parse_duration

    try:
        return float(text) if text.replace(".", "", 1).isdigit() else parse_duration(text)
    except ValueError as exc:
        fail(f"{option}: {exc}")


@app.command("generate")
def generate_command(
    what: Annotated[
        list[str] | None,
        typer.Argument(
            help="What to write: prometheus, rules, alertmanager, grafana, k8s (none: all).",
            show_default=False,
        ),
    ] = None,
    config: ConfigOpt = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to write into (created if missing).")
    ] = Path("monitoring"),
    force: Annotated[
        bool, typer.Option("--force", help="Replace files that exist (default: refuse).")
    ] = False,
    target: Annotated[
        str | None,
        typer.Option(
            help="Where Prometheus scrapes the server, HOST:PORT "
            "(default: server.host:server.port, a wildcard host read as 127.0.0.1)."
        ),
    ] = None,
    pushgateway: Annotated[
        str,
        typer.Option(help="The Pushgateway Prometheus scrapes, HOST:PORT ('none': no job)."),
    ] = "127.0.0.1:9091",
    alertmanager: Annotated[
        str | None,
        typer.Option(
            help="The Alertmanager Prometheus alerts, HOST:PORT (default: the config's "
            "alertmanager receiver, else 127.0.0.1:9093)."
        ),
    ] = None,
    scrape_interval: Annotated[
        str, typer.Option(help="Prometheus' scrape interval (15s).")
    ] = "15s",
    api_key_file: Annotated[
        str,
        typer.Option(
            help="File with an API key (read role) Prometheus sends when /metrics is "
            "guarded (relative: to prometheus.yml's folder)."
        ),
    ] = "secrets/inferwatch_api_key",
    alertmanager_version: Annotated[
        str,
        typer.Option(help="Oldest Alertmanager the file must load in (0.25: no webhook url_file)."),
    ] = "0.25",
    webhook_url_in_clear: Annotated[
        bool,
        typer.Option(
            "--webhook-url-in-clear",
            help="With Alertmanager 0.25, write webhook URLs into alertmanager.yml "
            "(only for URLs that are not secrets).",
        ),
    ] = False,
    prometheus_url: Annotated[
        str | None,
        typer.Option(
            help="grafana: where Grafana queries Prometheus (default: the config's "
            "prometheus.url, else http://127.0.0.1:9090)."
        ),
    ] = None,
    tracing_url: Annotated[
        str | None,
        typer.Option(
            help="grafana: the Tempo datasource exemplars link to, written when "
            "tracing.otlp_endpoint is set (default: the endpoint's host, port 3200)."
        ),
    ] = None,
    grafana_dashboards_path: Annotated[
        str | None,
        typer.Option(
            help="grafana: the dashboards folder as Grafana sees it, for the provisioning "
            "file (default: OUT/grafana/dashboards, absolute)."
        ),
    ] = None,
    image: Annotated[
        str | None,
        typer.Option(help="k8s: the container image with inferwatch and your model files."),
    ] = None,
    name: Annotated[
        str, typer.Option(help="k8s: name of the Deployment, Service and the rest.")
    ] = "inferwatch",
    namespace: Annotated[
        str | None, typer.Option(help="k8s: namespace (default: kubectl's current one).")
    ] = None,
    secret: Annotated[
        str,
        typer.Option(
            help="k8s: the Secret holding store-url, auth-keys (and metrics-token when "
            "/metrics is guarded); never written, the notes say how to create it."
        ),
    ] = "inferwatch",  # noqa: S107 (the Secret object's name, not a secret)
    replicas: Annotated[int, typer.Option(help="k8s: pods of the Deployment.")] = 1,
    cpu_request: Annotated[str, typer.Option(help="k8s: the pod's CPU request.")] = "500m",
    memory_request: Annotated[str, typer.Option(help="k8s: the pod's memory request.")] = "512Mi",
    memory_limit: Annotated[str, typer.Option(help="k8s: the pod's memory limit.")] = "2Gi",
) -> None:
    """Write Prometheus, rule (+ promtool tests), Alertmanager and Kubernetes files from the
    config."""
    from inferwatch.config import load_settings
    from inferwatch.generate import TARGETS, GenerateOptions, generate, write_bundle

    unknown = [w for w in what or [] if w not in TARGETS]
    if unknown:
        fail(f"unknown target(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    path = default_config(config)
    if path is None:
        fail("no configuration: pass --config (or run where inferwatch.yaml is)")
    settings = load_settings(path)
    options = GenerateOptions(
        config_path=path,
        target=target,
        pushgateway=None if pushgateway.strip().lower() in ("", "none") else pushgateway,
        scrape_interval=_seconds(scrape_interval, "--scrape-interval"),
        api_key_file=api_key_file,
        alertmanager=alertmanager,
        alertmanager_version=_version(alertmanager_version),
        webhook_url_in_clear=webhook_url_in_clear,
        prometheus_url=prometheus_url,
        tracing_url=tracing_url,
        grafana_dashboards_path=grafana_dashboards_path
        or str((out / "grafana" / "dashboards").resolve()),
        k8s_name=name,
        k8s_namespace=namespace,
        k8s_secret=secret,
        replicas=replicas,
        cpu_request=cpu_request,
        memory_request=memory_request,
        memory_limit=memory_limit,
        image=image if image is not None else GenerateOptions.image,
    )
    bundle = generate(settings, what or (), options)
    for written in write_bundle(bundle, out, force=force):
        console.print(f"wrote {written}", highlight=False, soft_wrap=True)
    for note in bundle.notes:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
