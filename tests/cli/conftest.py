"""Helpers to run the real ``inferwatch`` command in a subprocess."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import httpx
import pytest

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_cli(tmp_path: Path) -> Run:
    """Run ``python -m inferwatch ARGS`` in ``tmp_path`` with a clean INFERWATCH_ environment."""

    def run(
        *args: str, timeout: float = 120, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INFERWATCH_")}
        env["COLUMNS"] = "200"
        return subprocess.run(
            [sys.executable, "-m", "inferwatch", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd or tmp_path,
            env=env,
        )

    return run


#: the line each server prints once bound: uvicorn's for ``serve``, the demo's own
BOUND = re.compile(r"(?:Uvicorn running on|serving the churn model at) (http://127\.0\.0\.1:\d+)")


class BoundProcess:
    """A real server process on a port the OS picked (port 0), read from its output.

    The port is read from what the server prints once it is bound (``bound``: a pattern
    whose group 1 is the base URL), so no port is ever found free and then taken by
    someone else before the server binds it.  Two threads keep reading the process's
    stdout and stderr (a full pipe would stall the server); :attr:`stdout` and
    :attr:`stderr` hold what it printed so far.
    """

    def __init__(
        self,
        argv: list[str],
        *,
        bound: re.Pattern[str],
        cwd: Path,
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> None:
        self.pattern = bound
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._out: list[str] = []
        self._err: list[str] = []
        self._bound: queue.Queue[str] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self._out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self._err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        try:
            self.base = self._bound.get(timeout=timeout)
        except queue.Empty:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"the server did not bind:\n{self.output()}") from None

    def _read(self, stream: IO[str] | None, lines: list[str]) -> None:
        assert stream is not None
        for line in stream:
            lines.append(line)
            found = self.pattern.search(line)
            if found:
                self._bound.put(found.group(1))

    @property
    def stdout(self) -> str:
        return "".join(self._out)

    @property
    def stderr(self) -> str:
        return "".join(self._err)

    def output(self) -> str:
        """Everything printed so far, stdout then stderr."""
        return self.stdout + self.stderr

    def wait_ready(self, timeout: float = 60) -> None:
        """Until ``/readyz`` answers 200 (models loaded, store reachable)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited ({self.proc.returncode}):\n{self.output()}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready in {timeout}s:\n{self.output()}")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit code (killed if it does not exit in ``timeout``)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(10)
        for reader in self._readers:
            reader.join(10)
        return rc


class ServerProcess(BoundProcess):
    """``python -m inferwatch ARGS --port 0`` (``serve`` or ``demo``), with a clean
    ``INFERWATCH_`` environment plus ``env``."""

    def __init__(
        self, args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
    ) -> None:
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("INFERWATCH_")}
        super().__init__(
            [sys.executable, "-m", "inferwatch", *args, "--port", "0"],
            bound=BOUND,
            cwd=cwd,
            env={**base_env, **(env or {})},
            timeout=timeout,
        )
