"""``inferwatch status``: each served model's newest live drift verdicts, in a table.

It asks the running server (``GET /v1/models`` and ``GET /v1/models/{name}/drift``, the
``read`` role) rather than the store: the server holds the report ``/metrics`` shows, with
the calibrated thresholds, the tests' nominal ones and the quality limits, so the terminal,
the API and Prometheus tell the same story.  The server's address comes from the config
(``server.host``/``server.port``; a wildcard bind is asked on loopback) or ``--url``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final
from urllib.parse import quote

import typer

from inferwatch.cli._app import app, default_config, fail

if TYPE_CHECKING:
    import httpx
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

__all__ = ["status"]

#: the environment variable ``--api-key`` falls back to (keeps the key out of ``ps``)
API_KEY_ENV: Final = "INFERWATCH_API_KEY"
#: columns when stdout is not a terminal: CI logs and pipes get whole lines, never "…"
PIPE_WIDTH: Final = 400
#: quality checks shown, with the share and limit keys of ``FeatureQuality.to_dict()``
CHECKS: Final = (
    ("missing", "missing_share", "missing_increase"),
    ("out of range", "out_of_range_share", "out_of_range"),
    ("outliers", "outlier_share", "outliers"),
    ("unseen", "unseen_share", "unseen_categories"),
)
_CATEGORY_KINDS: Final = frozenset({"categorical", "boolean"})


def base_url(host: str, port: int) -> str:
    """The URL a client on this machine reaches a server bound to ``host:port`` at."""
    if host in ("0.0.0.0", ""):  # a wildcard bind answers on loopback
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _fetch(client: httpx.Client, path: str) -> Any:
    """GET ``path`` as JSON, or exit with one line saying why not."""
    import httpx

    where = f"{client.base_url}{path}"
    try:
        r = client.get(path)
    except httpx.TimeoutException:
        fail(f"the inferwatch server at {client.base_url} did not answer in time")
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        fail(
            f"cannot reach the inferwatch server at {client.base_url} ({reason}); "
            "is `inferwatch serve` running? (--url sets the address; --from-store reads the "
            "store's newest evaluations instead)"
        )
    if r.status_code == 401:
        fail(
            f"{where}: the server needs an API key with the 'read' role; "
            f"pass --api-key or set {API_KEY_ENV}"
        )
    try:
        body = r.json()
    except ValueError:
        fail(f"{where} answered HTTP {r.status_code}, not JSON: is it an inferwatch server?")
    if r.status_code != 200:
        error = body.get("error") if isinstance(body, Mapping) else None
        message = error.get("message") if isinstance(error, Mapping) else None
        fail(f"{where}: HTTP {r.status_code}: {message or r.reason_phrase}")
    return body


def _when(epoch: Any) -> str:
    if not isinstance(epoch, int | float):
        return "?"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else "-"


def _pct(value: float) -> str:
    return f"{100 * value:.3g}%"


def _threshold(column: Mapping[str, Any]) -> tuple[str, str]:
    """The verdict's rule and the test's nominal rule, as ``"> 0.059"`` / ``"p < 0.05"``."""
    details = column.get("details") or {}
    p_test = column.get("p_value") is not None
    calibrated = details.get("calibrated_threshold") is not None
    used = column.get("threshold")
    nominal = details.get("nominal_threshold", used) if calibrated else used
    nominal_rule = f"p < {_num(nominal)}" if p_test else f">= {_num(nominal)}"
    if calibrated:
        return f"> {_num(used)}", nominal_rule
    return nominal_rule, nominal_rule


def _quality_cells(column: Mapping[str, Any]) -> list[Text]:
    """One cell per check: the share, its limit when known, red when it is a problem."""
    from rich.text import Text

    q = column.get("quality") or {}
    if not q:
        return [Text("-") for _ in CHECKS]
    limits = q.get("limits") or {}
    problems = set(q.get("problems") or ())
    numeric = column.get("kind") not in _CATEGORY_KINDS
    cells = []
    for label, key, code in CHECKS:
        applies = label == "missing" or (label == "unseen") != numeric
        share = q.get(key)
        if not applies or not isinstance(share, int | float):
            cells.append(Text("-", style="dim"))
            continue
        limit = limits.get(key)
        text = _pct(share) + (f" / {_pct(limit)}" if isinstance(limit, int | float) else "")
        flagged = code in problems
        cells.append(Text(text + (" !" if flagged else ""), style="bold red" if flagged else ""))
    return cells


def _row(table: Table, column: Mapping[str, Any], name: str | None = None) -> None:
    from rich.text import Text

    name = name or str(column.get("name"))
    if column.get("statistic") is None:
        reason = str(column.get("error") or "not judged")
        table.add_row(name, column.get("test") or "-", "-", "-", "-", Text(reason, style="dim"),
                      *_quality_cells(column))  # fmt: skip
        return
    used, nominal = _threshold(column)
    measured = _num(column["statistic"])
    if column.get("p_value") is not None:
        measured += f" (p={_num(column['p_value'])})"
    verdict = Text("DRIFT", style="bold red") if column.get("drift_detected") else Text("ok")
    table.add_row(name, str(column["test"]), measured, used, nominal, verdict,
                  *_quality_cells(column))  # fmt: skip


def _confidence(prediction: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    found = ((prediction or {}).get("details") or {}).get("confidence")
    return found if isinstance(found, Mapping) and found.get("test") else None


def render(console: Console, answer: Mapping[str, Any]) -> None:
    """One model's drift answer: a header line and, for a judged window, its table."""
    from rich.table import Table
    from rich.text import Text

    model, version, state = answer.get("model"), answer.get("version"), answer.get("status")
    title = f"[bold]{model}[/] v{version}"
    if answer.get("source") == "store":
        title += " (from the store: input features only)"
    if state != "judged":
        console.print(f"{title}: {state}: {answer.get('message')}", highlight=False)
        return
    report, window = answer["report"], answer.get("window") or {}
    n_judged = sum(1 for f in report["features"] if f.get("statistic") is not None)
    drifted = Text(
        "DATASET DRIFT" if report.get("dataset_drift") else "no dataset drift",
        style="bold red" if report.get("dataset_drift") else "green",
    )
    console.print(
        f"{title}: window {_when(window.get('start'))} to {_when(window.get('end'))} UTC, "
        f"{window.get('rows', report.get('n_current'))} rows, judged at "
        f"{_when(window.get('evaluated_at'))} UTC",
        highlight=False,
    )
    share = Text(
        f"  {report.get('n_drifted', 0)} of {n_judged} features drifted "
        f"(share {_num(report.get('drift_share'))}, dataset drift at "
        f">= {_num(report.get('drift_share_threshold'))}): "
    )
    console.print(share + drifted, highlight=False)
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for label in ("feature", "test", "statistic", "threshold", "nominal", "verdict"):
        table.add_column(label)
    for label, _, _ in CHECKS:
        table.add_column(label, justify="right")
    for f in report["features"]:
        _row(table, f)
    pred = report.get("prediction_drift")
    if pred:
        _row(table, pred, f"{pred.get('name')} (model output)")
        conf = _confidence(pred)
        if conf is not None:
            _row(table, {"kind": "numeric", **conf}, "confidence (model output)")
    console.print(table)
    console.print(
        "  threshold: what the live verdict used, calibrated at the window's size (unless "
        "drift.calibration is fixed or drift.thresholds sets one); nominal: the test's own, "
        "which `inferwatch report` uses. quality: share / limit, ! when flagged.",
        style="dim",
        highlight=False,
    )


