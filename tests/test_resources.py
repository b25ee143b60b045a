"""Resource metrics: host, process and GPU families read at scrape time.

Host and process values are checked against psutil (the library that defines them) on
this machine.  There is no GPU here: the absent path is tested for real, the present path
with a fake ``pynvml`` module put in ``sys.modules`` (the collector imports it lazily).
A real-GPU check runs on a device machine when one is lent (see the report of issue 14):
``python -c "from inferwatch.resources import *; ..."`` against an H200.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import psutil
import pytest
from prometheus_client import CollectorRegistry, generate_latest

import inferwatch.resources as resources
from inferwatch.metrics import Metrics, registry_samples
from inferwatch.resources import MAX_GPUS, RESOURCE_METRICS, ResourceCollector

README = Path(__file__).resolve().parents[1] / "README.md"


def _values(collector: ResourceCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in collector.collect()
        for s in family.samples
    }


def _one(values: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return values[(name, ())]


@pytest.fixture
def no_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget the process-wide GPU probe so the test's own ``pynvml`` is probed."""
    monkeypatch.setattr(resources, "_PROBED", None)


# -- host and process --------------------------------------------------------------------
def test_host_and_process_values_agree_with_psutil() -> None:
    collector = ResourceCollector(gpu=False)
    values = _values(collector)
    mem = psutil.virtual_memory()
    total = _one(values, "inferwatch_host_memory_total_bytes")
    assert total == mem.total
    used = _one(values, "inferwatch_host_memory_used_bytes")
    available = _one(values, "inferwatch_host_memory_available_bytes")
    assert used + available == total
    assert abs(available - mem.available) < 0.05 * total  # moved a little in between
    assert _one(values, "inferwatch_host_cpus") == psutil.cpu_count()
    started = psutil.Process().create_time()
    assert abs(_one(values, "inferwatch_process_uptime_seconds") - (time.time() - started)) < 1
    assert 0.0 <= _one(values, "inferwatch_host_cpu_utilization_ratio") <= 1.0
    # every sample name is an inferwatch_* name from the catalogue, counters as _total
    names = {n for n, _ in values}
    kinds = {n: k for n, k, _ in RESOURCE_METRICS}
    for name in names:
        base = name.removesuffix("_total")
        assert base in kinds and (kinds[base] == "counter") == name.endswith("_total"), name


def test_threads_follow_the_process() -> None:
    """The count is psutil's num_threads(), read at scrape time (other tests' threads may
    end meanwhile: read both until a quiet moment)."""
    collector = ResourceCollector(gpu=False)

    def both() -> tuple[float, int]:
        for _ in range(50):
            ours = _one(_values(collector), "inferwatch_process_threads")
            theirs = psutil.Process().num_threads()
            if ours == theirs == _one(_values(collector), "inferwatch_process_threads"):
                break
        return ours, theirs

    before = both()
    stop = threading.Event()
    workers = [threading.Thread(target=stop.wait) for _ in range(3)]
    for w in workers:
        w.start()
    try:
        during = both()
    finally:
        stop.set()
        for w in workers:
            w.join()
    assert before[0] == before[1] and during[0] == during[1]
    assert during[0] >= 4


def test_cpu_utilization_is_psutil_cpu_percent() -> None:
    """Same baseline, same interval: the ratio is psutil.cpu_percent() / 100."""
    collector = ResourceCollector(gpu=False)
    list(collector.collect())
    psutil.cpu_percent(interval=None)  # psutil's baseline, microseconds after ours
    deadline = time.perf_counter() + 0.5
    while time.perf_counter() < deadline:  # busy: one CPU fully used
        pass
    ratio = _one(_values(collector), "inferwatch_host_cpu_utilization_ratio")
    percent = psutil.cpu_percent(interval=None)
    assert ratio == pytest.approx(percent / 100, abs=0.05)
    assert ratio >= 0.9 / (psutil.cpu_count() or 1)  # our own spinning counts


def test_process_disk_bytes_count_what_this_process_writes(tmp_path: Path) -> None:
    collector = ResourceCollector(gpu=False)
    before = _values(collector)
    if ("inferwatch_process_disk_written_bytes_total", ()) not in before:
        pytest.skip("psutil gives no per-process I/O on this platform")
    size = 4 << 20
    with (tmp_path / "blob").open("wb") as f:
        f.write(os.urandom(size))
        f.flush()
        os.fsync(f.fileno())
    after = _values(collector)
    written = "inferwatch_process_disk_written_bytes_total"
    assert _one(after, written) - _one(before, written) >= size
    host = "inferwatch_host_disk_written_bytes_total"
    assert _one(after, host) >= _one(before, host)


