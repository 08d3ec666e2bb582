"""A mail bomb through ``receive_email`` (RELIABILITY LOOP-4, scaled down to stay fast).

1,000 messages from one sender and 200 from rotating senders: every raw message is
kept and ingested, automatic replies stay within the loop caps, and past the per-sender
new-ticket limit (``new_ticket_sender_limit`` per ``new_ticket_sender_window_minutes``)
a sender's new mail is grouped onto their most recent open ticket.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contactcenter.channels.email.receive import receive_email
from contactcenter.config import Settings
from contactcenter.tickets.models import Direction, Inbox, Message, RawInbound, Ticket

INBOX = "help@ours.example"


def mail(sender: str, n: int) -> bytes:
    return (f"From: {sender}\r\nTo: {INBOX}\r\nSubject: Buy now {n}\r\n"
            f"Message-ID: <bomb-{n}-{sender}>\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"\r\nSpam number {n}.\r\n").encode()


def count(session: Session, model: type, *where: Any) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def acknowledgements(session: Session) -> int:
    return count(session, Message, Message.direction == Direction.OUTBOUND,
                 Message.auto_submitted.is_(True))


def test_one_sender_bomb_loses_nothing_groups_tickets_and_caps_replies(
        session: Session, settings: Settings, registry: Any, inbox: Inbox) -> None:
    settings = settings.replace(new_ticket_sender_limit=5)  # the guard, switched on
    sent = 1000
    statuses: dict[str, int] = {}
    for n in range(sent):
        received = receive_email(session, mail("bomber@spam.example", n), registry, settings,
                                 inbox.id)
        statuses[received.status] = statuses.get(received.status, 0) + 1
    assert count(session, RawInbound) == sent
    assert count(session, RawInbound, RawInbound.state == "processed") == sent
    assert count(session, Message, Message.direction == Direction.INBOUND) == sent
    limit = settings.new_ticket_sender_limit
    assert statuses == {"created": limit, "appended": sent - limit}
    assert count(session, Ticket) == limit
    assert acknowledgements(session) <= settings.autoreply_sender_hourly_cap

    # An ordinary customer is still served normally: own ticket, acknowledged.
    normal = receive_email(session, mail("anna@example.com", 1), registry, settings, inbox.id)
    assert normal.status == "created" and normal.acknowledgement is not None


def test_rotating_senders_are_all_ingested_as_their_own_tickets(
        session: Session, settings: Settings, registry: Any, inbox: Inbox) -> None:
    sent = 200
    for n in range(sent):
        received = receive_email(session, mail(f"s{n}@rotating.example", n), registry,
                                 settings, inbox.id)
        assert received.status == "created"
    assert count(session, RawInbound, RawInbound.state == "processed") == sent
    assert count(session, Ticket) == sent
    assert acknowledgements(session) <= settings.autoreply_mailbox_hourly_cap


def test_sender_limit_is_configurable_and_zero_disables_it(
        session: Session, settings: Settings, registry: Any, inbox: Inbox) -> None:
    two = settings.replace(new_ticket_sender_limit=2)
    results = [receive_email(session, mail("a@x.example", n), registry, two, inbox.id)
               for n in range(5)]
    assert [r.status for r in results] == ["created"] * 2 + ["appended"] * 3
    assert {r.ticket for r in results[2:]} == {results[1].ticket}  # the most recent one
    off = settings.replace(new_ticket_sender_limit=0)
    results = [receive_email(session, mail("b@x.example", n), registry, off, inbox.id)
               for n in range(8)]
    assert [r.status for r in results] == ["created"] * 8


def test_grouping_needs_an_open_ticket_and_respects_the_window(
        session: Session, settings: Settings, registry: Any, inbox: Inbox) -> None:
    two = settings.replace(new_ticket_sender_limit=2)
    first = [receive_email(session, mail("c@x.example", n), registry, two, inbox.id)
             for n in range(2)]
    for ticket in session.scalars(select(Ticket)):
        ticket.status = "closed"
    session.commit()
    # Over the limit but nothing open to group into: a new ticket (nothing is dropped).
    third = receive_email(session, mail("c@x.example", 3), registry, two, inbox.id)
    assert third.status == "created" and third.ticket not in {r.ticket for r in first}
    # Tickets opened before the window do not count.
    narrow = two.replace(new_ticket_sender_window_minutes=0)
    fourth = receive_email(session, mail("c@x.example", 4), registry, narrow, inbox.id)
    assert fourth.status == "created"
