"""Outbound e-mail through a real SMTP sink on loopback: headers, threading, faults, injection."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from contactcenter.accounts.models import User
from contactcenter.channels.base import (
    ChannelRegistry,
    Identity,
    InboundContact,
    OutboundMessage,
    PermanentDeliveryError,
    ThreadHints,
)
from contactcenter.channels.email.outbound import (
    HeaderInjectionError,
    RelayRejectedError,
    RelayUnavailableError,
    build_email,
    check_relay,
    html_from_text,
    send_email,
    subject_with_token,
    validate_address,
)
from contactcenter.config import Settings
from contactcenter.tickets.attachments import store_bytes
from contactcenter.tickets.intake import ingest_inbound
from contactcenter.tickets.models import Attachment, DeliveryState, Inbox, Message, Ticket
from contactcenter.tickets.outbox import deliver_message, sweep_outbox
from contactcenter.tickets.reply_token import reply_token_key, sign_reply_token
from contactcenter.tickets.service import add_reply, get_ticket
from tests.channels.email import test_outbound_sink as sinks
from tests.channels.email.test_outbound_sink import Sink, free_port, password_checker

sink_server = sinks.sink_server
sink = sinks.sink

CUSTOMER = "anna@example.com"
CUSTOMER_ID = "CAF-1.anna@mail.example.com"


@pytest.fixture
def settings(tmp_path: Path, sink_server: Sink) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url="sqlite://",
                    secret_key="test-secret-key-not-for-production", testing=True,
                    smtp_relay_host="127.0.0.1", smtp_relay_port=sink_server.port,
                    smtp_domain="support.example.test")


@pytest.fixture
def world(session: Session, settings: Settings) -> dict[str, Any]:
    """An email inbox, an agent and a customer's message that opened a ticket."""
    inbox = Inbox(name="Help", channel="email", address="help@acme.test")
    session.add(inbox)
    session.flush()
    agent = User(email="agent@acme.test", name="Test User")  # no password: no slow hashing
    session.add(agent)
    session.commit()
    result = ingest_inbound(session, InboundContact(
        channel="email", external_id=CUSTOMER_ID, sender=Identity("email", CUSTOMER, "Anna"),
        subject="Router down", text="It blinks red.", inbox_id=inbox.id,
        thread=ThreadHints(in_reply_to=("root-0@mail.example.com",)),
    ), settings=settings)
    ticket = get_ticket(session, result.ticket_number)
    return {"inbox": inbox, "agent": agent, "ticket": ticket}


def reply(session: Session, world: dict[str, Any], text: str = "Try restarting it.") -> Message:
    message = add_reply(session, world["ticket"], world["agent"].id, text)
    session.commit()
    return message


def token(settings: Settings, number: int = 1000, secret: str = "ab12cd34",
          recipient: str = CUSTOMER) -> str:
    """The reply token mail about ticket ``number`` to ``recipient`` carries (ID-1)."""
    return sign_reply_token(reply_token_key(settings), number, secret, recipient)


def outbound(**changes: Any) -> OutboundMessage:
    base = OutboundMessage(
        message_id=7, channel="email", recipient=CUSTOMER, subject="Re: Router down [#1000]",
        text="Hello", html="", external_id=None, ticket_number=1000, reply_token="ab12cd34",
        in_reply_to=(CUSTOMER_ID,), inbox_address="help@acme.test")
    return dataclasses.replace(base, **changes)


# --- through the outbox to the sink -------------------------------------------------------

