"""Forged replies and the ticket trick (RELIABILITY ID-1, ID-2), end to end with real mail.

A victim opens a ticket; the acknowledgement we send them is built exactly as the
outbox builds it (``to_outbound`` + ``build_email``), so its Reply-To plus-address
and Message-ID carry the real reply token: an HMAC over the ticket and the
victim's address. Then replies arrive through ``receive_email`` with the real
parser: genuine ones, forged ones, forwarded ones, a third party's.

Decision documented here and in ``tickets/threading.py``: a reply whose
In-Reply-To/References name a message the SAME sender address wrote to us
earlier threads (the customer's own Message-ID is known only to their mail
system and to us; it is how customer replies thread in the benchmark corpus).
Every other way of naming a ticket (subject tag, plus-address, our Message-ID)
needs a token minted for that ticket and the sender's address.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import itertools
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contactcenter.accounts.models import User
from contactcenter.channels.base import Identity, InboundContact, ThreadHints
from contactcenter.channels.chat.service import chat_history
from contactcenter.channels.email.loop_models import AutoreplyLog
from contactcenter.channels.email.outbound import build_email
from contactcenter.channels.email.receive import Received
from contactcenter.config import Settings, SettingsError
from contactcenter.tickets.intake import ingest_inbound
from contactcenter.tickets.models import Direction, Message, Ticket
from contactcenter.tickets.outbox import to_outbound
from contactcenter.tickets.reply_token import (
    is_token_for,
    read_minted_ids,
    reply_token_key,
    sign_reply_token,
)
from contactcenter.tickets.serialize import serialize_ticket_brief
from contactcenter.tickets.threading import Candidate, ThreadDecision, ThreadRule, choose_thread

INBOX = "help@ours.example"
VICTIM = "victim@example.com"
_ids = itertools.count(1)


def mail(sender: str, *, to: str = INBOX, subject: str = "Re: Router down",
         body: str = "It still blinks.", extra: str = "") -> bytes:
    head = (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <f{next(_ids)}@mail.example>\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n" + extra.replace("\n", "\r\n"))
    return (head.rstrip("\r\n") + "\r\n\r\n" + body + "\r\n").encode()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.replace(smtp_domain="ours.example")


@pytest.fixture
def victim(receive: Any, session: Session, settings: Settings) -> dict[str, Any]:
    """The victim's ticket and the headers of the acknowledgement we mailed them."""
    first = receive(mail(f"Victim <{VICTIM}>", subject="Router down").replace(
        b"Message-ID: <", b"Message-ID: <orig-", 1))
    assert first.status == "created" and first.acknowledgement is not None
    ticket = session.scalar(select(Ticket).where(Ticket.number == first.ticket))
    ack = session.get(Message, first.acknowledgement)
    assert ticket is not None and ack is not None
    built = build_email(to_outbound(session, ack, settings), settings).message
    return {"ticket": ticket, "reply_to": str(built["Reply-To"]),
            "message_id": str(built["Message-ID"]), "subject": str(built["Subject"]),
            "orig": session.scalar(select(Message.external_id).where(
                Message.ticket_id == ticket.id, Message.direction == Direction.INBOUND))}


def inbound_count(session: Session, ticket: Ticket) -> int:
    return session.scalar(select(func.count(Message.id)).where(
        Message.ticket_id == ticket.id, Message.direction == Direction.INBOUND)) or 0


def outbound_to(session: Session, address: str) -> list[Message]:
    return list(session.scalars(select(Message).where(
        Message.direction == Direction.OUTBOUND, Message.recipient == address)))


def ticket_of(session: Session, received: Received) -> Ticket:
    ticket = session.scalar(select(Ticket).where(Ticket.number == received.ticket))
    assert ticket is not None
    return ticket


def assert_unverified(session: Session, received: Received, victim: dict[str, Any]) -> Ticket:
    """A new ticket, flagged, showing the claim, with no automatic answer to anyone."""
    assert received.status == "created", received
    assert received.ticket != victim["ticket"].number
    assert received.acknowledgement is None
    ticket = ticket_of(session, received)
    assert ticket.sender_unverified is True
    assert ticket.claimed_ticket_number == victim["ticket"].number
    log = session.scalar(select(AutoreplyLog).where(AutoreplyLog.ticket_id == ticket.id))
    assert log is not None and log.suppressed_reason == "unverified_sender"
    assert inbound_count(session, victim["ticket"]) == 1
    brief = serialize_ticket_brief(ticket)
    assert brief["sender_unverified"] is True
    assert brief["claimed_ticket_number"] == victim["ticket"].number
    return ticket


