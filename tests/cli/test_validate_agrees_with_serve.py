"""``inferwatch config validate`` passes exactly the configs that ``inferwatch serve`` starts.

Before, validate checked only that files existed: 25 of 52 configs it passed made serve
fail at start (a schema with min > max, a store URL of another database, a model path
that is a folder ...).  Each case below runs both real commands on the same file
(``validate`` through the console script's ``main`` in this process, ``serve`` as a
process of its own; a test checks the in-process validate prints what the command does).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferwatch.cli import main
from inferwatch.demo import prepare_workdir

SECRET = "12345678901234567890"


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("agree")
    prepare_workdir(path, port=0, n_reference=400)
    return path


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("INFERWATCH_")}


@dataclass(frozen=True)
class Checked:
    returncode: int
    stdout: str
    stderr: str


def validate_process(config: Path) -> subprocess.CompletedProcess[str]:
    """``python -m inferwatch config validate CONFIG`` in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "inferwatch", "config", "validate", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=config.parent,
        env=_env(),
    )


def validate(config: Path) -> Checked:
    """``inferwatch config validate CONFIG`` through the console script's ``main`` (its
    error handling included), run in this process as a process would run it: in the
    config's folder, without ``INFERWATCH_`` variables, what it prints and logs captured
    (a warning logged with no handler configured reaches stderr as its bare message), an
    uncaught exception written as the interpreter writes it, exit code from ``SystemExit``.

    Why not a process per case: 33 fresh interpreters importing scikit-learn, pandas and
    scipy cost more than the validations (about a quarter of this module's CPU time);
    :func:`test_in_process_validate_prints_what_the_command_prints` checks the two agree.
    ``serve`` keeps its own process: starting is what is tested."""
    out, err = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)  # as logging's last resort handler: bare message
    handler.setLevel(logging.WARNING)
    root = logging.getLogger()
    code: int | str | None = 0
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(config.parent)
        for key in [k for k in os.environ if k.startswith("INFERWATCH_")]:
            mp.delenv(key)
        mp.setattr(sys, "argv", ["inferwatch", "config", "validate", str(config)])
        mp.setattr(sys, "stdout", out)
        mp.setattr(sys, "stderr", err)
        root.addHandler(handler)
        try:
            main()
        except SystemExit as exc:
            code = exc.code
        except Exception:
            err.write(traceback.format_exc())
            code = 1
        finally:
            root.removeHandler(handler)
    if code is None:
        code = 0
    elif isinstance(code, str):
        err.write(code + "\n")
        code = 1
    return Checked(code, out.getvalue(), err.getvalue())


