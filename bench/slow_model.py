"""A model that takes 20 ms a call, whatever the batch size, under 16 concurrent clients.

Without batching such a model serves at most 50 requests a second; with the model off the
event loop and concurrent requests gathered into one call, ``inferwatch serve`` should
serve at least 300 single-row requests a second (issue 14's acceptance figure) and keep
``/healthz`` under 100 ms throughout.  The model is a ``--flavor python`` object (a
logistic regression on 20 features of scikit-learn's breast cancer data whose every call
also sleeps 20 ms, as a GPU model or a remote call costs a fixed time per call).  The
server is pinned to core 0; wrk (16 connections) to core 1, and a probe thread times
``/healthz`` every 50 ms while wrk runs.  Also prints the same run with batching off
(``max_batch_size: 1``), the ratio between the two, and the mean batch size from
``/metrics``.

    .venv/bin/python bench/slow_model.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from serve_throughput import WRK_SCRIPT, free_port, prepare, start, wrk  # noqa: E402

MODEL_MODULE = """
import time

import joblib

_model = joblib.load({path!r})


class TwentyMilliseconds:
    classes_ = _model.classes_

    def predict_proba(self, X):
        time.sleep(0.02)
        return _model.predict_proba(X.to_numpy())

    def predict(self, X):
        time.sleep(0.02)
        return _model.predict(X.to_numpy())


model = TwentyMilliseconds()
"""


def probe(url: str, stop: threading.Event, took: list[float]) -> None:
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            t0 = time.perf_counter()
            client.get(url).raise_for_status()
            took.append(time.perf_counter() - t0)
            time.sleep(0.05)


def run(
    folder: Path, batch: int, seconds: float, script: Path
) -> tuple[float, float, list[float], float]:
    port = free_port()
    config = {
        "server": {"port": port},
        "store": {"url": f"sqlite:///{folder}/slow-{batch}.db"},
        "models": [
            {
                "name": "slow",
                "flavor": "python",
                "path": "slow_model:model",
                "reference": str(folder / "ref.csv"),
                "prediction": "diagnosis",
                "max_batch_size": batch,
            }
        ],
    }
    cfg = folder / f"slow-{batch}.yaml"
    cfg.write_text(yaml.safe_dump(config))
    exe = str(Path(sys.executable).parent / "inferwatch")
    proc = start([exe, "serve", "--config", str(cfg)], port, folder, dict(os.environ))
    base = f"http://127.0.0.1:{port}"
    try:
        url = f"{base}/v1/models/slow/predict"
        wrk(url, script, 16, 1)  # warm-up
        stop, took = threading.Event(), []
        thread = threading.Thread(target=probe, args=(f"{base}/healthz", stop, took))
        thread.start()
        rps, p99 = wrk(url, script, 16, seconds)
        stop.set()
        thread.join()
        text = httpx.get(f"{base}/metrics").text
        total = count = 0.0
        for line in text.splitlines():
            if line.startswith("inferwatch_model_batch_size_sum{"):
                total += float(line.rsplit(" ", 1)[1])
            elif line.startswith("inferwatch_model_batch_size_count{"):
                count += float(line.rsplit(" ", 1)[1])
        return rps, p99, took, total / count if count else 0.0
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="iw-slow-"))
    _, instance = prepare(folder)
    (folder / "slow_model.py").write_text(MODEL_MODULE.format(path=str(folder / "model.joblib")))
    import json

    script = folder / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=json.dumps({"instances": [instance]})))
    out = {}
    for batch in (64, 1):
        rps, p99, took, mean_batch = run(folder, batch, args.seconds, script)
        out[batch] = rps
        print(
            f"max_batch_size {batch:>2}: {rps:6.0f} requests/s, p99 {p99 * 1e3:6.1f} ms, "
            f"mean batch {mean_batch:4.1f} rows; /healthz median "
            f"{statistics.median(took) * 1e3:.1f} ms, max {max(took) * 1e3:.1f} ms "
            f"over {len(took)} probes"
        )
    print(
        f"batched / unbatched: {out[64] / out[1]:.1f}x; "
        f"{out[64]:.0f} requests/s (target >= 300 at 16 clients)"
    )


if __name__ == "__main__":
    main()