# --- the token itself ---------------------------------------------------------------------

def test_our_mail_carries_a_token_bound_to_ticket_and_recipient(
        victim: dict[str, Any], settings: Settings) -> None:
    ticket = victim["ticket"]
    key = reply_token_key(settings)
    token = sign_reply_token(key, ticket.number, ticket.reply_token, VICTIM)
    assert victim["reply_to"] == f"help+t{ticket.number}-{token}@ours.example"
    assert token != ticket.reply_token  # the ticket's secret itself never goes out
    assert read_minted_ids([victim["message_id"]]) == [(ticket.number, token)]
    assert is_token_for(key, ticket.number, ticket.reply_token, "VICTIM@example.com", token)
    assert not is_token_for(key, ticket.number, ticket.reply_token, "eve@evil.example", token)
    assert not is_token_for(key, ticket.number + 1, ticket.reply_token, VICTIM, token)
    other_key = reply_token_key(settings.replace(secret_key="another-secret-key-0123456789"))
    assert not is_token_for(other_key, ticket.number, ticket.reply_token, VICTIM, token)


def test_the_token_key_needs_a_secret_in_production_and_is_kept_in_development(
        tmp_path: Any) -> None:
    scaled = Settings(data_dir=tmp_path / "scaled", redis_url="redis://127.0.0.1:6379/0",
                      secret_key="")
    with pytest.raises(SettingsError, match="CONTACTCENTER_SECRET_KEY"):
        reply_token_key(scaled)
    embedded = Settings(data_dir=tmp_path / "embedded", secret_key="")
    key = reply_token_key(embedded)
    assert key == reply_token_key(embedded) and len(key) == 32
    assert (tmp_path / "embedded" / "secret_key").stat().st_mode & 0o077 == 0
    # Derived, never the secret key itself, and bound to it.
    assert key != b"" and key != reply_token_key(Settings(secret_key="x" * 32))


def test_a_unicode_domain_binds_the_same_token_as_its_idna_form() -> None:
    key = b"k" * 32
    token = sign_reply_token(key, 1000, "s3cret", "anna@xn--e1afmkfd.xn--p1ai")
    assert is_token_for(key, 1000, "s3cret", "Anna@пример.рф", token)


# --- genuine replies thread ---------------------------------------------------------------

def test_reply_to_our_plus_address_from_the_recipient_is_appended(
        receive: Any, session: Session, victim: dict[str, Any]) -> None:
    received = receive(mail(VICTIM, to=victim["reply_to"], subject=victim["subject"]))
    assert (received.status, received.ticket) == ("appended", victim["ticket"].number)
    assert inbound_count(session, victim["ticket"]) == 2
    assert victim["ticket"].sender_unverified is False


def test_reply_naming_only_our_message_id_is_appended(receive: Any, session: Session,
                                                      victim: dict[str, Any]) -> None:
    received = receive(mail(VICTIM, extra=f"In-Reply-To: {victim['message_id']}\n"))
    assert (received.status, received.ticket) == ("appended", victim["ticket"].number)


def test_reply_naming_the_senders_own_earlier_message_is_appended(
        receive: Any, session: Session, victim: dict[str, Any]) -> None:
    # How the corpus threads: the customer's client answers their own earlier mail.
    received = receive(mail(VICTIM, extra=f"In-Reply-To: <{victim['orig']}>\n"
                                          f"References: <{victim['orig']}>\n"))
    assert (received.status, received.ticket) == ("appended", victim["ticket"].number)


def test_legacy_ticket_secret_still_threads_for_the_tickets_own_customer(
        receive: Any, session: Session, victim: dict[str, Any]) -> None:
    ticket = victim["ticket"]
    legacy = f"help+t{ticket.number}-{ticket.reply_token}@ours.example"
    stranger = receive(mail("stranger@else.example", to=legacy, subject="Hello"))
    assert_unverified(session, stranger, victim)
    assert receive(mail(VICTIM, to=legacy)).status == "appended"


# --- ID-1: forged replies -----------------------------------------------------------------

def test_forged_customer_from_with_subject_tag_opens_an_unverified_ticket(
        receive: Any, session: Session, victim: dict[str, Any]) -> None:
    received = receive(mail(f"Victim <{VICTIM}>", subject=victim["subject"],
                            body="Please send the refund to my new account."))
    ticket = assert_unverified(session, received, victim)
    # Same customer record (From decides who it claims to be), but no answer to them.
    assert ticket.customer_id == victim["ticket"].customer_id
    assert len(outbound_to(session, VICTIM)) == 1  # only the original acknowledgement


