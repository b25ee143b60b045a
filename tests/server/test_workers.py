"""The pieces of ``serve --workers``: merging workers' samples, slots, saved counts, churn.

Real registries, real ``flock``s, real Unix sockets and files; the processes of a real
``serve --workers 4`` are in ``test_workers_serve.py``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics
from prometheus_client.parser import text_string_to_metric_families

from inferwatch.server._workers import (
    FleetRegistry,
    SlotMetrics,
    SlotServer,
    WireFamily,
    acquire_slot,
    decode,
    encode,
    merge,
    to_wire,
)


class Worker:
    """What one worker process counts: a registry with a counter, a histogram and gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("inferwatch_requests", "r", ["model"], registry=self.registry)
        self.latency = Histogram(
            "inferwatch_request_duration_seconds",
            "l",
            ["model"],
            buckets=(0.01, 0.1, 1.0),
            registry=self.registry,
        )
        self.inflight = Gauge("inferwatch_inflight_requests", "i", registry=self.registry)
        self.uptime = Gauge("inferwatch_process_uptime_seconds", "u", registry=self.registry)

    def answer(self, n: int, seconds: float = 0.05, trace: str | None = None) -> None:
        for _ in range(n):
            self.requests.labels("churn").inc()
            exemplar = {"trace_id": trace} if trace else None
            self.latency.labels("churn").observe(seconds, exemplar)