def test_agent_reply_arrives_with_thread_headers_and_is_recorded_sent(
        session: Session, world: dict[str, Any], registry: ChannelRegistry, settings: Settings,
        sink: Sink) -> None:
    ticket: Ticket = world["ticket"]
    message = add_reply(session, ticket, world["agent"].id, "Try restarting it.\n\n<b>Bold?</b>")
    digest = store_bytes(settings.data_dir, b"%PDF-1.4 guide")
    message.attachments.append(Attachment(filename="guide.pdf", content_type="application/pdf",
                                          size=14, sha256=digest))
    session.commit()

    assert deliver_message(session, message.id, registry, settings) == "sent"

    [delivery] = sink.deliveries
    mail = delivery.message
    bound = token(settings, ticket.number, ticket.reply_token)
    our_id = f"msg-{message.id}.{ticket.number}.{bound}@support.example.test"
    assert delivery.mail_from == "help@acme.test"
    assert delivery.rcpt_tos == (CUSTOMER,)
    assert mail["Message-ID"] == f"<{our_id}>"
    assert mail["In-Reply-To"] == f"<{CUSTOMER_ID}>"
    assert mail["References"] == f"<root-0@mail.example.com> <{CUSTOMER_ID}>"
    assert mail["Subject"] == f"Re: Router down [#{ticket.number}]"
    assert str(mail["Subject"]).count(f"[#{ticket.number}]") == 1
    assert mail["Reply-To"] == f"help+t{ticket.number}-{bound}@acme.test"
    assert mail["From"].addresses[0].display_name == "Test User (Customer Support)"
    assert mail["To"] == CUSTOMER
    assert mail["Auto-Submitted"] is None and mail["Bcc"] is None
    assert mail.get_content_type() == "multipart/mixed"
    body = mail.get_body(("plain",))
    assert body is not None and "Try restarting it." in body.get_content()
    html = mail.get_body(("html",))
    assert html is not None and "&lt;b&gt;Bold?&lt;/b&gt;" in html.get_content()
    [part] = list(mail.iter_attachments())
    assert part.get_filename() == "guide.pdf" and part.get_content() == b"%PDF-1.4 guide"

    session.refresh(message)
    assert message.delivery_state == DeliveryState.SENT
    assert message.external_id == our_id
    assert message.delivered_at is not None and message.delivery_error == ""


def test_customer_answer_to_our_message_id_threads_onto_the_ticket(
        session: Session, world: dict[str, Any], registry: ChannelRegistry, settings: Settings,
        sink: Sink) -> None:
    message = reply(session, world)
    deliver_message(session, message.id, registry, settings)
    our_id = sink.deliveries[0].message["Message-ID"].strip("<>")
    answer = ingest_inbound(session, InboundContact(
        channel="email", external_id="answer-1@mail.example.com",
        sender=Identity("email", CUSTOMER), text="Still red.",
        thread=ThreadHints(in_reply_to=(our_id,), thread_on_open_ticket=False),
        inbox_id=world["inbox"].id), settings=settings)
    assert answer.status == "appended" and answer.ticket_id == world["ticket"].id


def test_relay_down_keeps_reply_pending_with_backoff_then_the_sweep_sends_it(
        session: Session, world: dict[str, Any], registry: ChannelRegistry,
        settings: Settings) -> None:
    port = free_port()
    down = settings.replace(smtp_relay_port=port, smtp_relay_timeout_seconds=2)
    message = reply(session, world)
    now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)

    assert deliver_message(session, message.id, registry, down, now) == "pending"
    session.refresh(message)
    assert message.delivery_attempts == 1
    assert message.next_attempt_at == now + dt.timedelta(minutes=1)
    assert "RelayUnavailableError" in message.delivery_error

    late = Sink(port).start()
    try:
        assert sweep_outbox(session, registry, down, now + dt.timedelta(seconds=30)) == {}
        assert sweep_outbox(session, registry, down, now + dt.timedelta(minutes=2)) == {"sent": 1}
        assert [d.rcpt_tos for d in late.deliveries] == [(CUSTOMER,)]
    finally:
        late.stop()
    session.refresh(message)
    assert message.delivery_state == DeliveryState.SENT


def test_no_relay_configured_keeps_reply_pending(
        session: Session, world: dict[str, Any], registry: ChannelRegistry,
        settings: Settings) -> None:
    unset = settings.replace(smtp_relay_host="")
    message = reply(session, world)
    assert deliver_message(session, message.id, registry, unset) == "pending"
    session.refresh(message)
    assert "no relay configured" in message.delivery_error
    assert check_relay(unset) == "no relay configured"


def test_relay_550_fails_the_reply_at_once_with_the_servers_answer(
        session: Session, world: dict[str, Any], registry: ChannelRegistry, settings: Settings,
        sink: Sink) -> None:
    sink.handler.refuse[CUSTOMER] = "550 5.1.1 <anna@example.com>: no such user here"
    message = reply(session, world)
    assert deliver_message(session, message.id, registry, settings) == "failed"
    session.refresh(message)
    assert message.delivery_attempts == 1 and message.next_attempt_at is None
    assert "550 5.1.1 <anna@example.com>: no such user here" in message.delivery_error
    assert sink.deliveries == []


