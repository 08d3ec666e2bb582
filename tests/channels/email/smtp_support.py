"""Shared pieces of the SMTP and ``ingest email`` tests.

A file-based SQLite database (the server works on several threads), an email inbox,
a running ``SmtpServer`` on a free loopback port, a stand-in parser for tests about
storage rather than parsing, and small look-ups.
"""

from __future__ import annotations

import email.utils
import itertools
import smtplib
import socket
import time
from collections.abc import Callable, Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from contactcenter.channels.base import (
    ChannelRegistry,
    Identity,
    InboundContact,
    QuarantineError,
    load_builtin_adapters,
)
from contactcenter.channels.email.adapter import EmailChannel
from contactcenter.channels.email.receive import message_id_of
from contactcenter.channels.email.smtp import SmtpServer
from contactcenter.config import Settings
from contactcenter.db import Database
from contactcenter.tickets.models import RawInbound, Ticket
from tests.factories import make_inbox

SUPPORT = "support@example.test"
_numbers = itertools.count(1)


def file_settings(tmp_path: Path, **changes: Any) -> Settings:
    """Return test settings on a SQLite file and an ephemeral SMTP port."""
    base = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'cc.db'}",
                    secret_key="test-secret-key-not-for-production", testing=True,
                    smtp_host="127.0.0.1", smtp_port=0, smtp_timeout_seconds=10)
    return base.replace(**changes) if changes else base


def make_message(subject: str = "Router down", sender: str = "Anna Petrova <anna@example.com>",
                 body: str = "It blinks red.", *, to: str = SUPPORT,
                 message_id: str | None = None, extra: str = "") -> bytes:
    """Return a small well-formed RFC 5322 message with CRLF line ends."""
    message_id = message_id or f"<m{next(_numbers)}.{time.time_ns()}@mail.example.com>"
    head = (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: {email.utils.formatdate()}\r\nMessage-ID: {message_id}\r\n{extra}"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
    return (head + body.replace("\n", "\r\n") + "\r\n").encode()


def stand_in_contact(payload: bytes, *, inbox_id: int | None, raw_id: int | None
                     ) -> InboundContact:
    """Parse with the standard library only (for tests about storage, not parsing).

    A subject containing ``boom`` raises a bug; ``quarantine`` raises QuarantineError.
    """
    message = BytesParser(policy=policy.default).parsebytes(payload)
    subject = str(message.get("Subject", ""))
    if "boom" in subject:
        raise RuntimeError("injected parser bug")
    if "quarantine" in subject:
        raise QuarantineError("injected: too many MIME parts")
    name, address = email.utils.parseaddr(str(message.get("From", "")))
    body = message.get_body(("plain",))
    return InboundContact(channel="email", external_id=message_id_of(payload),
                          sender=Identity("email", address.lower(), name), subject=subject,
                          text=body.get_content() if body is not None else "",
                          inbox_id=inbox_id, raw_id=raw_id)


@pytest.fixture(name="stand_in_parser")
def stand_in_parser_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace the email adapter's parser for this test."""
    monkeypatch.setattr(EmailChannel, "to_inbound",
                        lambda self, payload, *, inbox_id, raw_id:
                        stand_in_contact(payload, inbox_id=inbox_id, raw_id=raw_id))


@pytest.fixture(name="mail_settings")
def mail_settings_fixture(tmp_path: Path) -> Settings:
    return file_settings(tmp_path)


@pytest.fixture(name="mail_db")
def mail_db_fixture(mail_settings: Settings) -> Iterator[Database]:
    database = Database(mail_settings.effective_database_url)
    database.create_all()
    with database.session() as session:
        inbox = make_inbox(session, channel="email")
        inbox.address = SUPPORT
        session.commit()
    yield database
    database.dispose()


@pytest.fixture(name="mail_registry")
def mail_registry_fixture() -> ChannelRegistry:
    return load_builtin_adapters()


@pytest.fixture(name="start_smtp")
def start_smtp_fixture(mail_settings: Settings, mail_db: Database, mail_registry: ChannelRegistry
                       ) -> Iterator[Callable[..., SmtpServer]]:
    """Start servers on free ports (``start_smtp(**setting_changes)``); stop them after."""
    servers: list[SmtpServer] = []

    def start(*, jobs: Any = None, **changes: Any) -> SmtpServer:
        settings = mail_settings.replace(**changes) if changes else mail_settings
        server = SmtpServer(mail_db, mail_registry, settings, jobs=jobs)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def deliver(server: SmtpServer, raw: bytes, to: list[str] | None = None,
            sender: str = "anna@example.com") -> dict[str, tuple[int, bytes]]:
    """Send one message with smtplib, then wait until the server has processed it."""
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        refused = client.sendmail(sender, to or [SUPPORT], raw)
    server.wait_idle()
    return refused


def count(db: Database, model: Any) -> int:
    """Return how many rows a table has."""
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def raw_rows(db: Database) -> list[RawInbound]:
    """Return every stored raw payload, oldest first."""
    with db.session() as session:
        return list(session.scalars(select(RawInbound).order_by(RawInbound.id)))


def tickets(db: Database) -> list[Ticket]:
    """Return every ticket, oldest first (with its customer loaded)."""
    with db.session() as session:
        return list(session.scalars(select(Ticket).order_by(Ticket.id)).unique())


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll until the predicate holds."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


class Wire:
    """A raw SMTP client over a socket, for what smtplib will not send."""

    def __init__(self, port: int, source: str = "127.0.0.1", timeout: float = 30.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout,
                                             source_address=(source, 0))
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> str:
        """Read one complete (possibly multi-line) reply; '' when the server closed."""
        lines: list[str] = []
        while True:
            while b"\r\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return "\n".join(lines)
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            text = line.decode("utf-8", "replace")
            lines.append(text)
            if len(text) < 4 or text[3] != "-":
                return "\n".join(lines)

    def command(self, line: str | bytes) -> str:
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return self.reply()

    def closed(self, timeout: float = 5.0) -> bool:
        """Whether the server closes the connection within the timeout (reading what comes)."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
        except TimeoutError:
            return False
        except OSError:
            return True
        return True

    def close(self) -> None:
        self.sock.close()
