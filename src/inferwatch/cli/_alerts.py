"""``inferwatch alerts`` and ``inferwatch silence``: a running server's alerts, amtool-style.

The engine's state lives in the server process, so these commands talk to it over HTTP
(``GET /v1/alerts``, ``/v1/alerts/history``, ``/v1/silences``), with the server's address
from ``--url``, ``INFERWATCH_URL`` or the configuration's ``server.host``/``server.port``,
and an API key from ``--api-key`` or ``INFERWATCH_API_KEY`` (``read`` to list, ``admin`` to
silence).  Exit codes: 0 done, 1 the server refused (the message says why), 2 a usage
error or a server that cannot be reached.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated, Any

import typer

from inferwatch.cli._app import ConfigOpt, app, console, default_config, err_console, fail

__all__ = ["alerts_app", "silence_app"]

#: a pipe or a CI log gets whole rows, never cells cut to "…"
PIPE_WIDTH = 400

alerts_app = typer.Typer(help="List a running server's alerts and their history.",
                         no_args_is_help=True)  # fmt: skip
silence_app = typer.Typer(help="Mute a running server's alerts for a time.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
app.add_typer(silence_app, name="silence")

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="INFERWATCH_URL",
        help="The server, e.g. http://127.0.0.1:8000 (default: the configuration's address).",
    ),
]
KeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="INFERWATCH_API_KEY",
        help="API key: the 'read' role to list, 'admin' to silence.",
    ),
]


def _base(url: str | None, config: Path | None) -> str:
    if url is not None:
        if not url.startswith(("http://", "https://")):
            fail(f"--url must be an http:// or https:// URL, got {url!r}")
        return url.rstrip("/")
    path = default_config(config)
    if path is None:
        fail("give --url (or INFERWATCH_URL), or a configuration with the server's address")
    from inferwatch.config import load_settings

    server = load_settings(path).server
    host = "127.0.0.1" if server.host in ("0.0.0.0", "::") else server.host
    return f"http://{host}:{server.port}"


def _call(
    method: str,
    base: str,
    path: str,
    api_key: str | None,
    *,
    params: dict[str, Any] | None = None,
    json: dict[str, Any] | None = None,
) -> Any:
    import httpx

    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=30.0) as client:
            resp = client.request(
                method, path, params={k: v for k, v in (params or {}).items() if v is not None},
                json=json,
            )  # fmt: skip
    except (httpx.HTTPError, ValueError) as exc:
        fail(f"could not reach {base} ({exc})")
    if resp.status_code >= 400:
        try:
            error = resp.json()["error"]
            message = error["message"]
            details = "; ".join(f"{d['field']}: {d['message']}" for d in error.get("details", []))
        except (ValueError, KeyError, TypeError):
            message, details = resp.text[:300], ""
        err_console.print(
            f"[bold red]error:[/] {base} answered {resp.status_code}: {message}"
            + (f" ({details})" if details else ""),
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    return resp.json()


def _print(table: Any) -> None:
    from rich.console import Console

    out = console if console.is_terminal else Console(width=PIPE_WIDTH)
    out.print(table)


def _when(iso: str) -> str:
    """``2026-11-29 18:24:04`` from an ISO time (seconds are enough to read)."""
    return iso[:19].replace("T", " ")


def _labels(labels: dict[str, str], skip: tuple[str, ...] = ("alertname", "severity")) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in skip)


@alerts_app.command("list")
def alerts_list(
    config: ConfigOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    state: Annotated[
        str | None, typer.Option(help="pending, firing or resolved (default: all).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Only this model's alerts.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON answer.")] = False,
) -> None:
    """The alerts pending, firing or recently resolved, with what mutes them."""
    from rich.table import Table

    base = _base(url, config)
    body = _call("GET", base, "/v1/alerts", api_key, params={"state": state, "model": model})
    if as_json:
        import json

        console.print_json(json.dumps(body))
        return
    alerts = body["alerts"]
    if not alerts:
        console.print("no alerts", highlight=False)
        return
    table = Table("alert", "severity", "state", "since", "labels", "summary", "muted")
    for a in alerts:
        muted = "inhibited" if a["inhibited"] else ""
        if a["silenced_by"]:
            muted = "silenced " + ",".join(s[:8] for s in a["silenced_by"])
        table.add_row(
            a["labels"].get("alertname", ""),
            a["labels"].get("severity", ""),
            a["state"],
            _when(a["starts_at"]),
            _labels(a["labels"]),
            a["annotations"].get("summary", ""),
            muted,
        )
    _print(table)


@alerts_app.command("history")
def alerts_history(
    config: ConfigOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    model: Annotated[str | None, typer.Option(help="Only this model's alerts.")] = None,
    alertname: Annotated[str | None, typer.Option(help="Only this rule's alerts.")] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601 time or epoch seconds.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """Every state change of the alerts, newest first (kept in the store)."""
    from rich.table import Table

    base = _base(url, config)
    params = {"model": model, "alertname": alertname, "since": since, "limit": limit}
    rows = _call("GET", base, "/v1/alerts/history", api_key, params=params)["rows"]
    if not rows:
        console.print("no alert history", highlight=False)
        return
    table = Table("at", "alert", "severity", "labels", "change", "value")
    for r in rows:
        value = r.get("value")
        table.add_row(
            _when(str(r["at"])),
            r["alertname"],
            r["severity"],
            _labels(r["labels"]),
            f"{r['from_state']} -> {r['to_state']}",
            "" if value is None else f"{value:.4g}",
        )
    _print(table)


@silence_app.command("add")
def silence_add(
    matchers: Annotated[
        list[str],
        typer.Argument(help='Matchers: model=iris severity=critical alertname=~"Drift.*"'),
    ],
    duration: Annotated[str, typer.Option(help="How long: 30m, 2h, 1d.")] = "1h",
    comment: Annotated[str, typer.Option(help="Why.")] = "",
    author: Annotated[str | None, typer.Option(help="Who (default: your user name).")] = None,
    config: ConfigOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Mute the alerts matching every matcher for DURATION; prints the silence's id."""
    base = _base(url, config)
    who = author or _user()
    body = {"matchers": matchers, "duration": duration, "comment": comment, "created_by": who}
    made = _call("POST", base, "/v1/silences", api_key, json=body)
    console.print(made["id"], highlight=False)
    err_console.print(
        f"silenced {', '.join(made['matchers'])} until {_when(made['ends_at'])} (by {who})",
        highlight=False,
    )


@silence_app.command("list")
def silence_list(
    config: ConfigOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    state: Annotated[
        str | None, typer.Option(help="pending, active or expired (default: all).")
    ] = None,
) -> None:
    """The silences, by start time."""
    from rich.table import Table

    base = _base(url, config)
    silences = _call("GET", base, "/v1/silences", api_key, params={"state": state})["silences"]
    if not silences:
        console.print("no silences", highlight=False)
        return
    table = Table("id", "state", "matchers", "ends", "by", "comment")
    for s in silences:
        table.add_row(s["id"], s["state"], ", ".join(s["matchers"]), _when(s["ends_at"]),
                      s["created_by"], s["comment"])  # fmt: skip
    _print(table)


@silence_app.command("expire")
def silence_expire(
    silence_id: Annotated[str, typer.Argument(help="The silence's id (silence list).")],
    config: ConfigOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """End a silence now."""
    base = _base(url, config)
    done = _call("DELETE", base, f"/v1/silences/{silence_id}", api_key)
    console.print(f"{done['id']} {done['state']}", highlight=False)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "inferwatch-cli"
