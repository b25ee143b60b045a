"""``k8s/*.yaml``: run the server on Kubernetes, scraped and alerted on by the Prometheus
Operator.

Files (all under ``k8s/``, applied together with ``kubectl apply -k k8s/``):

- ``configmap.yaml``: the config file, without its secrets (``store.url`` and
  ``auth.keys`` come from the Secret, see below), mounted read-only at
  :data:`CONFIG_DIR`;
- ``deployment.yaml``: the server; readiness on ``/readyz`` (bounded, store-aware: a pod
  whose store is unreachable leaves the Service), liveness on ``/healthz`` (the process
  answers; never the store, which would restart every pod when the database blinks), a
  startup probe that gives model loading time, and a termination grace period longer than
  everything a graceful stop may wait for (:func:`shutdown_seconds`);
- ``service.yaml``: a ClusterIP Service on the named port ``http``;
- ``servicemonitor.yaml`` (``monitoring.coreos.com/v1``): scrape ``/metrics``, with the
  Secret's ``metrics-token`` as bearer token when the config guards ``/metrics``;
- ``prometheusrule.yaml``: the rule groups ``generate rules`` writes, unchanged;
- ``kustomization.yaml``: the list of the above.

Secrets are never written.  The Deployment reads them from a Secret the user creates
(:data:`SECRET_KEYS` names its keys; a note prints the ``kubectl create secret`` line):
``store-url`` → ``INFERWATCH_STORE__URL``, ``auth-keys`` (the JSON list of
``auth.keys``) → ``INFERWATCH_AUTH__KEYS``, and each receiver secret the config reads from
an environment variable (``url_env: SLACK_URL``) under that variable's name.  A receiver
secret written inline in the config would land in the ConfigMap in clear: refused.
Environment variables win over the YAML file (the config's precedence), so the pod's
values are the Secret's.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import yaml

from inferwatch.generate._model import PLACEHOLDER_IMAGE, GenerateError, GenerateOptions
from inferwatch.generate._rules import rule_files
from inferwatch.rules import format_duration

if TYPE_CHECKING:
    from inferwatch.config import Settings

__all__ = [
    "CONFIG_DIR",
    "PLACEHOLDER_IMAGE",
    "SECRET_KEYS",
    "k8s_manifests",
    "shutdown_seconds",
]

#: where the ConfigMap is mounted in the pod
CONFIG_DIR: Final = "/etc/inferwatch"
CONFIG_FILE: Final = "inferwatch.yaml"
#: a writable folder for what the server keeps on local disk (a SQLite file, a spill file)
DATA_DIR: Final = "/var/lib/inferwatch"
#: the Secret's keys and the environment variables they become
SECRET_KEYS: Final = {
    "store-url": "INFERWATCH_STORE__URL",
    "auth-keys": "INFERWATCH_AUTH__KEYS",
}
METRICS_TOKEN_KEY: Final = "metrics-token"  # noqa: S105 (a key of the Secret)
#: seconds the pod keeps serving after it is marked for deletion, before SIGTERM: the
#: endpoints controller and the kube-proxies take that long to stop sending it requests
PRE_STOP_SECONDS: Final = 5
#: headroom on top of the stop sequence (the interpreter's exit, a slow store close)
GRACE_MARGIN_SECONDS: Final = 10
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$")
_RECEIVER_SECRETS: Final = ("url", "routing_key", "password")


def shutdown_seconds(settings: Settings | None = None) -> float:
    """The longest a graceful stop of ``inferwatch serve`` may take, in seconds.

    uvicorn's graceful shutdown (open requests finish), then the lifespan's steps in order,
    each bounded: the model workers, the alert engine, the evaluator, and the prediction
    log's drain into the store (``store.drain_timeout_seconds``, plus one store call
    already in flight: ``store.statement_timeout_seconds`` + 1 s).  The pod's grace
    period must exceed it, or the kubelet's SIGKILL cuts the drain, and what it had not
    written waits in the spill file on a volume that goes with the pod.
    """
    from inferwatch.config import StoreSettings
    from inferwatch.server._app import (
        ALERTING_STOP_SECONDS,
        EVALUATOR_STOP_SECONDS,
        WORKER_STOP_SECONDS,
    )

    store = settings.store if settings is not None else StoreSettings()
    graceful = 30.0  # cli/_serve.py: uvicorn.Config(timeout_graceful_shutdown=30)
    drain = store.drain_timeout_seconds + store.statement_timeout_seconds + 1.0
    return graceful + WORKER_STOP_SECONDS + ALERTING_STOP_SECONDS + EVALUATOR_STOP_SECONDS + drain


def _config_text(settings: Settings, options: GenerateOptions) -> tuple[str, list[str]]:
    """The config file for the ConfigMap: the user's YAML less ``store.url`` and
    ``auth.keys`` (the Secret's), and the receiver secret variables it reads."""
    raw: dict[str, Any] = {}
    if options.config_path is not None:
        try:
            loaded = yaml.safe_load(Path(options.config_path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise GenerateError(f"--config: cannot read {options.config_path}: {exc}") from None
        raw = copy.deepcopy(loaded) if isinstance(loaded, dict) else {}
    if not raw:  # no file: the effective settings, masked (nothing secret in them then)
        raw = settings.masked()
    store = raw.get("store")
    if isinstance(store, dict):
        store.pop("url", None)
        if not store:
            raw.pop("store")
    auth = raw.get("auth")
    if isinstance(auth, dict):
        auth.pop("keys", None)
        if not auth:
            raw.pop("auth")
    env_names: list[str] = []
    receivers = (raw.get("alerting") or {}).get("receivers") or []
    for i, receiver in enumerate(receivers):
        if not isinstance(receiver, dict):
            continue
        for key in _RECEIVER_SECRETS:
            if receiver.get(key) is not None:
                raise GenerateError(
                    f"alerting.receivers[{i}].{key}: written inline, it would land in the "
                    f"ConfigMap in clear; give it as {key}_env (the Deployment reads that "
                    f"variable from the Secret) or {key}_file (a file you mount)"
                )
            env = receiver.get(f"{key}_env")
            if isinstance(env, str) and env:
                env_names.append(env)
    text = yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=100)
    return text, list(dict.fromkeys(env_names))


class _Block(str):
    """A multi-line string YAML writes as a literal block (``|``), as a person would."""


def _block(dumper: yaml.SafeDumper, data: _Block) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style="|")


yaml.SafeDumper.add_representer(_Block, _block)


def _labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "inferwatch", "app.kubernetes.io/instance": name}


