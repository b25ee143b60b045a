"""``generate grafana``: the dashboards against the SDK's own model, every PromQL query
parsed by the real ``promtool``, the provisioning files, and the CLI as a user runs it.

Schema check: grafana-foundation-sdk ships no JSON schema file; its models are generated
from Grafana's schema (CUE), and each has a ``from_json`` decoder.  With the SDK's panel
and query plugins registered, each dashboard is decoded into those models and

- every key we wrote survives the decode and re-encode unchanged (a key the schema does
  not know is dropped by the decoder, a misspelled one too); the encoder may add the
  schema's defaults, nothing else;
- every field of every decoded object holds a value of its annotated type (an enum field
  one of the enum's values, a Literal one of its literals), recursively, panel options
  and field config included, decoded by the panel type's own model;
- every target decodes to the Prometheus query model, every panel type to a known plugin.
"""

from __future__ import annotations

import enum
import json
import os
import shutil
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import dashboard as dash_m
from grafana_foundation_sdk.models import prometheus as prom_m

from inferwatch.config import Settings
from inferwatch.generate import GenerateError, GenerateOptions, generate
from inferwatch.generate._grafana import PROMETHEUS_UID, TRACES_UID
from inferwatch.generate._grafana_panels import DASHBOARDS, PANELS, VARIABLES, queries

register_default_plugins()

DASHBOARD_FILES = [f"grafana/dashboards/{uid}.json" for uid, _ in DASHBOARDS.values()]
DATASOURCES = "grafana/provisioning/datasources/inferwatch.yml"
PROVIDER = "grafana/provisioning/dashboards/inferwatch.yml"


def _files(settings: Settings | None = None, **options: Any) -> dict[str, str]:
    bundle = generate(settings or Settings(), ["grafana"], GenerateOptions(**options))
    return bundle.files


def _dashboards() -> list[dict[str, Any]]:
    files = _files()
    return [json.loads(files[path]) for path in DASHBOARD_FILES]


# ---- the SDK's model ----------------------------------------------------------------


def _kept(ours: Any, back: Any, path: str) -> list[str]:
    """Where ``back`` lost or changed something of ``ours`` (it may add keys)."""
    if isinstance(ours, dict):
        if not isinstance(back, dict):
            return [f"{path}: became {back!r}"]
        out = []
        for key, value in ours.items():
            if key not in back:
                out.append(f"{path}.{key}: dropped by the SDK's decoder")
            else:
                out += _kept(value, back[key], f"{path}.{key}")
        return out
    if isinstance(ours, list):
        if not isinstance(back, list) or len(back) != len(ours):
            return [f"{path}: became {back!r}"]
        return [e for i, (a, b) in enumerate(zip(ours, back, strict=True))
                for e in _kept(a, b, f"{path}[{i}]")]  # fmt: skip
    return [] if ours == back else [f"{path}: {ours!r} became {back!r}"]


def _type_errors(value: Any, hint: Any, path: str) -> list[str]:
    """Where ``value`` is not of the annotated type ``hint`` (recursively into models)."""
    if hint is Any:
        return []
    if hint is object:  # a plugin's slot (options, custom): checked as what it decoded to
        return _model_errors(value, path) if hasattr(value, "to_json") else []
    if hint is type(None):
        return [] if value is None else [f"{path}: {value!r} is not None"]
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if any(not _type_errors(value, a, path) for a in args):
            return []
        shaped = [a for a in args if _outer_ok(value, a)]
        if len(shaped) == 1:  # e.g. a Panel in list[Panel | RowPanel]: say what is wrong in it
            return _type_errors(value, shaped[0], path)
        return [f"{path}: {value!r} is none of {hint}"]
    if origin is typing.Literal:
        return [] if value in args else [f"{path}: {value!r} not in {args}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not a list"]
        return [e for i, v in enumerate(value) for e in _type_errors(v, args[0], f"{path}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not a dict"]
        return [e for k, v in value.items() for e in _type_errors(v, args[1], f"{path}.{k}")]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        ok = isinstance(value, hint) or value in {m.value for m in hint}
        return [] if ok else [f"{path}: {value!r} is not a {hint.__name__}"]
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r} is not a number"]
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r} is not an int"]
    if isinstance(hint, type):
        if not isinstance(value, hint):
            return [f"{path}: {type(value).__name__} is not a {hint.__name__}"]
        return _model_errors(value, path) if hasattr(value, "to_json") else []
    return []


