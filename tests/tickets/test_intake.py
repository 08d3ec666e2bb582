"""Intake: from an ``InboundContact`` (or a stored raw payload) to customers, tickets, messages."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contactcenter.channels.base import AttachmentRef, ChannelRegistry, Identity
from contactcenter.config import Settings
from contactcenter.customers.models import Customer, CustomerIdentity, Organisation
from contactcenter.events import EventLog, RecordingPublisher
from contactcenter.tickets import intake
from contactcenter.tickets.attachments import attachment_path
from contactcenter.tickets.errors import IntakeError
from contactcenter.tickets.intake import (
    NO_CONTENT,
    IntakeResult,
    apply_contact,
    ingest_inbound,
    process_raw,
    replay_failed,
    store_raw,
)
from contactcenter.tickets.models import Attachment, Message, RawInbound, RawState, Ticket
from contactcenter.tickets.service import change_status
from tests.factories import make_contact, make_customer, make_inbox

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def ingest(session: Session, settings: Settings, now: dt.datetime = T0, **kwargs: Any
           ) -> IntakeResult:
    return ingest_inbound(session, make_contact(**kwargs), settings=settings, now=now)


def types(events: RecordingPublisher) -> list[str]:
    return [e.type for e in events.published]


# --- new contact, events after commit ------------------------------------------------------

def test_new_contact_creates_customer_ticket_and_message(
        session: Session, settings: Settings, events: RecordingPublisher) -> None:
    result = ingest(session, settings, sender="anna@example.com", external_id="m-1",
                    subject="Router down", text="It blinks red.")

    assert result.status == "created"
    assert result.rule == "new_ticket"
    assert result.reopened is False
    ticket = session.get(Ticket, result.ticket_id)
    assert ticket is not None and ticket.number == result.ticket_number
    assert ticket.subject == "Router down"
    assert ticket.status == "new"
    assert ticket.channel == "api"
    assert ticket.customer_id == result.customer_id
    assert ticket.last_activity_at == T0
    assert ticket.last_customer_message_at == T0
    assert len(ticket.reply_token) == 16
    message = session.get(Message, result.message_id)
    assert message is not None
    assert (message.ticket_id, message.direction, message.external_id, message.text,
            message.sender, message.customer_id) == (
        ticket.id, "inbound", "m-1", "It blinks red.", "anna@example.com", result.customer_id)
    customer = session.get(Customer, result.customer_id)
    assert customer is not None and customer.name == "Anna Petrova"
    assert [(i.kind, i.address) for i in customer.identities] == [("email", "anna@example.com")]
    assert (count(session, Customer), count(session, Ticket), count(session, Message)) == (1, 1, 1)

    assert types(events) == ["customer.created", "ticket.created", "message.created"]
    created = events.published[1]
    assert created.payload["ticket_id"] == ticket.id
    assert created.payload["number"] == ticket.number
    assert f"ticket:{ticket.id}" in created.rooms
    assert f"customer:{customer.id}" in created.rooms
    assert events.published[2].payload["message_id"] == message.id


def test_ticket_numbers_increase(session: Session, settings: Settings) -> None:
    first = ingest(session, settings)
    second = ingest(session, settings)
    assert first.ticket_number == intake.TICKET_NUMBER_START
    assert second.ticket_number == first.ticket_number + 1


def test_events_are_published_only_after_commit(
        session: Session, settings: Settings, events: RecordingPublisher) -> None:
    result = apply_contact(session, make_contact(), settings, T0)
    assert result.status == "created"
    assert events.published == []  # recorded, not yet published
    assert len(session.info["pending_events"]) == 3
    assert count(session, EventLog) == 0  # written by one INSERT at the commit
    session.commit()
    assert types(events) == ["customer.created", "ticket.created", "message.created"]
    assert count(session, EventLog) == 3
    assert [e.id for e in events.published] == sorted(
        session.scalars(select(EventLog.id)).all())


def test_rollback_publishes_no_events(
        session: Session, settings: Settings, events: RecordingPublisher) -> None:
    apply_contact(session, make_contact(), settings, T0)
    session.rollback()
    assert events.published == []
    assert count(session, Ticket) == 0
    assert count(session, EventLog) == 0
    # The next transaction publishes only its own events.
    ingest(session, settings)
    assert types(events) == ["customer.created", "ticket.created", "message.created"]


def test_failed_ingest_publishes_nothing(session: Session, settings: Settings,
                                         events: RecordingPublisher,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(intake, "ticket_rooms", boom)
    with pytest.raises(RuntimeError):
        ingest(session, settings)
    assert events.published == []
    assert count(session, Ticket) == 0
    assert count(session, Customer) == 0


# --- idempotency ---------------------------------------------------------------------------

def test_same_external_id_twice_is_a_duplicate(
        session: Session, settings: Settings, events: RecordingPublisher) -> None:
    first = ingest(session, settings, sender="anna@example.com", external_id="m-1")
    published = len(events.published)
    again = ingest(session, settings, sender="anna@example.com", external_id="m-1",
                   text="a redelivery")

    assert again.status == "duplicate"
    assert again.rule == "duplicate"
    assert (again.ticket_id, again.ticket_number, again.message_id, again.customer_id) == (
        first.ticket_id, first.ticket_number, first.message_id, first.customer_id)
    assert (count(session, Customer), count(session, Ticket), count(session, Message)) == (1, 1, 1)
    assert len(events.published) == published


def test_duplicate_from_another_sender_changes_nothing(
        session: Session, settings: Settings) -> None:
    first = ingest(session, settings, sender="anna@example.com", external_id="m-1")
    again = ingest(session, settings, sender="boris@example.com", external_id="m-1")
    assert again.status == "duplicate"
    assert again.message_id == first.message_id
    assert count(session, Customer) == 1
    assert count(session, CustomerIdentity) == 1


def test_same_external_id_on_another_channel_is_not_a_duplicate(
        session: Session, settings: Settings) -> None:
    first = ingest(session, settings, sender="anna@example.com", external_id="m-1",
                   channel="api")
    other = ingest(session, settings, sender="anna@example.com", external_id="m-1",
                   channel="chat")
    assert other.status == "created"
    assert other.message_id != first.message_id
    assert other.ticket_id != first.ticket_id  # the recent open ticket is per channel
    assert other.customer_id == first.customer_id
    assert count(session, Message) == 2


# --- identities ----------------------------------------------------------------------------

def test_email_case_and_whitespace_are_one_customer(session: Session, settings: Settings
                                                   ) -> None:
    results = [ingest(session, settings, sender=address) for address in
               ("anna@example.com", "  Anna@Example.COM ", "<ANNA@example.com>")]
    assert len({r.customer_id for r in results}) == 1
    assert count(session, Customer) == 1
    assert list(session.scalars(select(CustomerIdentity.address))) == ["anna@example.com"]
    assert [r.status for r in results] == ["created", "appended", "appended"]


@pytest.mark.parametrize("variants", [
    ("+1 202-555-0143", "(202) 555-0143", "202.555.0143", "+12025550143"),
    ("+7 916 123-45-67", "+79161234567", " +7 (916) 1234567 "),
])
def test_phone_identities_are_normalised_to_e164(
        session: Session, settings: Settings, variants: tuple[str, ...]) -> None:
    results = [ingest(session, settings, kind="phone", sender=v, channel="sms")
               for v in variants]
    assert len({r.customer_id for r in results}) == 1
    addresses = list(session.scalars(select(CustomerIdentity.address)))
    assert len(addresses) == 1
    assert addresses[0].startswith("+") and addresses[0][1:].isdigit()
    assert addresses[0] in {"+12025550143", "+79161234567"}


def test_other_identities_are_added_unless_they_belong_to_someone_else(
        session: Session, settings: Settings) -> None:
    boris = make_customer(session, "Boris", email="boris@example.com")
    session.commit()
    result = ingest(session, settings, sender="anna@example.com", other=(
        Identity("phone", "+1 202 555 0143"),
        Identity("email", "BORIS@example.com"),  # Boris's: not proof enough to merge
        Identity("chat", "visitor-77"),
    ))
    assert result.status == "created"
    anna = session.get(Customer, result.customer_id)
    assert anna is not None
    assert sorted((i.kind, i.address) for i in anna.identities) == [
        ("chat", "visitor-77"), ("email", "anna@example.com"), ("phone", "+12025550143")]
    session.refresh(boris)
    assert [i.address for i in boris.identities] == ["boris@example.com"]


def test_sender_created_concurrently_is_reused(session: Session, settings: Settings,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from contactcenter.customers import service as customers

    existing = make_customer(session, "Anna", email="anna@example.com")
    session.commit()
    real = customers.find_identity
    calls = {"n": 0}

    def racy(session: Session, kind: str, address: str) -> CustomerIdentity | None:
        # The first look misses the row another writer committed a moment ago.
        calls["n"] += 1
        return None if calls["n"] == 1 else real(session, kind, address)

    monkeypatch.setattr(customers, "find_identity", racy)
    result = ingest(session, settings, sender="anna@example.com")
    assert result.status == "created"
    assert result.customer_id == existing.id
    assert count(session, Customer) == 1
    assert count(session, Ticket) == 1


def test_invalid_sender_address_is_refused(session: Session, settings: Settings) -> None:
    with pytest.raises(IntakeError):
        ingest(session, settings, sender="not an address")
    assert count(session, Customer) == 0


# --- threading -----------------------------------------------------------------------------

def test_explicit_ticket_number_threads(session: Session, settings: Settings) -> None:
    first = ingest(session, settings, sender="anna@example.com")
    reply = ingest(session, settings, sender="anna@example.com", ticket_number=first.ticket_number,
                   thread_on_open_ticket=False, now=T0 + dt.timedelta(days=60))
    assert (reply.status, reply.rule, reply.ticket_id) == (
        "appended", "explicit_reference", first.ticket_id)


def test_explicit_ticket_number_from_colleague_threads(session: Session, settings: Settings
                                                      ) -> None:
    org = Organisation(name="Acme")
    session.add(org)
    make_customer(session, email="anna@acme.test", organisation=org)
    make_customer(session, email="boris@acme.test", organisation=org)
    session.commit()
    first = ingest(session, settings, sender="anna@acme.test")
    colleague = ingest(session, settings, sender="boris@acme.test",
                       ticket_number=first.ticket_number)
    assert colleague.rule == "explicit_reference"
    assert colleague.ticket_id == first.ticket_id
    assert colleague.customer_id != first.customer_id


def test_explicit_ticket_number_from_stranger_needs_the_token(
        session: Session, settings: Settings) -> None:
    first = ingest(session, settings, sender="anna@example.com")
    ticket = session.get(Ticket, first.ticket_id)
    assert ticket is not None
    guess = ingest(session, settings, sender="mallory@example.net",
                   ticket_number=first.ticket_number)
    assert guess.status == "created" and guess.ticket_id != first.ticket_id
    wrong = ingest(session, settings, sender="mallory@example.net",
                   ticket_number=first.ticket_number, reply_token="0" * 16,
                   thread_on_open_ticket=False)
    assert wrong.status == "created" and wrong.ticket_id not in (first.ticket_id, guess.ticket_id)
    right = ingest(session, settings, sender="forwarded@example.org",
                   ticket_number=first.ticket_number, reply_token=ticket.reply_token)
    assert (right.status, right.rule, right.ticket_id) == (
        "appended", "explicit_reference", first.ticket_id)


def test_in_reply_to_threads_onto_the_referenced_ticket(session: Session, settings: Settings
                                                       ) -> None:
    first = ingest(session, settings, sender="anna@example.com", external_id="<a1@mail>")
    second = ingest(session, settings, sender="anna@example.com", external_id="<a2@mail>",
                    thread_on_open_ticket=False)  # a separate ticket
    assert second.ticket_id != first.ticket_id
    reply = ingest(session, settings, sender="anna@example.com",
                   in_reply_to=("<unknown@mail>", "<a1@mail>"), now=T0 + dt.timedelta(days=90))
    assert (reply.status, reply.rule, reply.ticket_id) == (
        "appended", "reply_headers", first.ticket_id)


def test_in_reply_to_from_a_stranger_is_ignored(session: Session, settings: Settings) -> None:
    first = ingest(session, settings, sender="anna@example.com", external_id="<a1@mail>")
    other = ingest(session, settings, sender="mallory@example.net", in_reply_to=("<a1@mail>",))
    assert other.status == "created"
    assert other.ticket_id != first.ticket_id


def test_in_reply_to_only_matches_the_same_channel(session: Session, settings: Settings) -> None:
    first = ingest(session, settings, sender="anna@example.com", external_id="x-1", channel="api")
    other = ingest(session, settings, sender="anna@example.com", channel="chat",
                   in_reply_to=("x-1",))
    assert other.status == "created" and other.ticket_id != first.ticket_id


def test_recent_open_ticket_threads_within_the_window(session: Session, settings: Settings
                                                     ) -> None:
    assert settings.reopen_window_days == 14
    first = ingest(session, settings, sender="anna@example.com", now=T0)
    inside = ingest(session, settings, sender="anna@example.com",
                    now=T0 + dt.timedelta(days=14))  # exactly at the edge
    assert (inside.status, inside.rule, inside.ticket_id) == (
        "appended", "open_ticket", first.ticket_id)
    ticket = session.get(Ticket, first.ticket_id)
    assert ticket is not None and ticket.last_activity_at == T0 + dt.timedelta(days=14)
    # The window counts from the last activity, not from creation.
    later = ingest(session, settings, sender="anna@example.com",
                   now=T0 + dt.timedelta(days=27))
    assert later.ticket_id == first.ticket_id
    after = ingest(session, settings, sender="anna@example.com",
                   now=T0 + dt.timedelta(days=41, seconds=1))
    assert (after.status, after.rule) == ("created", "new_ticket")
    assert after.ticket_id != first.ticket_id


def test_thread_on_open_ticket_false_opens_a_new_ticket(session: Session, settings: Settings
                                                       ) -> None:
    first = ingest(session, settings, sender="anna@example.com")
    second = ingest(session, settings, sender="anna@example.com", thread_on_open_ticket=False)
    assert second.status == "created" and second.ticket_id != first.ticket_id


def test_other_customers_open_ticket_is_not_used(session: Session, settings: Settings) -> None:
    first = ingest(session, settings, sender="anna@example.com")
    other = ingest(session, settings, sender="boris@example.com")
    assert other.ticket_id != first.ticket_id


def test_solved_ticket_reopens(session: Session, settings: Settings,
                               events: RecordingPublisher) -> None:
    first = ingest(session, settings, sender="anna@example.com")
    ticket = session.get(Ticket, first.ticket_id)
    assert ticket is not None
    change_status(session, ticket, "solved", None, now=T0 + dt.timedelta(hours=1))
    session.commit()
    assert ticket.solved_at is not None
    events.published.clear()

    again = ingest(session, settings, sender="anna@example.com", now=T0 + dt.timedelta(days=2))

    assert (again.status, again.reopened, again.ticket_id) == ("appended", True, first.ticket_id)
    session.refresh(ticket)
    assert ticket.status == "open"
    assert ticket.reopen_count == 1
    assert ticket.solved_at is None
    assert types(events) == ["ticket.status_changed", "message.created"]
    assert events.published[0].payload["from"] == "solved"
    assert events.published[0].payload["status"] == "open"


def test_pending_ticket_becomes_open_without_reopen(session: Session, settings: Settings,
                                                    events: RecordingPublisher) -> None:
    first = ingest(session, settings, sender="anna@example.com")
    ticket = session.get(Ticket, first.ticket_id)
    assert ticket is not None
    change_status(session, ticket, "pending", None)
    session.commit()
    again = ingest(session, settings, sender="anna@example.com")
    session.refresh(ticket)
    assert (again.reopened, ticket.status, ticket.reopen_count) == (False, "open", 0)


def test_closed_ticket_is_never_reused(session: Session, settings: Settings) -> None:
    first = ingest(session, settings, sender="anna@example.com", external_id="c-1")
    ticket = session.get(Ticket, first.ticket_id)
    assert ticket is not None
    change_status(session, ticket, "closed", None)
    session.commit()
    by_window = ingest(session, settings, sender="anna@example.com")
    by_number = ingest(session, settings, sender="anna@example.com",
                       ticket_number=first.ticket_number, reply_token=ticket.reply_token,
                       thread_on_open_ticket=False)
    by_header = ingest(session, settings, sender="anna@example.com", in_reply_to=("c-1",),
                       thread_on_open_ticket=False)
    for result in (by_window, by_number, by_header):
        assert result.status == "created"
        assert result.ticket_id != first.ticket_id
    session.refresh(ticket)
    assert ticket.status == "closed"
    assert session.scalar(select(func.count()).select_from(Message)
                          .where(Message.ticket_id == ticket.id)) == 1


def test_inbox_reopen_window_overrides_settings(session: Session, settings: Settings) -> None:
    short = make_inbox(session, reopen_window_days=2)
    long = make_inbox(session, reopen_window_days=30)
    default = make_inbox(session)
    session.commit()

    a = ingest(session, settings, sender="anna@example.com", inbox_id=short.id, now=T0)
    b = ingest(session, settings, sender="anna@example.com", inbox_id=short.id,
               now=T0 + dt.timedelta(days=3))
    assert b.status == "created" and b.ticket_id != a.ticket_id  # settings' 14 would thread

    c = ingest(session, settings, sender="boris@example.com", inbox_id=long.id, now=T0)
    d = ingest(session, settings, sender="boris@example.com", inbox_id=long.id,
               now=T0 + dt.timedelta(days=20))
    assert d.ticket_id == c.ticket_id  # settings' 14 would not

    e = ingest(session, settings, sender="carl@example.com", inbox_id=default.id, now=T0)
    f = ingest(session, settings, sender="carl@example.com", inbox_id=default.id,
               now=T0 + dt.timedelta(days=15))
    assert f.ticket_id != e.ticket_id


def test_recent_ticket_is_per_inbox(session: Session, settings: Settings) -> None:
    one, two = make_inbox(session), make_inbox(session)
    session.commit()
    a = ingest(session, settings, sender="anna@example.com", inbox_id=one.id)
    b = ingest(session, settings, sender="anna@example.com", inbox_id=two.id)
    assert b.ticket_id != a.ticket_id
    ticket = session.get(Ticket, b.ticket_id)
    assert ticket is not None and ticket.inbox_id == two.id


# --- content -------------------------------------------------------------------------------

def test_html_is_sanitised(session: Session, settings: Settings) -> None:
    html = ('<p onclick="steal()">Hello <b>there</b></p>'
            '<script>alert(1)</script>'
            '<img src="x" onerror="alert(2)">'
            '<a href="javascript:alert(3)">click</a>'
            '<a href="https://example.com/help">help</a>'
            '<iframe src="https://evil.example"></iframe>')
    result = ingest(session, settings, html=html, text="")
    message = session.get(Message, result.message_id)
    assert message is not None
    cleaned = message.html.lower()
    for bad in ("<script", "alert(1)", "onerror", "onclick", "javascript:", "<iframe"):
        assert bad not in cleaned
    assert "<b>there</b>" in message.html
    assert 'href="https://example.com/help"' in message.html
    assert "noopener" in message.html
    assert message.text == ""  # there is visible HTML content


@pytest.mark.parametrize(("text", "html"), [
    ("", ""),
    ("  \n\t ", ""),
    ("", "<script>alert(1)</script>"),
])
def test_empty_body_gets_a_placeholder(session: Session, settings: Settings,
                                       text: str, html: str) -> None:
    result = ingest(session, settings, text=text, html=html, subject="")
    message = session.get(Message, result.message_id)
    ticket = session.get(Ticket, result.ticket_id)
    assert message is not None and ticket is not None
    assert message.text == NO_CONTENT
    assert message.html == ""
    assert ticket.subject == NO_CONTENT


def test_subject_falls_back_to_first_line_of_text(session: Session, settings: Settings) -> None:
    result = ingest(session, settings, subject="", text="\n  Printer on fire\nsecond line")
    ticket = session.get(Ticket, result.ticket_id)
    assert ticket is not None and ticket.subject == "Printer on fire"


def test_attachments_are_stored_content_addressed_with_safe_names(
        session: Session, settings: Settings) -> None:
    pdf = b"%PDF-1.7 invoice"
    refs = (
        AttachmentRef("../../etc/passwd", "text/plain", b"root:x:0:0"),
        AttachmentRef("C:\\Users\\me\\invoice.pdf", "application/pdf", pdf),
        AttachmentRef("copy\x00of\x1f<invoice>.pdf", "application/pdf", pdf),
        AttachmentRef("", "", b"anonymous bytes"),
        AttachmentRef("logo.png", "image/png", b"\x89PNG", content_id="<logo@x>", inline=True),
    )
    result = ingest(session, settings, attachments=refs)
    message = session.get(Message, result.message_id)
    assert message is not None
    stored = message.attachments
    assert [a.filename for a in stored] == [
        "passwd", "invoice.pdf", "copyof_invoice_.pdf", "attachment-4", "logo.png"]
    assert [a.content_type for a in stored] == [
        "text/plain", "application/pdf", "application/pdf", "application/octet-stream",
        "image/png"]
    for attachment, ref in zip(stored, refs, strict=True):
        digest = hashlib.sha256(ref.data).hexdigest()
        assert attachment.sha256 == digest
        assert attachment.size == len(ref.data)
        path = attachment_path(settings.data_dir, digest)
        assert path.read_bytes() == ref.data
        assert path.is_relative_to(settings.data_dir / "attachments")
    assert stored[4].inline is True and stored[4].content_id == "<logo@x>"
    # The same bytes are stored once.
    files = [p for p in (settings.data_dir / "attachments").rglob("*") if p.is_file()]
    assert len(files) == 4
    assert not any(p.name.startswith(".tmp-") for p in files)


def test_oversize_attachment_is_dropped_with_a_note(session: Session, settings: Settings
                                                   ) -> None:
    small_settings = settings.replace(attachment_max_bytes=10)
    big = b"B" * 11
    result = ingest(session, small_settings, text="see attached", attachments=(
        AttachmentRef("huge.iso", "application/octet-stream", big),
        AttachmentRef("ok.txt", "text/plain", b"0123456789"),
    ))
    message = session.get(Message, result.message_id)
    assert message is not None
    assert [a.filename for a in message.attachments] == ["ok.txt"]
    assert message.text.startswith("see attached")
    assert "huge.iso" in message.text and "11 bytes" in message.text
    assert not attachment_path(small_settings.data_dir,
                               hashlib.sha256(big).hexdigest()).exists()
    assert count(session, Attachment) == 1


def test_too_many_attachments_are_capped(session: Session, settings: Settings,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake, "MAX_ATTACHMENTS", 2)
    refs = tuple(AttachmentRef(f"f{i}.txt", "text/plain", f"{i}".encode()) for i in range(5))
    result = ingest(session, settings, attachments=refs)
    message = session.get(Message, result.message_id)
    assert message is not None
    assert [a.filename for a in message.attachments] == ["f0.txt", "f1.txt"]
    assert "[3 more attachments dropped]" in message.text


# --- raw payloads: store first, process, fail visibly, replay -------------------------------

def api_payload(external_id: str = "crm-1", **extra: Any) -> bytes:
    data = {"external_id": external_id,
            "from": {"kind": "email", "address": "anna@example.com", "name": "Anna"},
            "subject": "Router down", "text": "It blinks red."}
    data.update(extra)
    return json.dumps(data).encode()


def test_store_raw_twice_returns_the_same_row(session: Session) -> None:
    raw, new = store_raw(session, "api", "crm-1", api_payload())
    again, new_again = store_raw(session, "api", "crm-1", b"a different redelivery")
    assert (new, new_again) == (True, False)
    assert again.id == raw.id
    assert again.payload == api_payload()
    assert count(session, RawInbound) == 1
    other, other_new = store_raw(session, "chat", "crm-1", b"{}")
    assert other_new is True and other.id != raw.id


def test_store_raw_commits_before_processing(db: Any, session: Session) -> None:
    raw, _ = store_raw(session, "api", "crm-1", api_payload())
    with db.session() as other:  # another session sees the committed row
        row = other.get(RawInbound, raw.id)
        assert row is not None and row.state == RawState.PENDING


def test_process_raw_ingests_and_marks_processed(
        session: Session, settings: Settings, registry: ChannelRegistry) -> None:
    raw, _ = store_raw(session, "api", "crm-1", api_payload())
    result = process_raw(session, raw.id, registry, settings)
    assert result is not None and result.status == "created"
    session.refresh(raw)
    assert (raw.state, raw.ticket_id, raw.attempts, raw.error) == (
        RawState.PROCESSED, result.ticket_id, 1, "")
    message = session.get(Message, result.message_id)
    assert message is not None and message.raw_id == raw.id
    # Processing again is a no-op that points at the same message.
    again = process_raw(session, raw.id, registry, settings)
    assert again is not None and again.status == "duplicate"
    assert again.message_id == result.message_id
    assert count(session, Message) == 1


def test_unparseable_raw_is_kept_failed_and_replays_after_fixing(
        session: Session, settings: Settings, registry: ChannelRegistry,
        events: RecordingPublisher) -> None:
    broken = b"{not json"
    raw, _ = store_raw(session, "api", "crm-1", broken)

    assert process_raw(session, raw.id, registry, settings) is None

    session.expire_all()
    row = session.get(RawInbound, raw.id)
    assert row is not None
    assert row.state == RawState.FAILED
    assert "ChannelError" in row.error and "JSON" in row.error
    assert row.payload == broken  # never touched
    assert row.attempts == 1
    assert count(session, Ticket) == 0
    assert count(session, Customer) == 0
    assert types(events) == ["raw.failed"]

    # An operator repairs the payload; the replay processes it exactly once.
    row.payload = api_payload()
    session.commit()
    replayed = replay_failed(session, registry, settings)
    assert [(raw_id, r.status if r else None) for raw_id, r in replayed] == [(raw.id, "created")]
    assert replay_failed(session, registry, settings) == []
    session.expire_all()
    row = session.get(RawInbound, raw.id)
    assert row is not None
    assert (row.state, row.attempts) == (RawState.PROCESSED, 2)
    assert count(session, Ticket) == 1
    assert count(session, Message) == 1


def test_failure_inside_intake_leaves_raw_failed_and_replays_once(
        session: Session, settings: Settings, registry: ChannelRegistry,
        events: RecordingPublisher, monkeypatch: pytest.MonkeyPatch) -> None:
    raw, _ = store_raw(session, "api", "crm-1", api_payload(html="<p>hi</p>"))

    def exploding_sanitiser(html: str) -> str:
        raise RuntimeError("sanitiser crashed")

    # Fails after the customer and the ticket were flushed: both must roll back.
    monkeypatch.setattr(intake, "sanitise_html", exploding_sanitiser)
    assert process_raw(session, raw.id, registry, settings) is None
    assert replay_failed(session, registry, settings)[0][1] is None  # still broken

    session.expire_all()
    row = session.get(RawInbound, raw.id)
    assert row is not None
    assert row.state == RawState.FAILED
    assert row.error == "RuntimeError: sanitiser crashed"
    assert row.attempts == 2
    assert row.ticket_id is None
    assert (count(session, Ticket), count(session, Customer), count(session, Message)) == (0, 0, 0)
    assert types(events) == ["raw.failed", "raw.failed"]

    monkeypatch.undo()
    events.published.clear()
    replayed = replay_failed(session, registry, settings)
    assert len(replayed) == 1 and replayed[0][0] == raw.id
    result = replayed[0][1]
    assert result is not None and result.status == "created"
    assert replay_failed(session, registry, settings) == []
    assert process_raw(session, raw.id, registry, settings).status == "duplicate"  # type: ignore[union-attr]

    session.expire_all()
    row = session.get(RawInbound, raw.id)
    assert row is not None
    assert (row.state, row.ticket_id, row.attempts) == (RawState.PROCESSED, result.ticket_id, 3)
    assert (count(session, Ticket), count(session, Message)) == (1, 1)
    assert types(events) == ["customer.created", "ticket.created", "message.created"]


def test_replay_failed_filters_by_channel(session: Session, settings: Settings,
                                          registry: ChannelRegistry) -> None:
    raw, _ = store_raw(session, "api", "crm-1", b"garbage")
    process_raw(session, raw.id, registry, settings)
    assert replay_failed(session, registry, settings, channel="chat") == []
    assert [raw_id for raw_id, _ in replay_failed(session, registry, settings,
                                                  channel="api")] == [raw.id]


def test_raw_for_unknown_channel_fails_visibly(session: Session, settings: Settings,
                                               registry: ChannelRegistry) -> None:
    raw, _ = store_raw(session, "carrier-pigeon", "p-1", b"coo")
    assert process_raw(session, raw.id, registry, settings) is None
    session.refresh(raw)
    assert raw.state == RawState.FAILED
    assert "carrier-pigeon" in raw.error