def test_forged_customer_from_with_a_guessed_message_id_of_ours_is_unverified(
        receive: Any, session: Session, victim: dict[str, Any]) -> None:
    # Our old id shape was guessable (msg-<id>.<number>@domain); a wrong token is too.
    number = victim["ticket"].number
    for guess in (f"<msg-2.{number}@ours.example>", f"<msg-2.{number}.0123456789abcdef@ours.example>"):
        received = receive(mail(VICTIM, subject=victim["subject"],
                                extra=f"In-Reply-To: {guess}\nReferences: {guess}\n"))
        assert_unverified(session, received, victim)


def test_forged_customer_from_with_a_guessed_plus_token_is_unverified(
        receive: Any, session: Session, victim: dict[str, Any]) -> None:
    number = victim["ticket"].number
    received = receive(mail(VICTIM, to=f"help+t{number}-0000000000000000@ours.example"))
    assert_unverified(session, received, victim)


def test_forged_agent_from_never_posts_as_agent_nor_sends_mail(
        receive: Any, session: Session, victim: dict[str, Any]) -> None:
    session.add(User(email="anna.agent@ours.example", name="Anna Agent"))
    session.commit()
    before = session.scalar(select(func.count(Message.id)).where(
        Message.direction == Direction.OUTBOUND))
    received = receive(mail("Anna Agent <anna.agent@ours.example>", to=victim["reply_to"],
                            subject=victim["subject"],
                            extra=f"In-Reply-To: {victim['message_id']}\n"))
    assert received.status == "created" and received.acknowledgement is None
    ticket = ticket_of(session, received)
    assert ticket.sender_unverified and ticket.claimed_ticket_number == victim["ticket"].number
    message = session.scalar(select(Message).where(Message.raw_id == received.raw_id))
    assert message is not None
    assert message.direction == Direction.INBOUND and message.author_user_id is None
    assert session.scalar(select(func.count(Message.id)).where(
        Message.direction == Direction.OUTBOUND)) == before


def test_reply_to_naming_the_victim_never_decides_identity(
        receive: Any, session: Session, victim: dict[str, Any]) -> None:
    # Mallory holds the victim's mail (forwarded) and sets Reply-To to the victim.
    received = receive(mail("Mallory <mallory@attacker.example>", to=victim["reply_to"],
                            subject=victim["subject"],
                            extra=f"Reply-To: {VICTIM}\nIn-Reply-To: {victim['message_id']}\n"))
    ticket = assert_unverified(session, received, victim)
    assert ticket.customer_id != victim["ticket"].customer_id
    assert len(outbound_to(session, VICTIM)) == 1
    assert outbound_to(session, "mallory@attacker.example") == []


def test_a_colleague_answering_forwarded_mail_opens_an_unverified_ticket(
        receive: Any, session: Session, victim: dict[str, Any]) -> None:
    received = receive(mail("colleague@example.com", to=victim["reply_to"],
                            subject=victim["subject"]))
    assert_unverified(session, received, victim)


# --- ID-2: the ticket trick ---------------------------------------------------------------

def test_third_party_mail_to_a_reply_address_stays_out_of_the_requesters_ticket(
        receive: Any, session: Session, victim: dict[str, Any], settings: Settings,
        registry: Any) -> None:
    # The requester signed up at a service with the ticket's reply address; the
    # service's verification mail must not land where the requester can read it.
    code_mail = mail("Service <noreply@service.example>", to=victim["reply_to"],
                     subject="Confirm your account", body="Your code is 424242.",
                     extra="Auto-Submitted: auto-generated\n")
    received = receive(code_mail)
    assert received.status == "created" and received.acknowledgement is None
    ticket = ticket_of(session, received)
    assert ticket.sender_unverified and ticket.customer_id != victim["ticket"].customer_id
    texts = [m.text for m in session.scalars(select(Message).where(
        Message.ticket_id == victim["ticket"].id))]
    assert all("424242" not in text for text in texts)
    # What goes out on the requester's ticket (an agent's reply) never quotes it.
    from contactcenter.tickets.service import add_reply

    agent = User(email="agent@ours.example", name="Agent")
    session.add(agent)
    session.commit()
    reply = add_reply(session, victim["ticket"], agent.id, "Thanks, looking into it.")
    session.commit()
    built = build_email(to_outbound(session, reply, settings), settings)
    sent = email.message_from_bytes(built.data, policy=email.policy.default)
    bodies = [str(part.get_content()) for part in sent.walk() if not part.is_multipart()]
    assert bodies and all("424242" not in body for body in bodies)  # (a MIME boundary may)
    assert b"code is 424242" not in built.data
    assert outbound_to(session, "noreply@service.example") == []


