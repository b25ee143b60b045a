"""The Alertmanager receiver against the real Alertmanager binary's API v2."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from inferwatch.errors import NotifyError
from inferwatch.notify import AlertmanagerReceiver, webhook_message
from inferwatch.observation import Alert
from tests._alertmanager import alertmanager, alertmanager_binary, start_alertmanager, stop
from tests.notify.conftest import Sink

__all__ = ["alertmanager"]

pytestmark = pytest.mark.integration


def _listed(url: str, name: str) -> list[dict[str, Any]]:
    alerts = httpx.get(f"{url}/api/v2/alerts", timeout=5).json()
    return [a for a in alerts if a["labels"].get("alertname") == name]


def _alert(name: str, **kw: Any) -> Alert:
    now = datetime.now(UTC).replace(microsecond=0)
    return Alert(
        labels={"alertname": name, "severity": "critical", "model": "churn"},
        annotations={"summary": "p99 latency 1.4 s above 1 s"},
        starts_at=now - timedelta(minutes=5),
        generator_url="http://inferwatch.local/v1/alerts",
        **{"status": "firing", **kw},
    )


def test_alert_posted_is_read_back_and_resolves(alertmanager: str) -> None:
    receiver = AlertmanagerReceiver("am", alertmanager, resolve_timeout=300)
    firing = _alert("LatencyHigh")
    receiver.send("g", [firing])

    (listed,) = _listed(alertmanager, "LatencyHigh")
    assert listed["labels"] == dict(firing.labels)
    assert listed["annotations"] == {"summary": "p99 latency 1.4 s above 1 s"}
    assert listed["status"]["state"] == "active"
    assert listed["generatorURL"] == "http://inferwatch.local/v1/alerts"
    assert datetime.fromisoformat(listed["startsAt"]) == firing.starts_at
    ends = datetime.fromisoformat(listed["endsAt"])  # resolve_timeout ahead of now
    assert timedelta(seconds=250) < ends - datetime.now(UTC) < timedelta(seconds=301)

    resolved = _alert("LatencyHigh", status="resolved", ends_at=datetime.now(UTC))
    receiver.send("g", [resolved])
    assert _listed(alertmanager, "LatencyHigh") == []  # Alertmanager lists only unresolved
    receiver.close()


def test_without_resolve_timeout_alertmanager_sets_ends_at(alertmanager: str) -> None:
    AlertmanagerReceiver("am", alertmanager).send("g", [_alert("DriftHigh")])
    (listed,) = _listed(alertmanager, "DriftHigh")
    assert datetime.fromisoformat(listed["endsAt"]) > datetime.now(UTC)


def test_an_alert_alertmanager_refuses_is_not_retryable(alertmanager: str) -> None:
    bad = Alert(labels={}, annotations={}, status="firing", starts_at=datetime.now(UTC))
    with pytest.raises(NotifyError, match="answered 400") as caught:
        AlertmanagerReceiver("am", alertmanager).send("g", [bad])
    assert not caught.value.retryable


def _shape(value: Any) -> Any:
    """The JSON's structure: keys, and the type of every leaf."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


def test_our_webhook_payload_matches_what_alertmanager_sends(sink: Sink, tmp_path: Path) -> None:
    """Real Alertmanager routes an alert to a webhook; our receiver's message for the
    same alert and group has the same keys, types and values (but the fingerprint,
    which Alertmanager computes its own way)."""
    config = (
        "route:\n  receiver: hook\n  group_by: [alertname]\n"
        "  group_wait: 1s\n  group_interval: 1s\n"
        "receivers:\n  - name: hook\n    webhook_configs:\n"
        f"      - url: {sink.url}/am\n        send_resolved: true\n"
    )
    proc, url = start_alertmanager(alertmanager_binary(), tmp_path, config)
    try:
        alert = _alert("LatencyHigh")  # a fraction of a second: Go writes 9 digits at most
        alert = replace(alert, starts_at=alert.starts_at.replace(microsecond=123400))
        AlertmanagerReceiver("am", url).send("g", [alert])
        deadline = time.monotonic() + 30
        while not sink.requests and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sink.requests, "Alertmanager sent no webhook"
        theirs = sink.requests[0].json()
        ended = replace(alert, status="resolved", ends_at=datetime.now(UTC).replace(microsecond=0))
        AlertmanagerReceiver("am", url).send("g", [ended])
        while len(sink.requests) < 2 and time.monotonic() < deadline + 30:
            time.sleep(0.1)
        assert len(sink.requests) == 2, "Alertmanager sent no resolution"
        theirs_resolved = sink.requests[1].json()
    finally:
        stop(proc)

    ours = webhook_message(
        receiver="hook",
        group_key=theirs["groupKey"],
        alerts=[alert],
        group_labels={"alertname": "LatencyHigh"},
        external_url=theirs["externalURL"],
    )
    assert _shape(ours) == _shape(theirs)
    for message in (ours, theirs):
        del message["alerts"][0]["fingerprint"]
    assert ours == theirs
    assert theirs["alerts"][0]["startsAt"].endswith(".1234Z")
    assert theirs["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"

    ours_resolved = webhook_message(
        receiver="hook",
        group_key=theirs["groupKey"],
        alerts=[ended],
        group_labels={"alertname": "LatencyHigh"},
        external_url=theirs["externalURL"],
    )
    for message in (ours_resolved, theirs_resolved):
        del message["alerts"][0]["fingerprint"]
    assert theirs_resolved["status"] == "resolved"
    assert ours_resolved == theirs_resolved
