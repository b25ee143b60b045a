"""Slack incoming webhooks and PagerDuty Events v2, posted to a real local server."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import SecretStr

from inferwatch.errors import NotifyError
from inferwatch.notify import PagerDutyReceiver, SlackReceiver, build_notifier
from tests.notify.conftest import Sink, make_alert


def test_slack_message_has_text_and_blocks(sink: Sink) -> None:
    receiver = SlackReceiver("chat", SecretStr(f"{sink.url}/services/T0/B0/xyz"), channel="#ml")
    alerts = [
        make_alert("LatencyHigh", summary="p99 1.4 s above 1 s", severity="warning"),
        make_alert("LatencyHigh", model="fraud", summary="p99 2.0 s above 1 s", severity="warning"),
    ]
    receiver.send("g", alerts)
    (request,) = sink.requests
    assert request.path == "/services/T0/B0/xyz"
    body = request.json()
    assert body["text"] == "[FIRING:2] LatencyHigh (severity=warning)"
    assert body["channel"] == "#ml"
    header, first, second = body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": body["text"]}}
    assert first["type"] == "section" and first["text"]["type"] == "mrkdwn"
    assert first["text"]["text"].startswith("*[FIRING] p99 1.4 s above 1 s*\n")
    assert "model=fraud" in second["text"]["text"]


def test_slack_keeps_block_kit_limits(sink: Sink) -> None:
    alerts = [make_alert(model=f"m{i}", summary="x" * 4000) for i in range(60)]
    SlackReceiver("chat", SecretStr(sink.url)).send("g", alerts)
    blocks = sink.requests[0].json()["blocks"]
    assert len(blocks) <= 50
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
    assert blocks[-1]["elements"][0]["text"] == "and 15 more"


def test_slack_refusal_does_not_leak_the_url(sink: Sink) -> None:
    sink.status, sink.answer = 404, b"no_service"
    url = f"{sink.url}/services/T0/B0/very-secret"
    with pytest.raises(NotifyError, match="404: no_service") as caught:
        SlackReceiver("chat", SecretStr(url)).send("g", [make_alert()])
    assert not caught.value.retryable
    assert "very-secret" not in str(caught.value)


def test_pagerduty_triggers_then_resolves_one_incident_per_group(sink: Sink) -> None:
    sink.status, sink.answer = 202, b'{"status":"success"}'
    receiver = PagerDutyReceiver("pd", SecretStr("R0UTINGKEY"), url=f"{sink.url}/v2/enqueue")
    group = '{}:{alertname="AccuracyLow"}'
    receiver.send(group, [make_alert("AccuracyLow", summary="accuracy 0.83 below 0.85")])
    receiver.send(group, [make_alert("AccuracyLow", status="resolved")])

    trigger, resolve = (r.json() for r in sink.requests)
    assert sink.requests[0].path == "/v2/enqueue"
    key = hashlib.sha256(group.encode()).hexdigest()
    assert trigger["routing_key"] == "R0UTINGKEY"
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == key
    payload = trigger["payload"]
    assert payload["severity"] == "critical"
    assert payload["source"] == "churn"
    assert payload["summary"].endswith("accuracy 0.83 below 0.85")
    assert payload["custom_details"]["num_firing"] == 1
    assert "accuracy 0.83 below 0.85" in payload["custom_details"]["firing"]
    assert resolve == {"routing_key": "R0UTINGKEY", "event_action": "resolve", "dedup_key": key}


def test_pagerduty_per_alert_dedup_uses_fingerprints(sink: Sink) -> None:
    sink.status = 202
    alerts = [make_alert(severity="warning"), make_alert(model="fraud", severity="info")]
    PagerDutyReceiver("pd", SecretStr("k"), url=sink.url, dedup="alert").send("g", alerts)
    events = [r.json() for r in sink.requests]
    assert [e["dedup_key"] for e in events] == [a.fingerprint for a in alerts]
    assert [e["payload"]["severity"] for e in events] == ["warning", "info"]


def test_pagerduty_unknown_severity_is_error_and_key_stays_secret(sink: Sink) -> None:
    sink.status, sink.answer = 400, b'{"status":"invalid event","errors":["R0UTINGKEY bad"]}'
    receiver = build_notifier(
        [{"name": "pd", "type": "pagerduty", "routing_key": "R0UTINGKEY", "url": sink.url}]
    )
    with pytest.raises(NotifyError) as caught:
        receiver.send("pd", "g", [make_alert(severity="page")])
    assert sink.requests[0].json()["payload"]["severity"] == "error"
    assert "R0UTINGKEY" not in str(caught.value)
    assert not caught.value.retryable
