"""The pure core and the engine import no adapter (no web framework, database or metrics client)."""

from __future__ import annotations

import subprocess
import sys

import pytest

ADAPTER_MODULES = ("sqlalchemy", "fastapi", "starlette", "prometheus_client", "uvicorn", "pandas")


@pytest.mark.parametrize(
    "module",
    [
        "inferwatch.schema",
        "inferwatch.performance",
        "inferwatch.estimate",
        "inferwatch.fairness",
        "inferwatch.concept",
        "inferwatch.rules",
        "inferwatch.alerting",
        "inferwatch.history",
        "inferwatch.observation",
        "inferwatch.errors",
        "inferwatch.ports",
        "inferwatch.monitor",
        "inferwatch.labels",
        "inferwatch.windows",
        "inferwatch.lease",
        "inferwatch.shared_windows",
        "inferwatch.evaluate",
        "inferwatch",
    ],
)
def test_core_and_engine_import_no_adapter(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        f"bad = [m for m in {ADAPTER_MODULES!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"{module} imports {out.stdout.strip()}"
