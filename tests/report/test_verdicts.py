"""End to end on the benchmark generator and on awkward files: the verdicts and the edge cases."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from inferwatch.report import build_report

BENCH = Path(__file__).resolve().parents[2] / "bench" / "drift_data.py"


def bench_module() -> object:
    spec = importlib.util.spec_from_file_location("drift_data", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["drift_data"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("rows", [20_000])
def test_defaults_find_exactly_the_drifted_columns(rows: int, tmp_path: Path) -> None:
    bench = bench_module()
    ref, cur = bench.write(rows, tmp_path)  # type: ignore[attr-defined]
    report = build_report(ref, cur)
    assert set(report.drifted) == set(bench.DRIFTED)  # type: ignore[attr-defined]
    by = {f.name: f for f in report.features}
    assert by["cat_4"].quality is not None
    assert "c4_new" in by["cat_4"].quality.unseen_categories  # the category the reference lacks
    assert by["num_05"].quality is not None
    assert by["num_05"].quality.missing_share == pytest.approx(0.10, abs=0.01)


def test_mismatched_and_mixed_types(tmp_path: Path, rng: np.random.Generator) -> None:
    n = 500
    ref = pd.DataFrame(
        {"x": rng.normal(size=n), "code": rng.integers(0, 3, n), "y": rng.normal(size=n)}
    )
    cur_x = [str(v) for v in rng.normal(size=n)]
    cur_x[:25] = ["oops"] * 25  # strings that are not numbers (CSV readers take "n/a" as null)
    cur = pd.DataFrame(
        {"x": cur_x, "code": rng.integers(0, 3, n).astype(float), "y": rng.normal(size=n)}
    )
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_csv(tmp_path / "cur.csv", index=False)
    report = build_report(tmp_path / "ref.csv", tmp_path / "cur.csv")
    by = {f.name: f for f in report.features}
    x = by["x"]
    assert x.result is not None  # parsed where it parses
    assert x.quality is not None
    assert x.quality.type_violations == 25
    assert "type_violations" in x.quality.problems
    code = by["code"]  # ints in the reference, floats in the current: same values
    assert code.result is not None
    assert not code.drift_detected