def serve_starts(config: Path, timeout: float = 120) -> tuple[bool, str]:
    """Whether ``serve -c config`` gets to serving; and what it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "inferwatch", "serve", "-c", str(config)],
        cwd=config.parent,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    started = False
    try:
        for line in proc.stdout:
            lines.append(line)
            if "Application startup complete" in line:
                started = True
                break
            if time.monotonic() > deadline:
                break
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        lines.append(proc.stdout.read())
    return started, "".join(lines)


Edit = Callable[[dict[str, Any], Path], None]


@dataclass(frozen=True)
class Case:
    id: str
    edit: Edit
    ok: bool = False
    says: tuple[str, ...] = field(default_factory=tuple)


def model(cfg: dict[str, Any]) -> dict[str, Any]:
    return cfg["models"][0]  # type: ignore[no-any-return]


def set_store(url: str) -> Edit:
    def edit(cfg: dict[str, Any], d: Path) -> None:
        cfg["store"]["url"] = url

    return edit


def set_model(**values: Any) -> Edit:
    def edit(cfg: dict[str, Any], d: Path) -> None:
        model(cfg).update(values)

    return edit


def write_file(key: str, name: str, content: bytes) -> Edit:
    def edit(cfg: dict[str, Any], d: Path) -> None:
        (d / name).write_bytes(content)
        model(cfg)[key] = str(d / name)

    return edit


def folder(key: str) -> Edit:
    def edit(cfg: dict[str, Any], d: Path) -> None:
        (d / "a-folder.joblib").mkdir()
        model(cfg)[key] = str(d / "a-folder.joblib")

    return edit


def schema_edit(change: Callable[[dict[str, Any]], None]) -> Edit:
    def edit(cfg: dict[str, Any], d: Path) -> None:
        data = yaml.safe_load(Path(model(cfg)["schema"]).read_text())
        change(data)
        (d / "edited-schema.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        model(cfg)["schema"] = str(d / "edited-schema.yaml")

    return edit


def feature(name: str, **values: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        for f in data["features"]:
            if f["name"] == name:
                f.update(values)

    return change


def drop_feature(name: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["features"] = [f for f in data["features"] if f["name"] != name]

    return change


def no_schema(target: str | None = "churned") -> Edit:
    def edit(cfg: dict[str, Any], d: Path) -> None:
        model(cfg).pop("schema")
        model(cfg)["target"] = target
        model(cfg)["prediction"] = "prediction"

    return edit


def hashes(*values: str) -> Edit:
    def edit(cfg: dict[str, Any], d: Path) -> None:
        model(cfg)["trusted_model_hashes"] = [
            hashlib.sha256(Path(model(cfg)["path"]).read_bytes()).hexdigest() if v == "real" else v
            for v in values
        ]

    return edit


def raw(text: str) -> Edit:
    """Append raw YAML (for values YAML types itself, like an unquoted number)."""

    def edit(cfg: dict[str, Any], d: Path) -> None:
        cfg["_raw"] = text

    return edit


def section(name: str, **values: Any) -> Edit:
    def edit(cfg: dict[str, Any], d: Path) -> None:
        cfg.setdefault(name, {}).update(values)

    return edit


def nothing(cfg: dict[str, Any], d: Path) -> None:
    pass


CASES = [
    Case("the_demo_config", nothing, ok=True),
    Case("schema_inferred_from_the_reference", no_schema(), ok=True),
    Case("pinned_model_hash", hashes("real"), ok=True),
    Case("pinned_among_others", hashes("0" * 64, "real"), ok=True),
    Case("postgres_scheme_without_server", set_store("mysql://u:pw@localhost/db"),
         says=("store.url", "mysql")),
    Case("asyncpg_driver", set_store("postgresql+asyncpg://u@localhost/db"),
         says=("store.url", "asyncpg")),
    Case("store_url_not_a_url", set_store("not a url"), says=("store.url",)),
    Case("store_url_empty", set_store(""), says=("store.url",)),
    Case("model_path_is_a_folder", folder("path"), says=("models[0].path", "folder")),
    Case("model_path_missing", set_model(path="/nonexistent/model.joblib"),
         says=("models[0].path", "does not exist")),
    Case("model_not_a_pickle_suffix", write_file("path", "model.txt", b"x"),
         says=("models[0].path", ".joblib")),
    Case("model_file_corrupt", write_file("path", "bad.joblib", b"not a pickle at all"),
         says=("models[0].path",)),
    Case("model_hash_not_trusted", hashes("0" * 64),
         says=("models[0].path", "trusted_model_hashes")),
    Case("model_hash_malformed", hashes("abc"), says=("trusted_model_hashes",)),
    Case("schema_min_above_max", schema_edit(feature("age", min=90, max=10)),
         says=("models[0].schema", "age")),
    Case("schema_min_nan", schema_edit(feature("age", min=float("nan"))),
         says=("models[0].schema", "age", "min")),
    Case("schema_unknown_kind", schema_edit(feature("plan", kind="colour")),
         says=("models[0].schema", "plan")),
    Case("schema_misses_a_model_feature", schema_edit(drop_feature("age")),
         says=("models[0].path", "'age'")),
    Case("schema_bad_yaml", write_file("schema", "s.yaml", b"features: [\n  - {name: a"),
         says=("models[0].schema",)),
    Case("schema_empty", write_file("schema", "s.yaml", b""), says=("models[0].schema",)),
    Case("schema_missing", set_model(schema="/nonexistent/schema.yaml"),
         says=("models[0].schema",)),
    Case("schema_is_a_folder", folder("schema"), says=("models[0].schema",)),
    Case("reference_missing", set_model(reference="/nonexistent/ref.parquet"),
         says=("models[0].reference",)),
    Case("reference_is_a_folder", folder("reference"), says=("models[0].reference",)),
    Case("reference_corrupt", write_file("reference", "r.parquet", b"PAR1 garbage"),
         says=("models[0].reference",)),
    Case("reference_unknown_format", write_file("reference", "r.xlsx", b"a,b\n1,2\n"),
         says=("models[0].reference",)),
    Case("target_not_in_the_reference", no_schema("nosuch"),
         says=("models[0]", "nosuch")),
    Case("public_bind_without_keys", section("server", host="0.0.0.0"),
         says=("auth.keys",)),
    Case("port_out_of_range", section("server", port=70000), says=("server.port",)),
    Case("unknown_drift_test", section("drift", tests={"age": "nosuch"}),
         says=("drift.tests",)),
    Case("task_unknown", set_model(task="ranking"), says=("models[0].task",)),
    Case("unquoted_numeric_secret",
         raw(f"auth:\n  keys:\n    - name: ci\n      key: {SECRET}\n      roles: [predict]\n"),
         says=("auth.keys[0].key",)),
    Case("short_secret",
         raw("auth:\n  keys:\n    - name: ci\n      key: 'short'\n      roles: [predict]\n"),
         says=("auth.keys[0]",)),
]  # fmt: skip


def write_config(fixtures: Path, tmp_path: Path, case: Case) -> Path:
    cfg: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 0},
        "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"},
        "drift": {"window_seconds": 20, "evaluation_interval_seconds": 5},
        "models": [
            {
                "name": "churn",
                "version": "1",
                "path": str(fixtures / "model.joblib"),
                "schema": str(fixtures / "schema.yaml"),
                "reference": str(fixtures / "reference.parquet"),
                "target": "churned",
            }
        ],
    }
    case.edit(cfg, tmp_path)
    extra = cfg.pop("_raw", "")
    path = tmp_path / "inferwatch.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False) + extra)
    return path


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_validate_and_serve_agree(fixtures: Path, tmp_path: Path, case: Case) -> None:
    config = write_config(fixtures, tmp_path, case)

    checked = validate(config)
    started, served = serve_starts(config)

    assert (checked.returncode == 0) is case.ok, checked.stdout + checked.stderr
    assert started is case.ok, served
    assert "Traceback" not in checked.stderr
    assert "Traceback" not in served
    for text in case.says:
        assert text in checked.stderr, checked.stderr
    if not case.ok:  # serve names the same key (model loading aside: serve loads once)
        assert case.says[0] in served or "models[0].path" in case.says[0], served
    for output in (checked.stdout + checked.stderr, served):
        assert SECRET not in output  # a secret is never echoed
        assert "pw@" not in output  # nor a database password
    if os.path.exists(tmp_path / "a-folder.joblib"):
        shutil.rmtree(tmp_path / "a-folder.joblib")


AGREEMENT = [c for c in CASES if c.id in {"the_demo_config", "model_path_missing", "short_secret"}]


@pytest.mark.parametrize("case", AGREEMENT, ids=[c.id for c in AGREEMENT])
def test_in_process_validate_prints_what_the_command_prints(
    fixtures: Path, tmp_path: Path, case: Case
) -> None:
    """The in-process run above stands for ``python -m inferwatch config validate``:
    same exit code, same output, on an accepted config and on refused ones (a config
    error, a secret too short to accept and never to be echoed)."""
    config = write_config(fixtures, tmp_path, case)
    process = validate_process(config)
    checked = validate(config)
    assert checked.returncode == process.returncode
    assert checked.stdout == process.stdout
    assert checked.stderr == process.stderr
