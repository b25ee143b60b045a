"""``inferwatch_prediction_log_queue_rows`` tells the truth while the store is down.

It was set only when a batch finished (or rows were dropped), so during an outage it
froze at its last value (35 while 9,056 rows waited).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from inferwatch.metrics import Metrics
from inferwatch.monitor import Monitor
from inferwatch.observation import PredictionRecord


class StalledSink:
    """A store that hangs on the first write until released (a database that is down)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.rows = 0

    def write_predictions(self, records: Sequence[PredictionRecord]) -> int:
        self.release.wait(30)
        self.rows += len(records)
        return len(records)


def queue_rows(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("inferwatch_prediction_log_queue_rows")


def test_queue_gauge_follows_the_rows_waiting_during_an_outage() -> None:
    registry = CollectorRegistry()
    sink = StalledSink()
    monitor = Monitor(
        sink, metrics=Metrics(registry, process=False), batch_size=10, flush_interval=0.01
    )
    monitor.log("m", "1", [{"x": i} for i in range(10)], ["a"] * 10)  # taken by the writer
    deadline = time.monotonic() + 5
    while monitor.stats.queued and time.monotonic() < deadline:
        time.sleep(0.01)

    for _ in range(37):
        monitor.log("m", "1", [{"x": 1}, {"x": 2}, {"x": 3}], ["a", "b", "c"])

    assert monitor.stats.queued == 111
    assert queue_rows(registry) == 111
    sink.release.set()
    assert monitor.flush(10)
    assert queue_rows(registry) == 0
    assert sink.rows == 121
    monitor.close()
