"""What a generation takes (:class:`GenerateOptions`) and gives (:class:`Bundle`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from inferwatch.errors import ConfigError

__all__ = ["TARGETS", "Bundle", "GenerateError", "GenerateOptions", "Target"]

Target = Literal["prometheus", "rules", "alertmanager", "grafana", "k8s"]
#: what ``inferwatch generate`` can write, in the order it writes them
TARGETS: Final[tuple[Target, ...]] = ("prometheus", "rules", "alertmanager", "grafana", "k8s")

#: the Alertmanager that cannot read a webhook URL from a file (Debian 12's is 0.25)
WEBHOOK_URL_FILE_SINCE: Final = (0, 26)
#: the k8s image when ``--image`` is not given: it names itself as a placeholder, so a pod
#: created from it fails with an ErrImagePull that says what to change
PLACEHOLDER_IMAGE: Final = "REPLACE-ME/inferwatch-with-your-model:latest"


class GenerateError(ConfigError):
    """The config cannot be written as asked (a secret that would land in clear, a port
    Prometheus cannot scrape, a file that exists); the message says what to change."""


@dataclass(frozen=True)
class GenerateOptions:
    """The choices a config does not hold, all with a default that works on one host.

    ``target`` is where Prometheus scrapes the server (default: ``server.host`` and
    ``server.port``, a wildcard host read as loopback); ``pushgateway`` its Pushgateway
    (None: no such job); ``api_key_file`` the file holding a key with the ``read`` role,
    used when the config guards ``/metrics`` (relative: to ``prometheus.yml``'s folder);
    ``alertmanager_version`` the oldest Alertmanager the file must load in (0.25: a
    webhook URL cannot come from a file, so it is refused unless ``webhook_url_in_clear``).
    """

    config_path: Path | None = None
    target: str | None = None
    pushgateway: str | None = "127.0.0.1:9091"
    scrape_interval: float = 15.0
    api_key_file: str = "secrets/inferwatch_api_key"
    alertmanager: str | None = None
    alertmanager_version: tuple[int, int] = (0, 25)
    webhook_url_in_clear: bool = False
    # grafana: where Grafana reaches Prometheus (None: the config's prometheus.url, else
    # 127.0.0.1:9090), the tracing datasource (None: Tempo on the OTLP endpoint's host)
    # and the dashboards folder as Grafana sees it (None: grafana/dashboards, relative)
    prometheus_url: str | None = None
    tracing_url: str | None = None
    grafana_dashboards_path: str | None = None
    # k8s: the image, the object names and the pod's resources (``generate._k8s``)
    image: str = PLACEHOLDER_IMAGE
    k8s_name: str = "inferwatch"
    k8s_namespace: str | None = None
    k8s_secret: str = "inferwatch"  # noqa: S105 (the Secret object's name)
    replicas: int = 1
    cpu_request: str = "500m"
    memory_request: str = "512Mi"
    memory_limit: str = "2Gi"


@dataclass
class Bundle:
    """The files to write (path relative to the output folder -> text) and the notes
    the user must act on (a secret file to create, a setting with no equivalent)."""

    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
