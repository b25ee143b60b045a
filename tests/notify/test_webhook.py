"""The webhook receiver sends Alertmanager's webhook payload (version 4) to a real server."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import SecretStr

from inferwatch.errors import NotifyError
from inferwatch.notify import WebhookReceiver, format_time
from tests.notify.conftest import Sink, make_alert

# Alertmanager's notify/webhook Message: template.Data's fields plus version, groupKey
# and truncatedAlerts; template.Alert's fields for each alert.
MESSAGE_KEYS = {
    "receiver",
    "status",
    "alerts",
    "groupLabels",
    "commonLabels",
    "commonAnnotations",
    "externalURL",
    "version",
    "groupKey",
    "truncatedAlerts",
}
ALERT_KEYS = {
    "status",
    "labels",
    "annotations",
    "startsAt",
    "endsAt",
    "generatorURL",
    "fingerprint",
}


def test_format_time_writes_go_rfc3339nano() -> None:
    # Go's time.Time JSON: UTC as Z, fraction without trailing zeros, none when whole.
    assert format_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05Z"
    assert format_time(datetime(2026, 1, 2, 3, 4, 5, 120000, UTC)) == "2026-01-02T03:04:05.12Z"
    plus2 = timezone(timedelta(hours=2))
    assert format_time(datetime(2026, 1, 2, 5, 4, 5, 1, plus2)) == "2026-01-02T03:04:05.000001Z"
    assert format_time(None) == "0001-01-01T00:00:00Z"


def test_webhook_posts_alertmanagers_version_4_message(sink: Sink) -> None:
    firing = make_alert("DriftHigh", model="churn")
    other = make_alert("DriftHigh", model="churn", feature="age", summary="age drifted")
    receiver = WebhookReceiver("team", SecretStr(f"{sink.url}/hook"), external_url="http://iw:8000")
    with_labels = {"alertname": "DriftHigh"}
    receiver.send('{}:{alertname="DriftHigh"}', [firing, other], group_labels=with_labels)
    receiver.close()

    assert len(sink.requests) == 1
    request = sink.requests[0]
    assert request.path == "/hook"
    assert request.headers["Content-Type"] == "application/json"
    body = request.json()
    assert set(body) == MESSAGE_KEYS
    assert body["version"] == "4"
    assert body["groupKey"] == '{}:{alertname="DriftHigh"}'
    assert body["receiver"] == "team"
    assert body["status"] == "firing"
    assert body["truncatedAlerts"] == 0
    assert body["externalURL"] == "http://iw:8000"
    assert body["groupLabels"] == {"alertname": "DriftHigh"}
    # feature and summary differ between the two, so they are not common
    common = {"alertname": "DriftHigh", "model": "churn", "severity": "critical"}
    assert body["commonLabels"] == common
    assert body["commonAnnotations"] == {"description": "DriftHigh on churn"}
    first = body["alerts"][0]
    assert set(first) == ALERT_KEYS
    assert first["status"] == "firing"
    assert first["startsAt"] == "2026-11-29T16:00:05.123Z"
    assert first["endsAt"] == "0001-01-01T00:00:00Z"
    assert first["fingerprint"] == firing.fingerprint
    assert body["alerts"][1]["fingerprint"] != first["fingerprint"]
    assert first["generatorURL"] == "http://inferwatch.local/v1/alerts"


def test_webhook_group_resolves_when_every_alert_resolved(sink: Sink) -> None:
    receiver = WebhookReceiver("team", SecretStr(sink.url))
    receiver.send("g", [make_alert(status="resolved"), make_alert(status="firing", model="b")])
    receiver.send("g", [make_alert(status="resolved")])
    mixed, resolved = (r.json() for r in sink.requests)
    assert mixed["status"] == "firing"
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"] == "2026-11-29T16:30:00.25Z"


def test_webhook_truncates_as_max_alerts(sink: Sink) -> None:
    alerts = [make_alert(model=f"m{i}") for i in range(5)]
    WebhookReceiver("team", SecretStr(sink.url), max_alerts=2).send("g", alerts)
    body = sink.requests[0].json()
    assert [a["labels"]["model"] for a in body["alerts"]] == ["m0", "m1"]
    assert body["truncatedAlerts"] == 3


def test_send_resolved_false_sends_only_firing(sink: Sink) -> None:
    receiver = WebhookReceiver("team", SecretStr(sink.url), send_resolved=False)
    receiver.send("g", [make_alert(status="resolved")])
    assert sink.requests == []
    receiver.send("g", [make_alert(status="resolved"), make_alert(model="b")])
    assert [a["labels"]["model"] for a in sink.requests[0].json()["alerts"]] == ["b"]


def test_pending_alert_is_a_caller_error(sink: Sink) -> None:
    with pytest.raises(ValueError, match="pending"):
        WebhookReceiver("team", SecretStr(sink.url)).send("g", [make_alert(status="pending")])
    assert sink.requests == []


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (429, True), (400, False), (404, False)]
)
def test_refusal_is_a_notify_error(sink: Sink, status: int, retryable: bool) -> None:
    sink.status, sink.answer = status, b"nope"
    receiver = WebhookReceiver("team", SecretStr(f"{sink.url}/secret-token-123"))
    with pytest.raises(NotifyError) as caught:
        receiver.send("g", [make_alert()])
    assert caught.value.retryable is retryable
    assert caught.value.receiver == "team"
    assert str(status) in str(caught.value)
    assert "secret-token-123" not in str(caught.value)
    assert len(sink.requests) == 1  # one attempt: retrying is the engine's job


def test_unreachable_and_slow_receivers_fail_within_the_timeout(sink: Sink) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/token-abc"
    with pytest.raises(NotifyError, match="failed") as caught:
        WebhookReceiver("down", SecretStr(dead), timeout=2).send("g", [make_alert()])
    assert caught.value.retryable
    assert "token-abc" not in str(caught.value)

    sink.delay = 1.5
    started = datetime.now(UTC)
    with pytest.raises(NotifyError, match="Timeout"):
        WebhookReceiver("slow", SecretStr(sink.url), timeout=0.3).send("g", [make_alert()])
    assert (datetime.now(UTC) - started).total_seconds() < 1.4
