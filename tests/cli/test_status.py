"""``inferwatch status`` against a real server: uvicorn on loopback, drifted traffic over
HTTP, then the command run as a user runs it (a subprocess, stdout piped)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
import yaml

from inferwatch.cli._status import base_url
from inferwatch.config import load_settings
from inferwatch.demo import make_customers, prepare_workdir, to_instances
from inferwatch.server import build_app

READ_KEY = "status-read-key-0123456789"
PREDICT_KEY = "status-predict-key-0123456789"
WAIT_SECONDS = 20.0


class Server:
    """``build_app`` of a config file under uvicorn on 127.0.0.1, on a port the OS picks;
    the config file is then rewritten with that port, as a user's config would say."""

    def __init__(self, config: Path, **overrides: Any) -> None:
        settings = load_settings(config, overrides)
        self.server = uvicorn.Server(
            uvicorn.Config(build_app(settings), host="127.0.0.1", port=0, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + WAIT_SECONDS
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.01)
        self.port = int(self.server.servers[0].sockets[0].getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        data = yaml.safe_load(config.read_text())
        data["server"]["port"] = self.port
        config.write_text(yaml.safe_dump(data))

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def status(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INFERWATCH_")}
    return subprocess.run(
        [sys.executable, "-m", "inferwatch", "status", *args],
        capture_output=True, text=True, timeout=60, cwd=cwd, env={**clean, **(env or {})},
    )  # fmt: skip


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("status")
    prepare_workdir(path, port=8000, n_reference=1000)
    return path


@pytest.fixture
def config(workdir: Path, tmp_path: Path) -> Path:
    data = yaml.safe_load((workdir / "inferwatch.yaml").read_text())
    for m in data["models"]:
        for key in ("path", "schema", "reference"):
            m[key] = str(workdir / m[key])
    data["store"] = {"url": f"sqlite:///{tmp_path}/status.db", "flush_interval_seconds": 0.05}
    data["drift"] = {"evaluation_interval_seconds": 0.2, "window_seconds": 86_400}
    path = tmp_path / "inferwatch.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def served(config: Path) -> Iterator[Server]:
    server = Server(config)
    try:
        yield server
    finally:
        server.stop()


def judged_report(url: str, traffic: list[dict[str, Any]]) -> Any:
    for i in range(0, len(traffic), 100):
        batch = {"instances": traffic[i : i + 100]}
        r = httpx.post(f"{url}/v1/models/churn/predict", json=batch, timeout=10)
        assert r.status_code == 200, r.text
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        body = httpx.get(f"{url}/v1/models/churn/drift", timeout=10).json()
        if (body.get("window") or {}).get("rows") == len(traffic) and body["status"] == "judged":
            return body
        assert time.monotonic() < deadline, f"window not judged: {body}"
        time.sleep(0.05)


def test_status_shows_the_servers_verdicts_with_their_thresholds(
    served: Server, config: Path, tmp_path: Path
) -> None:
    traffic = to_instances(make_customers(600, np.random.default_rng(11), drift=1.0))
    report = judged_report(served.url, traffic)["report"]

    out = status("-c", str(config), cwd=tmp_path)

    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "churn v1" in text and "600 rows" in text and "DATASET DRIFT" in text
    assert "…" not in text  # piped: full width, nothing cut
    rows = {line.split("│")[0].strip(): line for line in text.splitlines() if "│" in line}
    for f in report["features"]:
        line = rows[f["name"]]
        cells = [c.strip() for c in line.split("│")]
        assert cells[1] == f["test"]
        p, nominal = f["p_value"], f["details"]["nominal_threshold"]
        assert cells[2] == f"{f['statistic']:.4g}" + (f" (p={p:.4g})" if p is not None else "")
        assert cells[3] == f"> {f['threshold']:.4g}"  # calibrated: on the statistic
        assert cells[4] == (f"p < {nominal:.4g}" if p is not None else f">= {nominal:.4g}")
        assert cells[5] == ("DRIFT" if f["drift_detected"] else "ok")
        missing = f"{100 * f['quality']['missing_share']:.3g}%"
        limit = f["quality"].get("limits", {}).get("missing_share")
        assert cells[6].startswith(missing + (f" / {100 * limit:.3g}%" if limit else ""))
    assert max(len(line) for line in text.splitlines()) > 80

    as_json = status("-c", str(config), "--json", cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    (answer,) = json.loads(as_json.stdout)["models"]
    assert answer["report"]["features"] == report["features"]

    # with the server down, --from-store shows the same verdicts from the evaluations
    served.stop()
    down = status("-c", str(config), cwd=tmp_path)
    assert down.returncode == 2 and "--from-store" in down.stderr
    stored = status("-c", str(config), "--from-store", cwd=tmp_path)
    assert stored.returncode == 0, stored.stderr
    assert "from the store" in stored.stdout and "600 rows" in stored.stdout
    again = {ln.split("│")[0].strip(): ln for ln in stored.stdout.splitlines() if "│" in ln}
    for f in report["features"]:
        server_cells = [c.strip() for c in rows[f["name"]].split("│")]
        store_cells = [c.strip() for c in again[f["name"]].split("│")]
        assert store_cells[:6] == server_cells[:6], f["name"]  # test .. verdict
        assert store_cells[6] == server_cells[6]  # missing share / limit


def test_status_before_any_judged_window(served: Server, config: Path, tmp_path: Path) -> None:
    out = status("--url", served.url, "--model", "churn", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "churn v1: not_judged:" in out.stdout
    unknown = status("--url", served.url, "--model", "nosuch", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "no model named nosuch" in unknown.stderr and "churn" in unknown.stderr


def test_status_says_when_the_server_is_not_reachable(config: Path, tmp_path: Path) -> None:
    with socket.socket() as sock:  # bound, never listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        data = yaml.safe_load(config.read_text())
        data["server"]["port"] = port
        config.write_text(yaml.safe_dump(data))
        out = status("-c", str(config), cwd=tmp_path)
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert f"cannot reach the inferwatch server at http://127.0.0.1:{port}" in lines[0]
    no_store = status("-c", str(config), "--from-store", cwd=tmp_path)
    assert no_store.returncode == 2 and "no store at" in no_store.stderr
    bad = status("--url", "not a url", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "--url" in bad.stderr


def test_status_with_access_control(config: Path, tmp_path: Path) -> None:
    keys = [
        {"name": "ops", "key": READ_KEY, "roles": ["read"]},
        {"name": "app", "key": PREDICT_KEY, "roles": ["predict"]},
    ]
    server = Server(config, auth={"keys": keys})
    try:
        no_key = status("-c", str(config), cwd=tmp_path)
        assert no_key.returncode == 2
        assert "--api-key" in no_key.stderr and "INFERWATCH_API_KEY" in no_key.stderr
        wrong = status("-c", str(config), "--api-key", PREDICT_KEY, cwd=tmp_path)
        assert wrong.returncode == 2 and "lacks the role 'read'" in wrong.stderr
        assert PREDICT_KEY not in wrong.stderr
        by_env = status("-c", str(config), cwd=tmp_path, env={"INFERWATCH_API_KEY": READ_KEY})
        assert by_env.returncode == 0, by_env.stderr
        assert "churn v1" in by_env.stdout
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("host", "url"),
    [("127.0.0.1", "http://127.0.0.1:9"), ("0.0.0.0", "http://127.0.0.1:9"),
     ("::", "http://[::1]:9"), ("::1", "http://[::1]:9"), ("example.org", "http://example.org:9")],
)  # fmt: skip
def test_base_url(host: str, url: str) -> None:
    assert base_url(host, 9) == url
