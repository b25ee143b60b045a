"""The report's loader: Arrow columns to engine inputs, nulls and types handled like pandas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from inferwatch.errors import InputFileError, SchemaError
from inferwatch.evaluate import CategoricalColumn, SortedColumn
from inferwatch.report import load_pair


def write(path: Path, n: int, rng: np.random.Generator) -> pd.DataFrame:
    ints = pa.array([None if i % 7 == 0 else int(v) for i, v in enumerate(rng.integers(0, 100, n))])
    floats = rng.normal(size=n)
    floats[::5] = np.nan
    bools = pa.array([None if i % 11 == 0 else bool(v) for i, v in enumerate(rng.random(n) < 0.3)])
    cats = pa.array([None if i % 13 == 0 else f"c{v}" for i, v in enumerate(rng.integers(0, 4, n))])
    table = pa.table(
        {"i": ints, "f": pa.array(floats, from_pandas=True), "b": bools, "c": cats,
         "ts": pa.array(pd.date_range("2026-01-01", periods=n, freq="min"))}
    )  # fmt: skip
    # several row groups and chunks exercise offsets and validity bitmaps
    pq.write_table(table, path, row_group_size=max(n // 3, 1))
    return table.to_pandas()


def test_inputs_match_pandas(tmp_path: Path, rng: np.random.Generator) -> None:
    ref = write(tmp_path / "ref.parquet", 1000, rng)
    cur = write(tmp_path / "cur.parquet", 700, rng)
    data = load_pair(tmp_path / "ref.parquet", tmp_path / "cur.parquet")
    kinds = {f.name: f.kind for f in data.schema.features}
    assert kinds == {
        "i": "numeric",
        "f": "numeric",
        "b": "boolean",
        "c": "categorical",
        "ts": "datetime",
    }
    for frame, side in ((ref, data.reference), (cur, data.current)):
        for name in ("i", "f"):
            col = side[name]
            assert isinstance(col, SortedColumn)
            expected = np.sort(frame[name].dropna().to_numpy(dtype=float))
            np.testing.assert_array_equal(col.sorted_finite, expected)
            assert col.missing == int(frame[name].isna().sum())
        b = side["b"]
        assert isinstance(b, CategoricalColumn)
        vc = frame["b"].dropna().astype(bool).value_counts()
        assert dict(zip(b.counts.categories, b.counts.counts.tolist(), strict=True)) == {
            str(k): int(v) for k, v in vc.items()
        }
        assert b.counts.missing == int(frame["b"].isna().sum())
        c = side["c"]
        assert isinstance(c, CategoricalColumn)
        assert dict(zip(c.counts.categories, c.counts.counts.tolist(), strict=True)) == (
            frame["c"].value_counts().to_dict()
        )
        assert c.counts.missing == int(frame["c"].isna().sum())
    assert "ts" in data.current  # present (not a missing column) ...
    with pytest.raises(KeyError):
        data.current["ts"]  # ... but datetime columns have no drift input yet
    assert data.n_reference == 1000
    assert data.n_current == 700


def test_duplicates_and_freshness(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "x": [1.0, 1.0, 2.0, np.nan, np.nan],
            "c": ["a", "a", "a", None, None],
            "ts": pd.to_datetime(
                ["2026-01-01", "2026-01-01", "2026-01-02", "2026-01-03", "2026-01-03"], utc=True
            ),
        }
    )
    frame.to_parquet(tmp_path / "ref.parquet")
    frame.to_parquet(tmp_path / "cur.parquet")
    from inferwatch.report import build_report

    report = build_report(tmp_path / "ref.parquet", tmp_path / "cur.parquet")
    assert report.quality.duplicate_rows == int(frame.duplicated().sum()) == 2
    assert report.quality.newest_timestamp == pd.Timestamp("2026-01-03", tz="UTC").timestamp()
    assert report.quality.staleness_seconds is not None


def test_errors_are_clear(tmp_path: Path, rng: np.random.Generator) -> None:
    write(tmp_path / "ref.parquet", 100, rng)
    pd.DataFrame({"i": []}).to_parquet(tmp_path / "empty.parquet")
    with pytest.raises(InputFileError, match="current data is empty"):
        load_pair(tmp_path / "ref.parquet", tmp_path / "empty.parquet")
    with pytest.raises(SchemaError, match="'label' is not in the reference"):
        load_pair(tmp_path / "ref.parquet", tmp_path / "ref.parquet", target="label")
    with pytest.raises(InputFileError, match="no such file"):
        load_pair(tmp_path / "nope.parquet", tmp_path / "ref.parquet")


def test_a_report_holds_no_more_columns_than_workers(tmp_path: Path) -> None:
    """Through the real reader: each converted column is released once evaluated."""
    import threading
    import weakref
    from collections.abc import Iterator, Mapping

    from inferwatch.evaluate import ColumnInput, DriftOptions, evaluate_batch
    from tests.report.test_verdicts import bench_module

    bench = bench_module()
    ref, cur = bench.write(5_000, tmp_path)  # type: ignore[attr-defined]
    data = load_pair(ref, cur)

    class Watched(Mapping[str, ColumnInput]):
        def __init__(self, inner: Mapping[str, ColumnInput]) -> None:
            self.inner, self.live, self.peak, self.lock = inner, 0, 0, threading.Lock()

        def _gone(self) -> None:
            with self.lock:
                self.live -= 1

        def __getitem__(self, name: str) -> ColumnInput:
            col = self.inner[name]
            if name in data.reference.counted:  # counted while inferring: bytes, kept
                return col
            arr = col.counts.counts if isinstance(col, CategoricalColumn) else col.sorted_finite  # type: ignore[union-attr]
            with self.lock:
                self.live += 1
                self.peak = max(self.peak, self.live)
            weakref.finalize(arr, self._gone)
            return col

        def __contains__(self, name: object) -> bool:
            return name in self.inner

        def __iter__(self) -> Iterator[str]:
            return iter(self.inner)

        def __len__(self) -> int:
            return len(self.inner)

    sides = Watched(data.reference), Watched(data.current)
    report = evaluate_batch(
        data.schema, sides[0], sides[1], n_reference=data.n_reference,
        n_current=data.n_current, options=DriftOptions(workers=2),
    )  # fmt: skip
    assert len(report.evaluated) == 25
    for side in sides:
        assert 1 <= side.peak <= 2
        assert side.live == 0
