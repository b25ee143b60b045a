"""The spill file: batches survive a torn tail, the size bound holds, one process per file."""

from __future__ import annotations

import os
import struct
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from inferwatch.observation import PredictionRecord
from inferwatch.spill import SpillFile

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def rows(n: int, start: int = 0, trace_id: str | None = None) -> list[PredictionRecord]:
    return [
        PredictionRecord(
            str(uuid.uuid4()), "churn", "1", T0 + timedelta(seconds=i),
            {"x": i / 3, "n": np.int64(i), "plan": "é\x00"}, "yes", i / 10, 0.002, trace_id,
            {"yes": 0.5, "no": 0.5},
        )
        for i in range(start, start + n)
    ]  # fmt: skip


def test_batches_come_back_in_order_with_their_values(tmp_path: Path) -> None:
    spill = SpillFile(tmp_path / "s.bin", max_bytes=1 << 20)
    first, second = rows(3), rows(2, start=3)
    odd = rows(1, start=5, trace_id="\ud800")  # msgpack cannot encode it: the JSON frame
    assert spill.append(first) and spill.append(second) and spill.append(odd)
    assert spill.pending_rows == 6

    back, offset, _ = spill.read(max_rows=100)

    assert [r.id for r in back] == [r.id for r in first + second + odd]
    assert back[4].timestamp == second[1].timestamp and back[4].timestamp.tzinfo is not None
    assert back[0].inputs == {"x": 0.0, "n": 0, "plan": "é\x00"}
    assert back[5].trace_id == "\ud800"
    assert back[1].probabilities == {"yes": 0.5, "no": 0.5}
    spill.advance(offset, len(back))
    assert spill.size == 0 and os.path.getsize(spill.path) == 0  # truncated once all is stored


def test_read_stops_at_whole_records_near_max_rows(tmp_path: Path) -> None:
    spill = SpillFile(tmp_path / "s.bin", max_bytes=1 << 20)
    for i in range(5):
        spill.append(rows(10, start=10 * i))
    got, offset, _ = spill.read(max_rows=25)
    assert len(got) == 30  # three whole records
    spill.advance(offset, len(got))
    assert spill.pending_rows == 20 and spill.size > 0  # not truncated: more to replay
    rest, end, _ = spill.read(max_rows=1000)
    assert [r.timestamp for r in rest] == [T0 + timedelta(seconds=i) for i in range(30, 50)]
    spill.advance(end, len(rest))
    assert spill.size == 0


def test_a_torn_last_record_is_cut_and_the_rest_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "s.bin"
    spill = SpillFile(path, max_bytes=1 << 20)
    spill.append(rows(4))
    spill.append(rows(4, start=4))
    good = spill.size
    spill.append(rows(4, start=8))
    spill.close()
    with open(path, "r+b") as f:  # a crash in the middle of the third append
        f.truncate(good + 9)

    again = SpillFile(path, max_bytes=1 << 20)

    assert again.pending_rows == 8 and again.size == good == os.path.getsize(path)
    back, _, _ = again.read(100)
    assert len(back) == 8


def test_a_corrupt_record_is_cut_with_everything_after_it(tmp_path: Path) -> None:
    path = tmp_path / "s.bin"
    spill = SpillFile(path, max_bytes=1 << 20)
    spill.append(rows(4))
    first = spill.size
    spill.append(rows(4, start=4))
    spill.close()
    data = bytearray(path.read_bytes())
    data[first + 20] ^= 0xFF  # a flipped byte in the second payload: its CRC fails
    path.write_bytes(bytes(data))

    again = SpillFile(path, max_bytes=1 << 20)

    assert again.pending_rows == 4 and again.size == first


def test_past_max_bytes_nothing_is_appended(tmp_path: Path) -> None:
    spill = SpillFile(tmp_path / "s.bin", max_bytes=2000)
    appended = 0
    while spill.append(rows(5)):
        appended += 5
    assert appended > 0
    assert spill.size <= 2000 and spill.pending_rows == appended
    assert os.path.getsize(spill.path) == spill.size


def test_only_if_pending_leaves_an_empty_file_alone(tmp_path: Path) -> None:
    spill = SpillFile(tmp_path / "s.bin", max_bytes=1 << 20)
    assert spill.append(rows(2), only_if_pending=True) is False
    assert spill.size == 0
    spill.append(rows(2))
    assert spill.append(rows(2), only_if_pending=True) is True


def test_a_second_process_on_the_same_path_takes_the_next_file(tmp_path: Path) -> None:
    first = SpillFile(tmp_path / "s.bin", max_bytes=1 << 20)
    second = SpillFile(tmp_path / "s.bin", max_bytes=1 << 20)  # flock is per open file
    assert first.path == tmp_path / "s.bin"
    assert second.path == tmp_path / "s.bin.1"
    first.close()
    third = SpillFile(tmp_path / "s.bin", max_bytes=1 << 20)
    assert third.path == tmp_path / "s.bin"  # freed by the first: a restart takes it


def test_the_file_is_private(tmp_path: Path) -> None:
    spill = SpillFile(tmp_path / "d" / "s.bin", max_bytes=1 << 20)
    assert (os.stat(spill.path).st_mode & 0o777) == 0o600


def test_a_record_that_cannot_be_decoded_is_skipped_not_stalling_the_replay(
    tmp_path: Path,
) -> None:
    spill = SpillFile(tmp_path / "s.bin", max_bytes=1 << 20)
    spill.append(rows(2))
    payload = b"?not a payload"  # CRC-valid, but no decoder knows it
    crc = zlib.crc32(payload, zlib.crc32(struct.pack("<I", 3)))
    with open(spill.path, "ab") as f:
        f.write(struct.pack("<III", len(payload), 3, crc) + payload)
    spill.close()
    again = SpillFile(tmp_path / "s.bin", max_bytes=1 << 20)
    again.append(rows(4, start=2))
    assert again.pending_rows == 9

    got, offset, covered = again.read(max_rows=100)

    assert (len(got), covered) == (6, 9)
    again.advance(offset, covered)
    assert again.size == 0 and again.pending_rows == 0