def _meta(name: str, options: GenerateOptions) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if options.k8s_namespace:
        meta["namespace"] = options.k8s_namespace
    meta["labels"] = _labels(options.k8s_name)
    return meta


def _secret_env(env: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": env, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _check_options(settings: Settings, options: GenerateOptions) -> int:
    for what, value in (("--name", options.k8s_name), ("--secret", options.k8s_secret)):
        if not _NAME.match(value):
            raise GenerateError(
                f"{what}: {value!r} is not a Kubernetes name (lowercase letters, digits "
                "and '-', at most 52 characters, starting and ending alphanumeric)"
            )
    if options.k8s_namespace is not None and not _NAME.match(options.k8s_namespace):
        raise GenerateError(f"--namespace: {options.k8s_namespace!r} is not a Kubernetes name")
    if options.replicas < 1:
        raise GenerateError(f"--replicas must be >= 1, got {options.replicas}")
    if not options.image.strip() or any(c.isspace() for c in options.image):
        raise GenerateError(f"--image: {options.image!r} is not an image reference")
    port = settings.server.port
    if port == 0:
        raise GenerateError(
            "server.port: 0 picks a free port at start, which the Service and the probes "
            "cannot know; set server.port"
        )
    if settings.auth.enabled and not settings.auth.open_health:
        raise GenerateError(
            "auth.open_health: false makes /healthz and /readyz want an API key, which the "
            "kubelet's probes cannot send; set auth.open_health: true for Kubernetes"
        )
    return port


def k8s_manifests(
    settings: Settings, options: GenerateOptions
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """``{path under the output folder: manifest}`` and the notes for the user."""
    port = _check_options(settings, options)
    name, ns, secret = options.k8s_name, options.k8s_namespace, options.k8s_secret
    notes: list[str] = []
    config_text, receiver_envs = _config_text(settings, options)
    guarded = settings.auth.enabled and not settings.auth.open_metrics
    config_name = f"{name}-config"
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(config_name, options),
        "data": {CONFIG_FILE: _Block(config_text)},
    }
    # a changed config changes the pod template, so `kubectl apply` rolls the pods
    checksum = hashlib.sha256(config_text.encode()).hexdigest()
    env = [
        # the pod's address is not loopback: the Service reaches it on the pod IP
        {"name": "INFERWATCH_SERVER__HOST", "value": "0.0.0.0"},
        *(_secret_env(var, secret, key) for key, var in SECRET_KEYS.items()),
        *(_secret_env(var, secret, var) for var in receiver_envs),
    ]
    grace = math.ceil(PRE_STOP_SECONDS + shutdown_seconds(settings) + GRACE_MARGIN_SECONDS)
    http_get = {"port": "http", "scheme": "HTTP"}
    container = {
        "name": "inferwatch",
        "image": options.image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["serve", "--config", f"{CONFIG_DIR}/{CONFIG_FILE}"],
        "workingDir": DATA_DIR,
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": env,
        # model loading and the reference's bins happen before the port opens
        "startupProbe": {
            "httpGet": {"path": "/healthz", **http_get},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 60,
        },
        # /readyz answers within a second whatever the store does; failing it only takes
        # the pod out of the Service's endpoints
        "readinessProbe": {
            "httpGet": {"path": "/readyz", **http_get},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
            "successThreshold": 1,
        },
        # liveness never asks the store: a database outage must not restart every pod
        "livenessProbe": {
            "httpGet": {"path": "/healthz", **http_get},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        },
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}},
        "resources": {
            "requests": {"cpu": options.cpu_request, "memory": options.memory_request},
            "limits": {"memory": options.memory_limit},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "data", "mountPath": DATA_DIR},
        ],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, options),
        "spec": {
            "replicas": options.replicas,
            "selector": {"matchLabels": _labels(name)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": _labels(name),
                    "annotations": {"inferwatch.dev/config-sha256": checksum},
                },
                "spec": {
                    "terminationGracePeriodSeconds": grace,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": config_name}},
                        {"name": "data", "emptyDir": {}},
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, options),
        "spec": {
            "type": "ClusterIP",
            "selector": _labels(name),
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    endpoint: dict[str, Any] = {
        "port": "http",
        "path": "/metrics",
        "scheme": "http",
        "interval": format_duration(options.scrape_interval),
    }
    if guarded:
        endpoint["authorization"] = {
            "type": "Bearer",
            "credentials": {"name": secret, "key": METRICS_TOKEN_KEY},
        }
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _meta(name, options),
        "spec": {"selector": {"matchLabels": _labels(name)}, "endpoints": [endpoint]},
    }
    files: dict[str, dict[str, Any]] = {
        "k8s/configmap.yaml": configmap,
        "k8s/deployment.yaml": deployment,
        "k8s/service.yaml": service,
        "k8s/servicemonitor.yaml": monitor,
    }
    groups: list[dict[str, Any]] = []
    rules, _ = rule_files(settings)
    for path, content in rules.items():
        if not path.endswith("_test.yml"):
            groups += content.get("groups", [])
    if groups:
        files["k8s/prometheusrule.yaml"] = {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": _meta(f"{name}-rules", options),
            "spec": {"groups": groups},
        }
    else:
        notes.append(
            "k8s: the config has no alert rules, so no prometheusrule.yaml (set "
            "alerting.default_pack: true, alerting.rules or alerting.slos)"
        )
    files["k8s/kustomization.yaml"] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [path.removeprefix("k8s/") for path in files],
    }
    keys = ["--from-literal=store-url='postgresql+psycopg://USER:PASS@HOST/DB'"]
    keys.append("--from-file=auth-keys=keys.json")
    if guarded:
        keys.append(f"--from-literal={METRICS_TOKEN_KEY}='A KEY WITH THE read ROLE'")
    keys += [f"--from-literal={var}='...'" for var in receiver_envs]
    where = f" -n {ns}" if ns else ""
    notes.append(
        f"k8s: create the Secret the Deployment reads before applying: kubectl{where} "
        f"create secret generic {secret} {' '.join(keys)} (keys.json: the auth.keys list "
        f'as JSON, [{{"name": ..., "key_sha256": ..., "roles": [...]}}]; the pod listens '
        "on its pod IP, which needs API keys)"
    )
    if options.image == PLACEHOLDER_IMAGE:
        notes.append(
            "k8s: --image not given; deployment.yaml names a placeholder image: build one "
            "with inferwatch and your model files, and pass --image"
        )
    if settings.store.url.split(":", 1)[0].startswith("sqlite"):
        notes.append(
            "k8s: store.url is SQLite; in a pod its file lives on an emptyDir and is lost "
            "with the pod, and replicas cannot share it: use PostgreSQL (the Secret's "
            "store-url)"
        )
    notes.append(
        f"k8s: relative paths in the config (models[].path, reference) are read from "
        f"{CONFIG_DIR} in the pod; give absolute paths to files in the image"
    )
    notes.append(
        "k8s: kube-prometheus-stack picks ServiceMonitors and PrometheusRules by its "
        "release label; add it to their metadata.labels if yours selects by label"
    )
    return files, notes
