"""What must never go out (RELIABILITY OUT-3): notes, Bcc/Cc, other customers' addresses.

Mail comes in through ``receive_email`` with the real parser; agents answer with
``add_reply``; the real outbox hands replies to an adapter that renders them with the
real ``build_email`` and records the bytes instead of talking SMTP.
"""

from __future__ import annotations

import email
import email.policy
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.accounts.models import User
from contactcenter.channels.base import ChannelRegistry, OutboundMessage, SendResult
from contactcenter.channels.email.outbound import BuiltEmail, build_email
from contactcenter.channels.email.receive import receive_email
from contactcenter.config import Settings
from contactcenter.tickets.models import DeliveryState, Direction, Inbox, Message, Ticket
from contactcenter.tickets.outbox import deliver_message, due_messages, sweep_outbox
from contactcenter.tickets.service import add_reply

INBOX = "help@ours.example"
EXPECTED_HEADERS = {"From", "To", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To",
                    "References", "Content-Type", "MIME-Version", "Content-Language"}


class Recorder:
    """An email adapter that renders each message with ``build_email`` and keeps it."""

    kind = "email"

    def __init__(self) -> None:
        self.sent: list[BuiltEmail] = []

    def enabled(self, settings: Settings) -> bool:
        return True

    def check(self, settings: Settings) -> str:
        return "ok"

    def to_inbound(self, payload: bytes, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def send(self, outbound: OutboundMessage, settings: Settings) -> SendResult:
        self.sent.append(build_email(outbound, settings))
        return SendResult()


def mail(sender: str, message_id: str, extra: str = "") -> bytes:
    return (f"From: {sender}\r\nTo: {INBOX}\r\n{extra}Subject: Invoice question\r\n"
            f"Message-ID: <{message_id}>\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "\r\nWhy was I charged twice?\r\n").encode()


@pytest.fixture
def world(session: Session, settings: Settings, registry: Any) -> dict[str, Any]:
    inbox = Inbox(name="Help", channel="email", address=INBOX)
    agent = User(email="agent@ours.example", name="Agent Smith")
    session.add_all([inbox, agent])
    session.commit()
    bob = receive_email(session, mail("Bob <bob@other.example>", "bob-1@other.example"),
                        registry, settings, inbox.id, acknowledge_new=False)
    # Anna copied and blind-copied other people: none of them is ever written to.
    anna = receive_email(session, mail(
        "Anna <anna@example.com>", "anna-1@example.com",
        "Cc: bob@other.example, carol@third.example\r\nBcc: dave@fourth.example\r\n"),
        registry, settings, inbox.id, acknowledge_new=False)
    ticket = session.scalar(select(Ticket).where(Ticket.number == anna.ticket))
    assert bob.status == anna.status == "created" and ticket is not None
    recorder = Recorder()
    outbox = ChannelRegistry()
    outbox.register(recorder)
    return {"ticket": ticket, "agent": agent, "recorder": recorder, "outbox": outbox}


def test_internal_notes_are_never_delivered(session: Session, settings: Settings,
                                            world: dict[str, Any]) -> None:
    ticket, agent = world["ticket"], world["agent"]
    note = add_reply(session, ticket, agent.id, "INTERNAL: customer is on the fraud list",
                     internal=True)
    session.commit()
    assert note.direction == Direction.NOTE and note.delivery_state == DeliveryState.NONE
    assert note.id not in due_messages(session)
    # Even a note forced into the pending state is refused by the outbox.
    note.delivery_state = DeliveryState.PENDING
    session.commit()
    assert note.id not in due_messages(session)
    assert deliver_message(session, note.id, world["outbox"], settings) == "missing"
    sweep_outbox(session, world["outbox"], settings)
    assert world["recorder"].sent == []


def test_reply_has_one_recipient_expected_headers_and_only_the_agents_text(
        session: Session, settings: Settings, world: dict[str, Any]) -> None:
    ticket, agent = world["ticket"], world["agent"]
    add_reply(session, ticket, agent.id, "INTERNAL: card ending 4242, refund 99.95",
              internal=True)
    reply = add_reply(session, ticket, agent.id, "Hello Anna, we refunded the duplicate.")
    session.commit()
    counts = sweep_outbox(session, world["outbox"], settings)
    assert counts.get("sent") == 1
    [built] = world["recorder"].sent
    assert built.recipient == "anna@example.com"
    parsed = email.message_from_bytes(built.data, policy=email.policy.default)
    assert [a.addr_spec for a in parsed["To"].addresses] == ["anna@example.com"]
    names = set(parsed.keys())
    assert names <= EXPECTED_HEADERS, names - EXPECTED_HEADERS
    assert not {"Bcc", "Cc", "Resent-To", "Resent-Cc", "Resent-Bcc"} & {n.title() for n in names}
    for header in ("Cc", "Bcc", "X-Contactcenter-Ticket"):
        assert parsed.get_all(header) is None
    raw = built.data.decode("utf-8", "replace").lower()
    for other in ("bob@other.example", "carol@third.example", "dave@fourth.example",
                  "agent@ours.example"):
        assert other not in raw
    # The note's phrases, in the raw bytes and in every decoded part and header (random
    # MIME boundaries and Message-IDs hold digits such as 4242, so digits alone prove nothing).
    decoded = "\n".join([str(part.get_content()) for part in parsed.walk()
                         if not part.is_multipart()] + [str(v) for v in parsed.values()])
    for text in (raw, decoded.lower()):
        assert "internal:" not in text and "card ending 4242" not in text
        assert "refund 99.95" not in text
    plain = parsed.get_body(("plain",))
    assert plain is not None and plain.get_content().strip() == reply.text
    session.refresh(reply)
    assert reply.delivery_state == DeliveryState.SENT


def test_every_outbound_recipient_is_the_ticket_customer(
        session: Session, settings: Settings, world: dict[str, Any]) -> None:
    ticket, agent = world["ticket"], world["agent"]
    add_reply(session, ticket, agent.id, "Noted.")
    session.commit()
    sweep_outbox(session, world["outbox"], settings)
    [built] = world["recorder"].sent
    assert built.recipient == "anna@example.com"
    recipients = {m.recipient for m in session.scalars(select(Message).where(
        Message.direction == Direction.OUTBOUND))}
    assert recipients == {"anna@example.com"}