def _outer_ok(value: Any, hint: Any) -> bool:
    """Whether ``value`` has the outer shape of ``hint`` (its contents unchecked)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_outer_ok(value, a) for a in typing.get_args(hint))
    if origin in (list, dict):
        return isinstance(value, origin)
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint in (Any, object):
        return True
    if hint is type(None):
        return value is None
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _model_errors(obj: Any, path: str) -> list[str]:
    hints = typing.get_type_hints(type(obj))
    return [e for name, hint in hints.items()
            for e in _type_errors(getattr(obj, name), hint, f"{path}.{name}")]  # fmt: skip


def test_dashboards_decode_into_the_sdk_models_and_keep_every_key() -> None:
    for data in _dashboards():
        model = dash_m.Dashboard.from_json(data)
        back = json.loads(json.dumps(model, cls=JSONEncoder))
        assert _kept(data, back, data["uid"]) == []
        assert _model_errors(model, data["uid"]) == []
        assert model.schema_version == 41  # Grafana 11.6's, the pinned SDK's
        assert model.panels
        for panel in model.panels:
            if isinstance(panel, dash_m.RowPanel):
                continue
            # options decoded by the panel type's own model (a plugin the SDK knows)
            module = panel.type_val.replace("-", "")  # state-timeline: models.statetimeline
            assert type(panel.options).__module__.endswith(f".{module}"), panel.title
            assert panel.targets
            for target in panel.targets:
                assert isinstance(target, prom_m.Dataquery), panel.title
                assert target.datasource is not None
                assert target.datasource.uid == "${datasource}"


def test_the_type_check_catches_a_wrong_field() -> None:
    """The checker above can fail: a wrong enum value, a string for a number, an unknown
    key are each reported."""
    data = _dashboards()[1]
    data["graphTooltip"] = 7
    data["panels"][1]["gridPos"]["w"] = "wide"
    data["panels"][1]["targets"][0]["exemplars"] = True  # the key is "exemplar"
    model = dash_m.Dashboard.from_json(data)
    errors = _model_errors(model, "d")
    back = json.loads(json.dumps(model, cls=JSONEncoder))
    lost = _kept(data, back, "d")
    assert any("graph_tooltip: 7" in e for e in errors), errors
    assert "d.panels[1].grid_pos.w: 'wide' is not an int" in errors, errors
    assert lost == ["d.panels[1].targets[0].exemplars: dropped by the SDK's decoder"]


def test_the_json_holds_exactly_the_table_s_queries_and_variables() -> None:
    """The test below and the end-to-end one walk PANELS: it must be what was written."""
    overview, model = _dashboards()
    written = {
        (d["uid"], p["title"], t["refId"], t["expr"], t.get("exemplar", False))
        for d in (overview, model) for p in d["panels"] for t in p.get("targets", [])
    }  # fmt: skip
    table = {
        (DASHBOARDS[p.dashboard][0], p.title, ref, q.expr, q.exemplar) for p, ref, q in queries()
    }
    assert written == table
    assert len(table) == len(queries())  # no two targets alike
    # the latency quantiles ask for exemplars (trace links)
    assert {t[1] for t in table if t[4]} == {"Request latency p50 / p95 / p99"}
    for data in (overview, model):
        names = [v["name"] for v in data["templating"]["list"]]
        assert names == ["datasource", "model", "version"]
        ds = data["templating"]["list"][0]
        assert ds["query"] == "prometheus" and ds["current"]["value"] == PROMETHEUS_UID
    model_var = next(v for v in model["templating"]["list"] if v["name"] == "model")
    assert model_var["multi"] is False and model_var["query"]["query"] == (
        "label_values(inferwatch_model_info, model)"
    )
    # every panel key is unique, every dashboard has panels
    assert len({p.key for p in PANELS}) == len(PANELS)
    assert {p.dashboard for p in PANELS} == set(DASHBOARDS) == set(VARIABLES)


# ---- promtool -----------------------------------------------------------------------


def _substituted(expr: str) -> str:
    return (
        expr.replace("$__rate_interval", "1m")
        .replace("$model", "churn|iris")
        .replace("$version", ".*")
    )


def _check_rules(promtool: str, exprs: list[str], folder: Path) -> subprocess.CompletedProcess[str]:
    rules = [{"record": f"grafana:panel_{i}", "expr": e} for i, e in enumerate(exprs)]
    path = folder / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "grafana", "rules": rules}]}))
    return subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )


@pytest.mark.integration
def test_promtool_parses_every_panel_query(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (make system-deps)")
    exprs = [_substituted(q.expr) for _, _, q in queries()]
    # the variables' selectors too (Grafana wraps them in label_values)
    exprs += [_substituted(v.metric) for vs in VARIABLES.values() for v in vs]
    checked = _check_rules(promtool, exprs, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in checked.stdout
    # and it does refuse a query that does not parse
    broken = _check_rules(promtool, ["sum by (model (rate(x[1m]))"], tmp_path)
    assert broken.returncode != 0


# ---- provisioning -------------------------------------------------------------------


def _yaml(text: str) -> Any:
    return yaml.safe_load(text)


def test_provisioning_without_tracing() -> None:
    files = _files(scrape_interval=5, grafana_dashboards_path="/var/lib/grafana/iw")
    sources = _yaml(files[DATASOURCES])
    assert sources["apiVersion"] == 1
    [prom] = sources["datasources"]
    assert prom["uid"] == PROMETHEUS_UID and prom["type"] == "prometheus"
    assert prom["url"] == "http://127.0.0.1:9090"
    assert prom["jsonData"] == {"timeInterval": "5s"}  # no exemplar link without traces
    [provider] = _yaml(files[PROVIDER])["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/iw"
    # the refresh follows the scrape interval (never below 5 s)
    assert json.loads(files[DASHBOARD_FILES[0]])["refresh"] == "5s"


def test_tracing_adds_tempo_and_links_exemplars_to_it() -> None:
    settings = Settings(tracing={"otlp_endpoint": "http://collector.obs:4318/v1/traces"})
    bundle = generate(settings, ["grafana"], GenerateOptions(prometheus_url="prom:9090"))
    prom, tempo = _yaml(bundle.files[DATASOURCES])["datasources"]
    assert prom["url"] == "http://prom:9090"
    assert tempo["type"] == "tempo" and tempo["uid"] == TRACES_UID
    assert tempo["url"] == "http://collector.obs:3200"  # Tempo's port on the OTLP host
    assert prom["jsonData"]["exemplarTraceIdDestinations"] == [
        {"name": "trace_id", "datasourceUid": TRACES_UID}
    ]
    assert any("Tempo at http://collector.obs:3200" in n for n in bundle.notes)
    chosen = _files(settings, tracing_url="https://tempo.example:443/")
    assert _yaml(chosen[DATASOURCES])["datasources"][1]["url"] == "https://tempo.example:443"


def test_a_bad_url_is_refused_naming_the_option() -> None:
    with pytest.raises(GenerateError, match="--prometheus-url: 'ftp://x:1'"):
        _files(prometheus_url="ftp://x:1")
    with pytest.raises(GenerateError, match="--tracing-url"):
        _files(Settings(tracing={"otlp_endpoint": "http://c:4318"}), tracing_url="tempo")


# ---- the CLI ------------------------------------------------------------------------


def test_cli_writes_the_grafana_files_with_an_absolute_dashboards_path(tmp_path: Path) -> None:
    (tmp_path / "inferwatch.yaml").write_text("server: {host: 0.0.0.0, port: 8011}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERWATCH_")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "inferwatch", "generate", "grafana", "-c", "inferwatch.yaml",
             *args], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
        )  # fmt: skip

    done = run("--out", "mon", "--prometheus-url", "http://prom.internal:9090")
    assert done.returncode == 0, done.stderr
    paths = [*DASHBOARD_FILES, DATASOURCES, PROVIDER]
    assert done.stdout.splitlines() == [f"wrote {Path('mon') / p}" for p in paths]
    provider = _yaml((tmp_path / "mon" / PROVIDER).read_text())["providers"][0]
    assert provider["options"]["path"] == str((tmp_path / "mon/grafana/dashboards").resolve())
    assert _yaml((tmp_path / "mon" / DATASOURCES).read_text())["datasources"][0]["url"] == (
        "http://prom.internal:9090"
    )
    bad = run("--out", "other", "--prometheus-url", "prom.internal")
    assert bad.returncode == 2
    assert "--prometheus-url: 'prom.internal' is not HOST:PORT" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "other").exists()
