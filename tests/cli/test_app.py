"""The small commands: version, config validate/show, schema infer, db upgrade."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from inferwatch._version import __version__
from inferwatch.io import load_schema
from inferwatch.store import SQLStore
from tests.cli.conftest import Run


def test_version(run_cli: Run) -> None:
    out = run_cli("version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"inferwatch {__version__}"


def test_help_lists_the_commands(run_cli: Run) -> None:
    out = run_cli("--help")
    assert out.returncode == 0
    for cmd in ("serve", "demo", "schema", "config", "db", "version"):
        assert cmd in out.stdout


def test_config_validate_ok_and_bad(run_cli: Run, tmp_path: Path) -> None:
    import joblib
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame({"a": [float(i) for i in range(20)]})
    joblib.dump(LinearRegression().fit(frame, frame["a"] * 2), tmp_path / "m.joblib")
    frame.to_csv(tmp_path / "r.csv", index=False)
    good = tmp_path / "good.yaml"
    good.write_text("models:\n  - name: m\n    path: m.joblib\n    reference: r.csv\n")
    out = run_cli("config", "validate", str(good))
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text("server:\n  port: 70000\nstore:\n  batch_size: -1\n")
    out = run_cli("config", "validate", str(bad))
    assert out.returncode == 2
    assert "server.port" in out.stderr
    assert "store.batch_size" in out.stderr
    assert "Traceback" not in out.stderr

    missing = tmp_path / "missing.yaml"
    missing.write_text("models:\n  - name: m\n    path: nope.joblib\n    reference: r.csv\n")
    out = run_cli("config", "validate", str(missing))
    assert out.returncode == 2
    assert "models[0].path" in out.stderr

    (tmp_path / "junk.joblib").write_bytes(b"x")  # serve cannot load it: neither can validate
    junk = tmp_path / "junk.yaml"
    junk.write_text("models:\n  - name: m\n    path: junk.joblib\n    reference: r.csv\n")
    out = run_cli("config", "validate", str(junk))
    assert out.returncode == 2
    assert "models[0].path: cannot load model" in out.stderr


def test_config_show_masks_secrets_and_applies_env(run_cli: Run, tmp_path: Path) -> None:
    secret = "a-very-secret-key-123456"
    (tmp_path / "inferwatch.yaml").write_text(
        "store:\n  url: postgresql+psycopg://u:hunter2@127.0.0.1/db\n"
        f"auth:\n  keys:\n    - {{name: k, key: {secret}, roles: [admin]}}\n"
    )
    out = run_cli("config", "show", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["store"]["url"] == "postgresql+psycopg://u:***@127.0.0.1/db"
    assert secret not in out.stdout
    assert "hunter2" not in out.stdout
    assert data["auth"]["keys"][0]["roles"] == ["admin"]
    shown = yaml.safe_load(run_cli("config", "show").stdout)
    assert shown["server"]["port"] == 8000


def test_schema_infer_writes_an_editable_yaml(run_cli: Run, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "x": rng.normal(size=200),
            "n": rng.integers(0, 5, 200),
            "c": rng.choice(["a", "b"], 200),
            "y": rng.choice(["no", "yes"], 200),
        }
    )
    df.to_parquet(tmp_path / "ref.parquet")
    out = run_cli("schema", "infer", "ref.parquet", "--target", "y", "-o", "schema.yaml")
    assert out.returncode == 0, out.stderr
    schema = load_schema(tmp_path / "schema.yaml")
    assert schema.names == ("x", "n", "c")
    assert schema["c"].categories == ("a", "b")
    assert schema.target is not None
    assert schema.target.classes == ("no", "yes")

    out = run_cli("schema", "infer", "ref.parquet", "--target", "nope")
    assert out.returncode == 2
    assert "nope" in out.stderr
    out = run_cli("schema", "infer", "missing.parquet")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr


def test_db_upgrade_is_idempotent(run_cli: Run, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'iw.db'}"
    out = run_cli("db", "upgrade", "--store", url)
    assert out.returncode == 0, out.stderr
    assert "upgraded from empty" in out.stdout
    out = run_cli("db", "upgrade", "--store", url)
    assert out.returncode == 0
    assert "already at" in out.stdout
    store = SQLStore(url)
    assert store.current_revision() == store.head_revision()
    store.close()
