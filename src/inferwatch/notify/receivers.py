"""Receivers: one attempt to deliver one group of alerts, raising NotifyError on failure.

The alerting engine groups alerts, waits, and retries with backoff; a receiver only
turns a group into the request its destination expects and makes ONE attempt with a
timeout.  Formats follow the destinations' own definitions: Alertmanager's webhook
``Message`` (version "4"), its API v2 ``postableAlerts``, Slack incoming webhooks
(``text`` + Block Kit ``blocks``), PagerDuty Events API v2, and a plain-text email.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from inferwatch.errors import NotifyError
from inferwatch.observation import Alert

__all__ = [
    "ZERO_TIME",
    "AlertmanagerReceiver",
    "EmailReceiver",
    "PagerDutyReceiver",
    "ReceiverProtocol",
    "SlackReceiver",
    "WebhookReceiver",
    "format_time",
    "webhook_message",
]

logger = logging.getLogger(__name__)

#: Go's zero ``time.Time`` as Alertmanager writes ``endsAt`` of an unresolved alert.
ZERO_TIME = "0001-01-01T00:00:00Z"

_USER_AGENT = "inferwatch-notify"


class ReceiverProtocol(Protocol):
    """What the engine calls: deliver ``alerts`` (one group) once, or raise NotifyError."""

    name: str

    def send(
        self,
        group_key: str,
        alerts: Sequence[Alert],
        *,
        group_labels: Mapping[str, str] | None = None,
    ) -> None: ...

    def close(self) -> None: ...


def format_time(when: datetime | None) -> str:
    """``when`` as Go's RFC 3339 with nanoseconds writes it (UTC, ``Z``, fraction without
    trailing zeros), the form Alertmanager sends; None is Go's zero time."""
    if when is None:
        return ZERO_TIME
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond:06d}".rstrip("0")
    return text + "Z"


