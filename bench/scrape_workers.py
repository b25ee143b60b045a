"""``serve --workers``: scrape time at 4 workers, fresh and after 1,000 restarts; requests/s
at 1, 2 and 4 workers.

Scrape time: ``inferwatch serve --workers 4`` (the breast-cancer model of
``serve_throughput.py``, SQLite store), a few hundred predicts, then the median of
``--scrapes`` scrapes of ``/metrics`` (text format).  Then 1,000 worker restarts of the
slot code, run here against the server's own run directory: each takes a spare slot by
``flock`` (the four live workers hold 0-3), starts from that slot's saved counts, serves
its socket, counts, saves and lets go, as a replacement worker does (a real restart loads
the models: seconds each).  The server's scrapes then read that slot's file too, so the
second median is the scrape after 1,000 restarts; the totals are checked exact.  Anchor:
prometheus_client's multiprocess mode with two metric families, 4 workers' files and then
1,000 more (a file per dead worker, all read at every scrape).

Real restarts (``--real-restarts N``): the same server's workers are killed with SIGKILL,
all four at once, until N have been replaced by uvicorn's supervisor (each replacement
imports inferwatch and loads the model: about a second or more each); then the scrape's
median again, the run directory's files, and the totals (no traffic meanwhile, so every
count had been saved: exact).

Requests/s: wrk (pinned to the last core, one thread, ``--connections``) on single-row
predicts against ``serve --workers N`` (not pinned), N = 1, 2, 4, ``--rounds`` rounds
alternating.  On a 2-core machine wrk takes one core: more workers cannot add cores.

    .venv/bin/python bench/scrape_workers.py [--scrapes 50] [--seconds 5] [--rounds 2]
        [--real-restarts 200 [--report-every 100]] [--skip-throughput]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_throughput import WRK_SCRIPT, free_port, prepare

from inferwatch.server._workers import SlotMetrics, SlotServer, acquire_slot

PYTHON = sys.executable


def serve(folder: Path, workers: int, db: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    exe = str(Path(PYTHON).parent / "inferwatch")
    log = folder / f"serve-{workers}-{port}.log"
    argv = [exe, "serve", "--model", str(folder / "model.joblib"),
            "--reference", str(folder / "ref.csv"), "--prediction", "diagnosis",
            "--name", "cancer", "--port", str(port), "--store", f"sqlite:///{db}",
            "--workers", str(workers)]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=folder, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if workers == 1 or len(set(re.findall(r"serves slot (\d+)", text))) >= workers:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}:\n{text[-3000:]}")
        time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError("serve did not start")
    found = re.search(r"saved counts are in (\S+)", log.read_text())
    return proc, base, Path(found.group(1)) if found else folder


def live_slots(log: Path) -> dict[int, int]:
    """slot -> pid of the worker that took it last (the workers' log lines)."""
    text = log.read_text(errors="replace")
    found = re.findall(r"worker (\d+) serves slot (\d+)", text)
    return {int(slot): int(pid) for pid, slot in found}


def real_churn(
    base: str,
    log: Path,
    restarts: int,
    every: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> float:
    """SIGKILL the live workers, four at a time, until ``restarts`` were replaced; seconds.
    ``progress(done, seconds)`` is called after each ``every`` restarts (0: never)."""
    import signal

    t0 = time.perf_counter()
    done = 0
    reported = 0
    while done < restarts:
        if every and progress is not None and done - reported >= every:
            reported = done
            ready(base)
            progress(done, time.perf_counter() - t0)
        pids = live_slots(log)
        victims = sorted(pids)[: min(4, restarts - done)]
        for slot in victims:
            os.kill(pids[slot], signal.SIGKILL)
        deadline = time.monotonic() + 120
        while any(live_slots(log).get(s) == pids[s] for s in victims):
            if time.monotonic() > deadline:
                raise RuntimeError("workers were not replaced within 120 s")
            time.sleep(0.1)
        done += len(victims)
    ready(base)
    return time.perf_counter() - t0


def ready(base: str) -> None:
    """Wait (at most a minute) for the server to answer ``/readyz``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # every replacement serving
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)


def requests_total(base: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=30).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("inferwatch_requests_total{")
    )


def median_scrape(base: str, n: int) -> float:
    times = []
    with httpx.Client(timeout=30) as c:
        for _ in range(n):
            t0 = time.perf_counter()
            c.get(f"{base}/metrics").raise_for_status()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def churn(rundir: Path, workers: int, restarts: int) -> None:
    from prometheus_client import CollectorRegistry, Counter

    for _ in range(restarts):
        slot, fd = acquire_slot(rundir, workers, wait=5)
        registry = CollectorRegistry()
        c = Counter("inferwatch_requests", "r", ["model", "version", "status"], registry=registry)
        metrics = SlotMetrics(registry, rundir, slot)
        server = SlotServer(metrics)
        server.start()
        c.labels("cancer", "1", "2xx").inc()  # one request answered by this worker
        metrics.checkpoint()
        server.close()
        os.close(fd)


#: prometheus_client's multiprocess mode, the usual answer, for the anchor: each "worker"
#: (a process identifier) writes its counter and histogram files, as a gunicorn worker
#: does; a scrape merges every file in the directory, the dead workers' too
MULTIPROC_ANCHOR = """
import os, statistics, sys, tempfile, time
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="iw-multiproc-")
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector

def worker(pid):
    values.ValueClass = values.MultiProcessValue(process_identifier=lambda: pid)
    reg = CollectorRegistry()
    c = Counter("inferwatch_requests", "r", ["model", "version", "status"], registry=reg)
    h = Histogram("inferwatch_request_duration_seconds", "l", ["model", "version"],
                  buckets=[0.001 * 2 ** i for i in range(14)], registry=reg)
    c.labels("cancer", "1", "2xx").inc()
    h.labels("cancer", "1").observe(0.003)

def scrape(n):
    reg = CollectorRegistry()
    MultiProcessCollector(reg)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        generate_latest(reg)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)

