"""STARTTLS on the inbound SMTP server with a configured certificate (RELIABILITY.md SMTP-4).

The certificate is made by ``openssl req`` (the ``cryptography`` package is not
installed here); the tests skip, or fail under CI=true, without openssl.
"""

from __future__ import annotations

import shutil
import smtplib
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from contactcenter.channels.email.smtp import SmtpServer, tls_context
from contactcenter.config import SettingsError
from contactcenter.db import Database
from tests.channels.email.smtp_support import (  # noqa: F401 (fixtures by name)
    SUPPORT,
    Wire,
    file_settings,
    mail_db_fixture,
    mail_registry_fixture,
    mail_settings_fixture,
    make_message,
    stand_in_parser_fixture,
    start_smtp_fixture,
    tickets,
)
from tests.conftest import unavailable

Start = Callable[..., SmtpServer]
pytestmark = pytest.mark.usefixtures("stand_in_parser")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    openssl = shutil.which("openssl")
    if openssl is None:
        unavailable("openssl", "not on PATH")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([str(openssl), "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=mx.example.test", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    return str(cert), str(key)


def client_context(cert: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cert)  # verifies our certificate
    return context


def test_starttls_delivers_over_an_encrypted_session(
        start_smtp: Start, mail_db: Database, certificate: tuple[str, str]) -> None:
    cert, key = certificate
    server = start_smtp(smtp_tls_cert=cert, smtp_tls_key=key)
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert client.starttls(context=client_context(cert))[0] == 220
        client.ehlo()
        assert not client.has_extn("starttls") and not client.has_extn("auth")
        assert isinstance(client.sock, ssl.SSLSocket)
        client.sendmail("anna@example.com", [SUPPORT], make_message("Over TLS"))
    server.wait_idle()
    assert [t.subject for t in tickets(mail_db)] == ["Over TLS"]


def test_commands_pipelined_before_the_tls_handshake_are_discarded(
        start_smtp: Start, certificate: tuple[str, str]) -> None:
    cert, key = certificate
    server = start_smtp(smtp_tls_cert=cert, smtp_tls_key=key)
    wire = Wire(server.port)
    assert wire.reply().startswith("220")
    assert wire.command("EHLO client.example").startswith("250")
    # One segment: STARTTLS plus an injected transaction start (CVE-2011-0411 style).
    wire.send(b"STARTTLS\r\nMAIL FROM:<injected@attacker.example>\r\n")
    assert wire.reply().startswith("220")
    assert wire.buffer == b""
    wire.sock = client_context(cert).wrap_socket(wire.sock, server_hostname="127.0.0.1")
    assert wire.command("EHLO client.example").startswith("250")
    # Had the injected MAIL survived the upgrade, RCPT would be accepted.
    assert "need MAIL" in wire.command(f"RCPT TO:<{SUPPORT}>")
    assert wire.command("MAIL FROM:<anna@example.com>").startswith("250")
    wire.close()


def test_server_without_a_certificate_offers_no_starttls(start_smtp: Start) -> None:
    server = start_smtp()
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo()
        assert not client.has_extn("starttls")


def test_certificate_without_key_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError):
        tls_context(file_settings(tmp_path, smtp_tls_cert="/etc/ssl/cert.pem"))
    assert tls_context(file_settings(tmp_path)) is None
