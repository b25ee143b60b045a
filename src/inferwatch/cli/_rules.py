"""``inferwatch rules list|validate``: the alert rules a config puts in force.

Both read the config exactly as ``serve`` does (:func:`~inferwatch.config.load_settings`),
so a rule ``rules validate`` accepts is one ``serve`` starts with, and a bad one is refused
with the same key paths (``alerting.rules[3].critical: must be below warning for '<'``)
and exit status 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from inferwatch.cli._app import ConfigOpt, app, console, default_config, fail

if TYPE_CHECKING:
    from inferwatch.config import AlertingSettings

__all__ = ["rules_app"]

#: columns when stdout is not a terminal
PIPE_WIDTH = 400

rules_app = typer.Typer(help="List and check the alert rules of a config.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


def _load(config: Path | None) -> tuple[Path, AlertingSettings]:
    from inferwatch.config import load_settings

    path = default_config(config)
    if path is None:
        fail("no configuration: pass --config (or run where inferwatch.yaml is)")
    return path, load_settings(path).alerting


def _threshold(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if value.is_integer() else f"{value:.6g}"


@rules_app.command("list")
def rules_list(
    config: ConfigOpt = None,
    promql: Annotated[
        bool, typer.Option("--promql", help="Show each rule's PromQL expression.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON (the YAML shape).")] = False,
) -> None:
    """Print the rules in force (the default pack, if on, then the configured ones)."""
    from rich.console import Console
    from rich.table import Table

    from inferwatch.rules import format_duration, rule_to_dict

    _, alerting = _load(config)
    rules = alerting.to_rules()
    slos = alerting.to_slos()
    if as_json:
        print(json.dumps([rule_to_dict(r) for r in rules], indent=2))
        return
    if not rules and not slos:
        console.print("no alert rules (set alerting.default_pack, alerting.rules or .slos)")
        return
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for label in ("name", "signal", "aggregation", "window", "when", "warning", "critical",
                  "for"):  # fmt: skip
        table.add_column(label, justify="right" if label in ("warning", "critical") else "left")
    if promql:
        table.add_column("promql", overflow="fold")
    for r in rules:
        row = [
            r.name, r.signal, r.aggregation,
            "" if r.aggregation == "last" else format_duration(r.window),
            # a band rule's levels are robust z-scores against the signal's own history
            r.comparison if r.band is None else f"unusual: z {r.comparison}",
            _threshold(r.warning), _threshold(r.critical), format_duration(r.for_),
        ]  # fmt: skip
        if promql:
            row.append(r.expr())
        table.add_row(*row)
    # a pipe or CI log gets whole lines, never "…"
    out = console if console.is_terminal else Console(width=PIPE_WIDTH)
    out.print(table)
    out.print(f"{len(rules)} rule(s)", highlight=False)
    for slo in slos:
        within = f" within {slo.threshold:g} s" if slo.threshold is not None else ""
        out.print(
            f"SLO {slo.name}: {slo.sli}{within}, objective {slo.objective:g} over "
            f"{format_duration(slo.period)} (burn-rate page and ticket alerts)",
            highlight=False,
        )


@rules_app.command("validate")
def rules_validate(config: ConfigOpt = None) -> None:
    """Check the config's alert rules as `serve` would at start; exit 2 naming each bad key."""
    path, alerting = _load(config)
    rules, slos = alerting.to_rules(), alerting.to_slos()
    console.print(
        f"[green]ok[/] {path}: {len(rules)} alert rule(s), {len(slos)} SLO(s)", highlight=False
    )
