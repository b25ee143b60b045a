"""Helpers to run the real ``inferwatch`` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

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