def _status(alert: Alert) -> str:
    """``firing`` or ``resolved``: a pending alert is not yet an alert to anyone outside."""
    if alert.status == "resolved":
        return "resolved"
    if alert.status == "firing":
        return "firing"
    raise ValueError(
        f"alert {alert.name!r} is {alert.status}: only firing or resolved alerts are sent"
    )


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The pairs every map shares (Alertmanager's ``commonLabels``/``commonAnnotations``)."""
    if not maps:
        return {}
    first = dict(maps[0])
    return {k: v for k, v in sorted(first.items()) if all(m.get(k) == v for m in maps[1:])}


def webhook_message(
    *,
    receiver: str,
    group_key: str,
    alerts: Sequence[Alert],
    group_labels: Mapping[str, str] | None = None,
    external_url: str = "",
    max_alerts: int = 0,
) -> dict[str, Any]:
    """Alertmanager's webhook ``Message`` (version "4") for one group.

    The fields and their meaning are Alertmanager's (notify/webhook ``Message`` embedding
    template ``Data``): ``status`` is ``firing`` while any alert fires, the common labels
    and annotations are computed over every alert of the group before truncation, an
    unresolved alert's ``endsAt`` is Go's zero time, and ``max_alerts`` > 0 keeps the
    first that many alerts, counting the rest in ``truncatedAlerts``.
    """
    statuses = [_status(a) for a in alerts]
    kept = list(alerts)
    truncated = 0
    if max_alerts and len(kept) > max_alerts:
        truncated = len(kept) - max_alerts
        kept = kept[:max_alerts]
    return {
        "receiver": receiver,
        "status": "firing" if "firing" in statuses else "resolved",
        "alerts": [
            {
                "status": _status(a),
                "labels": dict(a.labels),
                "annotations": dict(a.annotations),
                "startsAt": format_time(a.starts_at),
                "endsAt": format_time(a.ends_at if a.status == "resolved" else None),
                "generatorURL": a.generator_url,
                "fingerprint": a.fingerprint,
            }
            for a in kept
        ],
        "groupLabels": dict(group_labels or {}),
        "commonLabels": _common([a.labels for a in alerts]),
        "commonAnnotations": _common([a.annotations for a in alerts]),
        "externalURL": external_url,
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": truncated,
    }


def _title(alerts: Sequence[Alert], group_labels: Mapping[str, str] | None) -> str:
    """``[FIRING:2] HighLatency (model=churn)``: Alertmanager's default title shape."""
    firing = sum(1 for a in alerts if a.status == "firing")
    head = f"[FIRING:{firing}]" if firing else "[RESOLVED]"
    common = _common([a.labels for a in alerts])
    name = common.pop("alertname", None) or ", ".join(sorted({a.name for a in alerts}))
    shown = dict(group_labels) if group_labels else common
    shown.pop("alertname", None)
    rest = " ".join(f"{k}={v}" for k, v in sorted(shown.items()))
    return f"{head} {name}" + (f" ({rest})" if rest else "")


def _alert_lines(alert: Alert) -> list[str]:
    """An alert's summary, description and labels as lines of plain text."""
    summary = alert.annotations.get("summary") or alert.name
    lines = [f"[{_status(alert).upper()}] {summary}"]
    if alert.annotations.get("description"):
        lines.append(alert.annotations["description"])
    labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
    lines.append(f"labels: {labels}")
    lines.append(f"started: {format_time(alert.starts_at)}")
    if alert.status == "resolved" and alert.ends_at is not None:
        lines.append(f"ended: {format_time(alert.ends_at)}")
    if alert.value is not None:
        lines.append(f"value: {alert.value:g}")
    if alert.generator_url:
        lines.append(f"source: {alert.generator_url}")
    return lines


def _scrub(text: str, secrets: Sequence[SecretStr | None]) -> str:
    """``text`` with every secret's value masked (an error message can echo a URL)."""
    for secret in secrets:
        if secret is not None and secret.get_secret_value():
            text = text.replace(secret.get_secret_value(), "***")
    return text


class _HTTPReceiver:
    """A receiver that POSTs JSON: one request, a timeout, and errors without secrets."""

    kind = "http"

    def __init__(self, name: str, *, timeout: float, send_resolved: bool = True) -> None:
        self.name = name
        self.send_resolved = send_resolved
        self.timeout = timeout
        self._client = httpx.Client(
            timeout=timeout, follow_redirects=False, headers={"User-Agent": _USER_AGENT}
        )

    def _secrets(self) -> Sequence[SecretStr | None]:
        return ()

    def _post(self, url: str, body: Any, *, shown_url: str) -> httpx.Response:
        """POST ``body``; a transport error or a non-2xx answer is a NotifyError.

        4xx answers other than 408 and 429 are not retryable: the same request would be
        refused again.  ``shown_url`` is what an error may say about the destination.
        """
        try:
            response = self._client.post(url, json=body)
        except httpx.HTTPError as exc:
            detail = _scrub(f"{type(exc).__name__}: {exc}", self._secrets())
            raise NotifyError(self.name, f"POST {shown_url} failed: {detail}") from None
        if not response.is_success:
            code = response.status_code
            retryable = code >= 500 or code in (408, 429)
            text = _scrub(response.text[:200], self._secrets())
            raise NotifyError(
                self.name, f"POST {shown_url} answered {code}: {text}", retryable=retryable
            )
        return response

    def _to_send(self, alerts: Sequence[Alert]) -> list[Alert]:
        for alert in alerts:
            _status(alert)
        if self.send_resolved:
            return list(alerts)
        return [a for a in alerts if a.status == "firing"]

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, timeout={self.timeout})"