def test_relay_451_is_retried_with_backoff(
        session: Session, world: dict[str, Any], registry: ChannelRegistry, settings: Settings,
        sink: Sink) -> None:
    sink.handler.refuse[CUSTOMER] = "451 4.3.0 try again later"
    message = reply(session, world)
    assert deliver_message(session, message.id, registry, settings) == "pending"
    session.refresh(message)
    assert "451 4.3.0 try again later" in message.delivery_error


def test_resend_after_a_lost_state_write_reuses_the_message_id(
        session: Session, world: dict[str, Any], registry: ChannelRegistry, settings: Settings,
        sink: Sink) -> None:
    message = reply(session, world)
    deliver_message(session, message.id, registry, settings)
    # The worker "died" after the relay's 250, before recording it: the row is still
    # claimed (sending) with no id, and the sweep takes it again once it is stuck.
    message.delivery_state = DeliveryState.SENDING
    message.external_id = None
    message.next_attempt_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    session.commit()
    assert sweep_outbox(session, registry, settings) == {"sent": 1}
    first, second = sink.deliveries
    assert first.message["Message-ID"] == second.message["Message-ID"]


@pytest.mark.parametrize("subject", [
    "Help\r\nBcc: x@evil.example",
    "Help\nBcc: x@evil.example",
    "=?utf-8?q?Help=0D=0ABcc:_x@evil.example?=",
])
def test_subject_injection_is_neutralised_and_nothing_extra_is_sent(
        session: Session, world: dict[str, Any], registry: ChannelRegistry, settings: Settings,
        sink: Sink, subject: str) -> None:
    message = reply(session, world)
    message.subject = subject
    session.commit()
    assert deliver_message(session, message.id, registry, settings) == "sent"
    [delivery] = sink.deliveries
    assert delivery.rcpt_tos == (CUSTOMER,)
    mail = delivery.message
    assert mail["Bcc"] is None
    assert "\n" not in str(mail["Subject"]) and "\r" not in str(mail["Subject"])
    assert b"\r\nBcc:" not in delivery.data


@pytest.mark.parametrize("recipient", [
    "anna@example.com\r\nBcc: x@evil.example",
    "anna@example.com\nRCPT TO:<x@evil.example>",
    "anna@example.com, x@evil.example",
    "Anna <anna@example.com>",
    "anna@example.com\x00",
])
def test_recipient_injection_is_refused_before_any_smtp_command(
        session: Session, world: dict[str, Any], registry: ChannelRegistry, settings: Settings,
        sink: Sink, recipient: str) -> None:
    message = reply(session, world)
    message.recipient = recipient
    session.commit()
    assert deliver_message(session, message.id, registry, settings) == "failed"
    session.refresh(message)
    assert "HeaderInjectionError" in message.delivery_error
    assert sink.handler.mail_commands == 0 and sink.deliveries == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_relay_auth_on_loopback(settings: Settings) -> None:
    relay = Sink(authenticator=password_checker("desk", "s3cret"), auth_require_tls=False,
                 auth_required=True).start()
    try:
        good = settings.replace(smtp_relay_port=relay.port, smtp_relay_user="desk",
                                smtp_relay_password="s3cret")
        assert send_email(outbound(), good).provider_id == (
            f"msg-7.1000.{token(good)}@support.example.test")
        assert len(relay.deliveries) == 1
        assert check_relay(good).startswith("ok: relay 127.0.0.1:")
        bad = good.replace(smtp_relay_password="wrong")
        with pytest.raises(RelayUnavailableError, match="535"):
            send_email(outbound(), bad)
        assert check_relay(bad).startswith("error: relay")
    finally:
        relay.stop()


def test_auth_without_tls_to_a_remote_relay_is_refused(settings: Settings) -> None:
    remote = settings.replace(smtp_relay_host="relay.invalid", smtp_relay_user="desk",
                              smtp_relay_timeout_seconds=1)
    with pytest.raises(RelayUnavailableError, match="without TLS"):
        send_email(outbound(), remote)


def test_non_ascii_domain_goes_out_as_idna(settings: Settings, sink: Sink) -> None:
    send_email(outbound(recipient="anna@пример.рф"), settings)
    assert sink.deliveries[0].rcpt_tos == ("anna@xn--e1afmkfd.xn--p1ai",)


def test_relay_554_is_permanent(settings: Settings, sink: Sink) -> None:
    sink.handler.refuse["x@evil.example"] = "554 5.7.1 relay denied"
    with pytest.raises(RelayRejectedError, match="554 5.7.1 relay denied"):
        send_email(outbound(recipient="x@evil.example"), settings)


# --- building the message (pure) ----------------------------------------------------------

