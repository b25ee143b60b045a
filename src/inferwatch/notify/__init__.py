"""Receivers: where alerts go (webhook, Alertmanager, Slack, email, PagerDuty).

The alerting engine calls ``notifier.send(receiver, group_key, alerts)``: one attempt
to deliver one group of alerts to the receiver of that name, raising
:class:`~inferwatch.errors.NotifyError` when it fails (the engine retries with backoff).
:func:`build_notifier` turns the ``alerting.receivers`` config entries into a
:class:`Notifier`, resolving their secrets once, so a bad entry fails at start.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import SecretStr, TypeAdapter

from inferwatch._entries import validate_named_entries
from inferwatch.errors import ConfigError, NotifyError
from inferwatch.notify.config import (
    AlertmanagerReceiverConfig,
    EmailReceiverConfig,
    PagerDutyReceiverConfig,
    Receiver,
    SlackReceiverConfig,
    WebhookReceiverConfig,
    resolve_secret,
)
from inferwatch.notify.receivers import (
    AlertmanagerReceiver,
    EmailReceiver,
    PagerDutyReceiver,
    ReceiverProtocol,
    SlackReceiver,
    WebhookReceiver,
    format_time,
    webhook_message,
)
from inferwatch.observation import Alert

__all__ = [
    "AlertmanagerReceiver",
    "AlertmanagerReceiverConfig",
    "EmailReceiver",
    "EmailReceiverConfig",
    "Notifier",
    "PagerDutyReceiver",
    "PagerDutyReceiverConfig",
    "Receiver",
    "ReceiverProtocol",
    "SlackReceiver",
    "SlackReceiverConfig",
    "WebhookReceiver",
    "WebhookReceiverConfig",
    "build_notifier",
    "build_receiver",
    "format_time",
    "webhook_message",
]

_RECEIVER: TypeAdapter[Receiver] = TypeAdapter(Receiver)
#: the receiver types: the union's tags, never keys of a config
_TAGS = ("webhook", "alertmanager", "slack", "pagerduty", "email")


class Notifier:
    """Routes ``send(receiver, group_key, alerts)`` to the receiver of that name."""

    def __init__(self, receivers: Iterable[ReceiverProtocol]) -> None:
        self._receivers: dict[str, ReceiverProtocol] = {}
        for receiver in receivers:
            if receiver.name in self._receivers:
                raise ConfigError(f"two receivers are named {receiver.name!r}")
            self._receivers[receiver.name] = receiver

    @property
    def names(self) -> list[str]:
        return list(self._receivers)

    def __getitem__(self, name: str) -> ReceiverProtocol:
        return self._receivers[name]

    def __contains__(self, name: object) -> bool:
        return name in self._receivers

    def send(
        self,
        receiver: str,
        group_key: str,
        alerts: Sequence[Alert],
        *,
        group_labels: Mapping[str, str] | None = None,
    ) -> None:
        """One attempt to deliver ``alerts`` (one group) to ``receiver``.

        Raises NotifyError when the attempt fails, and a non-retryable one for a
        receiver nobody configured (rules are validated against the names at start).
        """
        target = self._receivers.get(receiver)
        if target is None:
            known = ", ".join(sorted(self._receivers)) or "none"
            raise NotifyError(receiver, f"no such receiver (known: {known})", retryable=False)
        target.send(group_key, alerts, group_labels=group_labels)

    def close(self) -> None:
        for receiver in self._receivers.values():
            receiver.close()

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Notifier({list(self._receivers.values())!r})"


def _required(secret: SecretStr | None, path: str) -> SecretStr:
    if secret is None:  # the config model already insists on one source
        raise ConfigError(f"{path}: is required")
    return secret


def build_receiver(
    config: Receiver, *, path: str = "alerting.receivers[0]", external_url: str = ""
) -> ReceiverProtocol:
    """The receiver a config entry describes, its secret read now (ConfigError naming
    ``path`` when the file or variable is missing)."""
    common: dict[str, Any] = {"timeout": config.timeout, "send_resolved": config.send_resolved}
    if isinstance(config, WebhookReceiverConfig):
        url = resolve_secret(config.url, config.url_file, config.url_env, path=f"{path}.url")
        return WebhookReceiver(
            config.name,
            _required(url, f"{path}.url"),
            max_alerts=config.max_alerts,
            external_url=external_url,
            **common,
        )
    if isinstance(config, AlertmanagerReceiverConfig):
        return AlertmanagerReceiver(
            config.name, config.url, resolve_timeout=config.resolve_timeout, **common
        )
    if isinstance(config, SlackReceiverConfig):
        url = resolve_secret(config.url, config.url_file, config.url_env, path=f"{path}.url")
        return SlackReceiver(
            config.name,
            _required(url, f"{path}.url"),
            channel=config.channel,
            username=config.username,
            **common,
        )
    if isinstance(config, PagerDutyReceiverConfig):
        key = resolve_secret(
            config.routing_key,
            config.routing_key_file,
            config.routing_key_env,
            path=f"{path}.routing_key",
        )
        return PagerDutyReceiver(
            config.name,
            _required(key, f"{path}.routing_key"),
            url=config.url,
            source=config.source,
            dedup=config.dedup,
            **common,
        )
    if isinstance(config, EmailReceiverConfig):
        password = resolve_secret(
            config.password, config.password_file, config.password_env, path=f"{path}.password"
        )
        host, _, port = config.smarthost.rpartition(":")
        context = None
        if config.tls_ca_file is not None:
            try:
                context = ssl.create_default_context(cafile=str(config.tls_ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"{path}.tls_ca_file: cannot load {str(config.tls_ca_file)!r}: {exc}"
                ) from None
        return EmailReceiver(
            config.name,
            to=config.to,
            sender=config.from_,
            host=host,
            port=int(port),
            hello=config.hello,
            username=config.username,
            password=password,
            starttls=config.starttls,
            tls_context=context,
            **common,
        )
    raise ConfigError(f"{path}.type: unknown receiver type")  # pragma: no cover


def build_notifier(
    receivers: Sequence[Receiver | Mapping[str, Any]],
    *,
    external_url: str = "",
    key: str = "alerting.receivers",
) -> Notifier:
    """A :class:`Notifier` over the configured receivers.

    Entries may be config models or plain mappings (as read from YAML); a bad entry, a
    duplicate name or a missing secret raises ConfigError naming the key's path
    (``alerting.receivers[2].url_file``).  ``external_url`` is the server's own address,
    sent as the webhook payload's ``externalURL``.
    """
    problems, configs = validate_named_entries(
        _RECEIVER,
        [dict(e) if isinstance(e, Mapping) else e for e in receivers],
        path=key,
        tags=_TAGS,
        tag_key="type",
    )
    if problems:
        raise ConfigError("; ".join(problems))
    built: list[ReceiverProtocol] = []
    try:
        for index, config in enumerate(configs):
            built.append(build_receiver(config, path=f"{key}[{index}]", external_url=external_url))
    except ConfigError:
        for receiver in built:
            receiver.close()
        raise
    return Notifier(built)
