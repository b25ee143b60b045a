"""Receiver config entries, secrets from files and the environment, and routing by name."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from inferwatch.errors import ConfigError, NotifyError
from inferwatch.notify import Receiver, build_notifier
from tests.notify.conftest import Sink, make_alert

SECRET = "https-hooks-slack-T00-B00-s3cr3tvalue"


def test_secrets_from_file_and_env_route_by_name(
    sink: Sink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url_file = tmp_path / "slack-url"
    url_file.write_text(f"{sink.url}/slack\n")  # a trailing newline, as editors leave it
    monkeypatch.setenv("IW_PD_KEY", "pd-routing-key-from-env")
    notifier = build_notifier(
        [
            {"name": "chat", "type": "slack", "url_file": str(url_file)},
            {
                "name": "pd",
                "type": "pagerduty",
                "routing_key_env": "IW_PD_KEY",
                "url": f"{sink.url}/pd",
            },
            {"name": "hook", "type": "webhook", "url": f"{sink.url}/hook"},
        ],
        external_url="http://iw:8000",
    )
    assert notifier.names == ["chat", "pd", "hook"]
    notifier.send("pd", "g", [make_alert()])
    notifier.send("chat", "g", [make_alert()])
    notifier.send("hook", "g", [make_alert()])
    assert [r.path for r in sink.requests] == ["/pd", "/slack", "/hook"]
    assert sink.requests[0].json()["routing_key"] == "pd-routing-key-from-env"
    assert sink.requests[2].json()["externalURL"] == "http://iw:8000"
    notifier.close()


def test_unknown_receiver_is_a_non_retryable_notify_error(sink: Sink) -> None:
    notifier = build_notifier([{"name": "hook", "type": "webhook", "url": sink.url}])
    with pytest.raises(NotifyError, match="known: hook") as caught:
        notifier.send("nobody", "g", [make_alert()])
    assert not caught.value.retryable


def test_secrets_never_in_repr_str_or_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("IW_SMTP_PASSWORD", "smtp-pa55word")
    entries = [
        {"name": "chat", "type": "slack", "url": SECRET},
        {"name": "hook", "type": "webhook", "url": f"http://127.0.0.1:9/{SECRET}"},
        {"name": "pd", "type": "pagerduty", "routing_key": SECRET},
        {
            "name": "mail",
            "type": "email",
            "to": ["a@example.org"],
            "from": "b@example.org",
            "smarthost": "127.0.0.1:25",
            "username": "iw",
            "password_env": "IW_SMTP_PASSWORD",
        },
    ]
    configs = TypeAdapter(list[Receiver]).validate_python(entries)
    with caplog.at_level(logging.DEBUG):
        notifier = build_notifier(configs)
        shown = [repr(notifier), str(notifier), repr(configs), str(configs)]
        shown += [repr(notifier[n]) for n in notifier.names]
        shown += [c.model_dump_json() for c in configs]
        try:
            notifier.send("hook", "g", [make_alert()])  # nothing listens on port 9
        except NotifyError as exc:
            shown.append(str(exc))
    text = "\n".join([*shown, caplog.text])
    assert "hook" in text  # the names are there: the check below can fail
    assert SECRET not in text
    assert "smtp-pa55word" not in text
    notifier.close()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "a", "type": "slack"}, r"receivers\[0\]: .*one of url, url_file or url_env"),
        ({"name": "a", "type": "slack", "url": "x", "url_env": "Y"}, "only one of url, url_env"),
        ({"name": "a", "type": "sms"}, r"receivers\[0\]\.type"),
        ({"name": "a", "type": "webhook", "url": "x", "colour": 1}, r"receivers\[0\]\.colour"),
        (
            {"name": "a", "type": "email", "to": ["x@y"], "from": "a@b", "smarthost": "h"},
            r"receivers\[0\]\.smarthost",
        ),
        (
            {
                "name": "a",
                "type": "email",
                "to": ["x@y"],
                "from": "a@b",
                "smarthost": "h:25",
                "username": "u",
                "starttls": False,
            },
            "needs starttls",
        ),
        ({"name": "a", "type": "alertmanager", "url": "am:9093"}, r"receivers\[0\]\.url"),
        ({"name": "a", "type": "webhook", "url": "x", "timeout": 0}, r"receivers\[0\]\.timeout"),
    ],
)
def test_bad_entries_name_the_key(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_notifier([entry])


def test_missing_secret_sources_fail_at_build_with_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IW_NOT_SET", raising=False)
    ok = {"name": "ok", "type": "webhook", "url": "http://127.0.0.1:9"}
    with pytest.raises(ConfigError, match=r"receivers\[1\]\.url_file: cannot read"):
        build_notifier([ok, {"name": "s", "type": "slack", "url_file": str(tmp_path / "no")}])
    with pytest.raises(ConfigError, match=r"receivers\[0\]\.routing_key_env: .*'IW_NOT_SET'"):
        build_notifier([{"name": "p", "type": "pagerduty", "routing_key_env": "IW_NOT_SET"}])
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match=r"receivers\[0\]\.url_file .* empty"):
        build_notifier([{"name": "w", "type": "webhook", "url_file": str(empty)}])
    with pytest.raises(ConfigError, match=r"receivers\[1\]\.name: 'ok' is already"):
        build_notifier([ok, ok])
