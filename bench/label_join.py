"""The labelled join a performance window is recomputed from: ``SQLStore.labelled_columns``.

Builds a SQLite store (migrated by inferwatch) holding ``--rows`` predictions of a binary
classifier with class probabilities, every one labelled (label rows as the ingestor's
``upsert_labels`` writes them), then times reading them all back as columns, in prediction
time order, from a cold process cache (a fresh ``SQLStore``).  Rows are inserted through
the sqlite3 module directly (the fixture, not what is measured).  The database is kept
in ``--dir`` and reused when it already holds the rows.

    .venv/bin/python bench/label_join.py [--rows 1000000] [--repeat 3] [--dir /tmp/labeljoin]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from inferwatch.store import SQLStore
from inferwatch.store._sql import LABELLED_COLUMNS

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FMT = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's SQLite DATETIME text, naive UTC


def build(path: Path, rows: int) -> None:
    url = f"sqlite:///{path}"
    store = SQLStore(url)
    store.upgrade()
    if store.count_labels("bench", "1") == rows:
        store.close()
        return
    store.close()
    path.unlink()
    store = SQLStore(url)
    store.upgrade()
    store.close()
    rng = random.Random(0)
    conn = sqlite3.connect(path)
    chunk = 100_000
    for start in range(0, rows, chunk):
        preds, labels = [], []
        for i in range(start, min(start + chunk, rows)):
            pid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            ts = T0 + timedelta(seconds=i * 0.5)
            p1 = rng.random()
            out = "1" if p1 >= 0.5 else "0"
            probs = json.dumps({"0": 1 - p1, "1": p1})
            preds.append((pid, "bench", "1", ts.strftime(FMT), '{"x":1.0}', json.dumps(out),
                          probs, max(p1, 1 - p1), 0.001, None))  # fmt: skip
            received = ts + timedelta(hours=rng.random() * 48)
            label = json.dumps("1" if rng.random() < p1 else "0")
            labels.append((pid, label, received.strftime(FMT), "bench", "1", ts.strftime(FMT),
                           received.strftime(FMT), (received - ts).total_seconds(),
                           json.dumps(out), max(p1, 1 - p1), probs))  # fmt: skip
        conn.executemany("INSERT INTO predictions VALUES (?,?,?,?,?,?,?,?,?,?)", preds)
        conn.executemany(
            "INSERT INTO labels (prediction_id, value, ts, model, version, prediction_ts,"
            " received_at, delay_seconds, output, score, probabilities)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            labels,
        )
        conn.commit()
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/inferwatch-labeljoin"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / f"labels_{args.rows}.db"
    t = time.perf_counter()
    build(path, args.rows)
    print(f"store ready: {path} ({time.perf_counter() - t:.1f} s)")
    for columns in (LABELLED_COLUMNS, ("ts", "output", "score", "label")):
        walls, cpus = [], []
        for _ in range(args.repeat):
            store = SQLStore(f"sqlite:///{path}")
            t, c = time.perf_counter(), time.process_time()
            n = 0
            for page in store.labelled_columns("bench", "1", columns=columns):
                n += len(page["label"])
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
            store.close()
            assert n == args.rows, n
        best = min(walls)
        print(
            f"labelled_columns {','.join(columns)}: {n} rows in {best:.2f} s wall "
            f"(best of {args.repeat}: {', '.join(f'{x:.2f}' for x in walls)}), "
            f"{min(cpus):.2f} s CPU"
        )


if __name__ == "__main__":
    main()