def test_message_id_is_deterministic_and_automatic_mail_says_so(settings: Settings) -> None:
    first = build_email(outbound(auto_submitted=True, language="ru"), settings).message
    again = build_email(outbound(auto_submitted=True, language="ru"), settings).message
    assert first["Message-ID"] == again["Message-ID"] == (
        f"<msg-7.1000.{token(settings)}@support.example.test>")
    assert first["Auto-Submitted"] == "auto-replied"
    assert first["X-Auto-Response-Suppress"] == "All"
    assert first["Content-Language"] == "ru"
    assert first["From"] == "Customer Support <help@acme.test>"


def test_from_falls_back_to_the_configured_address(settings: Settings) -> None:
    built = build_email(outbound(inbox_address=""), settings)
    assert built.sender == "support@support.example.test"
    configured = settings.replace(smtp_from_address="desk@acme.test", smtp_from_name="ACME")
    built = build_email(outbound(inbox_address=""), configured)
    assert str(built.message["From"]) == "ACME <desk@acme.test>"
    assert built.message["Reply-To"] == f"desk+t1000-{token(settings)}@acme.test"


def test_references_are_capped_keeping_the_root_and_skip_invalid_ids(settings: Settings) -> None:
    refs = tuple(f"r{i}@x.example" for i in range(30)) + ("bad id@x", "md5-1@generated")
    mail = build_email(outbound(references=refs), settings).message
    chain = str(mail["References"]).split()
    assert len(chain) == 20
    assert chain[0] == "<r0@x.example>" and chain[-1] == f"<{CUSTOMER_ID}>"
    assert "<bad" not in str(mail["References"]) and "generated" not in str(mail["References"])


def test_stored_html_is_sanitised_again(settings: Settings) -> None:
    mail = build_email(outbound(html='<p onclick="x()">Hi</p><script>alert(1)</script>'),
                       settings).message
    html = mail.get_body(("html",))
    assert html is not None
    content = html.get_content()
    assert "<script" not in content and "onclick" not in content and "Hi" in content


def test_attachments_over_the_limit_or_missing_are_permanent(settings: Settings,
                                                             tmp_path: Path) -> None:
    small = settings.replace(smtp_max_message_bytes=10)
    with pytest.raises(PermanentDeliveryError, match="exceed"):
        build_email(outbound(attachments=(("a.bin", "application/octet-stream", b"x" * 11),)),
                    small)
    with pytest.raises(PermanentDeliveryError, match="missing"):
        build_email(outbound(attachments=(("a.pdf", "application/pdf", tmp_path / "gone"),)),
                    settings)


def test_attachment_names_and_types_are_cleaned(settings: Settings) -> None:
    mail = build_email(outbound(attachments=(
        ("../../etc/passwd\r\nX: y", "text/plain\r\nBcc: x@evil", b"data"),)), settings).message
    [part] = list(mail.iter_attachments())
    assert part.get_filename() == "passwdX_ y"
    assert part.get_content_type() == "application/octet-stream"


@pytest.mark.parametrize(("subject", "expected"), [
    ("Router down", "Router down [#1000]"),
    ("Re: Router down [#1000]", "Re: Router down [#1000]"),
    ("Re: RE: AW: Router [#1000] down [#1000]", "Re: Router down [#1000]"),
    ("Re: Router down [#999]", "Re: Router down [#1000]"),
    ("", "[#1000]"),
    ("a" * 400, "a" * 242 + " [#1000]"),
])
def test_subject_carries_exactly_one_ticket_token(subject: str, expected: str) -> None:
    assert subject_with_token(subject, 1000) == expected


@pytest.mark.parametrize("value", [
    "", "anna", "@example.com", "anna@", "a b@example.com", "anna@example.com, b@example.com",
    '"anna"@example.com', "anna@exa mple.com", "a..b@example.com", "x" * 65 + "@example.com",
    "anna@example.com\r\n", "Anna <anna@example.com>",
])
def test_invalid_addresses_are_refused(value: str) -> None:
    with pytest.raises(HeaderInjectionError):
        validate_address(value)


def test_valid_addresses_are_normalised() -> None:
    assert validate_address("<Anna.Petrova+x@Example.COM>") == "Anna.Petrova+x@example.com"


def test_html_from_text_escapes_and_keeps_paragraphs() -> None:
    assert html_from_text("a <b>\nc\n\nd & e") == "<p>a &lt;b&gt;<br>\nc</p>\n<p>d &amp; e</p>"
