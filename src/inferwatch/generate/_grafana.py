"""Grafana dashboards as code, built with grafana-foundation-sdk, and their provisioning.

``generate grafana`` writes, under ``grafana/``:

- ``dashboards/inferwatch-overview.json`` (every model: health, traffic, errors, p99,
  drift share, performance, alerts) and ``dashboards/inferwatch-model.json`` (one model in
  depth), built from :data:`~inferwatch.generate._grafana_panels.PANELS` with the SDK's
  builders and encoded with its JSON encoder;
- ``provisioning/datasources/inferwatch.yml``: the Prometheus datasource (and, when
  ``tracing.otlp_endpoint`` is configured, a Tempo one its exemplars' ``trace_id`` link
  to);
- ``provisioning/dashboards/inferwatch.yml``: a file provider loading the dashboards
  folder.

The dashboards pick their Prometheus through a ``datasource`` variable whose default is
the provisioned one, so the same JSON also imports by hand into a Grafana that names its
Prometheus otherwise.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

from grafana_foundation_sdk.builders import (
    common as common_b,
)
from grafana_foundation_sdk.builders import (
    dashboard as dash_b,
)
from grafana_foundation_sdk.builders import (
    heatmap,
    prometheus,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dash_m
from grafana_foundation_sdk.models import heatmap as heatmap_m
from grafana_foundation_sdk.models import prometheus as prom_m

from inferwatch.generate._grafana_panels import (
    DASHBOARDS,
    PANELS,
    VARIABLES,
    DashboardKey,
    PanelSpec,
    Query,
)
from inferwatch.generate._model import GenerateError, GenerateOptions
from inferwatch.generate._prometheus import parse_address
from inferwatch.rules import format_duration

if TYPE_CHECKING:
    from inferwatch.config import Settings

__all__ = [
    "DASHBOARDS_DIR",
    "PROMETHEUS_UID",
    "TRACES_UID",
    "dashboard_json",
    "grafana_files",
    "prometheus_url",
]

PROMETHEUS_UID: Final = "inferwatch-prometheus"
TRACES_UID: Final = "inferwatch-traces"
#: where the dashboards go, relative to the output folder
DASHBOARDS_DIR: Final = "grafana/dashboards"
#: Tempo's HTTP API port: the tracing datasource's default beside the OTLP endpoint
TEMPO_PORT: Final = 3200
_DS = dash_m.DataSourceRef(type_val="prometheus", uid="${datasource}")
_PANEL_BUILDERS: Final[dict[str, type[Any]]] = {
    "timeseries": timeseries.Panel,
    "stat": stat.Panel,
    "heatmap": heatmap.Panel,
    "table": table.Panel,
    "statetimeline": statetimeline.Panel,
}


def prometheus_url(settings: Settings, options: GenerateOptions) -> str:
    """Where Grafana queries Prometheus: ``--prometheus-url``, else the config's
    ``prometheus.url`` where it has one, else the local default."""
    configured = getattr(getattr(settings, "prometheus", None), "url", None)
    url = options.prometheus_url or configured or "http://127.0.0.1:9090"
    scheme, hostport, path = parse_address(str(url), "--prometheus-url")
    return f"{scheme}://{hostport}{path}"


def _traces_url(settings: Settings, options: GenerateOptions) -> str | None:
    """The tracing datasource's URL, or None when the config exports no traces."""
    endpoint = settings.tracing.otlp_endpoint
    if not endpoint:
        return None
    if options.tracing_url:
        scheme, hostport, path = parse_address(options.tracing_url, "--tracing-url")
        return f"{scheme}://{hostport}{path}"
    parts = urlsplit(endpoint)
    if not parts.hostname:
        raise GenerateError(f"tracing.otlp_endpoint: {endpoint!r} is not a URL")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return urlunsplit((parts.scheme or "http", f"{host}:{TEMPO_PORT}", "", "", ""))


def _target(query: Query, ref_id: str) -> prometheus.Dataquery:
    target = (
        prometheus.Dataquery()
        .expr(query.expr)
        .ref_id(ref_id)
        .datasource(_DS)
        .editor_mode(prom_m.QueryEditorMode.CODE)
        .format(prom_m.PromQueryFormat(query.format))
    )
    target = target.instant() if query.instant else target.range()
    if query.legend:
        target = target.legend_format(query.legend)
    if query.exemplar:
        target = target.exemplar(True)
    return target