def test_third_party_mail_to_the_support_address_is_seen_by_agents_only(
        receive: Any, session: Session, client: Any, app: Any) -> None:
    received = receive(mail("noreply@service.example", subject="Your code",
                            body="Your code is 515151.", extra="Precedence: bulk\n"))
    assert received.status == "created" and received.acknowledgement is None
    # Anonymous callers get nothing from the API; the public knowledge portal holds no tickets.
    for path in (f"/api/v1/tickets/{received.ticket}", "/api/v1/tickets",
                 f"/api/v1/tickets/{received.ticket}/messages"):
        response = client.get(path)
        assert response.status_code in (401, 403, 404)
        assert b"515151" not in response.data
    portal = client.get("/help/search?q=515151")
    assert portal.status_code == 200
    assert b"kb-none" in portal.data  # the query is echoed, but nothing matches


def test_chat_history_never_shows_mail_appended_to_the_ticket(
        session: Session, settings: Settings) -> None:
    # The widget shows chat messages only: mail threaded onto a chat ticket stays out.
    from contactcenter.channels.chat.models import ChatSession

    chat = ingest_inbound(session, InboundContact(
        channel="chat", external_id="c1/1", sender=Identity("chat", "visitor-1"),
        subject="", text="Hi", thread=ThreadHints(thread_on_open_ticket=False)),
        settings=settings)
    ticket = session.get(Ticket, chat.ticket_id)
    assert ticket is not None
    ingest_inbound(session, InboundContact(
        channel="email", external_id="x@mail.example", sender=Identity("email", VICTIM),
        subject="code", text="Your code is 616161",
        thread=ThreadHints(ticket_number=ticket.number, reply_token=ticket.reply_token)),
        settings=settings)
    started = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    session_row = ChatSession(public_id="c1", visitor_id="visitor-1", ticket_id=ticket.id,
                              started_at=started)
    assert all("616161" not in m["text"] for m in chat_history(session, session_row))


# --- the pure decision --------------------------------------------------------------------

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def candidate(ticket_id: int, customer: int = 1, status: str = "open") -> Candidate:
    return Candidate(ticket_id, customer, 10, status, NOW)


@pytest.mark.parametrize(("kwargs", "expected"), [
    pytest.param({"explicit": candidate(1)}, ThreadDecision(None, ThreadRule.NEW, 1),
                 id="own-ticket-number-without-token-is-a-claim"),
    pytest.param({"explicit": candidate(1), "reply_token_ok": True},
                 ThreadDecision(1, ThreadRule.EXPLICIT), id="token"),
    pytest.param({"replied_to": candidate(2)}, ThreadDecision(None, ThreadRule.NEW, 2),
                 id="headers-of-another-sender-are-a-claim"),
    pytest.param({"replied_to": candidate(2), "replied_to_ok": True},
                 ThreadDecision(2, ThreadRule.REPLY_HEADERS), id="headers-own-message"),
    pytest.param({"explicit": candidate(1), "replied_to": candidate(2), "replied_to_ok": True},
                 ThreadDecision(2, ThreadRule.REPLY_HEADERS), id="tag-claim-but-own-headers"),
    pytest.param({"explicit": candidate(1), "recent": candidate(3)},
                 ThreadDecision(None, ThreadRule.NEW, 1), id="claim-never-falls-to-recent"),
    pytest.param({"recent": candidate(3)}, ThreadDecision(3, ThreadRule.OPEN_TICKET),
                 id="no-claim-recent-open-ticket"),
    pytest.param({"explicit": candidate(1, status="closed")},
                 ThreadDecision(None, ThreadRule.NEW), id="closed-is-no-claim"),
])
def test_choose_thread_with_an_unauthenticated_sender(kwargs: dict[str, Any],
                                                      expected: ThreadDecision) -> None:
    args: dict[str, Any] = {"explicit": None, "reply_token_ok": False, "replied_to": None,
                            "recent": None, "replied_to_ok": False, **kwargs}
    assert choose_thread(customer_id=1, organisation_id=10, thread_on_open_ticket=True,
                         now=NOW, window_days=14, verify_sender=True, **args) == expected
