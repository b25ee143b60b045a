"""``inferwatch export``: the prediction log of a real store to CSV, Parquet and JSONL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from inferwatch.monitor import Monitor
from inferwatch.observation import PredictionRecord
from inferwatch.store import SQLStore
from tests.cli.conftest import Run

T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store holding 150 iris predictions logged through a Monitor: versions 1 and 2,
    one a minute from T0, and 10 of another model."""
    if request.param == "sqlite":
        store_url = f"sqlite:///{tmp_path / 'log.db'}"
    else:
        store_url = request.getfixturevalue("postgres_db_url")
    frame, y = load_iris(return_X_y=True, as_frame=True)
    frame.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in frame.columns]
    clf = LogisticRegression(max_iter=500).fit(frame, y)
    rows = frame.to_dict("records")
    proba = clf.predict_proba(frame)
    store = SQLStore(store_url)
    store.upgrade()
    with Monitor(store, metrics=None) as mon:
        for i, row in enumerate(rows):
            mon.log(
                "iris", "1" if i % 3 else "2", [row], [int(proba[i].argmax())],
                scores=[float(proba[i].max())],
                probabilities=[{str(c): float(p) for c, p in enumerate(proba[i])}],
                timestamps=[T0 + timedelta(minutes=i)], latency_seconds=0.001 * i,
            )  # fmt: skip
        mon.log("other", "1", [{"z": i} for i in range(10)], ["a"] * 10,
                timestamps=[T0] * 10)  # fmt: skip
    store.close()
    return store_url


def stored(url: str, **filters: Any) -> list[PredictionRecord]:
    store = SQLStore(url)
    try:
        return list(store.iter_predictions(**filters))
    finally:
        store.close()


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_every_format_holds_the_stored_rows_in_order(
    run_cli: Run, url: str, tmp_path: Path, fmt: str
) -> None:
    out_path = tmp_path / f"iris.{fmt}"
    out = run_cli("export", "--store", url, "--model", "iris", "-o", str(out_path))
    assert out.returncode == 0, out.stderr
    assert "exported 150 predictions" in out.stderr
    want = stored(url, model="iris")
    if fmt == "jsonl":
        got = [json.loads(line) for line in out_path.read_text().splitlines()]
        assert [g["id"] for g in got] == [r.id for r in want]
        assert [g["inputs"] for g in got] == [dict(r.inputs) for r in want]
        assert [g["probabilities"] for g in got] == [r.probabilities for r in want]
        assert datetime.fromisoformat(got[5]["timestamp"]) == want[5].timestamp
        return
    frame = pd.read_csv(out_path) if fmt == "csv" else pq.read_table(out_path).to_pandas()
    assert list(frame.columns[:4]) == ["id", "model", "version", "timestamp"]
    assert frame["id"].tolist() == [r.id for r in want]
    assert frame["sepal_length"].tolist() == [r.inputs["sepal_length"] for r in want]
    assert frame["output"].tolist() == [r.output for r in want]
    assert frame["score"].tolist() == pytest.approx([r.score for r in want])
    assert json.loads(frame["probabilities"][7]) == want[7].probabilities
    assert pd.to_datetime(frame["timestamp"], utc=True)[3] == want[3].timestamp