def _mappings(spec: PanelSpec) -> list[dash_m.ValueMapping]:
    if not spec.mapping:
        return []
    return [
        dash_m.ValueMap(
            options={
                value: dash_m.ValueMappingResult(text=text, color=color, index=i)
                for i, (value, text, color) in enumerate(spec.mapping)
            }
        )
    ]


def _panel(spec: PanelSpec) -> Any:
    """The SDK builder of one panel (its kind's ``Panel``), targets and field config set."""
    builder: Any = _PANEL_BUILDERS[spec.kind]()
    builder = (
        builder.title(spec.title)
        .description(spec.description + (f" Empty without {spec.when}." if spec.when else ""))
        .datasource(_DS)
        .unit(spec.unit)
        .span(spec.width)
        .height(spec.height)
    )
    for i, query in enumerate(spec.queries):
        builder = builder.with_target(_target(query, chr(ord("A") + i)))
        if query.unit and query.unit != spec.unit:
            builder = builder.override_by_query(
                chr(ord("A") + i),
                [
                    dash_m.DynamicConfigValue(id_val="unit", value=query.unit),
                    dash_m.DynamicConfigValue(id_val="custom.axisPlacement", value="right"),
                ],
            )
    if spec.min is not None:
        builder = builder.min(spec.min)
    if spec.max is not None:
        builder = builder.max(spec.max)
    if spec.when:
        builder = builder.no_value(f"no data without {spec.when}")
    if spec.mapping:
        builder = builder.mappings(_mappings(spec)).color_scheme(
            dash_b.FieldColor().mode(dash_m.FieldColorModeId.THRESHOLDS)
        )
        builder = builder.thresholds(
            dash_b.ThresholdsConfig()
            .mode(dash_m.ThresholdsMode.ABSOLUTE)
            .steps(
                [
                    dash_m.Threshold(value=None if i == 0 else float(value), color=color)
                    for i, (value, _, color) in enumerate(spec.mapping)
                ]
            )
        )
    if spec.kind == "stat":
        builder = builder.reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]))
    elif spec.kind == "timeseries":
        builder = (
            builder.fill_opacity(10)
            .show_points(common.VisibilityMode.NEVER)
            .legend(
                common_b.VizLegendOptions()
                .display_mode(common.LegendDisplayMode.LIST)
                .placement(common.LegendPlacement.BOTTOM)
                .show_legend(True)
            )
        )
    elif spec.kind == "heatmap":
        # Prometheus buckets (format heatmap) or one row per series: drawn as given
        builder = builder.calculate(False).color(
            heatmap.HeatmapColorOptions()
            .mode(heatmap_m.HeatmapColorMode.SCHEME)
            .scheme("Oranges")
            .scale(heatmap_m.HeatmapColorScale.EXPONENTIAL)
            .exponent(0.5)
        )
    elif spec.kind == "table":
        builder = builder.show_header(True)
    elif spec.kind == "statetimeline":
        builder = builder.show_value(common.VisibilityMode.NEVER)
    return builder


