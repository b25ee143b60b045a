"""The Alertmanager receiver against the real Alertmanager binary's API v2."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from inferwatch.errors import NotifyError
from inferwatch.notify import AlertmanagerReceiver
from inferwatch.observation import Alert
from tests._alertmanager import alertmanager

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
