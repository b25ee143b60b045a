"""The rotating JSON Lines copy of the prediction log (``store.jsonl_path``)."""

from __future__ import annotations

import json
from pathlib import Path

from inferwatch.jsonl_sink import RotatingJsonl
from inferwatch.monitor import Monitor
from inferwatch.store import MemoryStore


def test_every_row_is_a_json_line_also_those_the_store_samples_out(tmp_path: Path) -> None:
    path = tmp_path / "model_predictions.jsonl"
    store = MemoryStore()
    monitor = Monitor(store, flush_interval=0.02, jsonl_path=path, sample_rate=0.5)
    ids = monitor.log(
        "churn", "1", [{"x": float(i), "s": "\ud800" if i == 3 else "ok"} for i in range(40)],
        ["yes"] * 40, scores=[0.25] * 40,
    )  # fmt: skip
    assert monitor.close(5)

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [row["id"] for row in lines] == ids  # all 40, in order
    assert lines[0]["inputs"] == {"x": 0.0, "s": "ok"} and lines[0]["score"] == 0.25
    assert lines[3]["inputs"]["s"] == "\ud800"  # escaped, the line still valid JSON
    assert 0 < store.count_predictions() < 40  # the store got a sample


def test_the_file_rotates_past_max_bytes_keeping_backups(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    monitor = Monitor(
        MemoryStore(), flush_interval=0.01, batch_size=10, jsonl_path=path,
        jsonl_max_bytes=3000, jsonl_backups=2,
    )  # fmt: skip
    written = []
    for i in range(30):
        written += monitor.log("churn", "1", [{"x": float(i)}] * 10, ["yes"] * 10)
        monitor.flush(5)
    monitor.close(5)

    files = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("p.jsonl"))
    assert files == ["p.jsonl", "p.jsonl.1", "p.jsonl.2", "p.jsonl.lock"]
    for name in files[:3]:
        assert (tmp_path / name).stat().st_size <= 3000
    kept = [
        json.loads(line)["id"]
        for name in ("p.jsonl.2", "p.jsonl.1", "p.jsonl")
        for line in (tmp_path / name).read_text().splitlines()
    ]
    assert kept == written[-len(kept) :]  # the newest rows, in order, nothing torn


def test_a_second_process_on_the_path_writes_its_own_file(tmp_path: Path) -> None:
    first = RotatingJsonl(tmp_path / "p.jsonl", max_bytes=1 << 20, backups=1)
    second = RotatingJsonl(tmp_path / "p.jsonl", max_bytes=1 << 20, backups=1)
    assert first.path == tmp_path / "p.jsonl"
    assert second.path != first.path and second.path.suffix == ".jsonl"
    first.close()
    second.close()
