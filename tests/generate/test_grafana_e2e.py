"""Every Grafana panel's query returns data from a real Prometheus scraping a live demo.

``inferwatch demo`` (its model, config, traffic with malformed requests and late labels,
and the drift it induces) runs as a process; the real Prometheus scrapes it every second
on the ``prometheus.yml`` and rules that ``generate`` writes from the demo's own config.
Then each query of :data:`~inferwatch.generate._grafana_panels.PANELS`, with Grafana's
variables replaced as Grafana would (the served model and version, a rate interval of a
few scrapes), is asked of Prometheus' HTTP API until it returns series; the variables'
``label_values`` queries must list the served model and version.

Empty is allowed only for the panels named in :data:`CONDITIONAL`, whose data needs what
this test does not create.  The 1 s scrape, the 2 s drift start and the rate interval are
test settings passed through the demo's and ``generate``'s options, not a code path.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from inferwatch.config import load_settings
from inferwatch.demo._data import make_customers, to_instances
from inferwatch.generate import GenerateOptions, generate, write_bundle
from inferwatch.generate._grafana_panels import PANELS, VARIABLES, queries
from tests.cli.conftest import ServerProcess
from tests.generate.test_e2e_prometheus import _prometheus

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
#: panel key -> why this test leaves it empty
CONDITIONAL = {
    "gpu": "no GPU on the test machine",
    "fairness": "the demo configures no protected attribute",
}
RATE_INTERVAL = "10s"  # Grafana's $__rate_interval at a 1 s scrape is 4 s; a margin


def _substitute(expr: str, model: str, version: str) -> str:
    return (
        expr.replace("$__rate_interval", RATE_INTERVAL)
        .replace("$model", model)
        .replace("$version", version)
    )


def _series(prom_url: str, expr: str) -> list[dict[str, Any]]:
    resp = httpx.get(f"{prom_url}/api/v1/query", params={"query": expr}, timeout=10)
    body = resp.json()
    assert resp.status_code == 200 and body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _traced_requests(base: str, model: str, n: int = 20) -> set[str]:
    """Send ``n`` predict requests carrying a W3C ``traceparent``; their trace ids."""
    rng = np.random.default_rng(3)
    ids = set()
    with httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(n):
            trace = rng.bytes(16).hex()
            body = {"instances": to_instances(make_customers(2, rng))}
            headers = {"traceparent": f"00-{trace}-{rng.bytes(8).hex()}-01"}
            resp = client.post(f"/v1/models/{model}/predict", json=body, headers=headers)
            assert resp.status_code == 200, resp.text
            ids.add(trace)
    return ids


def test_every_panel_query_returns_data_from_prometheus_scraping_the_demo(
    tmp_path: Path,
) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus not installed (make system-deps)")
    started = time.monotonic()
    demo_dir = tmp_path / "demo"
    demo = ServerProcess(
        ["demo", "--duration", "120", "--drift-after", "2", "--workdir", str(demo_dir)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT)},
        timeout=90,  # it trains its model first: a busy machine is slow at that
    )
    prom: subprocess.Popen[bytes] | None = None
    try:
        settings = load_settings(demo_dir / "inferwatch.yaml")
        model = settings.models[0]
        out = tmp_path / "monitoring"
        options = GenerateOptions(
            target=demo.base,
            pushgateway=None,
            scrape_interval=1,
            alertmanager="127.0.0.1:9",  # nothing listens: alerts stay in Prometheus
        )
        write_bundle(generate(settings, ["prometheus", "rules", "grafana"], options), out)
        prom, prom_url, log = _prometheus(
            binary, out / "prometheus.yml", tmp_path / "tsdb", "--enable-feature=exemplar-storage"
        )
        traced = _traced_requests(demo.base, model.name)

        wanted = [
            (panel.key, ref, _substitute(q.expr, model.name, model.version))
            for panel, ref, q in queries()
            if panel.key not in CONDITIONAL
        ]
        empty = {(key, ref): expr for key, ref, expr in wanted}
        deadline = time.monotonic() + 60
        with ThreadPoolExecutor(8) as pool:  # one round of ~40 queries in well under 1 s
            while empty and time.monotonic() < deadline:
                pending = list(empty.items())
                found = pool.map(lambda item: bool(_series(prom_url, item[1])), pending)
                for (ident, _), has_data in zip(pending, found, strict=True):
                    if has_data:
                        del empty[ident]
                time.sleep(0.5)
        assert not empty, (
            f"no data after {time.monotonic() - started:.0f} s for {empty}\n"
            f"{log.read_text(errors='replace')[-2000:]}\n{demo.output()[-2000:]}"
        )

        # the latency panel's exemplars carry the trace ids of traced requests: the link
        # Grafana follows to the tracing datasource
        latency = next(p for p in PANELS if p.key == "latency")
        assert all(q.exemplar for q in latency.queries)
        expr = _substitute(latency.queries[-1].expr, model.name, model.version)
        now = time.time()
        resp = httpx.get(
            f"{prom_url}/api/v1/query_exemplars",
            params={"query": expr, "start": now - 300, "end": now},
            timeout=10,
        )
        trace_ids = {
            e["labels"].get("trace_id")
            for series in resp.json()["data"]
            for e in series["exemplars"]
        }
        assert trace_ids & traced, (trace_ids, traced)

        # the conditional panels are valid queries with no data here, never an error
        for panel, _, q in queries():
            if panel.key in CONDITIONAL:
                assert _series(prom_url, _substitute(q.expr, model.name, model.version)) == []

        # the variables list what Grafana would offer: the served model and its version
        for variable in {v for vs in VARIABLES.values() for v in vs}:
            match = _substitute(variable.metric, model.name, model.version)
            resp = httpx.get(
                f"{prom_url}/api/v1/label/{variable.label}/values",
                params={"match[]": match},
                timeout=10,
            )
            served = {"model": model.name, "version": model.version}[variable.label]
            assert resp.json()["data"] == [served], variable
        assert {p.key for p in PANELS} >= set(CONDITIONAL)
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(30)
        demo.stop()