def samples(families: object, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for family in families:  # type: ignore[attr-defined]
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_merge_sums_cumulative_samples_keeps_newest_exemplar_and_first_gauges() -> None:
    a, b = Worker(), Worker()
    a.answer(3, 0.05, trace="aaa")
    time.sleep(0.01)
    b.answer(4, 0.05, trace="bbb")  # the newer exemplar of the same bucket
    b.answer(2, 0.5)
    a.inflight.set(2)
    b.inflight.set(5)
    a.uptime.set(10)
    b.uptime.set(99)
    merged = merge([to_wire(a.registry.collect()), decode(encode(to_wire(b.registry.collect())))])
    by_name = {f[0]: f for f in merged}
    total = {s[0]: s[2] for s in by_name["inferwatch_requests"][4] if s[0].endswith("_total")}
    assert total == {"inferwatch_requests_total": 9.0}
    buckets = {
        s[1]["le"]: (s[2], s[4])
        for s in by_name["inferwatch_request_duration_seconds"][4]
        if s[0].endswith("_bucket")
    }
    assert buckets["0.1"][0] == 7.0 and buckets["1.0"][0] == 9.0 and buckets["+Inf"][0] == 9.0
    assert buckets["0.1"][1] is not None and buckets["0.1"][1][0] == {"trace_id": "bbb"}
    # the oldest _created: the series began with the first worker
    created = [s[2] for s in by_name["inferwatch_requests"][4] if s[0].endswith("_created")]
    first_created = [
        s.value
        for f in a.registry.collect()
        for s in f.samples
        if s.name == "inferwatch_requests_created"
    ]
    assert created == first_created
    assert [s[2] for s in by_name["inferwatch_inflight_requests"][4]] == [7.0]
    assert [s[2] for s in by_name["inferwatch_process_uptime_seconds"][4]] == [10.0]


def test_fleet_registry_exposition_parses_with_exemplars(tmp_path: Path) -> None:
    a = Worker()
    a.answer(5, 0.05, trace="4bf9")
    own = SlotMetrics(a.registry, tmp_path, 0)
    text = openmetrics(FleetRegistry(own, 2).as_registry()).decode()  # type: ignore[no-untyped-call]
    assert '# {trace_id="4bf9"} 0.05' in text
    families = list(text_string_to_metric_families(text))  # the text parser
    assert samples(families, "inferwatch_requests_total") == {(("model", "churn"),): 5.0}
    assert samples(families, "inferwatch_workers") == {(): 1.0}


HOLD = """
import sys, time
from pathlib import Path
from inferwatch.server._workers import acquire_slot
slot, _ = acquire_slot(Path(sys.argv[1]), int(sys.argv[2]))
print(slot, flush=True)
time.sleep(600)
"""


def test_a_killed_workers_slot_is_free_again(tmp_path: Path) -> None:
    """The kernel drops a dead process's flock, SIGKILL included: its slot is taken again."""
    holders = []
    try:
        for expected in (0, 1):
            p = subprocess.Popen(
                [sys.executable, "-c", HOLD, str(tmp_path), "2"], stdout=subprocess.PIPE, text=True
            )
            holders.append(p)
            assert p.stdout is not None and p.stdout.readline().strip() == str(expected)
        # both of the 2 slots held: a third worker (a rolling restart) takes an extra one
        slot, fd = acquire_slot(tmp_path, 2, wait=0)
        assert slot == 2
        os.close(fd)
        holders[0].kill()
        holders[0].wait(10)
        slot, fd = acquire_slot(tmp_path, 2, wait=5)
        assert slot == 0
        os.close(fd)
    finally:
        for p in holders:
            p.kill()
            p.wait(10)


def test_a_new_worker_on_a_slot_starts_from_what_the_last_one_counted(tmp_path: Path) -> None:
    first = Worker()
    first.answer(7, 0.05, trace="old")
    SlotMetrics(first.registry, tmp_path, 3).checkpoint()
    second = Worker()
    second.answer(2, 0.5)
    view = SlotMetrics(second.registry, tmp_path, 3).view()
    assert samples_of(view, "inferwatch_requests_total") == 9.0
    assert samples_of(view, "inferwatch_request_duration_seconds_count") == 9.0
    # the saved exemplar survives the restart; gauges are the new process's only
    assert any(
        s[4] is not None and s[4][0] == {"trace_id": "old"}
        for f in view
        for s in f[4]
        if s[0].endswith("_bucket")
    )
    # what was shown was saved first: a third worker starts from 9
    third = SlotMetrics(Worker().registry, tmp_path, 3).view()
    assert samples_of(third, "inferwatch_requests_total") == 9.0


def samples_of(view: list[WireFamily], name: str) -> float:
    return float(sum(s[2] for f in view for s in f[4] if s[0] == name))


def median_scrape(fleet: FleetRegistry, n: int = 30) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        list(fleet.collect())
        times.append(time.perf_counter() - t0)
    return min(times)  # the least disturbed by whatever else the machine runs


def test_scrape_time_stays_flat_and_totals_exact_over_1000_worker_restarts(
    tmp_path: Path,
) -> None:
    """1,000 restarts of the slot code itself (a real restart loads models: seconds each).

    Each restart does what a replacement worker does: the dead worker's lock is released
    (its fd closed), the new one takes the free slot by flock, starts from the slot's
    state, serves its socket and counts.  A scrape reads 4 sockets before and after: no
    file per dead worker, so its time does not grow; and no count is lost.
    """
    workers = 4
    live: dict[int, tuple[int, SlotMetrics, SlotServer, Worker]] = {}

    def start() -> int:
        slot, fd = acquire_slot(tmp_path, workers, wait=0)
        w = Worker()
        metrics = SlotMetrics(w.registry, tmp_path, slot)
        server = SlotServer(metrics)
        server.start()
        live[slot] = (fd, metrics, server, w)
        return slot

    def stop(slot: int) -> None:
        fd, metrics, server, _ = live.pop(slot)
        metrics.checkpoint()  # the graceful worker's last checkpoint
        server.close()
        os.close(fd)  # the kernel frees the flock as the process ends

    for _ in range(workers):
        start()
    answered = 0
    for slot in range(workers):
        live[slot][3].answer(10)
        answered += 10
    probe = Worker()  # the scraping worker is not restarted (its slot is a 5th)
    own = SlotMetrics(probe.registry, tmp_path, 99)
    fleet = FleetRegistry(own, workers)
    fresh = median_scrape(fleet)
    files = sorted(p.name for p in tmp_path.iterdir())
    once: float | None = None
    for i in range(1000):
        if i == workers:  # every slot restarted once: each now adds its saved counts
            once = median_scrape(fleet)
        stop(i % workers)
        assert start() == i % workers  # the replacement takes the dead worker's slot
        live[i % workers][3].answer(1)
        answered += 1
    after = median_scrape(fleet)
    totals = samples(fleet.collect(), "inferwatch_requests_total")
    assert totals == {(("model", "churn"),): float(answered)}
    assert sorted(p.name for p in tmp_path.iterdir()) == files  # nothing left per restart
    assert once is not None
    print(
        f"scrape of 4 workers: {fresh * 1e3:.2f} ms fresh, {once * 1e3:.2f} ms after 4 "
        f"restarts, {after * 1e3:.2f} ms after 1,000"
    )
    # flat: 1,000 restarts cost what 4 did (a slot adds its saved counts once, however
    # many workers it has seen); both within a small factor of the fresh fleet
    assert after < 2 * once + 0.005
    assert after < 3 * fresh + 0.005
    for slot in list(live):
        stop(slot)


def test_acquire_slot_refuses_when_none_frees(tmp_path: Path) -> None:
    """A flock belongs to an open file: a second open in this process is another holder."""
    held = [acquire_slot(tmp_path, 1, wait=0) for _ in range(2)]  # slot 0 and the spare 1
    assert [slot for slot, _ in held] == [0, 1]
    try:
        with pytest.raises(RuntimeError, match="no free worker slot"):
            acquire_slot(tmp_path, 1, wait=0.2)
    finally:
        for _, fd in held:
            os.close(fd)


def test_fleet_windows_judge_every_workers_rows_as_one_process_would(tmp_path: Path) -> None:
    """The judging worker's window = its own profile + each sibling's, over the socket."""
    from datetime import UTC, datetime

    import numpy as np

    from inferwatch.observation import PredictionRecord
    from inferwatch.profile import ReferenceBins
    from inferwatch.schema import infer_schema
    from inferwatch.server._workers import FleetWindows
    from inferwatch.windows import WindowProfiler

    rng = np.random.default_rng(5)
    reference = {"x": rng.normal(size=500), "c": rng.choice(["a", "b", "c"], 500)}
    schema = infer_schema(reference)

    def profiler() -> WindowProfiler:  # each worker fits its own bins on the same reference
        bins = ReferenceBins(n_bins=10).fit(reference, schema)
        return WindowProfiler(bins, schema, window_seconds=60, clock=lambda: 125.0)

    ts = datetime.fromtimestamp(121, UTC)
    xs, cs = rng.normal(1.0, size=90), rng.choice(["a", "d"], 90)
    records = [
        PredictionRecord(f"p{i}", "m", "1", ts, {"x": float(x), "c": str(c)}, None, None, None)
        for i, (x, c) in enumerate(zip(xs, cs, strict=True))
    ]
    judge, sibling, single = profiler(), profiler(), profiler()
    judge.add("m", "1", records[:30])
    sibling.add("m", "1", records[30:])
    single.add("m", "1", records)
    slot, fd = acquire_slot(tmp_path, 2, wait=0)
    other, other_fd = acquire_slot(tmp_path, 2, wait=0)
    server = SlotServer(SlotMetrics(Worker().registry, tmp_path, other), {("m", "1"): sibling})
    server.start()
    try:
        fleet = FleetWindows(judge, tmp_path, slot, 2)
        start, merged = fleet.current("m", "1")
        assert start == 120.0
        assert merged.n_rows == 90
        assert merged.isclose(single.current("m", "1")[1])  # as one process profiling it all
        assert fleet.window("m", "1", 60.0) is None  # a window nobody has
        assert fleet.window_seconds == 60  # the rest is the wrapped profiler's
        assert judge.current("m", "1")[1].n_rows == 30  # its own is left as it was
    finally:
        server.close()
        os.close(fd)
        os.close(other_fd)


def test_a_hung_sibling_costs_the_timeout_once_and_its_saved_counts_stand_in(
    tmp_path: Path,
) -> None:
    """A SIGSTOPped worker's socket accepts (the kernel's backlog) and never answers.

    Two hung slots: the scrape still answers within one sibling timeout (they are asked
    at once), and their saved counts are in the total.
    """
    from inferwatch.server import _workers

    for k in (1, 2):  # what those workers had shown, and so saved, before they hung
        w = Worker()
        w.answer(5)
        SlotMetrics(w.registry, tmp_path, k).checkpoint()
    hung = []
    for k in (1, 2):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(tmp_path / f"slot-{k}.sock"))
        s.listen(8)  # never accepted
        hung.append(s)
    own = Worker()
    own.answer(3)
    fleet = FleetRegistry(SlotMetrics(own.registry, tmp_path, 0), 2)
    try:
        t0 = time.monotonic()
        totals = samples(fleet.collect(), "inferwatch_requests_total")
        took = time.monotonic() - t0
    finally:
        for s in hung:
            s.close()
    assert totals == {(("model", "churn"),): 13.0}
    assert _workers.SIBLING_TIMEOUT_SECONDS <= took < _workers.SIBLING_TIMEOUT_SECONDS + 1.5


def test_the_alert_rules_read_every_workers_samples(tmp_path: Path) -> None:
    """``registry_samples`` (what the built-in alert engine reads) over the fleet's view."""
    from inferwatch.metrics import registry_samples

    sibling = Worker()
    sibling.answer(4, 0.5)
    server = SlotServer(SlotMetrics(sibling.registry, tmp_path, 1))
    server.start()
    own = Worker()
    own.answer(6, 0.05)
    try:
        fleet = FleetRegistry(SlotMetrics(own.registry, tmp_path, 0), 2).as_registry()
        got = registry_samples(
            fleet, ["inferwatch_requests_total", "inferwatch_request_duration_seconds_bucket"]
        )
    finally:
        server.close()
    totals = [v for name, _, v in got if name == "inferwatch_requests_total"]
    assert totals == [10.0]
    buckets = {labels["le"]: v for name, labels, v in got if name.endswith("_bucket")}
    assert buckets["0.1"] == 6.0 and buckets["1.0"] == 10.0
