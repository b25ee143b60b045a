"""The dashboard in a real browser: headless Debian Chromium driven by Playwright.

One module-wide server: the demo's churn model built by ``build_app`` from the demo's
config (short drift windows, history sampled every 0.5 s, read and admin keys), served by
uvicorn on 127.0.0.1:0, fed by the demo's traffic generator with its inputs drifting
after 2 s.  Once the server itself reports drift and a firing alert, one Chromium (a
fresh profile, never a downloaded browser) walks the pages as a user would: the key box,
the overview's health, the heatmap, the latency chart, silencing with a read key (refused)
and an admin key (done), the resources page.  Every page's screenshot is saved under
``$TEST_ARTIFACTS`` (or pytest's tmp dir).  The whole run must log no console error but
the two refusals the test provokes on purpose.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml

from inferwatch.config import load_settings
from inferwatch.demo import DEMO_MODEL, TrafficGenerator, prepare_workdir
from inferwatch.server import build_app

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
READ_KEY = "dash-read-key-0123456789"
ADMIN_KEY = "dash-admin-key-0123456789"
#: the demo drifts these inputs (inferwatch.demo._data.make_customers)
DRIFTED_BY_THE_DEMO = {"income", "monthly_spend", "support_tickets", "plan", "autopay"}


def demo_config(workdir: Path) -> Path:
    """The demo's config, made fast: drift judged on 4 s windows every 0.5 s, alerts
    evaluated every second with no ``for`` delay, history sampled every 0.5 s, two keys."""
    path = prepare_workdir(workdir, port=0, n_reference=1000)
    config = yaml.safe_load(path.read_text())
    config["store"] = {"url": f"sqlite:///{workdir}/ui.db", "flush_interval_seconds": 0.05}
    config["drift"] = {"window_seconds": 4, "evaluation_interval_seconds": 0.5,
                       "min_window_rows": 60, "calibration": "fixed"}  # fmt: skip
    config["history"] = {"interval_seconds": 0.5}
    config["models"][0].update(segments=["plan"], protected_attribute="region")
    config["alerting"]["evaluation_interval"] = "1s"
    for rule in config["alerting"]["rules"]:
        rule["for"] = "0s"
    config["auth"] = {
        "keys": [
            {"name": "reader", "key": READ_KEY, "roles": ["read"]},
            {"name": "admin", "key": ADMIN_KEY, "roles": ["admin"]},
        ]
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class Demo:
    base: str
    read: httpx.Client
    artifacts: Path
    console: list[str] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)

    def get(self, path: str, **params: Any) -> Any:
        resp = self.read.get(path, params=params)
        resp.raise_for_status()
        return resp.json()


def _wait_for_drift(demo: Demo, timeout: float = 60.0) -> None:
    """Until the server's own API shows what the pages must show (or fail saying which)."""
    deadline = time.monotonic() + timeout
    missing = "the server"
    while time.monotonic() < deadline:
        try:
            overview = demo.get("/v1/overview")["models"][0]
            heat = demo.get(f"/v1/models/{DEMO_MODEL}/drift/history", **{"from": time.time() - 900})
            alerts = demo.get("/v1/alerts", model=DEMO_MODEL, state="firing")["alerts"]
            history = demo.get(f"/v1/models/{DEMO_MODEL}/history", **{"from": time.time() - 900})
        except httpx.HTTPError as exc:
            missing = f"an API answer ({exc})"
        else:
            cells = [c for row in heat["cells"] for c in row if c]
            names = {a["labels"]["alertname"] for a in alerts}
            p99 = history["series"]["latency_p99_seconds"]
            perf = demo.get(f"/v1/models/{DEMO_MODEL}/performance").get("versions") or {}
            state = perf.get("1") or {}
            checks = {
                "segments": bool(state.get("segments")),
                "fairness": bool(state.get("fairness")),
                "overview health": overview["health"] in {"warning", "critical"},
                "a drifted heatmap cell": any(c["drift"] for c in cells),
                "a firing DatasetDrift": "DatasetDrift" in names,
                "latency history": any(v is not None for v in p99),
            }
            missing = ", ".join(k for k, ok in checks.items() if not ok)
            if not missing:
                return
        time.sleep(0.5)
    raise AssertionError(f"the demo server never showed {missing}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    workdir = tmp_path_factory.mktemp("ui-demo")
    artifacts = Path(os.environ.get("TEST_ARTIFACTS") or tmp_path_factory.mktemp("screens"))
    artifacts.mkdir(parents=True, exist_ok=True)
    settings = load_settings(demo_config(workdir))
    server = uvicorn.Server(
        uvicorn.Config(build_app(settings), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="ui-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    traffic = TrafficGenerator(
        base,
        DEMO_MODEL,
        rate=40,
        drift_after=2.0,
        drift_ramp=1.0,
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        label_delay=0.5,
    )
    sender = threading.Thread(target=traffic.run, name="ui-traffic", daemon=True)
    sender.start()
    read = httpx.Client(base_url=base, headers={"authorization": f"Bearer {READ_KEY}"})
    try:
        found = Demo(base, read, artifacts)
        _wait_for_drift(found)
        yield found
    finally:
        traffic.stop.set()
        sender.join(10)
        read.close()
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def page(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Debian Chromium for the module, on a fresh profile."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no {CHROMIUM}: run scripts/bootstrap.sh system (Debian chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1366, "height": 768},
            offline=False,
        )

        # no network but the server: a request anywhere else is refused and recorded
        def only_loopback(route: Any) -> None:
            if route.request.url.startswith((demo.base, "data:")):
                route.continue_()
            else:
                demo.elsewhere.append(route.request.url)
                route.abort()

        context.route("**/*", only_loopback)
        tab = context.new_page()

        def on_console(msg: Any) -> None:
            if msg.type == "error":
                demo.console.append(msg.text)

        tab.on("console", on_console)
        tab.on("pageerror", lambda exc: demo.console.append(f"page error: {exc}"))
        try:
            yield tab
        finally:
            context.close()
    shutil.rmtree(profile, ignore_errors=True)


def _shot(page: Any, demo: Demo, name: str) -> None:
    path = demo.artifacts / f"dashboard-{name}.png"
    # the sticky header would be painted mid-page in a full-page picture
    page.add_style_tag(content="header.top{position:static}")
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000


def _until(page: Any, script: str, timeout: float = 10.0) -> None:
    """Poll ``script`` (a function) until truthy.  Not ``wait_for_function``: its polling
    evaluates a string in the page, which the dashboard's CSP (no 'unsafe-eval') refuses."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(script):
        assert time.monotonic() < deadline, f"never true: {script}"
        time.sleep(0.05)


def _drawn(page: Any) -> str:
    """How many times the router has drawn a view (to wait for the next one)."""
    return str(page.evaluate("() => document.body.dataset.drawn || ''"))


def _redrawn(page: Any, before: str) -> None:
    _until(page, f"() => (document.body.dataset.drawn || '') !== {before!r}")


def _the_overview_asks_for_a_key_then_shows_the_model_unhealthy(page: Any, demo: Demo) -> None:
    page.goto(f"{demo.base}/")  # redirects to /ui/
    page.wait_for_selector("#key-form:not([hidden])")
    assert "read role" in page.inner_text("#key-why")
    page.fill("#key-input", READ_KEY)
    page.click("#key-form button[type=submit]")
    row = page.wait_for_selector(f"#overview tr[data-model={DEMO_MODEL}]")
    health = row.query_selector("[data-health]")
    assert health is not None
    assert health.get_attribute("data-health") in {"warning", "critical"}
    assert page.url.endswith("#/")
    # the key stays in this tab only
    assert page.evaluate("sessionStorage.getItem('inferwatch.apiKey')") == READ_KEY
    assert page.evaluate("localStorage.getItem('inferwatch.apiKey')") is None
    _shot(page, demo, "overview")


def _the_model_page_marks_the_drifted_features_and_draws_latency(page: Any, demo: Demo) -> None:
    page.click(f"#overview tr[data-model={DEMO_MODEL}] a")
    page.wait_for_selector("#heatmap")
    before = _drawn(page)
    page.select_option("#range", "15m")
    _until(page, "() => location.hash.includes('range=15m')")
    _redrawn(page, before)
    page.wait_for_selector("#latency canvas")
    marked = set(
        page.eval_on_selector_all(
            "#heatmap .f[data-drifted=true]", "els => els.map(e => e.dataset.feature)"
        )
    )

    # what the server's heatmap says over the page's range: every marked feature drifted
    # there, and every feature that drifted in most windows is marked
    def drifts(since: float) -> dict[str, list[bool]]:
        heat = demo.get(f"/v1/models/{DEMO_MODEL}/drift/history", **{"from": since})
        return {
            f: [bool(c and c["drift"]) for c in row[-120:]]
            for f, row in zip(heat["features"], heat["cells"], strict=True)
        }

    # the page asked a moment ago: a window that left the range since may hold its mark,
    # so the marks are checked against a range a minute wider
    wider, same = drifts(time.time() - 960), drifts(time.time() - 900)
    assert marked & DRIFTED_BY_THE_DEMO, marked
    assert marked <= {f for f, d in wider.items() if any(d)}
    assert marked >= {f for f, d in same.items() if sum(d) > len(d) / 2}
    # a drifted cell's hover names its test, score and threshold
    page.hover("#heatmap .c.drift")
    tip = page.inner_text("#tip")
    assert "score" in tip
    assert "threshold" in tip
    assert any(t in tip for t in ("psi", "wasserstein", "jensen_shannon", "ks", "chi"))
    points = int(page.get_attribute("#latency .chart", "data-points") or 0)
    assert points > 0
    # the URL carries the view: the same link opens the same model and range
    assert f"#/model/{DEMO_MODEL}" in page.url
    assert "range=15m" in page.url
    page.wait_for_selector("#distribution")
    # performance per segment and the fairness gaps between regions, from the live state
    assert "plan=basic" in page.inner_text("#segments")
    assert "region" in page.inner_text("#fairness")
    _shot(page, demo, "model")


def _silencing_is_refused_with_a_read_key_and_works_with_an_admin_key_as_acknowledging(
    page: Any, demo: Demo
) -> None:
    def silences() -> list[dict[str, Any]]:
        return [
            s for s in demo.get("/v1/silences")["silences"]
            if any("DatasetDrift" in m for m in s["matchers"])
        ]  # fmt: skip

    assert silences() == []
    row = "#alerts tr[data-alert=DatasetDrift]"
    page.click(f"{row} button.silence")
    page.wait_for_selector("#banner.error:not([hidden])")
    assert "admin" in page.inner_text("#banner")
    assert silences() == []
    page.click("#key-button")
    page.fill("#key-input", ADMIN_KEY)
    page.click("#key-form button[type=submit]")
    page.wait_for_selector(f"{row} button.silence")
    page.click(f"{row} button.silence")
    page.wait_for_selector("#banner.ok:not([hidden])")
    assert "Silenced DatasetDrift" in page.inner_text("#banner")
    made = silences()
    assert len(made) == 1
    assert made[0]["created_by"] == "dashboard"
    assert 'model="churn"' in made[0]["matchers"]
    # acknowledging, with the same admin key: the server records who
    fingerprint = page.get_attribute(f"{row}:has(button.ack)", "data-fingerprint")
    page.click(f"{row}[data-fingerprint='{fingerprint}'] button.ack")
    page.wait_for_selector("#banner.ok:has-text('Acknowledged')")
    acked = demo.get("/v1/alerts", model=DEMO_MODEL)["alerts"]
    assert [a["acknowledged_by"] for a in acked if a["fingerprint"] == fingerprint] == ["dashboard"]
    _shot(page, demo, "model-silenced")


def _resources_dark_theme_docs_offline_and_no_console_errors(page: Any, demo: Demo) -> None:
    page.click(".tabs a[data-page=resources]")
    page.wait_for_selector("#resources canvas")
    before = _drawn(page)
    page.click("#theme")
    _redrawn(page, before)
    assert page.evaluate("() => document.documentElement.dataset.theme") in {"dark", "light"}
    _shot(page, demo, "resources")
    page.goto(f"{demo.base}/docs")
    page.wait_for_selector(".swagger-ui .info")
    assert demo.elsewhere == []  # nothing asked of any host but the server
    # only the refusals provoked on purpose: the 401 before the key, the read key's 403
    unexpected = [
        m for m in demo.console
        if not ("status of 401" in m or "status of 403" in m)
    ]  # fmt: skip
    assert unexpected == []
    assert any("status of 403" in m for m in demo.console)  # the refusal was seen


def test_the_dashboard_in_a_browser(page: Any, demo: Demo) -> None:
    """One browser page walked through the dashboard in order (the key typed on the
    overview is the one the later steps use), so one test: pytest-xdist may not split
    the steps across workers."""
    _the_overview_asks_for_a_key_then_shows_the_model_unhealthy(page, demo)
    _the_model_page_marks_the_drifted_features_and_draws_latency(page, demo)
    _silencing_is_refused_with_a_read_key_and_works_with_an_admin_key_as_acknowledging(page, demo)
    _resources_dark_theme_docs_offline_and_no_console_errors(page, demo)