def _epoch(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


def answer_from_rows(model: str, version: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A drift answer (as the server gives) rebuilt from a window's evaluation rows.

    The store keeps what was judged: per input feature the drift statistic and threshold
    (the nominal one and the calibrated p-value in ``details``), the missing share and the
    out-of-range or unseen share with their thresholds, and the dataset drift share; not
    the prediction drift or the outlier share.
    """
    out: dict[str, Any] = {"model": model, "version": version, "source": "store"}
    if not rows:
        message = "no evaluation in the store yet (a window must reach drift.min_window_rows)"
        return {**out, "status": "not_judged", "message": message, "window": None, "report": None}
    features: dict[str, dict[str, Any]] = {}
    dataset: Mapping[str, Any] = {}
    for row in rows:
        name, metric = row.get("feature"), row["metric"]
        critical = row.get("status") == "critical"
        if metric == "dataset_drift_share":
            dataset = row
            continue
        f = features.setdefault(str(name), {"name": name, "kind": "categorical", "quality": {}})
        quality = f["quality"]
        if metric == "drift":
            details = row.get("details") or {}
            calibrated = details.get("p_value_calibrated") is not None
            f.update(
                test=row.get("test"),
                statistic=row["value"],
                p_value=details.get("p_value"),
                threshold=row.get("threshold"),
                drift_detected=critical,
                details={
                    "nominal_threshold": details.get("nominal_threshold"),
                    "calibrated_threshold": row.get("threshold") if calibrated else None,
                },
            )
            continue
        if metric == "out_of_range_share":
            f["kind"] = quality["kind"] = "numeric"
        quality[metric] = row["value"]
        if row.get("threshold") is not None:
            quality.setdefault("limits", {})[metric] = row["threshold"]
        if critical:
            code = {"missing_share": "missing_increase", "out_of_range_share": "out_of_range",
                    "unseen_share": "unseen_categories"}.get(metric)  # fmt: skip
            quality.setdefault("problems", []).append(code)
    extra = dataset.get("details") or {}
    first = rows[0]
    report = {
        "features": list(features.values()),
        "drift_share": dataset.get("value"),
        "drift_share_threshold": dataset.get("threshold"),
        "dataset_drift": dataset.get("status") == "critical",
        "n_drifted": len(extra.get("drifted_features") or ()),
        "n_current": extra.get("n_current"),
    }
    window = {
        "start": _epoch(first.get("window_start")),
        "end": _epoch(first.get("window_end")),
        "evaluated_at": _epoch(first.get("evaluated_at")),
        "rows": extra.get("n_current"),
        "judged": True,
    }
    return {**out, "status": "judged", "message": None, "window": window, "report": report}


def _from_store(url: str, models: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """The newest evaluation of each model version, read from the store at ``url``."""
    from sqlalchemy.engine import make_url

    from inferwatch.config import mask_url
    from inferwatch.errors import StoreError
    from inferwatch.store import open_store

    try:
        parsed = make_url(url)
    except Exception:
        fail(f"store.url {mask_url(url)} is not a database URL")
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file not in (None, "", ":memory:") and not Path(str(file)).is_file():
        fail(f"no store at {mask_url(url)}: the file does not exist")
    store = open_store(url)
    try:
        return [answer_from_rows(m, v, store.latest_evaluations(m, v)) for m, v in models]
    except StoreError as exc:
        fail(f"cannot read the store at {mask_url(url)}: {exc}")
    finally:
        store.close()


def _console() -> Console:
    from rich.console import Console

    probe = Console()
    return probe if probe.is_terminal else Console(width=PIPE_WIDTH)


@app.command()
def status(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="inferwatch.yaml: where the server listens."),
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="The server's URL (default: from the config's server).")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Only this model (repeatable).")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar=API_KEY_ENV,
            show_envvar=True,
            help="An API key with the 'read' role, when the server has auth.keys.",
        ),
    ] = None,
    from_store: Annotated[
        bool,
        typer.Option(
            "--from-store",
            help="Read the newest evaluations from the config's store instead of asking the "
            "server (works while it is down; input features only).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The server's answers as JSON.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the server.")] = 10.0,
) -> None:
    """Show each served model's newest live drift window, asked of the running server.

    Per feature: test, statistic, live and nominal thresholds, verdict, quality vs limits.

    Exits 2 with a one-line message when the server cannot be reached.
    """
    import httpx

    from inferwatch.config import load_settings

    if from_store:
        settings = load_settings(default_config(config))
        pairs = [(m.name, m.version) for m in settings.models if not model or m.name in model]
        unknown = sorted(set(model or ()) - {m.name for m in settings.models})
        if unknown:
            fail(f"the configuration has no model named {', '.join(unknown)}")
        _show(_from_store(settings.store.url, pairs), as_json)
        return
    if url is None:
        settings = load_settings(default_config(config))
        url = base_url(settings.server.host, settings.server.port)
    elif not url.startswith(("http://", "https://")):
        fail(f"--url must be an http:// or https:// URL, got {url!r}")
    url = url.rstrip("/")
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        client = httpx.Client(base_url=url, headers=headers, timeout=timeout)
    except (httpx.InvalidURL, ValueError) as exc:
        fail(f"--url {url!r} is not a valid URL: {exc}")
    with client:
        served = _fetch(client, "/v1/models").get("models") or []
        names = [str(m["name"]) for m in served]
        unknown = sorted(set(model or ()) - set(names))
        if unknown:
            fail(f"the server at {url} serves no model named {', '.join(unknown)}; "
                 f"it serves {', '.join(names) or 'none'}")  # fmt: skip
        wanted: Sequence[str] = [n for n in names if not model or n in model]
        answers = [_fetch(client, f"/v1/models/{quote(n, safe='')}/drift") for n in wanted]
    _show(answers, as_json)


def _show(answers: Sequence[Mapping[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"models": list(answers)}, indent=2, default=str))
        return
    console = _console()
    if not answers:
        console.print("no model to show", highlight=False)
    for i, answer in enumerate(answers):
        if i:
            console.print()
        render(console, answer)
