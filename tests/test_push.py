"""``inferwatch.push`` from training code, against the real Pushgateway."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from inferwatch.push import PushError, metric_name, push_job, timed_job
from tests._pushgateway import pushgateway

__all__ = ["pushgateway"]  # the fixture, imported for its tests


def families(url: str, **labels: str) -> dict[str, list[dict[str, Any]]]:
    """Metric family → its series, for one group of the gateway's /api/v1/metrics."""
    for entry in httpx.get(f"{url}/api/v1/metrics", timeout=5).json()["data"]:
        if entry["labels"] == labels:
            return {k: v["metrics"] for k, v in entry.items() if k.startswith("inferwatch_")}
    return {}


def test_metric_names_are_sanitised() -> None:
    assert metric_name("val/F1 score") == "val_F1_score"
    assert metric_name("__auc__") == "auc"
    with pytest.raises(ValueError, match="no letters"):
        metric_name("/ /")


@pytest.mark.integration
def test_timed_job_pushes_scores_and_duration(pushgateway: str) -> None:
    with timed_job(pushgateway, "train", grouping_key={"model": "wine"}) as scores:
        scores["accuracy"] = 0.97
    got = families(pushgateway, job="train", model="wine")
    assert got["inferwatch_job_metric"][0]["labels"]["name"] == "accuracy"
    assert float(got["inferwatch_job_metric"][0]["value"]) == 0.97
    assert 0 <= float(got["inferwatch_job_duration_seconds"][0]["value"]) < 5
    assert "inferwatch_job_last_success_timestamp_seconds" in got


@pytest.mark.integration
def test_a_failed_training_pushes_its_failure_and_raises_its_own_error(pushgateway: str) -> None:
    push_job(pushgateway, "retrain", {"auc": 0.9})
    with pytest.raises(ZeroDivisionError), timed_job(pushgateway, "retrain"):
        _ = 1 / 0
    got = families(pushgateway, job="retrain")
    assert "inferwatch_job_last_failure_timestamp_seconds" in got
    assert "inferwatch_job_last_success_timestamp_seconds" in got  # kept (POST)


def test_an_unreachable_gateway_is_a_push_error_but_never_hides_a_training_error() -> None:
    with pytest.raises(PushError, match="cannot push to the Pushgateway"):
        push_job("http://127.0.0.1:9", "j", {"a": 1.0}, timeout=2)
    with pytest.raises(KeyError), timed_job("http://127.0.0.1:9", "j", timeout=2):
        raise KeyError("the training's own error")
