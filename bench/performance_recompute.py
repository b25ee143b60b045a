"""Windowed performance recomputed from scratch from the store: 1M labelled predictions.

The store is ``bench/label_join.py``'s SQLite file (a binary classifier's predictions with
class probabilities, every one labelled, spread over about six days).  What is timed is
the whole recompute a user would run after a restart or for windows past the live
retention: ``SQLStore.labelled_columns`` (one indexed read of the labels table, as
columns) folded into
one :class:`~inferwatch.performance.ClassificationSummary` per hourly window by
:func:`inferwatch.evaluate.recompute_windows`, then every window's metrics.  Goal: under
5 s on SQLite.  The anchor is scikit-learn computing the same windows' accuracy and ROC
AUC from arrays already in memory (no store read), measured in the same run.

    .venv/bin/python bench/performance_recompute.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from label_join import build

from inferwatch.evaluate import recompute_windows
from inferwatch.performance_windows import PerformanceSetup
from inferwatch.store import SQLStore

WINDOW = 3600.0
COLUMNS = ("ts", "output", "score", "probabilities", "label")  # the ids are not needed


def recompute(path: Path) -> tuple[float, dict[float, object]]:
    store = SQLStore(f"sqlite:///{path}")
    setup = PerformanceSetup("bench", "1", "classification", classes=("0", "1"))
    t = time.perf_counter()
    pages = store.labelled_columns("bench", "1", columns=COLUMNS)
    windows = recompute_windows(pages, setup, window_seconds=WINDOW)
    metrics = {start: s.metrics() for start, s in windows.items()}
    elapsed = time.perf_counter() - t
    store.close()
    return elapsed, metrics


def sklearn_anchor(path: Path) -> float:
    from sklearn.metrics import accuracy_score, roc_auc_score

    store = SQLStore(f"sqlite:///{path}")
    ts, y, p, pred = [], [], [], []
    for page in store.labelled_columns("bench", "1"):
        ts.extend(page["ts"])
        y.extend(int(v) for v in page["label"])
        p.extend(d["1"] for d in page["probabilities"])
        pred.extend(int(v) for v in page["output"])
    store.close()
    ts_a, y_a, p_a, pred_a = (np.asarray(a) for a in (ts, y, p, pred))
    t = time.perf_counter()
    starts = np.floor(ts_a / WINDOW) * WINDOW
    for start in np.unique(starts):
        pick = starts == start
        accuracy_score(y_a[pick], pred_a[pick])
        roc_auc_score(y_a[pick], p_a[pick])
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/inferwatch-labeljoin"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / f"labels_{args.rows}.db"
    build(path, args.rows)
    ours = []
    for _ in range(args.repeat):
        elapsed, metrics = recompute(path)
        ours.append(elapsed)
    anchor = statistics.median(sklearn_anchor(path) for _ in range(args.repeat))
    med = statistics.median(ours)
    print(
        f"recompute {args.rows} labelled predictions into {len(metrics)} hourly windows: "
        f"median {med:.2f} s (all {', '.join(f'{x:.2f}' for x in ours)}; goal < 5 s)"
    )
    print(
        f"scikit-learn on in-memory arrays (no store read), accuracy + ROC AUC per window: "
        f"{anchor:.2f} s; ours / sklearn = {med / anchor:.2f}x"
    )


if __name__ == "__main__":
    main()
