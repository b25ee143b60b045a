"""The spill file: prediction rows the store could not take, kept on local disk until it can.

When a write fails (the store is down, or did not answer within its bound), the
prediction log appends the batch here instead of losing it, and a replay thread sends
the file back to the store, oldest first, once the store answers again; the store's
inserts are idempotent by prediction id, so a batch sent twice (a crash in the middle of
a replay, a write that timed out but committed later) is stored once.  The file is
truncated when everything in it has been stored.

Format: records appended one after the other, each ``length (u32 LE) | rows (u32 LE) |
crc32 (u32 LE) | payload``, the CRC covering the row count and the payload.  The payload
is the batch as msgpack (``m``) or, for a row msgpack cannot encode (a lone surrogate),
as ASCII JSON (``j``).  At open, the records are checked one by one: a torn or corrupt
tail (a crash in the middle of an append) is cut off and logged, and everything before
it is kept.  **fsync policy**: every append is fsynced before the writer moves on, so a
spilled batch survives a crash of the machine too (one fsync per batch, only while the
store is unreachable); the truncation after a full replay is fsynced as well.

One process owns one file: it takes an exclusive ``flock`` on it, and a second process
given the same path (another worker of ``serve --workers``) takes ``PATH.1``,
``PATH.2`` ... instead; a restarted process takes the first free one and replays what
its predecessor left there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import threading
import zlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from inferwatch.observation import PredictionRecord

__all__ = ["SpillFile"]

log = logging.getLogger("inferwatch.monitor")

_HEAD = struct.Struct("<III")  # payload length, rows, crc32(rows + payload)
#: the most files one spill path fans out to (processes sharing a path)
MAX_SLOTS = 64


def _numpy_hook(obj: Any) -> Any:
    """msgspec's hook for what it does not encode itself: numpy scalars and arrays."""
    for attr in ("tolist", "item"):
        method = getattr(obj, attr, None)
        if method is not None:
            return method()
    raise NotImplementedError(f"cannot spill a {type(obj).__name__}")


_MSGPACK = msgspec.msgpack.Encoder(enc_hook=_numpy_hook)
_UNPACK = msgspec.msgpack.Decoder()


def _row(rec: PredictionRecord) -> list[Any]:
    return [
        rec.id, rec.model, rec.version, rec.timestamp, rec.inputs, rec.output,
        rec.score, rec.latency_seconds, rec.trace_id, rec.probabilities,
    ]  # fmt: skip


def _encode(records: Sequence[PredictionRecord]) -> bytes:
    rows = [_row(rec) for rec in records]
    try:
        return b"m" + _MSGPACK.encode(rows)
    except (UnicodeEncodeError, TypeError, ValueError, NotImplementedError, OverflowError):
        for row in rows:
            row[3] = row[3].isoformat()
        text = json.dumps(rows, ensure_ascii=True, default=_json_default)
        return b"j" + text.encode("ascii")


def _json_default(obj: Any) -> Any:
    try:
        return _numpy_hook(obj)
    except NotImplementedError:
        return repr(obj)  # kept as text: the store would have refused it anyway


def _decode(payload: bytes) -> list[PredictionRecord]:
    tag, body = payload[:1], payload[1:]
    if tag == b"m":
        rows = _UNPACK.decode(body)
    elif tag == b"j":
        rows = json.loads(body)
    else:
        raise ValueError(f"unknown spill payload {tag!r}")
    for row in rows:
        if isinstance(row[3], str):  # JSON, or a naive datetime (msgpack keeps those as text)
            row[3] = datetime.fromisoformat(row[3])
    return [PredictionRecord(*row) for row in rows]


