"""The self-contained demo: a churn classifier, its reference data, and traffic to watch."""

from __future__ import annotations

from inferwatch.demo._data import DEMO_MODEL, make_customers, prepare_workdir, to_instances
from inferwatch.demo._traffic import TrafficGenerator, TrafficStats

__all__ = [
    "DEMO_MODEL",
    "TrafficGenerator",
    "TrafficStats",
    "make_customers",
    "prepare_workdir",
    "to_instances",
]
