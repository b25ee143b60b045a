"""The metric catalogue: names, bounded labels, and a promtool-valid exposition."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from inferwatch.metrics import MAX_CLASSES, Metrics
from inferwatch.observation import Observation, PredictionRecord


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def obs(outputs: list[str], scores: list[float | None]) -> Observation:
    now = datetime.now(UTC)
    recs = [
        PredictionRecord(str(i), "m", "1", now, {"x": 1}, o, s, 0.01)
        for i, (o, s) in enumerate(zip(outputs, scores, strict=True))
    ]
    return Observation("m", "1", recs, 0.01)


def test_every_metric_is_prefixed_and_counters_end_in_total(registry: CollectorRegistry) -> None:
    Metrics(registry, process=False)
    text = generate_latest(registry).decode()
    families = list(text_string_to_metric_families(text))
    assert families
    for fam in families:
        assert fam.name.startswith("inferwatch_"), fam.name
    for line in text.splitlines():
        if line.startswith("# TYPE") and line.endswith(" counter"):
            assert line.split()[2].endswith("_total")


def test_predictions_and_confidence(registry: CollectorRegistry) -> None:
    m = Metrics(registry, process=False)
    m.for_model("m", "1", ["no", "yes"])
    m.observe(obs(["yes", "no", "yes", "maybe"], [0.9, 0.6, 0.7, None]))
    assert (
        sample(
            registry, "inferwatch_predictions_total", model="m", version="1", predicted_class="yes"
        )
        == 2
    )
    assert (
        sample(
            registry, "inferwatch_predictions_total", model="m", version="1", predicted_class="no"
        )
        == 1
    )
    assert (
        sample(
            registry,
            "inferwatch_predictions_total",
            model="m",
            version="1",
            predicted_class="other",
        )
        == 1
    )
    assert sample(registry, "inferwatch_prediction_confidence_count", model="m", version="1") == 3
    assert sample(
        registry, "inferwatch_prediction_confidence_sum", model="m", version="1"
    ) == pytest.approx(2.2)
    assert sample(registry, "inferwatch_request_instances_count", model="m", version="1") == 1


def test_class_label_is_bounded(registry: CollectorRegistry) -> None:
    m = Metrics(registry, process=False)
    classes = [f"c{i}" for i in range(MAX_CLASSES + 30)]
    m.for_model("m", "1", classes)
    m.observe(obs(classes, [None] * len(classes)))
    text = generate_latest(registry).decode()
    series = [s for s in text.splitlines() if s.startswith("inferwatch_predictions_total{")]
    assert len(series) == MAX_CLASSES + 1  # the known classes, then "other"
    assert (
        sample(
            registry,
            "inferwatch_predictions_total",
            model="m",
            version="1",
            predicted_class="other",
        )
        == 30
    )


def test_requests_and_rejections(registry: CollectorRegistry) -> None:
    m = Metrics(registry, process=False)
    mm = m.for_model("m", "1")
    mm.request(200, 0.01)
    mm.request(200, 0.02)
    mm.request(422, 0.001)
    m.reject(
        "m", "missing_feature", [("missing_feature", "numeric"), ("wrong_type", "categorical")]
    )
    m.reject("m", "some-free-text-reason")
    assert sample(registry, "inferwatch_requests_total", model="m", version="1", status="200") == 2
    assert sample(registry, "inferwatch_requests_total", model="m", version="1", status="422") == 1
    assert (
        sample(registry, "inferwatch_request_duration_seconds_count", model="m", version="1") == 3
    )
    assert (
        sample(registry, "inferwatch_requests_rejected_total", model="m", reason="missing_feature")
        == 1
    )
    # an unknown reason cannot create a new label value
    assert (
        sample(registry, "inferwatch_requests_rejected_total", model="m", reason="invalid_body")
        == 1
    )
    assert (
        sample(
            registry,
            "inferwatch_validation_errors_total",
            model="m",
            reason="wrong_type",
            kind="categorical",
        )
        == 1
    )


def test_log_queue_outcomes(registry: CollectorRegistry) -> None:
    m = Metrics(registry, process=False)
    m.log_queue(depth=5, written=10, dropped=0, failed=2)
    assert sample(registry, "inferwatch_prediction_log_queue_rows") == 5
    assert sample(registry, "inferwatch_prediction_log_rows_total", outcome="written") == 10
    assert sample(registry, "inferwatch_prediction_log_rows_total", outcome="failed") == 2


@pytest.mark.integration
def test_promtool_accepts_the_exposition(registry: CollectorRegistry) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not found (apt-get install prometheus)")
    m = Metrics(registry)
    m.for_model("m", "1", ["no", "yes"]).request(200, 0.003)
    m.observe(obs(["yes"], [0.8]))
    m.reject("m", "wrong_type", [("wrong_type", "numeric")])
    m.log_queue(depth=0, written=1, dropped=0, failed=0)
    out = subprocess.run(
        [promtool, "check", "metrics"],
        input=generate_latest(registry),
        capture_output=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr.decode() + out.stdout.decode()
    assert out.stdout.decode().strip() == "", out.stdout.decode()
