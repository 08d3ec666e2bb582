"""Sender identity through the whole email pipeline (RELIABILITY ID-1, ID-3).

Each test sends raw mail through ``receive_email`` with the real parser: ambiguous
From fields, quoted local parts and address-looking display names, CR/LF hidden in
encoded words, our own control headers, agents' addresses and Reply-To set to a victim.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.accounts.models import User
from contactcenter.channels.email.loop_models import AutoreplyLog
from contactcenter.channels.email.parser import email_to_contact, parse_email
from contactcenter.channels.email.receive import Received
from contactcenter.tickets.models import Direction, Message, RawInbound, Ticket

INBOX = "help@ours.example"
_ids = itertools.count(1)


def mail(*from_fields: str, subject: str = "Router down", body: str = "It blinks red.",
         message_id: str | None = None, extra: str = "") -> bytes:
    lines = [f"From: {value}" for value in from_fields]
    lines += [f"To: {INBOX}", f"Subject: {subject}",
              f"Message-ID: <{message_id or f'id{next(_ids)}@mail.example'}>",
              "Content-Type: text/plain; charset=utf-8"]
    head = "\r\n".join(lines) + "\r\n" + extra.replace("\n", "\r\n")
    return (head.rstrip("\r\n") + "\r\n\r\n" + body + "\r\n").encode()


@pytest.fixture
def victim_ticket(receive: Any, session: Session) -> Ticket:
    """An open ticket of victim@example.com, opened by <orig@example.com>."""
    first = receive(mail("Victim <victim@example.com>", message_id="orig@example.com"))
    assert first.status == "created"
    ticket = session.scalar(select(Ticket).where(Ticket.number == first.ticket))
    assert ticket is not None
    return ticket


def message_of(session: Session, received: Received) -> Message:
    message = session.scalar(select(Message).where(Message.raw_id == received.raw_id))
    assert message is not None
    return message


def reply_headers(ticket: Ticket, *, token: bool = False) -> dict[str, str]:
    """What a reply to ``ticket`` carries: subject tag, In-Reply-To (and the ticket's secret).

    The ticket's raw secret in the plus-address is what mail carried before reply tokens
    were bound to the recipient (``tickets/reply_token.py``, tested with the real tokens in
    ``test_forged_replies.py``); it still counts only for the ticket's own customer.
    """
    cc = f"Cc: help+t{ticket.number}-{ticket.reply_token}@ours.example\n" if token else ""
    return {"subject": f"Re: Router down [#{ticket.number}]",
            "extra": f"In-Reply-To: <orig@example.com>\nReferences: <orig@example.com>\n{cc}"}


# --- ID-3: two From fields ---------------------------------------------------------------

def test_two_from_fields_are_ambiguous_and_never_thread(receive: Any, session: Session,
                                                        victim_ticket: Ticket) -> None:
    # Even with the ticket's token: an ambiguous sender is never linked.
    headers = reply_headers(victim_ticket, token=True)
    raw = mail("victim@example.com", "Eve <eve@evil.example>", **headers)
    parsed = parse_email(raw)
    assert parsed.sender_doubt.startswith("ambiguous sender")
    contact = email_to_contact(raw, inbox_id=None, raw_id=None)
    assert contact.thread.ticket_number is None and contact.thread.reply_token is None
    assert contact.thread.in_reply_to == () and contact.thread.thread_on_open_ticket is False
    assert contact.metadata["sender_doubt"].startswith("ambiguous sender")

    received = receive(raw)
    # Decision: kept (nothing lost) as a NEW ticket with no linking to any existing one,
    # and no automatic answer to either address.
    assert received.status == "created"
    assert received.ticket != victim_ticket.number
    assert received.acknowledgement is None
    message = message_of(session, received)
    assert message.ticket_id != victim_ticket.id and message.direction == Direction.INBOUND
    log = session.scalar(select(AutoreplyLog).where(AutoreplyLog.ticket_id == message.ticket_id))
    assert log is not None and log.suppressed_reason == "ambiguous_sender"
    assert len(session.scalars(select(Message).where(
        Message.ticket_id == victim_ticket.id, Message.direction == Direction.INBOUND)).all()) == 1


def test_garbage_first_from_then_victim_is_still_ambiguous(receive: Any,
                                                            victim_ticket: Ticket) -> None:
    raw = mail("[??????]", "victim@example.com", **reply_headers(victim_ticket))
    received = receive(raw)
    assert received.status == "created" and received.ticket != victim_ticket.number


# --- ID-3: addresses that look like other addresses --------------------------------------

def test_quoted_local_part_with_an_at_sign_is_not_read_as_that_address(
        receive: Any, session: Session, victim_ticket: Ticket) -> None:
    raw = mail('"victim@example.com"@ours.example', **reply_headers(victim_ticket))
    assert parse_email(raw).from_address not in ("victim@example.com", "ours.example")
    received = receive(raw)
    # Not a usable address, and nothing else names a sender: held, never filed as victim.
    assert received.status == "quarantined" and "no sender address" in (received.reason or "")
    assert session.get(RawInbound, received.raw_id).payload == raw


def test_unusable_from_with_a_fallback_header_never_threads(receive: Any, session: Session,
                                                            victim_ticket: Ticket) -> None:
    raw = mail('"victim@example.com"@ours.example', **reply_headers(victim_ticket),
               ) .replace(b"\r\nTo:", b"\r\nSender: victim@example.com\r\nTo:", 1)
    parsed = parse_email(raw)
    assert parsed.sender_source == "sender" and parsed.sender_doubt
    received = receive(raw)
    assert received.status == "created" and received.ticket != victim_ticket.number


def test_display_name_that_looks_like_an_address_is_dropped(receive: Any,
                                                             session: Session) -> None:
    raw = mail("help@ours.example <b@evil.example>")
    parsed = parse_email(raw)
    assert (parsed.from_address, parsed.from_name) == ("b@evil.example", "")
    received = receive(raw)
    assert received.status == "created"
    assert message_of(session, received).sender == "b@evil.example"


@pytest.mark.parametrize("from_field", [
    "=?utf-8?q?Eve=0D=0ABcc:_victim@example.com?= <eve@evil.example>",
    "=?utf-8?q?Eve=0D=0AFrom:_victim@example.com?= <eve@evil.example>",
    "=?utf-8?b?RXZlDQpGcm9tOiB2aWN0aW1AZXhhbXBsZS5jb20=?= <eve@evil.example>",
])
def test_crlf_in_an_encoded_word_from_yields_no_second_header_or_address(
        from_field: str, receive: Any, session: Session, victim_ticket: Ticket) -> None:
    raw = mail(from_field, **reply_headers(victim_ticket))
    parsed = parse_email(raw)
    assert parsed.from_address == "eve@evil.example"
    assert "\r" not in parsed.from_name and "\n" not in parsed.from_name
    assert not parsed.sender_doubt
    contact = email_to_contact(raw, inbox_id=None, raw_id=None)
    assert contact.sender.address == "eve@evil.example"
    received = receive(raw)
    assert received.status == "created" and received.ticket != victim_ticket.number
    message = message_of(session, received)
    assert message.sender == "eve@evil.example"


def test_an_encoded_word_holding_only_an_address_is_not_an_address(receive: Any) -> None:
    raw = mail("=?utf-8?q?victim@example.com=0D=0AFrom:_victim@example.com?=")
    assert parse_email(raw).from_address == ""
    assert receive(raw).status == "quarantined"


# --- ID-3: our control headers have no effect on inbound mail -----------------------------

def test_inbound_control_headers_neither_thread_nor_post_as_agent(
        receive: Any, session: Session, victim_ticket: Ticket) -> None:
    agent = User(email="agent@ours.example", name="Agent")
    session.add(agent)
    session.commit()
    extra = (f"X-Contactcenter-Ticket: {victim_ticket.number}\n"
             f"X-Contactcenter-Ticket-Id: {victim_ticket.id}\n"
             f"X-Contactcenter-Agent: {agent.id}\nX-Contactcenter-Direction: outbound\n"
             f"X-Contactcenter-Internal: 1\nX-Contactcenter-Customer: {victim_ticket.customer_id}\n")
    received = receive(mail("Eve <eve@evil.example>", extra=extra))
    assert received.status == "created" and received.ticket != victim_ticket.number
    message = message_of(session, received)
    assert message.direction == Direction.INBOUND and message.author_user_id is None
    assert message.customer_id != victim_ticket.customer_id


# --- ID-1: agents' addresses and Reply-To ------------------------------------------------

def test_mail_from_an_agents_address_never_posts_as_agent_nor_gets_an_answer(
        receive: Any, session: Session, victim_ticket: Ticket) -> None:
    session.add(User(email="anna.agent@ours.example", name="Anna Agent"))
    session.commit()
    received = receive(mail("Anna Agent <anna.agent@ours.example>", **reply_headers(victim_ticket)))
    # Naming the victim's ticket without a token minted for this sender: a new ticket,
    # marked unverified (the stricter rule of ID-1; it used to be able to append).
    assert received.status == "created" and received.ticket != victim_ticket.number
    message = message_of(session, received)
    assert message.ticket.sender_unverified
    assert message.ticket.claimed_ticket_number == victim_ticket.number
    assert message.direction == Direction.INBOUND and message.author_user_id is None
    assert received.acknowledgement is None
    # Also on a fresh subject (a new ticket): no automatic mail to our own agent.
    fresh = receive(mail("anna.agent@ours.example", subject="Unrelated"))
    assert fresh.status == "created" and fresh.acknowledgement is None
    log = session.scalar(select(AutoreplyLog).where(
        AutoreplyLog.ticket_id == message_of(session, fresh).ticket_id))
    assert log is not None and log.suppressed_reason == "own_mail"
    outbound = session.scalars(select(Message).where(
        Message.direction == Direction.OUTBOUND)).all()
    assert all(m.recipient != "anna.agent@ours.example" for m in outbound)


def test_reply_to_a_victim_never_decides_identity_end_to_end(
        receive: Any, session: Session, victim_ticket: Ticket) -> None:
    raw = mail("Mallory <mallory@attacker.example>", subject="Re: Router down",
               extra="Reply-To: Victim <victim@example.com>\nIn-Reply-To: <orig@example.com>\n")
    received = receive(raw)
    assert received.status == "created" and received.ticket != victim_ticket.number
    message = message_of(session, received)
    assert message.sender == "mallory@attacker.example"
    assert message.customer_id != victim_ticket.customer_id
    assert message.ticket.sender_unverified and received.acknowledgement is None
    outbound = session.scalars(select(Message).where(
        Message.direction == Direction.OUTBOUND)).all()
    assert all(m.recipient != "victim@example.com" or m.ticket_id == victim_ticket.id
               for m in outbound)
