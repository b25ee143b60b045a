"""The ``alerting.receivers`` config entries: one pydantic model per receiver type.

Secrets (a webhook or Slack URL, a PagerDuty routing key, an SMTP password) may be
written inline, but a deployment normally names a file (``*_file``, e.g. a mounted
Kubernetes secret) or an environment variable (``*_env``) instead, so the YAML config
can be committed.  They are held as :class:`pydantic.SecretStr`, which never prints its
value, and resolved once when the notifier is built, so a missing file or variable
fails at start with the key's path rather than at the first alert.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from inferwatch.errors import ConfigError

__all__ = [
    "AlertmanagerReceiverConfig",
    "EmailReceiverConfig",
    "PagerDutyReceiverConfig",
    "Receiver",
    "SlackReceiverConfig",
    "WebhookReceiverConfig",
    "resolve_secret",
]

#: Where PagerDuty's Events API v2 takes events (configurable so tests post locally).
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


def _one_source(model: BaseModel, key: str, *, required: bool) -> None:
    """Check that at most one (exactly one when ``required``) of ``key``, ``key_file``
    and ``key_env`` is set: two sources would leave the reader guessing which wins."""
    given = [k for k in (key, f"{key}_file", f"{key}_env") if getattr(model, k) is not None]
    if len(given) > 1:
        raise ValueError(f"set only one of {', '.join(given)}")
    if required and not given:
        raise ValueError(f"one of {key}, {key}_file or {key}_env is required")


def resolve_secret(
    value: SecretStr | None, file: Path | None, env: str | None, *, path: str
) -> SecretStr | None:
    """The secret's value from wherever the config says it is, or None where none is set.

    ``path`` is the config key (``alerting.receivers[0].url``) a :class:`ConfigError`
    names when the file cannot be read, the variable is unset or the value is empty.
    The message never repeats the secret.
    """
    if value is not None:
        text = value.get_secret_value()
        where = path
    elif file is not None:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"{path}_file: cannot read {str(file)!r}: {type(exc).__name__}"
            ) from None
        where = f"{path}_file ({file})"
    elif env is not None:
        if env not in os.environ:
            raise ConfigError(f"{path}_env: environment variable {env!r} is not set")
        text = os.environ[env]
        where = f"{path}_env ({env})"
    else:
        return None
    text = text.strip()
    if not text:
        raise ConfigError(f"{where}: the secret is empty")
    return SecretStr(text)


class _ReceiverBase(BaseModel):
    """What every receiver has: a unique name, whether it hears of resolutions, and the
    timeout of its one attempt (the engine retries; a receiver never blocks it long)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=200)
    send_resolved: bool = True
    timeout: float = Field(default=10.0, gt=0, le=300)


class WebhookReceiverConfig(_ReceiverBase):
    """POSTs Alertmanager's webhook payload (version 4) to ``url``; ``max_alerts`` > 0
    truncates the list as Alertmanager's ``max_alerts`` does (``truncatedAlerts``)."""

    type: Literal["webhook"]
    url: SecretStr | None = None
    url_file: Path | None = None
    url_env: str | None = None
    max_alerts: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _sources(self) -> WebhookReceiverConfig:
        _one_source(self, "url", required=True)
        return self


class AlertmanagerReceiverConfig(_ReceiverBase):
    """POSTs the alerts to a real Alertmanager's API v2 (``url`` is its base URL), so a
    fleet can route, silence and deduplicate through it.  ``resolve_timeout``, when set,
    gives each firing alert an ``endsAt`` that far ahead, as Prometheus does: the engine
    must resend before then or Alertmanager resolves the alert itself."""

    type: Literal["alertmanager"]
    url: str = Field(pattern=r"^https?://")
    resolve_timeout: float | None = Field(default=None, gt=0)


class SlackReceiverConfig(_ReceiverBase):
    """POSTs a message (``text`` plus Block Kit ``blocks``) to a Slack incoming webhook."""

    type: Literal["slack"]
    url: SecretStr | None = None
    url_file: Path | None = None
    url_env: str | None = None
    channel: str | None = None
    username: str | None = None

    @model_validator(mode="after")
    def _sources(self) -> SlackReceiverConfig:
        _one_source(self, "url", required=True)
        return self


class PagerDutyReceiverConfig(_ReceiverBase):
    """Sends PagerDuty Events API v2 events.  ``dedup: group`` sends one event per
    group (dedup key: the SHA-256 of the group key, as Alertmanager does); ``alert``
    sends one per alert (dedup key: its fingerprint)."""

    type: Literal["pagerduty"]
    routing_key: SecretStr | None = None
    routing_key_file: Path | None = None
    routing_key_env: str | None = None
    url: str = Field(default=PAGERDUTY_EVENTS_URL, pattern=r"^https?://")
    source: str = "inferwatch"
    dedup: Literal["group", "alert"] = "group"

    @model_validator(mode="after")
    def _sources(self) -> PagerDutyReceiverConfig:
        _one_source(self, "routing_key", required=True)
        return self


class EmailReceiverConfig(_ReceiverBase):
    """Sends one email per group over SMTP.  ``smarthost`` is ``host:port``; STARTTLS
    is on by default (as Alertmanager's ``require_tls``), and logging in without it is
    refused so a password never crosses the network in clear.  ``tls_ca_file`` names
    the CA bundle that signed the server's certificate, when not a system-trusted one."""

    type: Literal["email"]
    to: list[str] = Field(min_length=1)
    from_: str = Field(alias="from", min_length=3)
    smarthost: str = Field(pattern=r"^[^:\s]+:\d{1,5}$")
    hello: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    password_env: str | None = None
    starttls: bool = True
    tls_ca_file: Path | None = None

    @model_validator(mode="after")
    def _sources(self) -> EmailReceiverConfig:
        _one_source(self, "password", required=False)
        has_password = any(
            getattr(self, k) is not None for k in ("password", "password_file", "password_env")
        )
        if has_password and self.username is None:
            raise ValueError("a password needs a username")
        if self.username is not None and not self.starttls:
            raise ValueError("logging in (username) needs starttls: true")
        return self


#: One ``alerting.receivers`` entry, told apart by its ``type``.
Receiver = Annotated[
    WebhookReceiverConfig
    | AlertmanagerReceiverConfig
    | SlackReceiverConfig
    | PagerDutyReceiverConfig
    | EmailReceiverConfig,
    Field(discriminator="type"),
]
