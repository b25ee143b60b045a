"""A private Prometheus Alertmanager on a free loopback port (the real Debian binary)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._postgres import free_port

__all__ = ["alertmanager", "alertmanager_binary", "start_alertmanager", "stop"]


def alertmanager_binary() -> str:
    """The installed binary's path, or a skip (a failure under CI for integration tests)."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.skip("alertmanager not installed (apt-get install prometheus-alertmanager)")
    return binary


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


# Routes everything to a receiver that sends nothing: the tests read alerts back
# through the API, which is what a fleet routing through Alertmanager relies on.
CONFIG = """\
route:
  receiver: blackhole
  group_wait: 1h
receivers:
  - name: blackhole
"""


def start_alertmanager(
    binary: str, folder: Path, config: str = CONFIG
) -> tuple[subprocess.Popen[bytes], str]:
    """Alertmanager on a free port; it cannot bind port 0 and report it, so the port is
    found free first and the start retried when someone took it in between."""
    (folder / "alertmanager.yml").write_text(config)
    last = ""
    for _ in range(5):
        port = free_port()
        log = folder / f"alertmanager-{port}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={folder / 'alertmanager.yml'}",
                    f"--storage.path={folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address=",
                ],
                cwd=folder,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    return proc, url
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        last = log.read_text(errors="replace")
        if "address already in use" not in last:
            break
    raise AssertionError(f"alertmanager did not start:\n{last[-3000:]}")


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a running ``alertmanager`` (skips, or fails under CI, when the
    binary is missing: mark the test ``integration``)."""
    binary = alertmanager_binary()
    proc, url = start_alertmanager(binary, tmp_path_factory.mktemp("alertmanager"))
    try:
        yield url
    finally:
        stop(proc)
