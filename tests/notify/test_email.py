"""The email receiver against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from inferwatch.errors import NotifyError
from inferwatch.notify import EmailReceiver, build_notifier
from tests._postgres import free_port
from tests.notify.conftest import make_alert


class Inbox:
    """An aiosmtpd handler keeping every message it is given."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def message(self, index: int = 0) -> EmailMessage:
        data = self.envelopes[index].content
        assert isinstance(data, bytes)
        parsed = message_from_bytes(data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def _start(handler: Inbox, **kwargs: Any) -> tuple[Controller, int]:
    for _ in range(5):  # aiosmtpd's Controller needs a port number before it binds
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
        try:
            controller.start()
        except OSError:
            continue
        return controller, port
    raise AssertionError("no free port for the SMTP server")


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    controller, port = _start(inbox)
    try:
        yield inbox, port
    finally:
        controller.stop()


def test_email_arrives_with_the_alerts_summary(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    notifier = build_notifier(
        [
            {
                "name": "oncall",
                "type": "email",
                "to": ["ops@example.org", "ml@example.org"],
                "from": "inferwatch@example.org",
                "smarthost": f"127.0.0.1:{port}",
                "starttls": False,
            }
        ]
    )
    alert = make_alert("AccuracyLow", summary="accuracy 0.83 below 0.85", severity="critical")
    notifier.send("oncall", "g", [alert])

    (envelope,) = inbox.envelopes
    assert envelope.mail_from == "inferwatch@example.org"
    assert envelope.rcpt_tos == ["ops@example.org", "ml@example.org"]
    message = inbox.message()
    assert message["Subject"] == "[FIRING:1] AccuracyLow (model=churn severity=critical): " + (
        "accuracy 0.83 below 0.85"
    )
    body = message.get_content()
    assert "accuracy 0.83 below 0.85" in body
    assert "AccuracyLow on churn" in body  # the description
    assert "started: 2026-11-29T16:00:05.123Z" in body


def test_a_multiline_summary_does_not_break_the_subject(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    receiver = EmailReceiver(
        "m",
        to=["a@example.org"],
        sender="b@example.org",
        host="127.0.0.1",
        port=port,
        starttls=False,
    )
    receiver.send("g", [make_alert(summary="line one\r\nBcc: evil@example.org")])
    message = inbox.message()
    assert "\n" not in message["Subject"]
    assert message["Bcc"] is None
    assert inbox.envelopes[0].rcpt_tos == ["a@example.org"]


def test_starttls_required_but_not_offered_fails(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    receiver = EmailReceiver(
        "m", to=["a@example.org"], sender="b@example.org", host="127.0.0.1", port=port
    )
    with pytest.raises(NotifyError, match="STARTTLS"):
        receiver.send("g", [make_alert()])
    assert inbox.envelopes == []


def test_smtp_server_down_is_retryable() -> None:
    receiver = EmailReceiver(
        "m",
        to=["a@example.org"],
        sender="b@example.org",
        host="127.0.0.1",
        port=free_port(),
        starttls=False,
        timeout=2,
    )
    with pytest.raises(NotifyError) as caught:
        receiver.send("g", [make_alert()])
    assert caught.value.retryable


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the openssl command line makes it)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_starttls_and_login_with_a_password_from_a_file(
    certificate: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    logins: list[tuple[bytes, bytes]] = []

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"s3cret-pw", handled=False)

    inbox = Inbox()
    controller, port = _start(
        inbox,
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
    )
    try:
        secret_file = tmp_path / "smtp-password"
        secret_file.write_text("s3cret-pw\n")
        entry = {
            "name": "mail",
            "type": "email",
            "to": ["ops@example.org"],
            "from": "iw@example.org",
            "smarthost": f"127.0.0.1:{port}",
            "username": "iw",
            "password_file": str(secret_file),
            "tls_ca_file": str(cert),
        }
        with caplog.at_level("DEBUG"):
            notifier = build_notifier([entry])
            notifier.send("mail", "g", [make_alert()])
        assert len(inbox.envelopes) == 1
        assert logins == [(b"iw", b"s3cret-pw")]

        secret_file.write_text("wrong-pw")
        wrong = build_notifier([entry])
        with pytest.raises(NotifyError, match="535") as caught:
            wrong.send("mail", "g", [make_alert()])
        assert not caught.value.retryable
        assert "wrong-pw" not in str(caught.value)
        assert "s3cret-pw" not in repr(notifier) + caplog.text
    finally:
        controller.stop()
