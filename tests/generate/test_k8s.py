"""``inferwatch generate k8s``: the manifests pass the Kubernetes schemas (offline), the
probes, ports, grace period and Secret references are right, no secret is written, and a
server started as the pod starts it (the ConfigMap's config, the Secret's variables)
answers the probes and guards /metrics as the ServiceMonitor expects.

Core kinds are validated with ``kubernetes-validate`` (it ships the Kubernetes JSON
schemas; strict: an unknown field fails).  The two Prometheus Operator CRDs are validated
with ``jsonschema`` against their ``openAPIV3Schema`` as the operator's CRD manifests
define them (v0.93.0, vendored under ``data/``), made strict the same way: every object
schema that lists its properties and does not preserve unknown fields refuses others.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from inferwatch.cli import app
from inferwatch.config import load_settings
from inferwatch.demo import prepare_workdir
from inferwatch.generate import GenerateError, GenerateOptions, generate, shutdown_seconds
from tests.cli.conftest import ServerProcess

K8S_VERSION = "1.37.0"
DATA = Path(__file__).parent / "data"
STORE_PASSWORD = "pg-Pa55word-never-written"
API_KEY = "k8s-inline-api-key-" + "x" * 12
CORE = ("ConfigMap", "Deployment", "Service")


def _strict(schema: Any) -> Any:
    """The schema with unknown fields refused where Kubernetes would prune them."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


CRDS = {
    kind: _strict(json.loads((DATA / f"{kind.lower()}.v1.json").read_text())["openAPIV3Schema"])
    for kind in ("ServiceMonitor", "PrometheusRule")
}


def validate(manifest: dict[str, Any]) -> None:
    """Raise when ``manifest`` does not pass its kind's schema."""
    kind = manifest["kind"]
    if kind in CORE:
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    elif kind in CRDS:
        jsonschema.Draft7Validator(CRDS[kind]).validate(manifest)
    elif kind == "Kustomization":
        assert set(manifest) == {"apiVersion", "kind", "resources"}
    else:
        raise AssertionError(f"no schema for {kind}")


def _config(tmp_path: Path, *, guarded: bool = True, **extra: Any) -> Path:
    config: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 8123},
        "store": {"url": f"postgresql+psycopg://iw:{STORE_PASSWORD}@db:5432/iw"},
        "auth": {
            "keys": [{"name": "ops", "key": API_KEY, "roles": ["read", "predict"]}],
            "open_metrics": not guarded,
        },
        "alerting": {
            "default_pack": True,
            "receivers": [{"name": "chat", "type": "slack", "url_env": "IW_K8S_SLACK"}],
        },
        **extra,
    }
    path = tmp_path / "inferwatch.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IW_K8S_SLACK", "https://hooks.slack.com/services/T/B/slack-s3cr3t")
    return _config(tmp_path)


def _k8s(config: Path, **options: Any) -> tuple[dict[str, dict[str, Any]], list[str]]:
    opts = GenerateOptions(config_path=config, **options)
    bundle = generate(load_settings(config), ["k8s"], opts)
    return {path: yaml.safe_load(text) for path, text in bundle.files.items()}, bundle.notes


def test_every_manifest_passes_its_schema(config: Path) -> None:
    files, _ = _k8s(config, image="registry.example.com/iw:1.0", k8s_namespace="ml")
    assert sorted(files) == [
        "k8s/configmap.yaml",
        "k8s/deployment.yaml",
        "k8s/kustomization.yaml",
        "k8s/prometheusrule.yaml",
        "k8s/service.yaml",
        "k8s/servicemonitor.yaml",
    ]
    for manifest in files.values():
        validate(manifest)
    kustomize = files["k8s/kustomization.yaml"]
    assert sorted(kustomize["resources"]) == sorted(
        p.removeprefix("k8s/") for p in files if p != "k8s/kustomization.yaml"
    )
    assert {m["metadata"]["namespace"] for p, m in files.items() if "metadata" in m} == {"ml"}