restarts, scrapes = int(sys.argv[1]), int(sys.argv[2])
for pid in range(4):
    worker(pid)
fresh = scrape(scrapes)
for pid in range(4, 4 + restarts):
    worker(pid)
print(fresh, scrape(scrapes))
"""


def multiprocess_anchor(restarts: int, scrapes: int) -> tuple[float, float]:
    out = subprocess.run(
        [PYTHON, "-c", MULTIPROC_ANCHOR, str(restarts), str(scrapes)],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return float(out[0]), float(out[1])


def wrk(url: str, script: Path, connections: int, seconds: float) -> float:
    last = str(max(os.sched_getaffinity(0)))
    out = subprocess.run(
        ["taskset", "-c", last, "wrk", "-t1", f"-c{connections}",
         f"-d{max(1, round(seconds))}s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=50)
    parser.add_argument("--restarts", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--real-restarts", type=int, default=0)
    parser.add_argument(
        "--report-every", type=int, default=0,
        help="print the scrape, files and totals after each N real restarts",
    )  # fmt: skip
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="iw-workers-"))
    _, instance = prepare(folder)
    body = json.dumps({"instances": [instance]})

    proc, base, rundir = serve(folder, 4, folder / "scrape.db")
    try:
        with httpx.Client(timeout=30) as c:
            for _ in range(400):
                c.post(f"{base}/v1/models/cancer/predict", json={"instances": [instance]})
        before = requests_total(base)
        fresh = median_scrape(base, args.scrapes)
        t0 = time.perf_counter()
        churn(rundir, 4, 4)
        once = median_scrape(base, args.scrapes)  # the spare slot's saved counts are read too
        churn(rundir, 4, args.restarts - 4)
        took = time.perf_counter() - t0
        after = median_scrape(base, args.scrapes)
        total = requests_total(base)
        assert total == before + args.restarts, (before, total)
        files = len(list(rundir.iterdir()))
        if args.real_restarts:

            def progress(done: int, seconds: float) -> None:
                time.sleep(2)  # the replacements' sockets
                now = median_scrape(base, args.scrapes)
                print(
                    f"  after {done:,} real restarts ({seconds:.0f} s): median "
                    f"{now * 1e3:.1f} ms a scrape ({now / once:.2f}x the scrape after 4), "
                    f"{len(list(rundir.iterdir()))} files, totals exact: "
                    f"{requests_total(base) == total}",
                    flush=True,
                )

            log = folder / next(p.name for p in folder.glob("serve-4-*.log"))
            real_took = real_churn(base, log, args.real_restarts, args.report_every, progress)
            time.sleep(2)  # the replacements' sockets
            real_after = median_scrape(base, args.scrapes)
            real_total = requests_total(base)
            real_files = len(list(rundir.iterdir()))
    finally:
        proc.terminate()
        proc.wait(120)
    print(
        f"scrape of /metrics at 4 workers: median {fresh * 1e3:.1f} ms fresh, "
        f"{once * 1e3:.1f} ms after 4 restarts, "
        f"{after * 1e3:.1f} ms after {args.restarts:,} ({after / once:.2f}x the 4; "
        f"restarts took {took:.1f} s; run directory {files} files; totals exact: "
        f"{before:.0f} + {args.restarts} = {total:.0f})"
    )

    if args.real_restarts:
        print(
            f"after {args.real_restarts:,} real worker restarts (SIGKILL, replaced by the "
            f"supervisor, {real_took:.0f} s): median {real_after * 1e3:.1f} ms a scrape "
            f"({real_after / once:.2f}x the scrape after 4 slot restarts); run directory "
            f"{real_files} files; totals {real_total:.0f} (exact: {real_total == total})"
        )

    mp_fresh, mp_after = multiprocess_anchor(args.restarts, args.scrapes)
    print(
        f"anchor, prometheus_client multiprocess mode (two metric families only): "
        f"{mp_fresh * 1e3:.1f} ms at 4 workers, {mp_after * 1e3:.1f} ms after "
        f"{args.restarts:,} restarts ({mp_after / mp_fresh:.0f}x)"
    )

    if args.skip_throughput:
        return
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        sys.exit("requests/s needs wrk (apt install wrk) and taskset")
    script = folder / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=body))
    results: dict[int, list[float]] = {1: [], 2: [], 4: []}
    for r in range(args.rounds):
        for n in results:
            proc, base, _ = serve(folder, n, folder / f"rps-{r}-{n}.db")
            try:
                url = f"{base}/v1/models/cancer/predict"
                wrk(url, script, args.connections, 1.0)  # warm-up
                results[n].append(wrk(url, script, args.connections, args.seconds))
            finally:
                proc.terminate()
                proc.wait(120)
        done = ", ".join(f"{n} workers {v[-1]:.0f}/s" for n, v in results.items())
        print(f"round {r + 1}: {done}")
    med = {n: statistics.median(v) for n, v in results.items()}
    print(
        "requests/s, median: "
        + ", ".join(f"{n} workers {v:.0f} ({v / med[1]:.2f}x)" for n, v in med.items())
        + f" ({os.cpu_count()} cores, wrk on one of them, {args.connections} connections)"
    )
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
