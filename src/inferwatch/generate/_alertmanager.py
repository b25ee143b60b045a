"""``alertmanager.yml``: the config's ``alerting.route`` and ``alerting.receivers`` in
Alertmanager's terms, and the inhibition the built-in engine applies.

The route has the built-in engine's semantics (:class:`inferwatch.alerting.Route`):
children in order, the first match wins unless ``continue``, else the default receiver.
Receivers map to Alertmanager's ``webhook_configs``, ``slack_configs``,
``pagerduty_configs`` and ``email_configs``.  A secret is never written: one the config
reads from a file is referenced by that file, one given inline or in an environment
variable becomes a reference to ``secrets/<receiver>_<key>`` that the deployment creates
(a note says which).  Alertmanager 0.25 (Debian 12's) cannot read a webhook URL from a
file, so there a webhook is refused unless the user asks for its URL in clear.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from inferwatch.alerting import Matcher
from inferwatch.generate._model import WEBHOOK_URL_FILE_SINCE, GenerateError, GenerateOptions
from inferwatch.notify.config import (
    PAGERDUTY_EVENTS_URL,
    AlertmanagerReceiverConfig,
    EmailReceiverConfig,
    PagerDutyReceiverConfig,
    SlackReceiverConfig,
    WebhookReceiverConfig,
    resolve_secret,
)
from inferwatch.rules import format_duration

if TYPE_CHECKING:
    from pydantic import SecretStr

    from inferwatch.config import Settings

__all__ = ["INHIBIT_EQUAL", "NO_RECEIVER", "alertmanager_config", "matcher_text"]

#: the default receiver when the config has none: alerts are kept, listed, not sent
NO_RECEIVER: Final = "inferwatch-none"
#: labels a critical and its warning share.  The built-in engine mutes the warning of the
#: same rule and series; the series of our alerts are told apart by these labels (a
#: missing label reads as "" on both sides, as in the engine).
INHIBIT_EQUAL: Final = ("alertname", "model", "feature", "instance", "slo")


def matcher_text(text: str) -> str:
    """A config matcher (``severity=critical``) in Alertmanager's syntax
    (``severity="critical"``), the value quoted and escaped."""
    m = Matcher.parse(text)
    value = m.value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{m.name}{m.op}"{value}"'


class _Secrets:
    """Turns a secret's source into Alertmanager's ``KEY`` or ``KEY_file`` entry."""

    def __init__(self, options: GenerateOptions, notes: list[str]) -> None:
        self.options = options
        self.notes = notes

    def file_ref(
        self,
        where: str,
        name: str,
        key: str,
        source: tuple[SecretStr | None, Path | None, str | None],
    ) -> str:
        """The path Alertmanager reads the secret from: the config's own file, or a
        placeholder under ``secrets/`` (relative to alertmanager.yml) with a note."""
        value, file, env = source
        if file is not None:
            if not Path(file).is_absolute():
                self.notes.append(
                    f"alertmanager.yml: {where}.{key}_file {str(file)!r} is relative; "
                    "Alertmanager reads it relative to alertmanager.yml's folder"
                )
            return str(file)
        placeholder = f"secrets/{name}_{key}"
        given = f"in ${env}" if env is not None and value is None else "inline"
        self.notes.append(
            f"alertmanager.yml: receiver {name!r} reads its {key} from {placeholder!r} "
            f"(relative to alertmanager.yml): create that file; the config gives the "
            f"secret {given} ({where}.{key}), and inferwatch never writes a secret"
        )
        return placeholder

    def webhook_url(self, where: str, config: WebhookReceiverConfig) -> dict[str, str]:
        source = (config.url, config.url_file, config.url_env)
        if self.options.alertmanager_version >= WEBHOOK_URL_FILE_SINCE:
            return {"url_file": self.file_ref(where, config.name, "url", source)}
        if not self.options.webhook_url_in_clear:
            raise GenerateError(
                f"{where}: Alertmanager 0.25 cannot read a webhook URL from a file, and "
                "inferwatch does not write a secret into alertmanager.yml; pass "
                "--alertmanager-version 0.26 (or later: url_file) or --webhook-url-in-clear "
                "(a URL that is not a secret, e.g. on loopback)"
            )
        url = resolve_secret(*source, path=f"{where}.url")
        assert url is not None  # the config model insists on one source
        self.notes.append(
            f"alertmanager.yml: receiver {config.name!r}'s webhook URL is written in clear "
            "(--webhook-url-in-clear)"
        )
        return {"url": url.get_secret_value()}


def _receiver(index: int, config: Any, secrets: _Secrets) -> dict[str, Any]:
    where = f"alerting.receivers[{index}]"
    out: dict[str, Any] = {"name": config.name}
    common = {"send_resolved": config.send_resolved}
    if isinstance(config, WebhookReceiverConfig):
        hook: dict[str, Any] = {**common, **secrets.webhook_url(where, config)}
        if config.max_alerts:
            hook["max_alerts"] = config.max_alerts
        out["webhook_configs"] = [hook]
    elif isinstance(config, SlackReceiverConfig):
        source = (config.url, config.url_file, config.url_env)
        slack: dict[str, Any] = {
            **common,
            "api_url_file": secrets.file_ref(where, config.name, "url", source),
        }
        if config.channel is not None:
            slack["channel"] = config.channel
        if config.username is not None:
            slack["username"] = config.username
        out["slack_configs"] = [slack]
    elif isinstance(config, PagerDutyReceiverConfig):
        source = (config.routing_key, config.routing_key_file, config.routing_key_env)
        pd: dict[str, Any] = {
            **common,
            "routing_key_file": secrets.file_ref(where, config.name, "routing_key", source),
            "source": config.source,
        }
        if config.url != PAGERDUTY_EVENTS_URL:
            pd["url"] = config.url
        if config.dedup != "group":
            secrets.notes.append(
                f"alertmanager.yml: {where}.dedup: Alertmanager sends one PagerDuty event "
                "per group (as dedup: group); 'alert' has no equivalent there"
            )
        out["pagerduty_configs"] = [pd]
    elif isinstance(config, EmailReceiverConfig):
        mail: dict[str, Any] = {
            **common,
            "to": ", ".join(config.to),
            "from": config.from_,
            "smarthost": config.smarthost,
            "require_tls": config.starttls,
        }
        if config.hello is not None:
            mail["hello"] = config.hello
        if config.username is not None:
            mail["auth_username"] = config.username
        source = (config.password, config.password_file, config.password_env)
        if any(s is not None for s in source):
            mail["auth_password_file"] = secrets.file_ref(where, config.name, "password", source)
        if config.tls_ca_file is not None:
            mail["tls_config"] = {"ca_file": str(config.tls_ca_file)}
        out["email_configs"] = [mail]
    elif isinstance(config, AlertmanagerReceiverConfig):
        secrets.notes.append(
            f"alertmanager.yml: receiver {config.name!r} (type alertmanager) is how the "
            "built-in engine reaches an Alertmanager; in alertmanager.yml it has no "
            "integrations (alerts routed to it are not sent on)"
        )
    return out


def alertmanager_config(
    settings: Settings, options: GenerateOptions
) -> tuple[dict[str, Any], list[str]]:
    """The ``alertmanager.yml`` data and the notes for the user."""
    alerting = settings.alerting
    notes: list[str] = []
    secrets = _Secrets(options, notes)
    receivers = [_receiver(i, r, secrets) for i, r in enumerate(alerting.receivers)]
    route = alerting.to_route()
    default = route.receiver
    if default is None:
        default = NO_RECEIVER
        receivers.append({"name": NO_RECEIVER})
        notes.append(
            "alertmanager.yml: the config has no receivers; alerts go to "
            f"{NO_RECEIVER!r}, which sends nothing (see them in Alertmanager's UI)"
        )
    tree: dict[str, Any] = {
        "receiver": default,
        "group_by": list(route.group_by),
        "group_wait": format_duration(route.group_wait.total_seconds()),
        "group_interval": format_duration(route.group_interval.total_seconds()),
        "repeat_interval": format_duration(route.repeat_interval.total_seconds()),
    }
    children = []
    for child in alerting.route.routes:
        entry: dict[str, Any] = {
            "receiver": child.receiver,
            "matchers": [matcher_text(m) for m in child.matchers],
        }
        if child.continue_:
            entry["continue"] = True
        children.append(entry)
    if children:
        tree["routes"] = children
    inhibit = {
        "source_matchers": ['severity="critical"'],
        "target_matchers": ['severity="warning"'],
        "equal": list(INHIBIT_EQUAL),
    }
    config = {"route": tree, "inhibit_rules": [inhibit], "receivers": receivers}
    return config, notes