class WebhookReceiver(_HTTPReceiver):
    """Alertmanager's webhook payload (version "4"), for anything that reads it."""

    kind = "webhook"

    def __init__(
        self,
        name: str,
        url: SecretStr,
        *,
        timeout: float = 10.0,
        send_resolved: bool = True,
        max_alerts: int = 0,
        external_url: str = "",
    ) -> None:
        super().__init__(name, timeout=timeout, send_resolved=send_resolved)
        self._url = url
        self.max_alerts = max_alerts
        self.external_url = external_url

    def _secrets(self) -> Sequence[SecretStr | None]:
        return (self._url,)

    def send(
        self,
        group_key: str,
        alerts: Sequence[Alert],
        *,
        group_labels: Mapping[str, str] | None = None,
    ) -> None:
        alerts = self._to_send(alerts)
        if not alerts:
            return
        body = webhook_message(
            receiver=self.name,
            group_key=group_key,
            alerts=alerts,
            group_labels=group_labels,
            external_url=self.external_url,
            max_alerts=self.max_alerts,
        )
        self._post(self._url.get_secret_value(), body, shown_url="the webhook")


class AlertmanagerReceiver(_HTTPReceiver):
    """Alerts posted to a real Alertmanager's ``POST /api/v2/alerts`` (postableAlerts).

    A firing alert's ``endsAt`` is left out (Alertmanager then resolves it after its own
    ``resolve_timeout`` unless it is sent again) or, with ``resolve_timeout``, set that
    far ahead as Prometheus does; a resolved alert carries its ``ends_at``, which is how
    Alertmanager learns it resolved.
    """

    kind = "alertmanager"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        timeout: float = 10.0,
        send_resolved: bool = True,
        resolve_timeout: float | None = None,
    ) -> None:
        super().__init__(name, timeout=timeout, send_resolved=send_resolved)
        self.url = url.rstrip("/")
        self.resolve_timeout = resolve_timeout

    def postable(self, alert: Alert, now: datetime | None = None) -> dict[str, Any]:
        """One ``postableAlert`` of Alertmanager's OpenAPI v2 spec."""
        body: dict[str, Any] = {
            "labels": dict(alert.labels),
            "annotations": dict(alert.annotations),
            "startsAt": format_time(alert.starts_at),
        }
        if alert.generator_url:
            body["generatorURL"] = alert.generator_url
        if _status(alert) == "resolved":
            body["endsAt"] = format_time(alert.ends_at or now or datetime.now(UTC))
        elif self.resolve_timeout is not None:
            ahead = (now or datetime.now(UTC)) + timedelta(seconds=self.resolve_timeout)
            body["endsAt"] = format_time(ahead)
        return body

    def send(
        self,
        group_key: str,
        alerts: Sequence[Alert],
        *,
        group_labels: Mapping[str, str] | None = None,
    ) -> None:
        # Alertmanager groups by itself; the group key and labels are ours, not its.
        alerts = self._to_send(alerts)
        if not alerts:
            return
        now = datetime.now(UTC)
        body = [self.postable(a, now) for a in alerts]
        self._post(f"{self.url}/api/v2/alerts", body, shown_url=f"{self.url}/api/v2/alerts")

    def __repr__(self) -> str:
        return f"AlertmanagerReceiver(name={self.name!r}, url={self.url!r})"


class SlackReceiver(_HTTPReceiver):
    """A Slack incoming-webhook message: ``text`` (notifications, fallback) and blocks.

    Block Kit limits are kept: a header of at most 150 characters, sections of at most
    3,000, at most 50 blocks (further alerts are counted in a last line).
    """

    kind = "slack"
    _MAX_SECTIONS = 45

    def __init__(
        self,
        name: str,
        url: SecretStr,
        *,
        timeout: float = 10.0,
        send_resolved: bool = True,
        channel: str | None = None,
        username: str | None = None,
    ) -> None:
        super().__init__(name, timeout=timeout, send_resolved=send_resolved)
        self._url = url
        self.channel = channel
        self.username = username

    def _secrets(self) -> Sequence[SecretStr | None]:
        return (self._url,)

    def message(
        self, alerts: Sequence[Alert], group_labels: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        title = _title(alerts, group_labels)
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}}
        ]
        for alert in alerts[: self._MAX_SECTIONS]:
            lines = _alert_lines(alert)
            text = f"*{lines[0]}*\n" + "\n".join(lines[1:])
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}})
        if len(alerts) > self._MAX_SECTIONS:
            more = len(alerts) - self._MAX_SECTIONS
            blocks.append(
                {"type": "context", "elements": [{"type": "mrkdwn", "text": f"and {more} more"}]}
            )
        body: dict[str, Any] = {"text": title, "blocks": blocks}
        if self.channel:
            body["channel"] = self.channel
        if self.username:
            body["username"] = self.username
        return body

    def send(
        self,
        group_key: str,
        alerts: Sequence[Alert],
        *,
        group_labels: Mapping[str, str] | None = None,
    ) -> None:
        alerts = self._to_send(alerts)
        if not alerts:
            return
        self._post(
            self._url.get_secret_value(), self.message(alerts, group_labels), shown_url="Slack"
        )