def test_counters_never_go_backwards_when_an_interface_disappears(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A container's veth goes away: the host sum drops, the counter does not (a drop
    would read as a counter reset and rate() would spike).  Loopback is never counted."""
    nic = SimpleNamespace
    reads = iter(
        [
            {"lo": nic(bytes_recv=10**9, bytes_sent=10**9),
             "eth0": nic(bytes_recv=100, bytes_sent=50),
             "veth1": nic(bytes_recv=900, bytes_sent=400)},
            {"lo": nic(bytes_recv=2 * 10**9, bytes_sent=2 * 10**9),
             "eth0": nic(bytes_recv=130, bytes_sent=60)},
            {"lo": nic(bytes_recv=3 * 10**9, bytes_sent=3 * 10**9),
             "eth0": nic(bytes_recv=200, bytes_sent=90)},
        ]
    )  # fmt: skip
    monkeypatch.setattr(psutil, "net_io_counters", lambda pernic: next(reads))
    collector = ResourceCollector(gpu=False)
    received = "inferwatch_host_network_received_bytes_total"
    sent = "inferwatch_host_network_sent_bytes_total"
    first, second, third = (_values(collector) for _ in range(3))
    assert (_one(first, received), _one(first, sent)) == (1000, 450)  # lo left out
    assert (_one(second, received), _one(second, sent)) == (1000, 450)  # not 130, 60
    assert (_one(third, received), _one(third, sent)) == (1070, 480)  # eth0's later steps


def test_a_source_the_platform_refuses_is_left_out_and_logged_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A sandbox that hides /proc/meminfo or /proc/self/io: the scrape still answers
    with everything else, and says why once, not on every scrape."""
    caplog.set_level(logging.INFO, logger="inferwatch.resources")

    def denied(*args: Any, **kwargs: Any) -> Any:
        raise psutil.AccessDenied(os.getpid())

    monkeypatch.setattr(psutil, "virtual_memory", denied)
    monkeypatch.setattr(psutil.Process, "io_counters", denied)
    monkeypatch.setattr(psutil.Process, "create_time", denied)
    collector = ResourceCollector(gpu=False)
    for _ in range(5):
        names = {n for n, _ in _values(collector)}
        assert not any(n.startswith(("inferwatch_host_memory", "inferwatch_process_disk"))
                       for n in names)  # fmt: skip
        assert {"inferwatch_host_cpu_utilization_ratio", "inferwatch_process_threads",
                "inferwatch_process_uptime_seconds"} <= names  # fmt: skip
    assert 0 <= _one(_values(collector), "inferwatch_process_uptime_seconds") < 60
    sources = sorted(r.getMessage().split(": ")[1].split(" unavailable")[0]
                     for r in caplog.records if r.name == "inferwatch.resources")  # fmt: skip
    assert sources == ["host memory", "process I/O", "process start time"]


def test_real_counters_are_monotone_under_concurrent_scrapes() -> None:
    collector = ResourceCollector(gpu=False)
    counters = [n + "_total" for n, k, _ in RESOURCE_METRICS if k == "counter"]
    seen: list[list[dict[str, float]]] = [[] for _ in range(4)]
    errors: list[BaseException] = []

    def scrape(out: list[dict[str, float]]) -> None:
        try:
            for _ in range(50):
                values = _values(collector)
                out.append({n: values[(n, ())] for n in counters if (n, ()) in values})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=scrape, args=(out,)) for out in seen]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for series in seen:
        for earlier, later in itertools.pairwise(series):
            assert all(later[n] >= earlier[n] for n in earlier), (earlier, later)


