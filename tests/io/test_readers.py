"""read_columns/read_frame/write_frame: every format round trips, and every failure is explained."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from inferwatch.errors import InputFileError
from inferwatch.io import read_columns, read_frame, write_frame

N = 300


@pytest.fixture
def frame(rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": rng.integers(-5, 90, size=N),
            "income": rng.lognormal(10, 1, size=N),
            "plan": rng.choice(np.array(["free", "pro", "team", "élite"], dtype=object), size=N),
            "active": rng.random(N) < 0.3,
            "seen": pd.date_range("2024-01-01 08:00", periods=N, freq="37min").as_unit("ns"),
        }
    )


def _assert_columns_equal(got: dict[str, np.ndarray], frame: pd.DataFrame) -> None:
    assert list(got) == list(frame.columns)
    assert got["age"].dtype == np.int64
    assert got["income"].dtype == np.float64
    assert got["plan"].dtype == object
    assert got["active"].dtype == np.bool_
    assert got["seen"].dtype == np.dtype("datetime64[ns]")
    for name in frame.columns:
        np.testing.assert_array_equal(got[name], frame[name].to_numpy(), err_msg=name)
    assert all(type(v) is str for v in got["plan"])


def _write_jsonl(rows: list[dict[str, Any]], path: Path) -> None:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            "age": int(r.age),
            "income": float(r.income),
            "plan": r.plan,
            "active": bool(r.active),
            "seen": r.seen.isoformat(),
        }
        for r in frame.itertuples()
    ]


@pytest.mark.parametrize("name", ["data.csv", "data.CSV", "data.csv.gz"])
def test_csv_round_trip(frame: pd.DataFrame, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    frame.to_csv(path, index=False, compression="gzip" if name.endswith(".gz") else None)
    _assert_columns_equal(read_columns(path), frame)


@pytest.mark.parametrize("name", ["data.parquet", "data.pq"])
def test_parquet_round_trip(frame: pd.DataFrame, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    _assert_columns_equal(read_columns(path), frame)


@pytest.mark.parametrize("name", ["data.jsonl", "data.ndjson", "data.jsonl.gz"])
def test_jsonl_round_trip(frame: pd.DataFrame, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    _write_jsonl(_records(frame), path)
    _assert_columns_equal(read_columns(path), frame)


@pytest.mark.parametrize("name", ["out.csv", "out.csv.gz", "out.parquet", "out.jsonl.gz"])
def test_write_frame_round_trip(frame: pd.DataFrame, tmp_path: Path, name: str) -> None:
    path = write_frame(frame, tmp_path / name)
    _assert_columns_equal(read_columns(path), frame)
    if name.endswith(".gz"):
        assert gzip.decompress(path.read_bytes())  # really compressed


def test_write_frame_accepts_numpy_columns_and_writes_nulls(tmp_path: Path) -> None:
    cols = {
        "x": np.array([1.5, np.nan, 3.0]),
        "t": np.array(["2024-01-01", "NaT", "2024-01-03"], dtype="datetime64[ns]"),
        "emb": np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], dtype=object).tolist(),
    }
    path = write_frame(cols, tmp_path / "cols.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[1] == {"x": None, "t": None, "emb": [0.3, 0.4]}
    got = read_columns(path)
    np.testing.assert_array_equal(got["x"], cols["x"])
    np.testing.assert_array_equal(got["t"], cols["t"])
    assert got["emb"].tolist() == cols["emb"]


def test_read_frame_is_a_dataframe_of_the_same_columns(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = write_frame(frame, tmp_path / "f.parquet")
    got = read_frame(path, ["income", "age"])
    assert isinstance(got, pd.DataFrame)
    assert list(got.columns) == ["income", "age"]
    np.testing.assert_array_equal(got["age"].to_numpy(), frame["age"].to_numpy())


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_projection_returns_what_was_asked_in_that_order(
    frame: pd.DataFrame, tmp_path: Path, suffix: str
) -> None:
    path = write_frame(frame, tmp_path / f"f{suffix}")
    got = read_columns(path, ["seen", "age", "seen"])
    assert list(got) == ["seen", "age"]
    np.testing.assert_array_equal(got["age"], frame["age"].to_numpy())


def test_projection_does_not_read_the_other_columns(tmp_path: Path) -> None:
    # a timestamp beyond datetime64[ns]'s range cannot be converted: only reading it fails
    table = pa.table(
        {
            "ok": [1, 2],
            "far": pa.array([0, 32_503_680_000_000], pa.timestamp("ms")),  # year 3000
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    assert read_columns(tmp_path / "t.parquet", ["ok"])["ok"].tolist() == [1, 2]
    with pytest.raises(InputFileError, match="cannot convert column 'far'"):
        read_columns(tmp_path / "t.parquet")
    # invalid UTF-8 in a CSV column that is not asked for is never decoded
    (tmp_path / "t.csv").write_bytes(b"ok,bad\n1,\xff\xfe\n2,x\n")
    assert read_columns(tmp_path / "t.csv", ["ok"])["ok"].tolist() == [1, 2]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_limit_reads_the_first_rows(frame: pd.DataFrame, tmp_path: Path, suffix: str) -> None:
    path = write_frame(frame, tmp_path / f"f{suffix}")
    got = read_columns(path, ["age", "plan"], limit=7)
    np.testing.assert_array_equal(got["age"], frame["age"].to_numpy()[:7])
    assert got["plan"].tolist() == frame["plan"].tolist()[:7]
    empty = read_columns(path, ["age"], limit=0)
    assert empty["age"].shape == (0,)
    assert read_columns(path, ["age"], limit=10 * N)["age"].shape == (N,)


def test_negative_limit_is_a_value_error(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("a\n1\n")
    with pytest.raises(ValueError, match="limit"):
        read_columns(tmp_path / "a.csv", limit=-1)


def test_csv_nulls(tmp_path: Path) -> None:
    path = tmp_path / "nulls.csv"
    path.write_text("n,b,s,e\n1,true,x,\n,,,\n3,false,y,\n")
    got = read_columns(path)
    assert got["n"].dtype == np.float64
    np.testing.assert_array_equal(got["n"], [1.0, np.nan, 3.0])
    assert got["b"].dtype == object and got["b"].tolist() == [True, None, False]
    assert got["s"].tolist() == ["x", None, "y"]
    assert got["e"].tolist() == [None, None, None]  # an all-empty column has no type


def test_parquet_nulls_categoricals_embeddings_and_time_zones(tmp_path: Path) -> None:
    table = pa.table(
        {
            "n": pa.array([1, None, 3], pa.int32()),
            "f": pa.array([1.5, None, 2.5], pa.float32()),
            "b": pa.array([True, None, False]),
            "c": pa.array(["a", "b", "a"]).dictionary_encode(),
            "emb": pa.array([[0.5, 1.0], [2.0, 3.0], None], pa.list_(pa.float64())),
            "tz": pa.array([0, 3_600, None], pa.timestamp("s", tz="Europe/Paris")),
            "d": pa.array([0, 19_000, None], pa.date32()),
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    got = read_columns(tmp_path / "t.parquet")
    assert got["n"].dtype == np.float64 and np.isnan(got["n"][1])
    np.testing.assert_array_equal(got["f"], [1.5, np.nan, 2.5])
    assert got["b"].tolist() == [True, None, False]
    assert got["c"].tolist() == ["a", "b", "a"]
    assert got["emb"].dtype == object and got["emb"].tolist() == [[0.5, 1.0], [2.0, 3.0], None]
    expected = np.array(["1970-01-01T00:00", "1970-01-01T01:00", "NaT"], dtype="datetime64[ns]")
    np.testing.assert_array_equal(got["tz"], expected)  # zoned times are read in UTC
    assert got["d"].dtype == np.dtype("datetime64[ns]")
    assert str(got["d"][1]) == "2022-01-08T00:00:00.000000000"


def test_pandas_index_columns_are_not_read_as_data(tmp_path: Path) -> None:
    df = pd.DataFrame({"x": [1, 2, 3]}, index=[10, 20, 30])
    df.to_parquet(tmp_path / "i.parquet")  # keeps the index as __index_level_0__
    assert list(read_columns(tmp_path / "i.parquet")) == ["x"]


def test_iso_date_strings_become_datetimes(tmp_path: Path) -> None:
    rows = [
        {"day": "2024-03-01", "at": "2024-03-01T10:00:00Z", "code": "2024-03"},
        {"day": None, "at": "2024-03-01T12:30:00.250+02:00", "code": "2024-04"},
        {"day": "2024-03-03", "at": None, "code": "2024-05"},
    ]
    table = pa.Table.from_pylist(rows)  # strings, as Parquet keeps them
    pq.write_table(table, tmp_path / "d.parquet")
    got = read_columns(tmp_path / "d.parquet")
    np.testing.assert_array_equal(
        got["day"], np.array(["2024-03-01", "NaT", "2024-03-03"], dtype="datetime64[ns]")
    )
    np.testing.assert_array_equal(
        got["at"],
        np.array(["2024-03-01T10:00", "2024-03-01T10:30:00.25", "NaT"], dtype="datetime64[ns]"),
    )
    assert got["code"].tolist() == ["2024-03", "2024-04", "2024-05"]  # not a full date


def test_date_like_strings_with_a_later_non_date_stay_strings(tmp_path: Path) -> None:
    values = ["2024-01-01"] * 1_000 + ["soon"]
    pq.write_table(pa.table({"when": values}), tmp_path / "w.parquet")
    got = read_columns(tmp_path / "w.parquet")["when"]
    assert got.dtype == object and got[-1] == "soon"


def _prediction_log(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {
            "id": f"p{i}",
            "timestamp": f"2024-05-01T10:00:0{i}Z",
            "model": "churn",
            "version": "3",
            "inputs": {"age": 30 + i, "plan": "pro" if i % 2 else "free"},
            "output": i % 2,
            "score": 0.25 * i,
            "probabilities": {"0": 1 - 0.25 * i, "1": 0.25 * i},
        }
        for i in range(4)
    ]
    rows[2]["inputs"] = {"age": None, "plan": "team", "tenure": 7}  # a key seen late
    rows[3]["inputs"] = None
    _write_jsonl(rows, path)
    return rows


def test_prediction_log_inputs_are_flattened_into_features(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    _prediction_log(path)
    got = read_columns(path, flatten="inputs")
    assert list(got) == [
        "id",
        "timestamp",
        "model",
        "version",
        "age",
        "plan",
        "tenure",
        "output",
        "score",
        "probabilities",
    ]
    np.testing.assert_array_equal(got["age"], [30.0, 31.0, np.nan, np.nan])
    assert got["plan"].tolist() == ["free", "pro", "team", None]
    np.testing.assert_array_equal(got["tenure"], [np.nan, np.nan, 7.0, np.nan])
    assert got["timestamp"].dtype == np.dtype("datetime64[ns]")
    assert got["probabilities"][1] == {"0": 0.75, "1": 0.25}
    only = read_columns(path, ["plan", "output"], flatten=["inputs"])
    assert list(only) == ["plan", "output"]
    assert only["output"].tolist() == [0, 1, 0, 1]


def test_flattening_errors(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    _prediction_log(path)
    with pytest.raises(InputFileError, match=r"no column 'age'.*pass flatten=\['inputs'\]"):
        read_columns(path, ["age"])
    with pytest.raises(InputFileError, match="cannot flatten column 'model': it holds string"):
        read_columns(path, flatten="model")
    with pytest.raises(InputFileError, match="no column 'inputz' to flatten; the file has: id,"):
        read_columns(path, flatten="inputz")
    clash = tmp_path / "clash.jsonl"
    _write_jsonl([{"score": 1, "inputs": {"score": 2}}], clash)
    with pytest.raises(InputFileError, match="column 'score' appears twice"):
        read_columns(clash, flatten="inputs")


def test_unknown_extension_names_the_supported_formats(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_text("x")
    with pytest.raises(InputFileError, match=r"data\.xlsx: unsupported file type") as info:
        read_columns(path)
    for suffix in (".csv", ".csv.gz", ".parquet", ".pq", ".jsonl", ".ndjson", ".jsonl.gz"):
        assert suffix in str(info.value)
    with pytest.raises(InputFileError, match="unsupported file type"):
        write_frame(pd.DataFrame({"a": [1]}), tmp_path / "out.txt")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"missing\.parquet: no such file"):
        read_columns(tmp_path / "missing.parquet")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(InputFileError, match=r"dir\.csv: not a file"):
        read_columns(tmp_path / "dir.csv")


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet", ".jsonl"])
def test_missing_columns_are_named_with_the_available_ones(
    frame: pd.DataFrame, tmp_path: Path, suffix: str
) -> None:
    path = write_frame(frame, tmp_path / f"f{suffix}")
    with pytest.raises(
        InputFileError,
        match=r"no columns 'colour', 'size'; the file has: age, income, plan, active, seen$",
    ):
        read_columns(path, ["age", "colour", "size"])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.parquet", b"PAR1 not really", "cannot read it as PARQUET: .*Parquet"),
        ("bad.csv", b"a,b\n1,2\n1,2,3\n", "cannot read it as CSV: CSV parse error"),
        ("bad.csv", b"", "cannot read it as CSV: Empty CSV file"),
        ("bad.csv", b"a,b\n\xff\xfe,1\n", "column 'a' is not valid UTF-8"),
        ("bad.csv.gz", b"not gzip", "cannot read it as CSV: .*"),
        ("bad.jsonl", b'{"a": 1}\n{"a": \n', "cannot read it as JSONL: JSON parse error"),
        ("bad.jsonl", b'{"a": 1}\n{"a": "x"}\n', "changed from number to string"),
        ("bad.jsonl.gz", gzip.compress(b"[1, 2]\n", mtime=0), "cannot read it as JSONL"),
    ],
)
def test_corrupt_content_is_an_input_file_error(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=message) as info:
        read_columns(path)
    assert str(info.value).startswith(str(path))
    error = info.value  # no pyarrow traceback is shown above ours
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def test_write_to_a_missing_directory_is_an_input_file_error(tmp_path: Path) -> None:
    for name in ("a.csv", "a.parquet", "a.jsonl"):
        with pytest.raises(InputFileError, match="cannot write it"):
            write_frame({"a": np.arange(3)}, tmp_path / "nowhere" / name)
