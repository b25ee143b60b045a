"""Every package facade has a sorted, complete ``__all__`` (as httpx pins its exports)."""

from __future__ import annotations

import importlib

import pytest

FACADES = [
    "inferwatch",
    "inferwatch.schema",
    "inferwatch.stats",
    "inferwatch.profile",
    "inferwatch.fairness",
    "inferwatch.quality",
    "inferwatch.evaluate",
    "inferwatch.report",
    "inferwatch.io",
    "inferwatch.store",
    "inferwatch.models",
    "inferwatch.server",
    "inferwatch.demo",
    "inferwatch.cli",
    "inferwatch.concept",
    "inferwatch.alerting",
]


@pytest.mark.parametrize("name", FACADES)
def test_all_is_sorted_and_resolves(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported), f"{name}.__all__ is not sorted"
    assert len(set(exported)) == len(exported)
    for attr in exported:
        assert getattr(module, attr) is not None, f"{name}.{attr} does not resolve"


def test_monitor_is_importable_from_the_top() -> None:
    import inferwatch
    from inferwatch.monitor import Monitor

    assert inferwatch.Monitor is Monitor
    with pytest.raises(AttributeError):
        _ = inferwatch.NoSuchThing