class SpillFile:
    """An append-only, size-bounded file of prediction batches (see the module docstring).

    Thread-safe: the writer appends while the replay thread reads; :meth:`advance`
    truncates the file only when everything appended has been read and stored.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self.path, self._fd = _open_slot(Path(path))
        self._size = 0  # bytes of whole, valid records
        self._rows = 0  # rows in them not yet stored (all of them until a replay)
        self._read = 0  # offset up to which rows were read and stored
        self._scan()

    # -- state --------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Bytes in the file (what ``inferwatch_prediction_log_spill_bytes`` shows)."""
        return self._size

    @property
    def pending_rows(self) -> int:
        """Rows appended and not yet stored."""
        return self._rows

    def __bool__(self) -> bool:
        return self._rows > 0

    # -- writing ------------------------------------------------------------------------
    def append(self, records: Sequence[PredictionRecord], *, only_if_pending: bool = False) -> bool:
        """Append one batch and fsync; False (nothing written) when it would take the file
        past ``max_bytes`` or, with ``only_if_pending``, when the file holds nothing (the
        writer then writes to the store directly: order is kept either way).

        Raises OSError when the disk refuses the write (the caller counts the rows lost).
        """
        if not records:
            return True
        payload = _encode(records)
        count = struct.pack("<I", len(records))
        frame = _HEAD.pack(len(payload), len(records), zlib.crc32(payload, zlib.crc32(count)))
        with self._lock:
            if only_if_pending and self._rows == 0:
                return False
            if self._size + len(frame) + len(payload) > self.max_bytes:
                return False
            try:
                os.write(self._fd, frame + payload)
                os.fsync(self._fd)
            except OSError:
                # a partial record must not stay in front of later ones
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._size)
                raise
            self._size += len(frame) + len(payload)
            self._rows += len(records)
        return True

    # -- replaying ----------------------------------------------------------------------
    def read(self, max_rows: int) -> tuple[list[PredictionRecord], int, int]:
        """The oldest rows not yet stored (whole records, at least one, up to about
        ``max_rows``), the offset to :meth:`advance` to once they are stored, and how
        many rows the records up to it held: more than returned when a record could
        not be decoded (logged and skipped: one bad record must not stall the replay)."""
        with self._lock:
            offset, end = self._read, self._size
        out: list[PredictionRecord] = []
        covered = 0
        while offset < end and (not covered or covered < max_rows):
            head = os.pread(self._fd, _HEAD.size, offset)
            length, rows, _crc = _HEAD.unpack(head)
            payload = os.pread(self._fd, length, offset + _HEAD.size)
            try:
                out.extend(_decode(payload))
            except Exception as exc:  # a CRC-valid record this version cannot read
                log.error("spill file %s: %d rows at offset %d unreadable (lost): %r",
                          self.path, rows, offset, exc)  # fmt: skip
            covered += rows
            offset += _HEAD.size + length
        return out, offset, covered

    def advance(self, offset: int, rows: int) -> None:
        """``rows`` rows up to ``offset`` are stored: forget them, and truncate the file
        (fsynced) when that was everything in it."""
        with self._lock:
            self._read = offset
            self._rows = max(self._rows - rows, 0)
            if self._read >= self._size:
                os.ftruncate(self._fd, 0)
                os.fsync(self._fd)
                self._size = self._read = self._rows = 0

    def close(self) -> None:
        """Release the file (and its lock); what it holds stays for the next start."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    # -- opening ------------------------------------------------------------------------
    def _scan(self) -> None:
        """Count the whole, valid records from the start; cut a torn or corrupt tail."""
        total = os.fstat(self._fd).st_size
        offset = rows = 0
        while offset + _HEAD.size <= total:
            length, n, crc = _HEAD.unpack(os.pread(self._fd, _HEAD.size, offset))
            if offset + _HEAD.size + length > total:
                break
            payload = os.pread(self._fd, length, offset + _HEAD.size)
            if zlib.crc32(payload, zlib.crc32(struct.pack("<I", n))) != crc:
                break
            offset += _HEAD.size + length
            rows += n
        if offset < total:
            log.error(
                "spill file %s: %d bytes after offset %d are a torn or corrupt record "
                "(a crash while appending); cut off, the %d rows before it are kept",
                self.path, total - offset, offset, rows,
            )  # fmt: skip
            os.ftruncate(self._fd, offset)
            os.fsync(self._fd)
        self._size, self._rows = offset, rows
        if rows:
            log.warning("spill file %s holds %d rows from before: replaying them", self.path, rows)


def _open_slot(path: Path) -> tuple[Path, int]:
    """Open (creating, mode 0600) the first of ``path``, ``path.1``, ... that no other
    process holds, and hold it (``flock``) for as long as the file is open."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    for slot in range(MAX_SLOTS):
        candidate = path if slot == 0 else path.with_name(f"{path.name}.{slot}")
        fd = os.open(candidate, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return candidate, fd
    raise OSError(f"all {MAX_SLOTS} spill files beside {path} are held by other processes")
