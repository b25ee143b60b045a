"""A private Prometheus Pushgateway on a loopback port the OS picked (the real binary)."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import BoundProcess

__all__ = ["pushgateway"]


@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a running ``prometheus-pushgateway`` (skips, or fails under CI,
    when the binary is missing: mark the test ``integration``)."""
    binary = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    if binary is None:
        pytest.skip("prometheus-pushgateway not installed (apt-get install prometheus-pushgateway)")
    folder: Path = tmp_path_factory.mktemp("pushgateway")
    gateway = BoundProcess(
        [binary, "--web.listen-address=127.0.0.1:0", f"--persistence.file={folder / 'p'}"],
        bound=re.compile(r'msg="Listening on" address=(127\.0\.0\.1:\d+)'),
        cwd=folder,
    )
    url = f"http://{gateway.base}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        yield url
    finally:
        gateway.stop(10)
