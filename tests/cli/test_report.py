"""``inferwatch report`` and ``inferwatch check`` as users run them, on real files."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.cli.conftest import Run

DRIFTED = {"num_a", "cat_b"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    rng = np.random.default_rng(7)
    out = tmp_path_factory.mktemp("data")

    def frame(n: int, drift: bool) -> pd.DataFrame:
        cats = np.array(["u", "v", "w"], dtype=object)
        p = [0.2, 0.3, 0.5] if drift else [0.5, 0.3, 0.2]
        return pd.DataFrame(
            {
                "num_a": rng.normal(0.8 if drift else 0.0, 1.0, n),
                "num_b": rng.uniform(0, 1, n),
                "count": rng.poisson(3, n),
                "cat_b": cats[rng.choice(3, n, p=p)],
                "cat_c": cats[rng.choice(3, n)],
                "label": rng.choice(["no", "yes"], n),
            }
        )

    ref = frame(3000, False)
    same = frame(2000, False)
    drifted = frame(2000, True)
    paths = {
        "ref": out / "ref.parquet",
        "same": out / "same.csv",
        "drifted": out / "drifted.jsonl",
        "empty": out / "empty.csv",
        "bad": out / "bad.txt",
    }
    ref.to_parquet(paths["ref"])
    same.to_csv(paths["same"], index=False)
    drifted.to_json(paths["drifted"], orient="records", lines=True)
    same.head(0).to_csv(paths["empty"], index=False)
    paths["bad"].write_text("not data")
    return paths


def test_report_json_contract_and_verdicts(
    run_cli: Run, files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "r.json"
    res = run_cli(
        "report", "-r", str(files["ref"]), "--current", str(files["drifted"]),
        "--target", "label", "-o", str(out),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    d = json.loads(out.read_text())
    assert set(d["drifted_features"]) == DRIFTED
    assert d["n_reference"] == 3000
    assert d["n_current"] == 2000
    assert d["target_drift"]["name"] == "label"
    assert not d["target_drift"]["drift_detected"]
    names = [f["name"] for f in d["features"]]
    assert names == ["num_a", "num_b", "count", "cat_b", "cat_c"]
    assert "label" not in names
    assert d["meta"]["reference"] == str(files["ref"])


def test_check_exit_codes(run_cli: Run, files: dict[str, Path]) -> None:
    ok = run_cli(
        "check", "-r", str(files["ref"]), "--current", str(files["same"]), "--target", "label"
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    drift = run_cli(
        "check", "-r", str(files["ref"]), "--current", str(files["drifted"]),
        "--target", "label", "--drift-share", "0.4",
    )  # fmt: skip
    assert drift.returncode == 1, drift.stderr
    assert "DRIFT" in drift.stderr
    for bad in (
        ("--current", str(files["empty"])),
        ("--current", str(files["bad"])),
        ("--current", str(files["ref"].with_name("missing.parquet"))),
    ):
        res = run_cli("check", "-r", str(files["ref"]), *bad)
        assert res.returncode == 2, res.stderr
        assert "Traceback" not in res.stderr
        assert "error:" in res.stderr
    res = run_cli(
        "check", "-r", str(files["ref"]), "--current", str(files["same"]), "--test", "num_a=nope"
    )
    assert res.returncode == 2
    assert "available" in res.stderr


def test_check_json_and_overrides(run_cli: Run, files: dict[str, Path]) -> None:
    res = run_cli(
        "check", "-r", str(files["ref"]), "--current", str(files["same"]), "--json",
        "--test", "num_a=ks", "--threshold", "num_b=0.5", "--correction", "bonferroni",
    )  # fmt: skip
    assert res.returncode in (0, 1), res.stderr
    d = json.loads(res.stdout.strip().splitlines()[-1])
    by = {f["name"]: f for f in d["features"]}
    assert by["num_a"]["test"] == "ks"
    assert by["num_b"]["threshold"] == 0.5
    assert d["correction"] == "bonferroni"


def test_schema_file_limits_the_columns(
    run_cli: Run, files: dict[str, Path], tmp_path: Path
) -> None:
    schema = tmp_path / "s.yaml"
    schema.write_text(
        "features:\n  - {name: num_a, kind: numeric}\n  - {name: gone, kind: numeric}\n"
    )
    out = tmp_path / "r.json"
    res = run_cli(
        "report", "-r", str(files["ref"]), "--current", str(files["drifted"]),
        "--schema", str(schema), "-o", str(out),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    d = json.loads(out.read_text())
    assert [f["name"] for f in d["features"]] == ["num_a", "gone"]
    assert "missing" in d["features"][1]["error"]
    assert d["quality"]["missing_columns"] == ["gone"]
    assert "num_b" in d["quality"]["extra_columns"]


@pytest.mark.integration
def test_check_pushes_to_a_real_pushgateway(
    run_cli: Run, files: dict[str, Path], tmp_path: Path
) -> None:
    binary = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    if binary is None:
        pytest.skip("prometheus-pushgateway not installed (apt-get install prometheus-pushgateway)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}", f"--persistence.file={tmp_path / 'p'}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        res = run_cli(
            "check", "-r", str(files["ref"]), "--current", str(files["drifted"]),
            "--target", "label", "--drift-share", "0.4",
            "--push-gateway", url, "--model", "churn", "--version", "7",
        )  # fmt: skip
        assert res.returncode == 1, res.stderr
        text = httpx.get(f"{url}/metrics", timeout=5).text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    lines = [ln for ln in text.splitlines() if ln.startswith("inferwatch_")]
    score = [
        ln for ln in lines if ln.startswith("inferwatch_drift_score{") and 'feature="num_a"' in ln
    ]
    assert score, "\n".join(lines[:20])
    assert 'model="churn"' in score[0]
    assert 'version="7"' in score[0]
    assert any(ln.startswith("inferwatch_dataset_drift_share{") for ln in lines)
    detected = [
        ln
        for ln in lines
        if ln.startswith("inferwatch_drift_detected{") and 'feature="cat_b"' in ln
    ]
    assert detected
    assert detected[0].endswith(" 1")


def test_report_reads_a_prediction_log_jsonl(run_cli: Run, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)

    def log(path: Path, shift: float) -> None:
        with path.open("w") as fh:
            for i in range(1500):
                row = {
                    "id": f"p{i}",
                    "inputs": {
                        "age": float(rng.normal(40 + shift, 5)),
                        "plan": str(rng.choice(["a", "b"])),
                    },
                    "output": "yes",
                }
                fh.write(json.dumps(row) + "\n")

    log(tmp_path / "ref.jsonl", 0.0)
    log(tmp_path / "cur.jsonl", 10.0)
    out = tmp_path / "r.json"
    res = run_cli(
        "report", "-r", str(tmp_path / "ref.jsonl"), "--current", str(tmp_path / "cur.jsonl"),
        "--flatten", "inputs", "-o", str(out),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    d = json.loads(out.read_text())
    names = {f["name"]: f for f in d["features"]}
    assert {"age", "plan"} <= set(names)
    assert names["age"]["drift_detected"]
    assert not names["plan"]["drift_detected"]
