"""registry_samples: the direct read of prometheus_client's metrics gives exactly what
``registry.collect()`` gives (the reference), filtered and labelled, and falls back to it
when a metric's internals are not what it expects."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import GaugeMetricFamily

import inferwatch.metrics as metrics_module
from inferwatch.metrics import Metrics, registry_samples


class _Custom:
    def collect(self) -> Any:
        family = GaugeMetricFamily("custom_share", "A custom collector.", labels=["model"])
        family.add_metric(["iris"], 0.25)
        yield family


def _registry() -> CollectorRegistry:
    metrics = Metrics()
    for model, status, latency in (
        ("iris", "200", 0.3),
        ("iris", "500", 7.0),
        ("wine", "200", 0.01),
    ):
        metrics.requests.labels(model, "1", status).inc(3)
        metrics.request_duration.labels(model, "1").observe(latency)
        metrics.confidence.labels(model, "1").observe(0.87)
    metrics.log_queue_depth.set(12)
    metrics.labels.labels("iris", "accepted").inc()
    Gauge("callback_gauge", "set_function", registry=metrics.registry).set_function(lambda: 4.5)
    metrics.registry.register(_Custom())
    return metrics.registry


def _reference(
    registry: CollectorRegistry, names: set[str] | None, extra: dict[str, str]
) -> list[Any]:
    out = []
    for family in registry.collect():
        for s in family.samples:
            if s.name.endswith("_created") or (names is not None and s.name not in names):
                continue
            out.append((s.name, sorted({**extra, **s.labels}.items()), s.value))
    return sorted(out)


def _plain(triples: list[tuple[str, dict[str, str], float]]) -> list[Any]:
    return sorted((n, sorted(lab.items()), v) for n, lab, v in triples)


def test_the_direct_read_equals_collect() -> None:
    registry = _registry()
    got = _plain(registry_samples(registry))
    # process and resource metrics move between two collections; compare the rest exactly
    moving = ("process_", "inferwatch_host_", "inferwatch_process_", "inferwatch_gpu_")
    assert [g for g in got if not g[0].startswith(moving)] == [
        r for r in _reference(registry, None, {}) if not r[0].startswith(moving)
    ]
    names = {n for n, _, _ in got}
    assert {"inferwatch_requests_total", "inferwatch_request_duration_seconds_bucket",
            "inferwatch_prediction_log_queue_rows", "callback_gauge", "custom_share",
            "inferwatch_build_info"} <= names  # fmt: skip


def test_names_and_target_labels() -> None:
    registry = _registry()
    wanted = {"inferwatch_requests_total", "inferwatch_request_duration_seconds_bucket",
              "inferwatch_prediction_confidence_sum", "callback_gauge", "custom_share"}  # fmt: skip
    got = _plain(registry_samples(registry, wanted, labels={"instance": "h:1", "model": "x"}))
    assert got == _reference(registry, wanted, {"instance": "h:1", "model": "x"})
    assert {n for n, _, _ in got} == wanted
    bucket = [(dict(lab)["le"], v) for n, lab, v in got
              if n.endswith("_bucket") and dict(lab)["model"] == "iris"]  # fmt: skip
    assert ("0.25", 0.0) in bucket and ("0.5", 1.0) in bucket and ("+Inf", 2.0) in bucket


def test_a_metric_whose_internals_moved_is_read_through_collect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A direct read that fails half way (prometheus_client renamed an attribute) leaves
    nothing behind, and that collector is read through ``collect()`` instead."""
    registry = _registry()
    real = metrics_module._read_direct

    def moved(metric: Any, wanted: Any, extra: Any, out: list[Any]) -> bool:
        if getattr(metric, "_name", "") == "inferwatch_request_duration_seconds":
            out.append(("half_way", {}, 1.0))
            raise AttributeError("_upper_bounds")
        return real(metric, wanted, extra, out)

    monkeypatch.setattr(metrics_module, "_read_direct", moved)
    wanted = {"inferwatch_request_duration_seconds_bucket", "inferwatch_requests_total"}
    got = _plain(registry_samples(registry, wanted))
    assert got == _reference(registry, wanted, {})
    assert "half_way" not in {n for n, _, _ in got}