def test_the_validators_refuse_a_broken_manifest(config: Path) -> None:
    """The schema checks are not vacuous: a typo'd field or a wrong type fails each."""
    files, _ = _k8s(config)
    deployment = files["k8s/deployment.yaml"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["httpGet"]["pathh"] = "/readyz"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    service = files["k8s/service.yaml"]
    service["spec"]["ports"][0]["port"] = "http"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(service)
    monitor = files["k8s/servicemonitor.yaml"]
    monitor["spec"]["endpoints"][0]["bearerTokenFile"] = 3
    with pytest.raises(jsonschema.ValidationError):
        validate(monitor)
    monitor["spec"]["endpoints"][0].pop("bearerTokenFile")
    monitor["spec"]["endpoints"][0]["scrape_interval"] = "15s"  # Prometheus' name, not the CRD's
    with pytest.raises(jsonschema.ValidationError):
        validate(monitor)
    rule = files["k8s/prometheusrule.yaml"]
    rule["spec"]["groups"][0]["rules"][0]["for"] = 5
    with pytest.raises(jsonschema.ValidationError):
        validate(rule)


def test_probes_ports_and_grace_period(config: Path) -> None:
    files, _ = _k8s(config)
    pod = files["k8s/deployment.yaml"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["ports"] == [{"name": "http", "containerPort": 8123, "protocol": "TCP"}]
    ready, live = container["readinessProbe"], container["livenessProbe"]
    assert ready["httpGet"] == {"path": "/readyz", "port": "http", "scheme": "HTTP"}
    assert live["httpGet"] == {"path": "/healthz", "port": "http", "scheme": "HTTP"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    # /readyz answers within a second whatever the store does: the timeout leaves room
    assert ready["timeoutSeconds"] >= 2
    assert ready["periodSeconds"] <= 15
    # a store outage must not restart the pod: liveness tolerates longer than readiness
    assert (
        live["periodSeconds"] * live["failureThreshold"]
        > ready["periodSeconds"] * ready["failureThreshold"]
    )
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    settings = load_settings(config)
    assert pod["terminationGracePeriodSeconds"] > pre_stop + shutdown_seconds(settings)
    # uvicorn's graceful stop + the log's drain (store.drain_timeout_seconds, 30 s)
    assert shutdown_seconds(settings) >= 30 + settings.store.drain_timeout_seconds
    # a longer drain lengthens the grace period with it
    data = yaml.safe_load(config.read_text())
    data["store"]["drain_timeout_seconds"] = 300
    config.write_text(yaml.safe_dump(data))
    longer, _ = _k8s(config)
    grace = longer["k8s/deployment.yaml"]["spec"]["template"]["spec"]
    assert grace["terminationGracePeriodSeconds"] > 300 + 30
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    service = files["k8s/service.yaml"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert (
        service["spec"]["selector"]
        == files["k8s/deployment.yaml"]["spec"]["selector"]["matchLabels"]
    )
    assert (
        files["k8s/servicemonitor.yaml"]["spec"]["selector"]["matchLabels"]
        == (service["metadata"]["labels"])
    )
    assert container["image"] == GenerateOptions.image  # the placeholder, which says so
    assert "REPLACE-ME" in container["image"]


def test_secrets_are_referenced_never_written(config: Path) -> None:
    opts = GenerateOptions(config_path=config)
    bundle = generate(load_settings(config), ["k8s"], opts)
    text = "\n".join(bundle.files.values()) + "\n".join(bundle.notes)
    for secret in (STORE_PASSWORD, API_KEY, "slack-s3cr3t"):
        assert secret not in text
    files = {p: yaml.safe_load(t) for p, t in bundle.files.items()}
    env = files["k8s/deployment.yaml"]["spec"]["template"]["spec"]["containers"][0]["env"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if "valueFrom" in e}
    assert refs == {
        "INFERWATCH_STORE__URL": {"name": "inferwatch", "key": "store-url"},
        "INFERWATCH_AUTH__KEYS": {"name": "inferwatch", "key": "auth-keys"},
        "IW_K8S_SLACK": {"name": "inferwatch", "key": "IW_K8S_SLACK"},
    }
    endpoint = files["k8s/servicemonitor.yaml"]["spec"]["endpoints"][0]
    assert endpoint["path"] == "/metrics"
    assert endpoint["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": "inferwatch", "key": "metrics-token"},
    }
    assert any("kubectl create secret generic inferwatch" in n for n in bundle.notes)


def test_open_metrics_is_scraped_without_a_token(tmp_path: Path) -> None:
    files, _ = _k8s(_config(tmp_path, guarded=False))
    assert "authorization" not in files["k8s/servicemonitor.yaml"]["spec"]["endpoints"][0]


def test_the_prometheus_rule_holds_the_rule_files_groups(config: Path) -> None:
    settings = load_settings(config)
    opts = GenerateOptions(config_path=config)
    rules = yaml.safe_load(generate(settings, ["rules"], opts).files["rules/inferwatch.yml"])
    files, _ = _k8s(config)
    assert files["k8s/prometheusrule.yaml"]["spec"]["groups"] == rules["groups"]
    assert rules["groups"] and rules["groups"][0]["rules"]


def test_refusals_name_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IW_K8S_SLACK", "x")
    inline = _config(tmp_path)
    data = yaml.safe_load(inline.read_text())
    data["alerting"]["receivers"] = [{"name": "c", "type": "slack", "url": "https://s3cr3t"}]
    inline.write_text(yaml.safe_dump(data))
    with pytest.raises(GenerateError, match=r"alerting\.receivers\[0\]\.url: written inline"):
        _k8s(inline)
    data["alerting"]["receivers"] = []
    data["auth"]["open_health"] = False
    inline.write_text(yaml.safe_dump(data))
    with pytest.raises(GenerateError, match=r"auth\.open_health"):
        _k8s(inline)
    # part of "all targets": the others are still written, a note says why k8s is not
    bundle = generate(load_settings(inline), (), GenerateOptions(config_path=inline))
    assert "prometheus.yml" in bundle.files
    assert not any(p.startswith("k8s/") for p in bundle.files)
    assert any(n.startswith("k8s: not written: auth.open_health") for n in bundle.notes)
    data["auth"]["open_health"] = True
    inline.write_text(yaml.safe_dump(data))
    with pytest.raises(GenerateError, match="--name"):
        _k8s(inline, k8s_name="Not_A_Name")
    with pytest.raises(GenerateError, match="--replicas"):
        _k8s(inline, replicas=0)


def test_cli_writes_k8s_and_all_includes_it(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["generate", "k8s", "--config", str(config), "--out", str(out), "--replicas", "3"]
    result = CliRunner().invoke(app, [*args, "--image", "ghcr.io/acme/iw:2"])
    assert result.exit_code == 0, result.output
    deployment = yaml.safe_load((out / "k8s" / "deployment.yaml").read_text())
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/iw:2"
    everything = tmp_path / "all"
    result = CliRunner().invoke(
        app, ["generate", "--config", str(config), "--out", str(everything)]
    )
    assert result.exit_code == 0, result.output
    assert (everything / "k8s" / "servicemonitor.yaml").is_file()
    assert (everything / "prometheus.yml").is_file()
    bad = subprocess.run(
        [sys.executable, "-m", "inferwatch", *args[:-2], "--replicas", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert "--replicas must be >= 1" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_server_started_as_the_pod_answers_the_probes(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The ConfigMap's config and the Secret's variables, as the Deployment hands them to
    the container: the server starts, /readyz and /healthz answer 200 without a key, and
    /metrics wants the bearer token the ServiceMonitor sends."""
    work = tmp_path_factory.mktemp("pod")
    prepare_workdir(work, port=0, n_reference=500)
    config = yaml.safe_load((work / "inferwatch.yaml").read_text())
    for key in ("path", "schema", "reference"):
        config["models"][0][key] = str(work / config["models"][0][key])
    config["server"]["port"] = 8124
    config["alerting"] = {}
    config["auth"] = {"open_metrics": False}
    source = work / "source.yaml"
    source.write_text(yaml.safe_dump(config))
    files, _ = _k8s(source)
    pod_dir = tmp_path_factory.mktemp("etc-inferwatch")
    data = files["k8s/configmap.yaml"]["data"]
    for name, text in data.items():
        (pod_dir / name).write_text(text)
    container = files["k8s/deployment.yaml"]["spec"]["template"]["spec"]["containers"][0]
    token = secrets.token_urlsafe(24)
    secret = {  # what the user puts in the Secret, as the note says
        "store-url": f"sqlite:///{work / 'pod.db'}",
        "auth-keys": json.dumps([{"name": "prometheus", "key": token, "roles": ["read"]}]),
    }
    env = {}
    for item in container["env"]:
        if "valueFrom" in item:
            env[item["name"]] = secret[item["valueFrom"]["secretKeyRef"]["key"]]
        else:
            env[item["name"]] = item["value"]
    env["INFERWATCH_SERVER__HOST"] = "127.0.0.1"  # tests bind loopback; the pod binds all
    args = [*container["args"]]
    args[args.index("--config") + 1] = str(pod_dir / "inferwatch.yaml")
    server = ServerProcess(args, cwd=work, env=env)
    try:
        server.wait_ready()
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            path = container[probe]["httpGet"]["path"]
            assert httpx.get(server.base + path, timeout=5).status_code == 200, probe
        assert httpx.get(server.base + "/metrics", timeout=5).status_code == 401
        ok = httpx.get(
            server.base + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert ok.status_code == 200
        assert "inferwatch_" in ok.text
    finally:
        assert server.stop() == 0, server.output()
    assert (work / "pod.db").is_file()  # the store URL came from the Secret's variable
