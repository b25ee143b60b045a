"""A rotating JSON Lines copy of the prediction log (``store.jsonl_path``).

The seeds' ``model_predictions.jsonl``: one JSON object per prediction, appended by the
log writer thread for every row it takes (before ``store.sample_rate``: the file sees all
of them), for tools that tail a file rather than query a database.  When the file would
pass ``max_bytes`` it is renamed ``PATH.1`` (``PATH.1`` to ``PATH.2``, ..., the oldest
past ``backups`` deleted) and a new one is started, as ``logging``'s RotatingFileHandler
does.  Not fsynced: a convenience copy, not the durable log (that is the store, and the
spill file while the store is down).  One process per path: a second process on the same
path (another worker) writes ``STEM-PID.SUFFIX`` instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from inferwatch.observation import PredictionRecord

__all__ = ["RotatingJsonl"]

log = logging.getLogger("inferwatch.monitor")


def _numpy_hook(obj: Any) -> Any:
    for attr in ("tolist", "item"):
        method = getattr(obj, attr, None)
        if method is not None:
            return method()
    raise NotImplementedError(f"cannot encode a {type(obj).__name__}")


_ENCODER = msgspec.json.Encoder(enc_hook=_numpy_hook)


def _line(rec: PredictionRecord) -> bytes:
    row = {
        "id": rec.id,
        "model": rec.model,
        "version": rec.version,
        "ts": rec.timestamp.isoformat(),
        "inputs": rec.inputs,
        "output": rec.output,
        "score": rec.score,
        "probabilities": rec.probabilities,
        "latency_seconds": rec.latency_seconds,
        "trace_id": rec.trace_id,
    }
    try:
        return _ENCODER.encode(row) + b"\n"
    except (UnicodeEncodeError, TypeError, ValueError, NotImplementedError, OverflowError):
        text = json.dumps(row, ensure_ascii=True, default=repr)  # lone surrogates escaped
        return text.encode("ascii") + b"\n"


class RotatingJsonl:
    """Append prediction rows as JSON lines to ``path``, rotating past ``max_bytes`` and
    keeping ``backups`` older files."""

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int, backups: int) -> None:
        import fcntl

        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._flock = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._flock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another process writes there: this one gets its own
            os.close(self._flock)
            path = path.with_name(f"{path.stem}-{os.getpid()}{path.suffix}")
            self._flock = -1
        self.path = path
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def write(self, records: Sequence[PredictionRecord]) -> None:
        """Append the rows (one write per batch); rotate first when they would not fit."""
        data = b"".join(_line(rec) for rec in records)
        with self._lock:
            if self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
            os.write(self._fd, data)
            self._size += len(data)

    def _rotate(self) -> None:
        os.close(self._fd)
        if self.backups > 0:
            for i in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{i}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            os.truncate(self.path, 0)
        self._fd = self._open()
        self._size = 0

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            if self._flock >= 0:
                with contextlib.suppress(OSError):
                    os.close(self._flock)
                self._flock = -1