def test_filters_by_model_version_and_half_open_time_range(
    run_cli: Run, url: str, tmp_path: Path
) -> None:
    since, until = T0 + timedelta(minutes=30), T0 + timedelta(minutes=90)
    out_path = tmp_path / "v1.jsonl"
    out = run_cli(
        "export", "--store", url, "--model", "iris", "--version", "1",
        "--since", "2026-11-01T00:30:00Z", "--until", "2026-11-01T02:30:00+01:00",
        "-o", str(out_path),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    got = [json.loads(line)["id"] for line in out_path.read_text().splitlines()]
    want = [r.id for r in stored(url, model="iris", version="1", since=since, until=until)]
    assert got == want
    assert len(got) == 40  # minutes 30..89, two in three of them version 1


def test_stdout_csv_and_a_limit(run_cli: Run, url: str) -> None:
    out = run_cli("export", "--store", url, "-f", "csv", "-o", "-", "--limit", "5")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 6  # the header and the 5 oldest rows
    assert [line.split(",")[0] for line in lines[1:]] == [r.id for r in stored(url, limit=5)]


def test_nothing_matching_says_so_and_writes_no_file(
    run_cli: Run, url: str, tmp_path: Path
) -> None:
    out_path = tmp_path / "none.csv"
    out = run_cli("export", "--store", url, "--model", "iris", "--since", "2030-01-01",
                  "-o", str(out_path))  # fmt: skip
    assert out.returncode == 1
    assert "no predictions match (model=iris, since=2030-01-01)" in out.stderr
    assert "no file written" in out.stderr
    assert not out_path.exists()
    assert list(tmp_path.glob(".none.csv.*")) == []  # no temporary file left behind


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "x.xlsx"], "cannot tell the format of 'x.xlsx'"),
        (["-o", "x.csv", "--format", "xml"], "unknown format 'xml'"),
        (["-o", "x.csv", "--since", "last tuesday"], "--since 'last tuesday' is not an ISO 8601"),
        (["-o", "x.csv", "--since", "2026-11-02", "--until", "2026-11-01"], "must be before"),
        (["-o", "-", "-f", "parquet"], "Parquet cannot be written to stdout"),
        (["-o", "no/such/folder/x.csv"], "the folder no/such/folder does not exist"),
        (["-o", "x.csv", "--version", "1"], "--version needs --model"),
    ],
)
def test_bad_input_is_a_clear_error(
    run_cli: Run, tmp_path: Path, args: list[str], message: str
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    store = SQLStore(url)
    store.upgrade()
    store.write_predictions([PredictionRecord("a", "m", "1", T0, {"x": 1}, "y", None, None)])
    store.close()
    out = run_cli("export", "--store", url, *args)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_a_missing_store_is_not_created(run_cli: Run, tmp_path: Path) -> None:
    out = run_cli("export", "--store", f"sqlite:///{tmp_path / 'typo.db'}", "-o", "x.csv")
    assert out.returncode == 2
    assert "the SQLite file does not exist" in out.stderr
    assert not (tmp_path / "typo.db").exists()


def test_the_store_comes_from_the_config(run_cli: Run, url: str, tmp_path: Path) -> None:
    (tmp_path / "inferwatch.yaml").write_text(f"store:\n  url: {url}\n")
    out = run_cli("export", "--model", "other", "-o", "other.csv")
    assert out.returncode == 0, out.stderr
    assert pd.read_csv(tmp_path / "other.csv")["z"].tolist() == list(range(10))


def test_rows_that_do_not_fit_the_first_chunk_are_named_in_a_warning(
    run_cli: Run, tmp_path: Path
) -> None:
    """Past the first chunk, a new feature and a text in a number column: the flat
    files say what they left out; JSONL keeps everything."""
    from inferwatch.cli._export import CHUNK_ROWS

    url = f"sqlite:///{tmp_path / 'log.db'}"
    store = SQLStore(url)
    store.upgrade()
    n = CHUNK_ROWS + 3
    recs = [
        PredictionRecord(f"{i:08d}", "m", "1", T0 + timedelta(seconds=i),
                         {"x": float(i)}, "a", None, None)
        for i in range(n)
    ]  # fmt: skip
    recs[-1] = PredictionRecord(f"{n - 1:08d}", "m", "1", T0 + timedelta(seconds=n),
                                {"x": "oops", "late": 1}, "a", None, None)  # fmt: skip
    store.write_predictions(recs)
    store.close()

    out = run_cli("export", "--store", url, "-o", "log.parquet", "--progress")
    assert out.returncode == 0, out.stderr
    assert "'late' (1 rows)" in out.stderr
    assert "written as null: 'x' (1)" in out.stderr
    table = pq.read_table(tmp_path / "log.parquet")
    assert table.num_rows == n
    assert table.column("x").to_pylist()[-2:] == [float(n - 2), None]

    out = run_cli("export", "--store", url, "-o", "log.jsonl")
    assert out.returncode == 0
    assert "warning" not in out.stderr
    last = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[-1])
    assert last["inputs"] == {"x": "oops", "late": 1}