def _variable(name: str, label: str, metric: str, multi: bool) -> dash_b.QueryVariable:
    variable = (
        dash_b.QueryVariable(name)
        .label(name)
        .datasource(_DS)
        .query({"query": f"label_values({metric}, {label})", "refId": "PrometheusVariableQuery"})
        .refresh(dash_m.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dash_m.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
    )
    if multi:
        # "All" as a regex, not the list of values: a version that appears later matches
        variable = variable.include_all(True).all_value(".*")
    return variable


def dashboard_json(key: DashboardKey, scrape_interval: float) -> dict[str, Any]:
    """One dashboard as the JSON Grafana loads (the SDK's model, through its encoder)."""
    uid, title = DASHBOARDS[key]
    other: DashboardKey = "model" if key == "overview" else "overview"
    builder = (
        dash_b.Dashboard(title)
        .uid(uid)
        .tags(["inferwatch"])
        .description("Generated by `inferwatch generate grafana`; regenerate rather than edit.")
        .time("now-1h", "now")
        .refresh(format_duration(max(scrape_interval, 5.0)))
        .timezone("browser")
        .tooltip(dash_m.DashboardCursorSync.CROSSHAIR)
        .readonly()
        .link(
            dash_b.DashboardLink(DASHBOARDS[other][1])
            .type(dash_m.DashboardLinkType.DASHBOARDS)
            .tags(["inferwatch"])
            .include_vars(True)
            .keep_time(True)
        )
        .with_variable(
            dash_b.DatasourceVariable("datasource")
            .label("Prometheus")
            .type("prometheus")
            .current(dash_m.VariableOption(text="inferwatch", value=PROMETHEUS_UID))
        )
    )
    for variable in VARIABLES[key]:
        builder = builder.with_variable(
            _variable(variable.name, variable.label, variable.metric, variable.multi)
        )
    row = None
    for spec in PANELS:
        if spec.dashboard != key:
            continue
        if spec.row != row:
            row = spec.row
            builder = builder.with_row(dash_b.Row(row))
        builder = builder.with_panel(_panel(spec))
    encoded: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    # Grafana numbers panels itself when they have no id; ours stay stable across runs
    for i, panel in enumerate(encoded.get("panels", []), start=1):
        panel.setdefault("id", i)
    return encoded


def _datasources(settings: Settings, options: GenerateOptions) -> dict[str, Any]:
    prom: dict[str, Any] = {
        "name": "inferwatch",
        "uid": PROMETHEUS_UID,
        "type": "prometheus",
        "access": "proxy",
        "url": prometheus_url(settings, options),
        "isDefault": False,
        "editable": False,
        # Grafana's $__rate_interval is four of these: a rate always spans enough scrapes
        "jsonData": {"timeInterval": format_duration(options.scrape_interval)},
    }
    sources = [prom]
    traces = _traces_url(settings, options)
    if traces is not None:
        # an exemplar's trace_id label opens that trace in the tracing datasource
        prom["jsonData"]["exemplarTraceIdDestinations"] = [
            {"name": "trace_id", "datasourceUid": TRACES_UID}
        ]
        sources.append(
            {
                "name": "inferwatch traces",
                "uid": TRACES_UID,
                "type": "tempo",
                "access": "proxy",
                "url": traces,
                "editable": False,
            }
        )
    return {"apiVersion": 1, "datasources": sources}


def grafana_files(
    settings: Settings, options: GenerateOptions
) -> tuple[dict[str, str], dict[str, dict[str, Any]], list[str]]:
    """``(json files, yaml files, notes)``: the dashboards as JSON text, the provisioning
    data (path -> mapping, dumped as YAML by the caller) and the notes for the user."""
    notes: list[str] = []
    dashboards = {
        f"{DASHBOARDS_DIR}/{uid}.json": json.dumps(
            dashboard_json(key, options.scrape_interval), indent=2, sort_keys=False
        )
        + "\n"
        for key, (uid, _) in DASHBOARDS.items()
    }
    folder = options.grafana_dashboards_path or DASHBOARDS_DIR
    if options.grafana_dashboards_path is None:
        notes.append(
            "grafana/provisioning/dashboards/inferwatch.yml: the dashboards path is "
            f"{DASHBOARDS_DIR!r}, which Grafana resolves from its working directory; "
            "pass --grafana-dashboards-path with the absolute path Grafana sees"
        )
    provider = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "inferwatch",
                "orgId": 1,
                "folder": "inferwatch",
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": folder, "foldersFromFilesStructure": False},
            }
        ],
    }
    if settings.tracing.otlp_endpoint and not options.tracing_url:
        notes.append(
            f"grafana datasource 'inferwatch traces': Tempo at {_traces_url(settings, options)} "
            "(the OTLP endpoint's host, Tempo's HTTP port); --tracing-url sets another"
        )
    yaml_files = {
        "grafana/provisioning/datasources/inferwatch.yml": _datasources(settings, options),
        "grafana/provisioning/dashboards/inferwatch.yml": provider,
    }
    return dashboards, yaml_files, notes