def test_collect_is_cheap() -> None:
    collector = ResourceCollector(gpu=False)
    times = []
    for _ in range(200):
        start = time.perf_counter()
        list(collector.collect())
        times.append(time.perf_counter() - start)
    times.sort()
    assert times[len(times) // 2] < 0.002, f"median collect() {times[100] * 1e3:.2f} ms"


# -- GPU ---------------------------------------------------------------------------------
def test_no_gpu_means_no_gpu_families_and_one_info_line(
    no_probe: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="inferwatch.resources")
    collectors = [ResourceCollector() for _ in range(3)]
    for collector in collectors:
        for _ in range(20):
            names = {n for n, _ in _values(collector)}
            assert not any(n.startswith("inferwatch_gpu_") for n in names)
            assert "inferwatch_host_memory_total_bytes" in names
    lines = [r for r in caplog.records if r.name == "inferwatch.resources"]
    assert len(lines) == 1 and "GPU metrics off" in lines[0].getMessage()


def test_without_nvidia_ml_py_gpu_is_absent(
    no_probe: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="inferwatch.resources")
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    collector = ResourceCollector()
    assert not any(n.startswith("inferwatch_gpu_") for n, _ in _values(collector))
    assert not any(f.name.startswith("inferwatch_gpu_") for f in collector.describe())
    assert ["nvidia-ml-py is not installed" in r.getMessage() for r in caplog.records] == [True]


class _NotSupported(Exception):
    pass


def _fake_nvml(gpus: list[dict[str, Any]]) -> ModuleType:
    """A ``pynvml`` with nvidia-ml-py's call names; a GPU dict's ``util`` of None raises
    as NVML does for a MIG device (NVMLError_NotSupported)."""
    nvml = ModuleType("pynvml")
    calls = {"init": 0}

    def init() -> None:
        calls["init"] += 1

    def utilization(handle: int) -> Any:
        util = gpus[handle]["util"]
        if util is None:
            raise _NotSupported("Not Supported")
        return SimpleNamespace(gpu=util, memory=0)

    def memory(handle: int) -> Any:
        g = gpus[handle]
        return SimpleNamespace(used=g["used"], total=g["total"], free=g["total"] - g["used"])

    nvml.nvmlInit = init  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetCount = lambda: len(gpus)  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetUtilizationRates = utilization  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetMemoryInfo = memory  # type: ignore[attr-defined]
    nvml.calls = calls  # type: ignore[attr-defined]
    return nvml


def test_gpus_through_nvml(
    no_probe: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="inferwatch.resources")
    gpus: list[dict[str, Any]] = [
        {"util": 37, "used": 3 << 30, "total": 80 << 30},
        {"util": None, "used": 1 << 30, "total": 16 << 30},  # MIG: no utilisation
    ]
    nvml = _fake_nvml(gpus)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    collector = ResourceCollector()
    for _ in range(10):
        values = _values(collector)
    assert values[("inferwatch_gpu_utilization_ratio", (("gpu", "0"),))] == pytest.approx(0.37)
    assert ("inferwatch_gpu_utilization_ratio", (("gpu", "1"),)) not in values
    assert values[("inferwatch_gpu_memory_used_bytes", (("gpu", "1"),))] == 1 << 30
    assert values[("inferwatch_gpu_memory_total_bytes", (("gpu", "0"),))] == 80 << 30
    gpus[0]["util"] = 90  # read at scrape time, not cached
    assert _values(collector)[("inferwatch_gpu_utilization_ratio", (("gpu", "0"),))] == 0.9
    ResourceCollector()  # a second collector reuses the probe
    assert nvml.calls["init"] == 1
    messages = [r.getMessage() for r in caplog.records if r.name == "inferwatch.resources"]
    assert messages == [
        "GPU metrics on: 2 GPU(s) through NVML",
        "resource metrics: GPU utilisation unavailable here (Not Supported); left out",
    ]  # 11 scrapes, one line for the failing source


def test_gpu_label_is_bounded(no_probe: None, monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [{"util": 1, "used": 1, "total": 2} for _ in range(MAX_GPUS + 36)]
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(gpus))
    values = _values(ResourceCollector())
    labels = {dict(lab)["gpu"] for n, lab in values if n == "inferwatch_gpu_memory_used_bytes"}
    assert labels == {str(i) for i in range(MAX_GPUS)}


# -- wiring into Metrics ------------------------------------------------------------------
def test_metrics_registers_resources_with_the_process_collector() -> None:
    def names(m: Metrics) -> set[str]:
        return {n for n, _, _ in registry_samples(m.registry)}

    assert "inferwatch_host_cpu_utilization_ratio" in names(Metrics())
    assert Metrics(process=False).resources is None
    assert not any(n.startswith("inferwatch_host_") for n in names(Metrics(process=False)))
    only = Metrics(process=False, resources=True)
    assert "inferwatch_process_threads" in names(only)
    assert not any(n.startswith("process_") for n in names(only))
    # the alert engine's read skips the collector when no rule reads its families
    wanted = {"inferwatch_requests_total"}
    collected: list[int] = []
    original = ResourceCollector.collect

    def counting(self: ResourceCollector) -> Any:
        collected.append(1)
        return original(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ResourceCollector, "collect", counting)
        registry_samples(only.registry, wanted)
        assert collected == []
        registry_samples(only.registry, {"inferwatch_host_memory_used_bytes"})
        assert collected == [1]


def test_importing_the_catalogue_does_not_import_psutil() -> None:
    code = "import sys, inferwatch.metrics; print('psutil' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_every_resource_metric_is_in_the_readme() -> None:
    readme = README.read_text()
    exposed = [n + "_total" if kind == "counter" else n for n, kind, _ in RESOURCE_METRICS]
    missing = [n for n in exposed if f"`{n}`" not in readme]
    assert missing == []
    documented = set(re.findall(r"`(inferwatch_(?:host|gpu|process)_[a-z_]+)`", readme))
    names = {n for n, _, _ in RESOURCE_METRICS}
    assert {d.removesuffix("_total") for d in documented} <= names  # nothing stale


@pytest.mark.integration
def test_promtool_accepts_the_exposition(no_probe: None, monkeypatch: pytest.MonkeyPatch) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("promtool not installed under CI; make system-deps installs it")
        pytest.skip("promtool not found (apt-get install prometheus)")
    gpus = [{"util": 12, "used": 5, "total": 10}, {"util": 50, "used": 1, "total": 10}]
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(gpus))
    registry = CollectorRegistry()
    Metrics(registry)
    text = generate_latest(registry)
    assert b'inferwatch_gpu_utilization_ratio{gpu="1"} 0.5' in text
    assert b"inferwatch_host_network_sent_bytes_total" in text
    out = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=30
    )
    assert out.returncode == 0, out.stderr.decode() + out.stdout.decode()
    assert out.stdout.decode().strip() == "", out.stdout.decode()
