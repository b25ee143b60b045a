"""``inferwatch push`` against the real ``prometheus-pushgateway`` binary."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._pushgateway import pushgateway
from tests.cli.conftest import Run

__all__ = ["pushgateway"]  # the fixture, imported for its tests


Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scraped(url: str) -> Series:
    """(name, labels) → value for the inferwatch series on the gateway's /metrics,
    parsed with prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=5).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("inferwatch_")
        for s in family.samples
    }


def value(series: Series, metric: str, **labels: str) -> float:
    return series[(metric, frozenset({"instance": "", **labels}.items()))]


def group(url: str, **labels: str) -> dict[str, Any] | None:
    """The gateway's /api/v1/metrics entry for one group (None when it has none)."""
    for entry in httpx.get(f"{url}/api/v1/metrics", timeout=5).json()["data"]:
        if entry["labels"] == labels:
            return dict(entry)
    return None


@pytest.mark.integration
def test_push_scores_duration_and_success_time(run_cli: Run, pushgateway: str) -> None:
    before = time.time()
    res = run_cli(
        "push", "--gateway", pushgateway, "--job", "train_churn", "-g", "model=churn",
        "-g", "version=7", "-m", "val/auc=0.91", "-m", "F1 score=0.8",
        "--duration-seconds", "12.5",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "pushed 2 metric(s)" in res.stderr
    series = scraped(pushgateway)
    base = {"job": "train_churn", "model": "churn", "version": "7"}
    assert value(series, "inferwatch_job_metric", **base, name="val_auc") == 0.91
    assert value(series, "inferwatch_job_metric", **base, name="F1_score") == 0.8
    assert value(series, "inferwatch_job_duration_seconds", **base) == 12.5
    stamp = value(series, "inferwatch_job_last_success_timestamp_seconds", **base)
    assert before - 1 <= stamp <= time.time() + 1
    entry = group(pushgateway, job="train_churn", model="churn", version="7")
    assert entry is not None
    assert entry["last_push_successful"] is True
    assert set(entry) >= {"inferwatch_job_metric", "inferwatch_job_duration_seconds"}


@pytest.mark.integration
def test_push_replaces_add_keeps_and_failed_keeps_the_last_success(
    run_cli: Run, pushgateway: str
) -> None:
    gw = ["--gateway", pushgateway, "--job", "nightly"]
    assert run_cli("push", *gw, "-m", "rmse=3.0", "--duration-seconds", "5").returncode == 0
    first = group(pushgateway, job="nightly")
    assert first is not None and "inferwatch_job_duration_seconds" in first
    # a plain push replaces the group: the duration pushed before is gone
    assert run_cli("push", *gw, "-m", "rmse=2.5").returncode == 0
    second = group(pushgateway, job="nightly")
    assert second is not None and "inferwatch_job_duration_seconds" not in second
    # --add replaces only what it pushes
    assert run_cli("push", *gw, "--add", "--duration-seconds", "9").returncode == 0
    series = scraped(pushgateway)
    assert value(series, "inferwatch_job_metric", job="nightly", name="rmse") == 2.5
    assert value(series, "inferwatch_job_duration_seconds", job="nightly") == 9
    success = value(series, "inferwatch_job_last_success_timestamp_seconds", job="nightly")
    # a failed run sets the failure time and keeps the last success
    res = run_cli("push", *gw, "--failed", "--duration-seconds", "1")
    assert res.returncode == 0, res.stderr
    series = scraped(pushgateway)
    assert value(series, "inferwatch_job_last_success_timestamp_seconds", job="nightly") == (
        success
    )
    assert value(series, "inferwatch_job_last_failure_timestamp_seconds", job="nightly") >= (
        success
    )
    assert run_cli("push", *gw, "--delete").returncode == 0
    assert group(pushgateway, job="nightly") is None


@pytest.mark.integration
def test_push_from_a_json_summary_with_flags_winning(
    run_cli: Run, pushgateway: str, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.json"
    summary.write_text(
        json.dumps(
            {
                "metrics": {"mae": 41.2, "r2": 0.45},
                "duration_seconds": 30,
                "grouping": {"model": "dia"},
            }
        )
    )
    res = run_cli(
        "push", "--gateway", pushgateway, "--job", "eval", "--from-json", str(summary),
        "-m", "r2=0.5",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    series = scraped(pushgateway)
    assert value(series, "inferwatch_job_metric", job="eval", model="dia", name="mae") == 41.2
    assert value(series, "inferwatch_job_metric", job="eval", model="dia", name="r2") == 0.5
    assert value(series, "inferwatch_job_duration_seconds", job="eval", model="dia") == 30
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"accuracy": 0.97}))
    res = run_cli("push", "--gateway", pushgateway, "--job", "flat", "--from-json", str(flat))
    assert res.returncode == 0, res.stderr
    assert value(scraped(pushgateway), "inferwatch_job_metric", job="flat", name="accuracy")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "auc"], "expected KEY=VALUE"),
        (["-m", "auc=high"], "is not a number"),
        (["-m", "auc=nan"], "not a finite number"),
        (["-m", "!!!=1"], "no letters or digits"),
        (["-m", "a.b=1", "-m", "a_b=2"], "both become 'a_b'"),
        (["-g", "model"], "expected KEY=VALUE"),
        (["-g", "job=x"], "grouping key 'job'"),
        (["-g", "9x=1"], "not a label name"),
        (["--delete", "-m", "a=1"], "--delete removes the group"),
        (["--duration-seconds", "-1"], "duration must be"),
    ],
)
def test_bad_arguments_exit_2_before_sending(run_cli: Run, args: list[str], message: str) -> None:
    # a gateway nobody listens on: exit 2 proves the arguments were refused first
    res = run_cli("push", "--gateway", "http://127.0.0.1:9", "--job", "j", *args)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr
    assert "Traceback" not in res.stderr


def test_bad_gateway_url_and_json_file_exit_2(run_cli: Run, tmp_path: Path) -> None:
    res = run_cli("push", "--gateway", "ftp://x", "--job", "j")
    assert res.returncode == 2 and "is not a URL" in res.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    res = run_cli("push", "--gateway", "http://127.0.0.1:9", "--job", "j", "--from-json", str(bad))
    assert res.returncode == 2 and "expected a JSON object" in res.stderr
    bad.write_text('{"metrics": {"a": 1}, "extra": 2}')
    res = run_cli("push", "--gateway", "http://127.0.0.1:9", "--job", "j", "--from-json", str(bad))
    assert res.returncode == 2 and "unknown key(s) extra" in res.stderr


def test_gateway_down_exits_1_with_a_clear_message(run_cli: Run) -> None:
    import socket

    with socket.socket() as held:  # bound, not listening: connections are refused
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        res = run_cli("push", "--gateway", f"http://127.0.0.1:{port}", "--job", "j", "-m", "a=1")
    assert res.returncode == 1, res.stderr
    assert f"cannot push to the Pushgateway at http://127.0.0.1:{port}" in res.stderr
    assert "Traceback" not in res.stderr
