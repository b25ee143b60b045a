"""``prometheus.yml``: scrape the server and the Pushgateway, load the rules, send alerts
to Alertmanager."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from inferwatch.generate._model import GenerateError, GenerateOptions
from inferwatch.rules import format_duration

if TYPE_CHECKING:
    from inferwatch.config import Settings

__all__ = ["alertmanager_address", "parse_address", "prometheus_config", "scrape_target"]

#: Prometheus' default scrape timeout; never longer than the scrape interval
_SCRAPE_TIMEOUT = 10.0


def parse_address(text: str, what: str) -> tuple[str, str, str]:
    """``(scheme, host:port, path)`` from ``host:port`` or ``http(s)://host:port/path``,
    a GenerateError naming ``what`` when it is neither."""
    raw = text.strip()
    url = urlsplit(raw if "://" in raw else f"http://{raw}")
    if url.scheme not in ("http", "https"):
        raise GenerateError(f"{what}: {text!r} is not http(s)://HOST:PORT or HOST:PORT")
    try:
        port = url.port
    except ValueError:
        port = None
    if not url.hostname or port is None or url.username or url.query or url.fragment:
        raise GenerateError(f"{what}: {text!r} is not HOST:PORT (a port is required)")
    return url.scheme, url.netloc, url.path.rstrip("/")


def _host(host: str, port: int) -> str:
    """``host:port`` Prometheus can reach: a wildcard bind address is read as loopback
    (the server listens there too), an IPv6 literal is bracketed."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return f"{host}:{port}"
    if ip.is_unspecified:
        ip = ipaddress.ip_address("::1" if ip.version == 6 else "127.0.0.1")
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def scrape_target(settings: Settings, options: GenerateOptions) -> tuple[str, str]:
    """``(scheme, host:port)`` of the server Prometheus scrapes."""
    if options.target is not None:
        scheme, hostport, _ = parse_address(options.target, "--target")
        return scheme, hostport
    if settings.server.port == 0:
        raise GenerateError(
            "server.port: 0 picks a free port at start, which Prometheus cannot know; "
            "set server.port or pass --target HOST:PORT"
        )
    return "http", _host(settings.server.host, settings.server.port)


def alertmanager_address(settings: Settings, options: GenerateOptions) -> tuple[str, str, str]:
    """``(scheme, host:port, path prefix)`` of the Alertmanager Prometheus alerts: the
    ``--alertmanager`` option, else the config's ``alertmanager`` receiver, else the
    default local one."""
    if options.alertmanager is not None:
        return parse_address(options.alertmanager, "--alertmanager")
    for i, receiver in enumerate(settings.alerting.receivers):
        if receiver.type == "alertmanager":
            return parse_address(receiver.url, f"alerting.receivers[{i}].url")
    return "http", "127.0.0.1:9093", ""


def prometheus_config(
    settings: Settings, options: GenerateOptions, rule_files: Sequence[str]
) -> tuple[dict[str, Any], list[str]]:
    """The ``prometheus.yml`` data and the notes for the user.

    ``rule_files`` are paths relative to the output folder, where Prometheus resolves
    them (relative to its config file).  Listed one by one, not as ``rules/*.yml``, which
    would also load the ``*_test.yml`` files beside them.
    """
    notes: list[str] = []
    interval = options.scrape_interval
    if interval <= 0:
        raise GenerateError("--scrape-interval must be positive")
    scheme, target = scrape_target(settings, options)
    job: dict[str, Any] = {
        "job_name": "inferwatch",
        "metrics_path": "/metrics",
        "scheme": scheme,
        "static_configs": [{"targets": [target]}],
    }
    auth = settings.auth
    if auth.enabled and not auth.open_metrics:
        # /metrics wants a key with the read role; the key itself lives in a file the
        # deployment provides (Prometheus reads it at each scrape)
        job["authorization"] = {"type": "Bearer", "credentials_file": options.api_key_file}
        notes.append(
            f"prometheus.yml: auth.open_metrics is false, so Prometheus sends the API key "
            f"in {options.api_key_file!r} (relative to prometheus.yml's folder): create it "
            "with a key that has the read role (promtool check config wants it to exist)"
        )
    jobs = [job]
    if options.pushgateway:
        pg_scheme, pg_target, pg_path = parse_address(options.pushgateway, "--pushgateway")
        # honor_labels: a pushed job's own job/instance labels win over the gateway's
        jobs.append(
            {
                "job_name": "pushgateway",
                "honor_labels": True,
                "metrics_path": f"{pg_path}/metrics",
                "scheme": pg_scheme,
                "static_configs": [{"targets": [pg_target]}],
            }
        )
    am_scheme, am_target, am_path = alertmanager_address(settings, options)
    alertmanager: dict[str, Any] = {
        "scheme": am_scheme,
        "static_configs": [{"targets": [am_target]}],
    }
    if am_path:
        alertmanager["path_prefix"] = am_path
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": format_duration(interval),
            "scrape_timeout": format_duration(min(interval, _SCRAPE_TIMEOUT)),
            "evaluation_interval": format_duration(settings.alerting.evaluation_interval),
        },
        "rule_files": list(rule_files),
        "alerting": {"alertmanagers": [alertmanager]},
        "scrape_configs": jobs,
    }
    return config, notes
