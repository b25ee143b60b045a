"""Shared fixtures, and the rule that an integration test may not skip under CI."""

from __future__ import annotations

import os
from collections.abc import Generator

import numpy as np
import pytest
from pluggy import Result
from prometheus_client import CollectorRegistry

pytest_plugins = ["tests._postgres"]

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# pytest-xdist runs a worker per core: OpenMP pools of a core each in every worker (the
# models the tests train, the servers they start) spin against each other and made single
# tests 40x slower in CI.  One OpenMP thread per process, inherited by subprocesses; the
# product's own limit is tested in tests/estimate/test_dle.py whatever this says.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Result[pytest.TestReport], None]:
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and item.get_closest_marker("integration") is not None:
        report.outcome = "failed"
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = (
            f"integration test skipped under CI=true ({reason}); CI must run it: "
            "install the component (make system-deps) instead of skipping"
        )


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator; set INFERWATCH_TEST_SEED to sweep seeds."""
    return np.random.default_rng(int(os.environ.get("INFERWATCH_TEST_SEED", "42")))


@pytest.fixture
def registry() -> CollectorRegistry:
    """A fresh Prometheus registry per test."""
    return CollectorRegistry()
