"""Automatic acknowledgements: one per new ticket, never to automatic mail, capped, loop-proof.

Mail goes through ``receive.receive_email`` with a small stand-in parser (it reads
From, Message-ID, Subject, References and the text, and deliberately sets no
``auto_submitted``: the loop guard must read the headers itself); caps are driven
through ``ingest_inbound`` with the clock passed in. Acknowledgements are sent by
the real outbox and email adapter to an SMTP sink on loopback.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contactcenter.channels.base import (
    ChannelRegistry,
    Identity,
    InboundContact,
    OutboundMessage,
    SendResult,
    ThreadHints,
)
from contactcenter.channels.email.loop_models import AutoreplyLog
from contactcenter.channels.email.loops import (
    Acknowledgement,
    acknowledge_new_ticket,
    is_autoreply_paused,
    is_robot_address,
    list_autoreply_alerts,
    sweep_acknowledgements,
)
from contactcenter.channels.email.outbound import send_email
from contactcenter.channels.email.receive import Received, message_id_of, receive_email
from contactcenter.channels.email.templates import choose_language, detect_language
from contactcenter.config import Settings
from contactcenter.db import Database
from contactcenter.events import EventLog
from contactcenter.jobs import InlineJobQueue
from contactcenter.tickets.intake import ingest_inbound
from contactcenter.tickets.models import DeliveryState, Direction, Inbox, Message, Ticket
from contactcenter.tickets.outbox import sweep_outbox
from tests.channels.email import test_outbound_sink as sinks
from tests.channels.email.test_outbound_sink import Sink

sink_server = sinks.sink_server
sink = sinks.sink

DOMAIN = "support.acme.test"
INBOX = "help@acme.test"
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
_ids = itertools.count(1)


class StandInEmail:
    """A minimal email adapter: enough of a parser for these tests, and the real sender."""

    kind = "email"

    def enabled(self, settings: Settings) -> bool:
        return True

    def check(self, settings: Settings) -> str:
        return "ok"

    def to_inbound(self, payload: bytes, *, inbox_id: int | None, raw_id: int | None
                   ) -> InboundContact:
        msg = email.message_from_bytes(payload, policy=email.policy.default)
        sender = msg["From"].addresses[0].addr_spec if msg["From"] else ""
        refs = f"{msg.get('References', '')} {msg.get('In-Reply-To', '')}".split()
        body = msg.get_body(("plain",))
        return InboundContact(
            channel="email", external_id=message_id_of(payload),
            sender=Identity("email", sender), subject=str(msg["Subject"] or ""),
            text=body.get_content() if body is not None else "", inbox_id=inbox_id,
            raw_id=raw_id,
            thread=ThreadHints(in_reply_to=tuple(r.strip("<>") for r in refs),
                               thread_on_open_ticket=False))

    def send(self, outbound: OutboundMessage, settings: Settings) -> SendResult:
        return send_email(outbound, settings)


def mail(sender: str = "anna@example.com", subject: str = "Router down",
         text: str = "It blinks red.", message_id: str | None = None,
         **headers: str) -> bytes:
    """Return raw RFC 5322 bytes; keyword headers use underscores for dashes."""
    lines = [f"From: {sender}", f"To: {INBOX}", f"Subject: {subject}",
             f"Message-ID: <{message_id or f'm{next(_ids)}@mail.example.com'}>",
             "Content-Type: text/plain; charset=utf-8"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n" + text + "\r\n").encode()


@pytest.fixture
def settings(tmp_path: Path, sink_server: Sink) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url="sqlite://",
                    secret_key="test-secret-key-not-for-production", testing=True,
                    smtp_relay_host="127.0.0.1", smtp_relay_port=sink_server.port,
                    smtp_domain=DOMAIN)


@pytest.fixture
def stand_in() -> ChannelRegistry:
    registry = ChannelRegistry()
    registry.register(StandInEmail())
    return registry


@pytest.fixture
def receive(session: Session, settings: Settings, stand_in: ChannelRegistry,
            inbox: Inbox) -> Any:
    def deliver(raw: bytes, **kwargs: Any) -> Received:
        return receive_email(session, raw, stand_in, settings, inbox.id, **kwargs)

    return deliver


def acknowledgements(session: Session) -> list[Message]:
    return list(session.scalars(select(Message).where(
        Message.direction == Direction.OUTBOUND, Message.auto_submitted.is_(True))
        .order_by(Message.id)))


def open_ticket(session: Session, settings: Settings, inbox: Inbox, sender: str,
                now: dt.datetime) -> Acknowledgement:
    """A new ticket from ``sender`` at ``now`` and its acknowledgement decision."""
    result = ingest_inbound(session, InboundContact(
        channel="email", external_id=f"c{next(_ids)}@mail.example.com",
        sender=Identity("email", sender), subject="Hello", text="Help me please.",
        inbox_id=inbox.id, thread=ThreadHints(thread_on_open_ticket=False)),
        settings=settings, now=now)
    assert result.status == "created" and result.ticket_id is not None
    return acknowledge_new_ticket(session, result.ticket_id, settings, now)


# --- one acknowledgement per new ticket ------------------------------------------------

def test_new_ticket_gets_one_acknowledgement_stored_pending(session: Session,
                                                            receive: Any) -> None:
    received = receive(mail())
    assert received.status == "created" and received.acknowledgement is not None
    [ack] = acknowledgements(session)
    ticket = session.get(Ticket, ack.ticket_id)
    assert ticket is not None and ack.id == received.acknowledgement
    assert ack.delivery_state == DeliveryState.PENDING and ack.recipient == "anna@example.com"
    assert ack.subject == f"Auto: Request received: Router down [#{ticket.number}]"
    assert f"#{ticket.number}" in ack.text and "automatic message" in ack.text
    # An acknowledgement is not an answer: the ticket still waits for a person.
    assert ticket.status == "new" and ticket.first_response_at is None
    row = session.scalar(select(AutoreplyLog))
    assert row is not None and row.suppressed_reason is None and row.message_id == ack.id


def test_acknowledgement_is_delivered_at_once_when_a_job_queue_is_given(
        session: Session, receive: Any, jobs: InlineJobQueue, sink: Sink) -> None:
    receive(mail(message_id="first@mail.example.com"), jobs=jobs)
    [delivery] = sink.deliveries
    sent = delivery.message
    assert delivery.rcpt_tos == ("anna@example.com",)
    assert sent["Auto-Submitted"] == "auto-replied"
    assert sent["X-Auto-Response-Suppress"] == "All"
    assert sent["In-Reply-To"] == "<first@mail.example.com>"
    assert sent["References"] == "<first@mail.example.com>"
    assert str(sent["Subject"]).startswith("Auto: ")
    [ack] = acknowledgements(session)
    session.refresh(ack)
    assert ack.delivery_state == DeliveryState.SENT
    assert sent["Message-ID"] == f"<{ack.external_id}>"


def test_acknowledgement_in_russian_for_cyrillic_mail(session: Session, receive: Any) -> None:
    receive(mail(subject="=?utf-8?b?0KDQvtGD0YLQtdGA?=", text="Роутер не работает, помогите."))
    [ack] = acknowledgements(session)
    assert ack.subject.startswith("Auto: Обращение получено: Роутер")
    assert "Спасибо за обращение" in ack.text


def test_acknowledgement_follows_the_customers_language(session: Session, settings: Settings,
                                                        inbox: Inbox) -> None:
    result = ingest_inbound(session, InboundContact(
        channel="email", external_id="lang@mail.example.com", language="ru-RU",
        sender=Identity("email", "ivan@example.com"), subject="Router", text="It is broken.",
        inbox_id=inbox.id), settings=settings)
    assert result.ticket_id is not None
    acknowledge_new_ticket(session, result.ticket_id, settings)
    [ack] = acknowledgements(session)
    assert "Спасибо за обращение" in ack.text


@pytest.mark.parametrize(("customer", "text", "expected"), [
    (None, "Hello, my router is broken", "en"),
    (None, "Здравствуйте, не работает роутер", "ru"),
    (None, "Привет! Не работает Windows Update, код 0x80070005", "ru"),
    ("ru", "Hello", "ru"),
    ("en-GB", "Здравствуйте", "en"),
    ("de", "Здравствуйте", "ru"),
    (None, "12345 !!!", "en"),
])
def test_choose_language(customer: str | None, text: str, expected: str) -> None:
    assert choose_language(customer, text) == expected


def test_detect_language_needs_letters() -> None:
    assert detect_language("42") is None


def test_reply_to_the_ticket_gets_no_second_acknowledgement(session: Session,
                                                            receive: Any) -> None:
    first = receive(mail(message_id="orig@mail.example.com"))
    second = receive(mail(subject="Re: Router down", In_Reply_To="<orig@mail.example.com>"))
    assert second.status == "appended" and second.ticket == first.ticket
    assert second.acknowledgement is None
    assert len(acknowledgements(session)) == 1


def test_a_ticket_is_acknowledged_only_once(session: Session, receive: Any,
                                            settings: Settings) -> None:
    receive(mail())
    ticket_id = acknowledgements(session)[0].ticket_id
    again = acknowledge_new_ticket(session, ticket_id, settings)
    assert again == Acknowledgement(None, "already_acknowledged")
    assert len(acknowledgements(session)) == 1


def test_disabled_setting_sends_nothing(session: Session, settings: Settings,
                                        inbox: Inbox) -> None:
    off = settings.replace(autoreply_enabled=False)
    assert open_ticket(session, off, inbox, "anna@example.com", T0).reason == "disabled"
    assert acknowledgements(session) == []


# --- never to automatic, robot or own mail ---------------------------------------------

@pytest.mark.parametrize(("headers", "reason"), [
    ({"Auto_Submitted": "auto-replied"}, "auto_submitted"),
    ({"Auto_Submitted": "auto-generated; type=vacation"}, "auto_submitted"),
    ({"Precedence": "bulk"}, "precedence"),
    ({"Precedence": "list"}, "precedence"),
    ({"Precedence": "junk"}, "precedence"),
    ({"X_Loop": "help@acme.test"}, "x_loop"),
    ({"X_Autoreply": "yes"}, "autoreply_header"),
    ({"X_Autorespond": "Out of office"}, "autoreply_header"),
    ({"X_Auto_Response_Suppress": "All"}, "auto_response_suppress"),
    ({"X_Auto_Response_Suppress": "DR, OOF"}, "auto_response_suppress"),
    ({"List_Id": "<users.lists.example.org>"}, "list"),
    ({"List_Unsubscribe": "<mailto:leave@lists.example.org>"}, "list"),
    ({"Return_Path": "<>"}, "null_return_path"),
])
def test_automatic_mail_gets_no_acknowledgement(session: Session, receive: Any,
                                                headers: dict[str, str], reason: str) -> None:
    received = receive(mail(**headers))
    assert received.status == "created" and received.acknowledgement is None
    assert acknowledgements(session) == []
    row = session.scalar(select(AutoreplyLog))
    assert row is not None and row.suppressed_reason == reason


def test_auto_submitted_no_is_a_person(session: Session, receive: Any) -> None:
    assert receive(mail(Auto_Submitted="no")).acknowledgement is not None


def test_contact_marked_automatic_by_the_parser_gets_no_acknowledgement(
        session: Session, settings: Settings, inbox: Inbox) -> None:
    result = ingest_inbound(session, InboundContact(
        channel="email", external_id="ooo@mail.example.com", auto_submitted=True,
        sender=Identity("email", "anna@example.com"), text="I am away.", inbox_id=inbox.id),
        settings=settings)
    assert result.ticket_id is not None
    ack = acknowledge_new_ticket(session, result.ticket_id, settings)
    assert ack == Acknowledgement(None, "auto_submitted")


@pytest.mark.parametrize("sender", [
    "MAILER-DAEMON@mx.example.org", "postmaster@example.org", "noreply@example.org",
    "no-reply@example.org", "no_reply+x@example.org", "do-not-reply@example.org",
    "donotreply@example.org", "owner-users@lists.example.org",
    "users-request@lists.example.org", "bounce-1234@mailer.example.org",
    "bounces+abc@mailer.example.org", "users-bounces@lists.example.org",
])
def test_robot_senders_get_no_acknowledgement(session: Session, receive: Any,
                                              sender: str) -> None:
    assert receive(mail(sender=sender)).acknowledgement is None
    row = session.scalar(select(AutoreplyLog))
    assert row is not None and row.suppressed_reason == "robot_sender"


@pytest.mark.parametrize(("address", "robot"), [
    ("", True), ("<>", True), ("anna@example.com", False), ("noreen@example.com", False),
    ("bob.owner@example.com", False), ("requests@example.com", False),
])
def test_is_robot_address(address: str, robot: bool) -> None:
    assert is_robot_address(address) is robot


@pytest.mark.parametrize(("sender", "message_id"), [
    (INBOX, None),
    ("Help+t1000-ab12cd34@acme.test", None),
    (f"agent@{DOMAIN}", None),
    ("anna@example.com", f"msg-9.1000@{DOMAIN}"),
])
def test_our_own_mail_gets_no_acknowledgement(session: Session, receive: Any, sender: str,
                                              message_id: str | None) -> None:
    assert receive(mail(sender=sender, message_id=message_id)).acknowledgement is None
    row = session.scalar(select(AutoreplyLog))
    assert row is not None and row.suppressed_reason == "own_mail"


def test_configured_from_address_is_ours(session: Session, settings: Settings,
                                         inbox: Inbox) -> None:
    configured = settings.replace(smtp_from_address="desk@acme.example")
    assert open_ticket(session, configured, inbox, "desk@acme.example", T0).reason == "own_mail"


# --- caps ----------------------------------------------------------------------------

def test_fourth_mail_from_a_sender_within_an_hour_gets_none(session: Session,
                                                            settings: Settings,
                                                            inbox: Inbox) -> None:
    minutes = [0, 10, 20, 30]
    reasons = [open_ticket(session, settings, inbox, "anna@example.com",
                           T0 + dt.timedelta(minutes=m)).reason for m in minutes]
    assert reasons == [None, None, None, "sender_hourly_cap"]
    # Another sender is not affected, and the window slides.
    assert open_ticket(session, settings, inbox, "ivan@example.com", T0).reason is None
    later = T0 + dt.timedelta(minutes=61)
    assert open_ticket(session, settings, inbox, "anna@example.com", later).reason is None


def test_sender_hourly_cap_is_configurable(session: Session, settings: Settings,
                                           inbox: Inbox) -> None:
    one = settings.replace(autoreply_sender_hourly_cap=1)
    reasons = [open_ticket(session, one, inbox, "anna@example.com", T0).reason
               for _ in range(2)]
    assert reasons == [None, "sender_hourly_cap"]


def test_eleventh_mail_in_a_day_from_a_sender_to_one_mailbox_gets_none(
        session: Session, settings: Settings, inbox: Inbox) -> None:
    times = [T0 + dt.timedelta(hours=2 * i) for i in range(11)]
    reasons = [open_ticket(session, settings, inbox, "anna@example.com", t).reason
               for t in times]
    assert reasons == [None] * 10 + ["sender_daily_cap"]
    other = Inbox(name="Sales", channel="email", address="sales@acme.test")
    session.add(other)
    session.commit()
    assert open_ticket(session, settings, other, "anna@example.com", times[-1]).reason is None
    tighter = settings.replace(autoreply_sender_daily_cap=1)
    assert open_ticket(session, tighter, other, "anna@example.com",
                       times[-1] + dt.timedelta(hours=2)).reason == "sender_daily_cap"


def test_mailbox_ceiling_pauses_automatic_mail_and_alerts_supervisors(
        session: Session, settings: Settings, inbox: Inbox,
        caplog: pytest.LogCaptureFixture) -> None:
    capped = settings.replace(autoreply_mailbox_hourly_cap=5)
    with caplog.at_level(logging.ERROR, logger="contactcenter.channels.email.loops"):
        reasons = [open_ticket(session, capped, inbox, f"c{i}@example.com",
                               T0 + dt.timedelta(minutes=i)).reason for i in range(8)]
    assert reasons == [None] * 5 + ["mailbox_ceiling"] * 3
    assert is_autoreply_paused(session, inbox.id, capped, T0 + dt.timedelta(minutes=8))
    alerts = list_autoreply_alerts(session, T0)
    assert len(alerts) == 3 and {a.inbox_id for a in alerts} == {inbox.id}
    events = session.scalar(select(func.count(EventLog.id)).where(
        EventLog.type == "autoreply.paused"))
    assert events == 1  # one alert per pause, not one per withheld message
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    # Another mailbox still answers; this one resumes once the hour has passed.
    other = Inbox(name="Sales", channel="email", address="sales@acme.test")
    session.add(other)
    session.commit()
    assert open_ticket(session, capped, other, "z@example.com", T0).reason is None
    resumed = T0 + dt.timedelta(minutes=65)
    assert not is_autoreply_paused(session, inbox.id, capped, resumed)
    assert open_ticket(session, capped, inbox, "y@example.com", resumed).reason is None


def test_autoreply_settings_come_from_the_environment() -> None:
    settings = Settings.from_env({
        "CONTACTCENTER_AUTOREPLY_ENABLED": "false",
        "CONTACTCENTER_AUTOREPLY_SENDER_HOURLY_CAP": "2",
        "CONTACTCENTER_AUTOREPLY_SENDER_DAILY_CAP": "5",
        "CONTACTCENTER_AUTOREPLY_MAILBOX_HOURLY_CAP": "50",
    })
    assert not settings.autoreply_enabled
    assert (settings.autoreply_sender_hourly_cap, settings.autoreply_sender_daily_cap,
            settings.autoreply_mailbox_hourly_cap) == (2, 5, 50)
    assert Settings().autoreply_sender_hourly_cap == 3
    assert Settings().autoreply_sender_daily_cap == 10
    assert Settings().autoreply_mailbox_hourly_cap == 200


# --- loops between responders ----------------------------------------------------------

def test_ping_pong_with_a_responder_that_ignores_every_header_stops_at_the_cap(
        session: Session, settings: Settings, receive: Any, registry: ChannelRegistry,
        sink: Sink) -> None:
    """LOOP-2: the peer answers each of our messages with fresh mail and no auto headers."""
    receive(mail(sender="robot@peer.example", subject="Your order"))
    seen = 0
    for _ in range(20):
        sweep_outbox(session, registry, settings)
        new = sink.deliveries[seen:]
        seen += len(new)
        if not new:
            break
        for delivery in new:
            receive(mail(sender="robot@peer.example", subject=f"Re: {delivery.message['Subject']}"))
    assert len(sink.deliveries) == 3
    for delivery in sink.deliveries:
        assert delivery.message["Auto-Submitted"] == "auto-replied"
        assert delivery.message["In-Reply-To"] and delivery.message["References"]
    reasons = session.scalars(select(AutoreplyLog.suppressed_reason).where(
        AutoreplyLog.suppressed_reason.is_not(None)))
    assert list(reasons) == ["sender_hourly_cap"]


def rewrite(raw: bytes, **changes: str | None) -> bytes:
    """Replace (None: drop) header fields of raw mail; underscores in names stand for dashes."""
    head, _, body = raw.partition(b"\r\n\r\n")
    msg = email.message_from_bytes(head + b"\r\n\r\n", policy=email.policy.compat32)
    for name, value in changes.items():
        del msg[name.replace("_", "-")]
        if value is not None:
            msg[name.replace("_", "-")] = value
    headers = msg.as_bytes().replace(b"\r\n", b"\n").strip().replace(b"\n", b"\r\n")
    return headers + b"\r\n\r\n" + body


def test_our_acknowledgement_coming_back_is_never_answered(
        session: Session, settings: Settings, receive: Any, registry: ChannelRegistry,
        sink: Sink) -> None:
    receive(mail())
    sweep_outbox(session, registry, settings)
    [delivery] = sink.deliveries
    # Forwarded back as new mail (unthreaded), the way a customer's mailbox rule might.
    back = {"In_Reply_To": None, "References": None, "Subject": "Fwd: ack"}
    bare = {"Auto_Submitted": None, "X_Auto_Response_Suppress": None}
    # Every automatic header stripped, sent as the customer: our Message-ID is the one our
    # sent message recorded, so intake knows it as ours (a duplicate) and nothing answers.
    result = receive(rewrite(delivery.data, From="anna@example.com", **bare, **back))
    assert result.status == "duplicate" and result.acknowledgement is None
    variants = [
        # resent as the customer under a new id: the Auto-Submitted header says it
        rewrite(delivery.data, From="anna@example.com", Message_ID="<r1@mail.example.com>",
                **back),
        # headers stripped and a new id, but from our own inbox address
        rewrite(delivery.data, Message_ID="<r2@mail.example.com>", **bare, **back),
    ]
    for raw in variants:
        result = receive(raw)
        assert result.status == "created" and result.acknowledgement is None
    reasons = list(session.scalars(select(AutoreplyLog.suppressed_reason)
                                   .order_by(AutoreplyLog.id)))
    assert reasons == [None, "auto_submitted", "own_mail"]
    assert len(acknowledgements(session)) == 1


@dataclass
class Instance:
    """One of our installations: its database, settings and inbox."""

    db: Database
    session: Session
    settings: Settings
    inbox_id: int


@pytest.fixture
def peer(tmp_path: Path, sink_server: Sink) -> Iterator[Instance]:
    """A second installation on another domain, relaying through the same sink."""
    db = Database("sqlite://")
    db.create_all()
    settings = Settings(data_dir=tmp_path / "peer", database_url="sqlite://",
                        secret_key="test-secret-key-not-for-production", testing=True,
                        smtp_relay_host="127.0.0.1", smtp_relay_port=sink_server.port,
                        smtp_domain="desk.other.test")
    with db.session() as session:
        box = Inbox(name="Desk", channel="email", address="desk@other.test")
        session.add(box)
        session.commit()
        yield Instance(db, session, settings, box.id)
    db.dispose()


def test_two_of_our_installations_never_ping_pong(
        db: Database, session: Session, settings: Settings, inbox: Inbox,
        stand_in: ChannelRegistry, registry: ChannelRegistry, peer: Instance, sink: Sink
        ) -> None:
    ours = Instance(db, session, settings, inbox.id)
    by_address = {INBOX: ours, "desk@other.test": peer}
    # Someone writes to the peer from our address (a forwarded mail, a forged sender):
    # the peer acknowledges to us, and our side must not answer its acknowledgement.
    receive_email(peer.session, mail(sender=INBOX, subject="Partner question"), stand_in,
                  peer.settings, peer.inbox_id)
    seen = 0
    for _ in range(10):
        for instance in (ours, peer):
            sweep_outbox(instance.session, registry, instance.settings)
        new = sink.deliveries[seen:]
        seen += len(new)
        if not new:
            break
        for delivery in new:
            for rcpt in delivery.rcpt_tos:
                target = by_address.get(rcpt)
                if target is not None:
                    receive_email(target.session, delivery.data, stand_in, target.settings,
                                  target.inbox_id)
    assert [d.rcpt_tos for d in sink.deliveries] == [(INBOX,)]
    assert acknowledgements(session) == []
    assert session.scalar(select(AutoreplyLog.suppressed_reason)) == "auto_submitted"


def test_sweep_acknowledges_recent_tickets_created_without_the_hook(
        session: Session, settings: Settings, inbox: Inbox) -> None:
    def create(external_id: str, now: dt.datetime) -> None:
        ingest_inbound(session, InboundContact(
            channel="email", external_id=external_id, sender=Identity("email", f"{external_id}"),
            subject="Hi", text="Hello there", inbox_id=inbox.id,
            thread=ThreadHints(thread_on_open_ticket=False)), settings=settings, now=now)

    create("old@example.com", T0 - dt.timedelta(hours=2))
    create("new@example.com", T0 - dt.timedelta(minutes=5))
    assert sweep_acknowledgements(session, settings, T0) == 1
    assert sweep_acknowledgements(session, settings, T0) == 0
    assert [a.recipient for a in acknowledgements(session)] == ["new@example.com"]


def test_with_the_real_parser_ack_reply_and_out_of_office(
        session: Session, inbox: Inbox, registry: ChannelRegistry, settings: Settings,
        jobs: InlineJobQueue, sink: Sink) -> None:
    """End to end through ``parser.email_to_contact``: the acknowledgement's Reply-To and
    ids thread the customer's answer, and an out-of-office reply gets nothing back."""
    first = receive_email(session, mail(message_id="start@mail.example.com"), registry,
                          settings, inbox.id, jobs=jobs)
    assert first.status == "created" and first.acknowledgement is not None
    [delivery] = sink.deliveries
    ack = delivery.message
    answer = mail(subject=f"Re: {ack['Subject']}", text="Thanks, one more detail.",
                  In_Reply_To=ack["Message-ID"], References=ack["Message-ID"])
    answer = answer.replace(f"To: {INBOX}".encode(), f"To: {ack['Reply-To']}".encode())
    second = receive_email(session, answer, registry, settings, inbox.id, jobs=jobs)
    assert second.status == "appended" and second.ticket == first.ticket
    away = receive_email(session, mail(subject="Out of office", text="Back on Monday.",
                                       Auto_Submitted="auto-replied"),
                         registry, settings, inbox.id, jobs=jobs)
    assert away.acknowledgement is None
    assert len(sink.deliveries) == 1 and len(acknowledgements(session)) == 1


def test_an_import_can_skip_acknowledgements(session: Session, receive: Any) -> None:
    received = receive(mail(), acknowledge_new=False)
    assert received.status == "created" and received.acknowledgement is None
    assert acknowledgements(session) == [] and session.scalar(select(AutoreplyLog)) is None