_PD_SEVERITIES = ("critical", "error", "warning", "info")


class PagerDutyReceiver(_HTTPReceiver):
    """PagerDuty Events API v2: ``trigger`` while anything fires, ``resolve`` after.

    With ``dedup="group"`` one event stands for the group (dedup key: SHA-256 of the
    group key, as Alertmanager's PagerDuty notifier keys it), so PagerDuty opens one
    incident per group and closes it when the group resolves; ``dedup="alert"`` sends one
    event per alert keyed by its fingerprint.  The severity is the alerts' ``severity``
    label where PagerDuty knows it (critical, error, warning, info), else ``error``.
    """

    kind = "pagerduty"

    def __init__(
        self,
        name: str,
        routing_key: SecretStr,
        *,
        url: str,
        timeout: float = 10.0,
        send_resolved: bool = True,
        source: str = "inferwatch",
        dedup: str = "group",
    ) -> None:
        super().__init__(name, timeout=timeout, send_resolved=send_resolved)
        self._routing_key = routing_key
        self.url = url
        self.source = source
        self.dedup = dedup

    def _secrets(self) -> Sequence[SecretStr | None]:
        return (self._routing_key,)

    @staticmethod
    def _severity(alerts: Sequence[Alert]) -> str:
        found = {a.severity for a in alerts if a.status == "firing"} or {a.severity for a in alerts}
        for level in _PD_SEVERITIES:
            if level in found:
                return level
        return "error"

    def event(
        self,
        dedup_key: str,
        alerts: Sequence[Alert],
        group_labels: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One Events v2 event for ``alerts`` (a group, or a single alert)."""
        firing = [a for a in alerts if a.status == "firing"]
        body: dict[str, Any] = {
            "routing_key": self._routing_key.get_secret_value(),
            "event_action": "trigger" if firing else "resolve",
            "dedup_key": dedup_key,
        }
        if not firing:
            return body
        model = _common([a.labels for a in alerts]).get("model")
        details: dict[str, Any] = {
            "firing": "\n\n".join("\n".join(_alert_lines(a)) for a in firing),
            "num_firing": len(firing),
            "num_resolved": len(alerts) - len(firing),
        }
        resolved = [a for a in alerts if a.status == "resolved"]
        if resolved:
            details["resolved"] = "\n\n".join("\n".join(_alert_lines(a)) for a in resolved)
        summary = _title(alerts, group_labels)
        if len(firing) == 1 and firing[0].annotations.get("summary"):
            summary = f"{summary}: {firing[0].annotations['summary']}"
        body["payload"] = {
            "summary": summary[:1024],
            "source": model or self.source,
            "severity": self._severity(alerts),
            "custom_details": details,
        }
        if firing[0].generator_url:
            body["links"] = [{"href": firing[0].generator_url, "text": "inferwatch"}]
        body["client"] = "inferwatch"
        return body

    def send(
        self,
        group_key: str,
        alerts: Sequence[Alert],
        *,
        group_labels: Mapping[str, str] | None = None,
    ) -> None:
        alerts = self._to_send(alerts)
        if not alerts:
            return
        if self.dedup == "alert":
            events = [self.event(a.fingerprint, [a]) for a in alerts]
        else:
            key = hashlib.sha256(group_key.encode()).hexdigest()
            events = [self.event(key, alerts, group_labels)]
        for event in events:
            self._post(self.url, event, shown_url=self.url)

    def __repr__(self) -> str:
        return f"PagerDutyReceiver(name={self.name!r}, url={self.url!r}, dedup={self.dedup!r})"


class EmailReceiver:
    """One plain-text email per group over SMTP (stdlib :mod:`smtplib`).

    The subject is the group's title (``[FIRING:1] DriftHigh (model=churn)``); the body
    lists each alert's summary, description, labels and times.  STARTTLS, when on, is
    required (a server that does not offer it fails the attempt); a login happens only
    after it.  5xx SMTP answers are not retryable (a refused recipient stays refused).
    """

    kind = "email"

    def __init__(
        self,
        name: str,
        *,
        to: Sequence[str],
        sender: str,
        host: str,
        port: int,
        timeout: float = 10.0,
        send_resolved: bool = True,
        hello: str | None = None,
        username: str | None = None,
        password: SecretStr | None = None,
        starttls: bool = True,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self.to = list(to)
        self.sender = sender
        self.host = host
        self.port = port
        self.timeout = timeout
        self.send_resolved = send_resolved
        self.hello = hello
        self.username = username
        self._password = password
        self.starttls = starttls
        self._tls_context = tls_context

    def message(
        self, alerts: Sequence[Alert], group_labels: Mapping[str, str] | None = None
    ) -> EmailMessage:
        msg = EmailMessage()
        subject = _title(alerts, group_labels)
        if len(alerts) == 1 and alerts[0].annotations.get("summary"):
            subject = f"{subject}: {alerts[0].annotations['summary']}"
        # a templated summary may hold a line break, which a header may not
        msg["Subject"] = " ".join(subject.split())[:998]
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = make_msgid(domain=self.hello or None)
        msg.set_content("\n\n".join("\n".join(_alert_lines(a)) for a in alerts) + "\n")
        return msg

    def send(
        self,
        group_key: str,
        alerts: Sequence[Alert],
        *,
        group_labels: Mapping[str, str] | None = None,
    ) -> None:
        for alert in alerts:
            _status(alert)
        if not self.send_resolved:
            alerts = [a for a in alerts if a.status == "firing"]
        if not alerts:
            return
        msg = self.message(alerts, group_labels)
        try:
            with smtplib.SMTP(
                self.host, self.port, local_hostname=self.hello, timeout=self.timeout
            ) as smtp:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls(context=self._tls_context or ssl.create_default_context())
                    smtp.ehlo()
                if self.username is not None:
                    secret = self._password.get_secret_value() if self._password else ""
                    smtp.login(self.username, secret)
                smtp.send_message(msg)
        except smtplib.SMTPResponseException as exc:
            text = _scrub(_decode(exc.smtp_error), (self._password,))
            raise NotifyError(
                self.name,
                f"SMTP {self.host}:{self.port} answered {exc.smtp_code}: {text}",
                retryable=not 500 <= exc.smtp_code < 600,
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise NotifyError(
                self.name,
                f"SMTP {self.host}:{self.port} refused every recipient: {sorted(exc.recipients)}",
                retryable=False,
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            text = _scrub(f"{type(exc).__name__}: {exc}", (self._password,))
            raise NotifyError(self.name, f"SMTP {self.host}:{self.port} failed: {text}") from None
        logger.debug(
            "receiver %s: emailed %d alert(s) to %d recipient(s)",
            self.name,
            len(alerts),
            len(self.to),
        )

    def close(self) -> None:
        """Nothing held open: each send is its own SMTP session."""

    def __repr__(self) -> str:
        return (
            f"EmailReceiver(name={self.name!r}, smarthost='{self.host}:{self.port}', "
            f"to={self.to!r}, starttls={self.starttls})"
        )


def _decode(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
