"""A local SMTP sink (aiosmtpd) that records what our outbound mail delivers.

Shared by the outbound and loop tests; the sink itself is checked here too.
"""

from __future__ import annotations

import email
import email.policy
import smtplib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    """Return a loopback port nobody listens on (``Controller(port=0)`` does not work)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Delivery:
    """One message the sink accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class SinkHandler:
    """Record envelopes; refuse chosen recipients with a chosen reply."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.mail_commands = 0
        self.refuse: dict[str, str] = {}
        self.lock = threading.Lock()

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        with self.lock:
            self.mail_commands += 1
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        reply = self.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.deliveries.append(Delivery(envelope.mail_from, tuple(envelope.rcpt_tos),
                                            bytes(envelope.original_content or envelope.content)))
        return "250 Message accepted for delivery"

    def reset(self) -> None:
        with self.lock:
            self.deliveries.clear()
            self.mail_commands = 0
            self.refuse.clear()


class Sink:
    """A running sink: its port, handler and controller."""

    def __init__(self, port: int | None = None, **server_kwargs: Any) -> None:
        self.port = port or free_port()
        self.handler = SinkHandler()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                     **server_kwargs)

    def start(self) -> Sink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def deliveries(self) -> list[Delivery]:
        return list(self.handler.deliveries)


def password_checker(user: str, password: str) -> Any:
    """Return an aiosmtpd authenticator accepting one user and password."""

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                     data: Any) -> AuthResult:
        ok = (isinstance(data, LoginPassword) and data.login == user.encode()
              and data.password == password.encode())
        return AuthResult(success=ok, handled=False)

    return authenticate


@pytest.fixture(scope="session")
def sink_server() -> Iterator[Sink]:
    server = Sink().start()
    yield server
    server.stop()


@pytest.fixture
def sink(sink_server: Sink) -> Sink:
    """The session's sink, emptied for this test."""
    sink_server.handler.reset()
    return sink_server


def test_sink_records_what_smtplib_sends(sink: Sink) -> None:
    with smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as smtp:
        smtp.sendmail("a@example.test", ["b@example.test"], b"Subject: hi\r\n\r\nbody\r\n")
    [delivery] = sink.deliveries
    assert delivery.rcpt_tos == ("b@example.test",)
    assert delivery.message["Subject"] == "hi"
