"""``inferwatch report`` and ``inferwatch check`` as users run them, on real files."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.cli.conftest import BoundProcess, Run

DRIFTED = {"num_a", "cat_b"}


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
    gateway = BoundProcess(
        [binary, "--web.listen-address=127.0.0.1:0", f"--persistence.file={tmp_path / 'p'}"],
        bound=re.compile(r'msg="Listening on" address=(127\.0\.0\.1:\d+)'),
        cwd=tmp_path,
    )
    url = f"http://{gateway.base}"
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
        gateway.stop(10)
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


def test_flatten_applies_to_each_file_that_has_the_column(run_cli: Run, tmp_path: Path) -> None:
    """A flat reference (the training data) beside a prediction log with nested inputs."""
    rng = np.random.default_rng(11)
    pd.DataFrame({"age": rng.normal(40, 5, 1500), "plan": rng.choice(["a", "b"], 1500)}).to_csv(
        tmp_path / "ref.csv", index=False
    )
    with (tmp_path / "cur.jsonl").open("w") as fh:
        for i in range(1500):
            inputs = {"age": float(rng.normal(50, 5)), "plan": str(rng.choice(["a", "b"]))}
            fh.write(json.dumps({"id": f"p{i}", "inputs": inputs}) + "\n")
    out = tmp_path / "r.json"
    res = run_cli(
        "report", "-r", str(tmp_path / "ref.csv"), "--current", str(tmp_path / "cur.jsonl"),
        "--flatten", "inputs", "-o", str(out),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    by = {f["name"]: f for f in json.loads(out.read_text())["features"]}
    assert set(by) == {"age", "plan"}
    assert by["age"]["drift_detected"]  # 40 -> 50: the nested values were read
    assert not by["plan"]["drift_detected"]
    res = run_cli(
        "report", "-r", str(tmp_path / "ref.csv"), "--current", str(tmp_path / "cur.jsonl"),
        "--flatten", "inptus", "-o", str(out),
    )  # fmt: skip
    assert res.returncode == 2  # a column in neither file is still a typo to report
    assert "'inptus'" in res.stderr
    assert "Traceback" not in res.stderr


def test_check_prints_the_whole_table_into_a_pipe(files: dict[str, Path], tmp_path: Path) -> None:
    """In a CI log (stderr not a terminal, no $COLUMNS) no column is cut to fit 80."""
    frame = pd.read_parquet(files["ref"])
    long = {c: f"{c}_measured_by_the_upstream_feature_pipeline" for c in frame.columns}
    frame.rename(columns=long).to_parquet(tmp_path / "wide.parquet")
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env = {k: v for k, v in env.items() if not k.startswith("INFERWATCH_")}
    res = subprocess.run(
        [sys.executable, "-m", "inferwatch", "check", "-r", str(tmp_path / "wide.parquet"),
         "--current", str(tmp_path / "wide.parquet")],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "…" not in res.stderr
    for name in long.values():
        row = [ln for ln in res.stderr.splitlines() if ln.startswith(name)]
        assert row, res.stderr  # the whole name starts a line ...
        assert "ok" in row[0]  # ... and its verdict is on the same line
    assert any(len(ln) > 80 for ln in res.stderr.splitlines())


@pytest.mark.parametrize(
    ("override", "named"),
    [
        (("--test", "nosuch=ks"), "'nosuch'"),
        (("--threshold", "nosuch=0.2"), "'nosuch'"),
        (("--test", "cat_b=ks"), "'cat_b' is categorical"),
    ],
)
def test_overrides_that_cannot_apply_are_errors(
    run_cli: Run, files: dict[str, Path], override: tuple[str, str], named: str
) -> None:
    res = run_cli("check", "-r", str(files["ref"]), "--current", str(files["same"]), *override)
    assert res.returncode == 2, res.stderr
    assert named in res.stderr
    assert override[1] in res.stderr  # names the flag the user typed
    assert "Traceback" not in res.stderr


def test_bad_inputs_and_outputs_are_one_line_errors(
    run_cli: Run, files: dict[str, Path], tmp_path: Path
) -> None:
    (tmp_path / "dup.csv").write_text("a,b,a\n1,2,3\n4,5,6\n7,8,9\n")
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder.json").mkdir()
    same = ("-r", str(files["ref"]), "--current", str(files["same"]))
    cases = [
        (("report", "-r", str(tmp_path / "dup.csv"), "--current", str(files["same"]),
          "-o", str(tmp_path / "r.json")), "'a' appears more than once"),
        (("report", *same, "-o", str(tmp_path / "file" / "sub" / "r.json")), "is a file"),
        (("report", *same, "-o", str(tmp_path / "folder.json")), "is a folder"),
        (("check", *same, "--push-gateway", "not a url"), "'not a url' is not a URL"),
        (("check", *same, "--push-gateway", "http://127.0.0.1:bad"), "is not a URL"),
    ]  # fmt: skip
    for args, message in cases:
        res = run_cli(*args)
        assert res.returncode == 2, (args, res.stderr)
        assert "Traceback" not in res.stderr, res.stderr
        assert message in res.stderr, res.stderr
        assert res.stderr.strip().count("\n") == 0, res.stderr  # one line
    # a folder that does not exist yet is made (what a user asking for it expects)
    out = tmp_path / "reports" / "2026" / "r.html"
    res = run_cli("report", *same, "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert out.read_text().startswith("<!DOCTYPE html>")
