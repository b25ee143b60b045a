"""The typer application and the small command groups (version, config, schema, db).

Heavy modules (pandas, scikit-learn, SQLAlchemy, FastAPI) are imported inside the
commands that need them, so ``inferwatch --help`` and ``config validate`` start fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, cast

import typer

from inferwatch._version import __version__
from inferwatch.errors import InferwatchError

if TYPE_CHECKING:
    from rich.console import Console

    from inferwatch._typing import Task

__all__ = ["app", "console", "err_console", "fail", "main"]


class _LazyConsole:
    """A rich ``Console`` made on first use: ``inferwatch --help`` and typer's own errors
    never need rich's console machinery (about a quarter of the CLI's start-up)."""

    def __init__(self, *, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def _get(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    # special methods bypass __getattr__: rich's Live (progress bars) enters the console
    def __enter__(self) -> Console:
        return self._get().__enter__()

    def __exit__(self, *exc: object) -> None:
        self._get().__exit__(*exc)


console = cast("Console", _LazyConsole())
err_console = cast("Console", _LazyConsole(stderr=True))

app = typer.Typer(
    name="inferwatch",
    help="Production monitoring for deployed ML models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # plain help: typer's rich help imports markdown and pygments (about 0.1 s of every
    # `--help` and usage error); our help texts use no markup
    rich_markup_mode=None,
)
config_app = typer.Typer(help="Check and show the configuration.", no_args_is_help=True)
schema_app = typer.Typer(help="Infer and check feature schemas.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the store's database schema.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(schema_app, name="schema")
app.add_typer(db_app, name="db")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="inferwatch.yaml (default: ./inferwatch.yaml if present)."),
]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print an error (no traceback) and exit non-zero."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def default_config(path: Path | None) -> Path | None:
    if path is not None:
        return path
    local = Path("inferwatch.yaml")
    return local if local.is_file() else None


@app.command()
def version() -> None:
    """Print the inferwatch version."""
    console.print(f"inferwatch {__version__}", highlight=False)


@config_app.command("validate")
def config_validate(
    file: Annotated[Path, typer.Argument(help="The YAML file to check.")],
) -> None:
    """Check a configuration file as `serve` would at start; exit 2 naming each bad key.

    Loads the schema and reference files and the models (a pickle runs code when it is
    loaded: pin models[].trusted_model_hashes); contacts no database and writes nothing.
    """
    from inferwatch.config import check_settings, load_settings

    settings = load_settings(file)
    problems = check_settings(settings)
    if problems:
        fail(f"invalid configuration in {file}:\n  " + "\n  ".join(problems))
    console.print(f"[green]ok[/] {file}: {len(settings.models)} model(s)", highlight=False)


@config_app.command("show")
def config_show(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of YAML.")] = False,
) -> None:
    """Print the effective configuration (file + environment), secrets masked."""
    import yaml

    from inferwatch.config import load_settings

    data = load_settings(default_config(config)).masked()
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        print(yaml.safe_dump(data, sort_keys=False), end="")


@schema_app.command("infer")
def schema_infer(
    reference: Annotated[Path, typer.Argument(help="Reference data: CSV, Parquet or JSONL.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Schema YAML to write.")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Target (ground truth) column.")] = None,
    prediction: Annotated[str | None, typer.Option(help="Prediction column.")] = None,
    task: Annotated[
        str | None, typer.Option(help="classification or regression (default: inferred).")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", "-x", help="Columns that are not features.")
    ] = None,
) -> None:
    """Infer a feature schema from a reference dataset."""
    import yaml

    from inferwatch.io import infer_schema_from_file, save_schema

    if task not in (None, "classification", "regression"):
        fail(f"--task must be classification or regression, got {task!r}")
    schema = infer_schema_from_file(
        reference,
        target=target,
        prediction=prediction,
        task=cast("Task | None", task),
        exclude=tuple(exclude or ()),
    )
    if output is None:
        print(yaml.safe_dump(schema.to_dict(), sort_keys=False), end="")
        return
    save_schema(schema, output)
    kinds: dict[str, int] = {}
    for f in schema.features:
        kinds[f.kind] = kinds.get(f.kind, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    err_console.print(f"wrote {output}: {len(schema)} features ({summary})", highlight=False)


@db_app.command("upgrade")
def db_upgrade(
    config: ConfigOpt = None,
    store: Annotated[str | None, typer.Option(help="Store URL (overrides the config).")] = None,
) -> None:
    """Create or migrate the store's tables to the newest version."""
    from inferwatch.config import load_settings, mask_url
    from inferwatch.store import open_store

    overrides: dict[str, Any] = {"store": {"url": store}} if store else {}
    settings = load_settings(default_config(config), overrides)
    st = open_store(settings.store.url)
    try:
        before = st.current_revision()
        st.upgrade()
        after = st.current_revision()
    finally:
        st.close()
    what = "already at" if before == after else f"upgraded from {before or 'empty'} to"
    console.print(f"{mask_url(settings.store.url)}: {what} revision {after}", highlight=False)


def main() -> None:
    """Console-script entry point: run the app, turning our errors into clean exits."""
    try:
        app()
    except InferwatchError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
