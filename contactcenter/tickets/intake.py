"""Turn an ``InboundContact`` into state: the one writer of customers, tickets and messages.

``ingest_inbound`` drops duplicates by (channel, external id), identifies or
creates the customer, threads the contact (explicit reference, reply headers,
the customer's recent open ticket on the channel, else a new ticket), reopens a
solved ticket, appends the message with its attachments and commits once.
``store_raw`` and ``process_raw`` wrap it for channels: the raw payload is
committed first (that commit is what a channel acknowledges), and a failure
while processing leaves it marked failed and replayable.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    PendingRollbackError,
)
from sqlalchemy.orm import Session

from contactcenter.channels.base import ChannelRegistry, InboundContact, QuarantineError
from contactcenter.config import Settings
from contactcenter.customers.errors import CustomerError
from contactcenter.customers.models import Customer
from contactcenter.customers.service import add_identity, identify_customer
from contactcenter.db import utcnow
from contactcenter.events import record_event, room
from contactcenter.tickets.attachments import safe_filename, store_bytes
from contactcenter.tickets.errors import IntakeError
from contactcenter.tickets.html import sanitise_html
from contactcenter.tickets.models import (
    Attachment,
    Counter,
    Direction,
    Inbox,
    Message,
    MessageReference,
    RawInbound,
    RawState,
    Ticket,
    TicketStatus,
)
from contactcenter.tickets.threading import Candidate, ThreadDecision, ThreadRule, choose_thread

log = logging.getLogger(__name__)

TICKET_NUMBER_START = 1000
MAX_ATTACHMENTS = 100
NO_CONTENT = "(no visible content)"


@dataclass(frozen=True)
class IntakeResult:
    """What intake did with one contact."""

    status: str  # created | appended | duplicate | ignored
    ticket_id: int | None
    ticket_number: int | None
    message_id: int | None
    customer_id: int | None
    rule: str
    reopened: bool = False
    # The rows just written (ticket, message, customer), for a hook that runs in the same
    # transaction (the email acknowledgement); None when nothing was written.
    written: tuple[Ticket, Message, Customer] | None = field(
        default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return {"status": self.status, "ticket": self.ticket_number, "ticket_id": self.ticket_id,
                "message_id": self.message_id, "customer": self.customer_id, "rule": self.rule,
                "reopened": self.reopened}


def next_ticket_number(session: Session) -> int:
    """Return the next ticket number, incremented under the counter's row lock."""
    value = session.scalar(
        update(Counter).where(Counter.name == "ticket").values(value=Counter.value + 1)
        .returning(Counter.value)
    )
    if value is not None:
        return int(value)
    try:
        with session.begin_nested():
            session.add(Counter(name="ticket", value=TICKET_NUMBER_START))
            session.flush()
        return TICKET_NUMBER_START
    except IntegrityError:
        return next_ticket_number(session)


def _candidate(session: Session, *conditions: Any, join_message: bool = False,
               join_reference: bool = False, order: tuple[Any, ...] = ()
               ) -> tuple[Candidate | None, str]:
    """Look a ticket up as a threading candidate (columns only: no ORM objects loaded)."""
    query = select(Ticket.id, Ticket.customer_id, Customer.organisation_id, Ticket.status,
                   Ticket.last_activity_at, Ticket.reply_token
                   ).join(Customer, Customer.id == Ticket.customer_id)
    if join_message:
        query = query.join(Message, Message.ticket_id == Ticket.id)
    if join_reference:
        query = query.join(MessageReference, MessageReference.ticket_id == Ticket.id)
    row = session.execute(query.where(*conditions).order_by(*order).limit(1)).first()
    if row is None:
        return None, ""
    return Candidate(row[0], row[1], row[2], row[3], row[4]), row[5]


def _duplicate(session: Session, contact: InboundContact) -> IntakeResult | None:
    row = session.execute(
        select(Message.id, Message.ticket_id, Message.customer_id, Ticket.number)
        .join(Ticket, Ticket.id == Message.ticket_id)
        .where(Message.channel == contact.channel,
               Message.external_id == contact.external_id[:500])
    ).first()
    if row is None:
        return None
    return IntakeResult("duplicate", row[1], row[3], row[0], row[2], "duplicate")


def _identify(session: Session, contact: InboundContact) -> Customer:
    try:
        customer, _created = identify_customer(
            session, contact.sender.kind, contact.sender.address,
            name=contact.sender.name, language=contact.language,
        )
    except CustomerError as exc:
        raise IntakeError(f"cannot identify the sender: {exc}") from exc
    for other in contact.other_identities:
        try:
            with session.begin_nested():
                add_identity(session, customer, other.kind, other.address)
        except (CustomerError, IntegrityError) as exc:
            # An address that already belongs to someone else is not proof enough to
            # merge two people; a supervisor merges them by hand.
            log.info("identity %s:%s not added to customer %s: %s",
                     other.kind, other.address, customer.id, exc)
    return customer


def _thread(session: Session, contact: InboundContact, customer: Customer,
            now: dt.datetime, window_days: int) -> tuple[Ticket | None, ThreadRule]:
    """Look candidates up strongest first, stopping as soon as one decides."""
    hints = contact.thread
    found: dict[str, Any] = {"explicit": None, "reply_token_ok": False, "replied_to": None,
                             "recent": None}

    def decide() -> ThreadDecision:
        return choose_thread(customer_id=customer.id, organisation_id=customer.organisation_id,
                             thread_on_open_ticket=hints.thread_on_open_ticket, now=now,
                             window_days=window_days, **found)

    if hints.ticket_number is not None:
        explicit, token = _candidate(session, Ticket.number == hints.ticket_number)
        found["explicit"] = explicit
        found["reply_token_ok"] = bool(explicit and hints.reply_token
                                       and secrets.compare_digest(token, hints.reply_token))
    decision = decide()
    if decision.rule is not ThreadRule.EXPLICIT and hints.in_reply_to:
        found["replied_to"], _ = _candidate(
            session, Message.channel == contact.channel,
            Message.external_id.in_(hints.in_reply_to[:50]),
            join_message=True, order=(Message.id.desc(),))
        decision = decide()
    if decision.rule is ThreadRule.NEW and found["replied_to"] is None:
        # A reply that arrived before the message it answers is waiting on a ticket of
        # its own: the original joins it when it finally comes.
        found["replied_to"], _ = _candidate(
            session, MessageReference.channel == contact.channel,
            MessageReference.ref == contact.external_id[:500],
            join_reference=True, order=(MessageReference.id,))
        decision = decide()
    if decision.rule is ThreadRule.NEW and hints.thread_on_open_ticket:
        conditions = [Ticket.customer_id == customer.id, Ticket.channel == contact.channel,
                      Ticket.status != TicketStatus.CLOSED]
        if contact.inbox_id is not None:
            conditions.append(Ticket.inbox_id == contact.inbox_id)
        found["recent"], _ = _candidate(
            session, *conditions, order=(Ticket.last_activity_at.desc(), Ticket.id.desc()))
        decision = decide()
    if decision.ticket_id is None:
        return None, decision.rule
    return session.get(Ticket, decision.ticket_id), decision.rule


def _over_sender_limit(session: Session, contact: InboundContact, customer: Customer,
                       now: dt.datetime, settings: Settings) -> Ticket | None:
    """Return the ticket to group a flood into once a customer is over the new-ticket limit.

    A mail bomb (RELIABILITY LOOP-4) must not flood the queue: past
    ``new_ticket_sender_limit`` tickets opened by one customer within the window, their
    next new contact is appended to their most recent open ticket instead (nothing is
    dropped). One count on ``ix_tickets_customer_status`` (customer_id first).
    """
    limit = settings.new_ticket_sender_limit
    if limit <= 0 or contact.metadata.get("sender_doubt"):
        # An ambiguous sender is never linked onto an existing ticket, grouping included.
        return None
    since = now - dt.timedelta(minutes=settings.new_ticket_sender_window_minutes)
    opened = session.scalar(select(func.count(Ticket.id)).where(
        Ticket.customer_id == customer.id, Ticket.created_at >= since))
    if (opened or 0) < limit:
        return None
    return session.scalar(select(Ticket).where(
        Ticket.customer_id == customer.id, Ticket.channel == contact.channel,
        Ticket.status.not_in((TicketStatus.CLOSED, TicketStatus.SOLVED)))
        .order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(1))


def _store_attachments(contact: InboundContact, message: Message, settings: Settings) -> list[str]:
    notes: list[str] = []
    for index, ref in enumerate(contact.attachments):
        name = safe_filename(ref.filename, f"attachment-{index + 1}")
        if index >= MAX_ATTACHMENTS:
            notes.append(f"[{len(contact.attachments) - MAX_ATTACHMENTS} more attachments dropped]")
            break
        if len(ref.data) > settings.attachment_max_bytes:
            notes.append(f"[attachment {name} removed: {len(ref.data)} bytes is over the limit]")
            continue
        digest = store_bytes(settings.data_dir, ref.data)
        message.attachments.append(Attachment(
            filename=name, content_type=(ref.content_type or "application/octet-stream")[:127],
            size=len(ref.data), sha256=digest, content_id=ref.content_id, inline=ref.inline,
        ))
    return notes


AfterApply = Callable[[Session, IntakeResult, InboundContact, bytes], None]


def ticket_rooms(ticket: Ticket) -> list[str]:
    """Return the rooms that hear about a ticket."""
    rooms = [room("ticket", ticket.id), room("customer", ticket.customer_id)]
    if ticket.queue_id is not None:
        rooms.append(room("queue", ticket.queue_id))
    if ticket.assignee_id is not None:
        rooms.append(room("agent", ticket.assignee_id))
    return rooms


def ticket_summary(ticket: Ticket) -> dict[str, Any]:
    """Return the fields every ticket event carries."""
    return {"ticket_id": ticket.id, "number": ticket.number, "subject": ticket.subject,
            "status": ticket.status, "priority": ticket.priority, "channel": ticket.channel,
            "customer_id": ticket.customer_id, "queue_id": ticket.queue_id,
            "assignee_id": ticket.assignee_id}


def apply_contact(session: Session, contact: InboundContact, settings: Settings,
                  now: dt.datetime | None = None) -> IntakeResult:
    """Do intake's work in the session's transaction without committing."""
    now = now or utcnow()
    duplicate = _duplicate(session, contact)
    if duplicate is not None:
        return duplicate
    if contact.delivery_report is not None:
        from contactcenter.tickets.delivery_reports import apply_delivery_report

        return apply_delivery_report(session, contact, now)
    customer = _identify(session, contact)
    inbox = session.get(Inbox, contact.inbox_id) if contact.inbox_id is not None else None
    window = (inbox.reopen_window_days if inbox and inbox.reopen_window_days is not None
              else settings.reopen_window_days)
    ticket, rule = _thread(session, contact, customer, now, window)
    if ticket is None:
        grouped = _over_sender_limit(session, contact, customer, now, settings)
        if grouped is not None:
            ticket, rule = grouped, ThreadRule.SENDER_LIMIT
    created = ticket is None
    reopened = False
    if ticket is None:
        ticket = Ticket(
            number=next_ticket_number(session),
            subject=(contact.subject or contact.text.strip().split("\n", 1)[0])[:500]
            or NO_CONTENT,
            channel=contact.channel, customer_id=customer.id, inbox_id=contact.inbox_id,
            queue_id=inbox.queue_id if inbox else None, reply_token=secrets.token_hex(8),
            status=TicketStatus.NEW, last_activity_at=now, last_customer_message_at=now,
            created_at=now, updated_at=now,
        )
        session.add(ticket)
    elif ticket.status == TicketStatus.SOLVED:
        ticket.reopen(now)
        reopened = True
    elif ticket.status in (TicketStatus.PENDING,):
        ticket.status = TicketStatus.OPEN
    html = sanitise_html(contact.html)
    text = contact.text if contact.text.strip() or html else NO_CONTENT
    message = Message(
        direction=Direction.INBOUND, channel=contact.channel,
        inbox_id=contact.inbox_id, customer_id=customer.id,
        sender=contact.sender.address[:320], subject=contact.subject[:500], text=text, html=html,
        quoted_text=contact.quoted_text, auto_submitted=contact.auto_submitted,
        external_id=contact.external_id[:500], raw_id=contact.raw_id,
        received_at=contact.received_at or now, created_at=now, updated_at=now,
    )
    if created:
        message.ticket = ticket  # one flush below inserts the ticket, then its message
    else:
        message.ticket_id = ticket.id
    session.add(message)
    notes = _store_attachments(contact, message, settings)
    if notes:
        message.text = message.text + "\n\n" + "\n".join(notes)
    ticket.last_activity_at = now
    ticket.last_customer_message_at = now
    session.flush()
    for ref in dict.fromkeys(r[:500] for r in contact.thread.in_reply_to[:50] if r):
        session.add(MessageReference(message_id=message.id, ticket_id=ticket.id,
                                     channel=contact.channel, ref=ref))
    summary = ticket_summary(ticket)
    rooms = ticket_rooms(ticket)
    if created:
        record_event(session, "ticket.created", summary, rooms)
    elif reopened:
        record_event(session, "ticket.status_changed", {**summary, "from": "solved"}, rooms)
    record_event(session, "message.created",
                 {"ticket_id": ticket.id, "number": ticket.number, "message_id": message.id,
                  "direction": message.direction, "channel": message.channel,
                  "customer_id": customer.id}, rooms)
    from contactcenter import hooks

    ctx = hooks.IntakeContext(session, settings, contact, ticket, message, customer,
                              created, reopened, now)
    hooks.run(hooks.INTAKE_HOOKS, ctx)
    if not contact.auto_submitted and ticket.queue_id is not None:
        # The ticket waits for an answer: put it in front of the router (or rescore it).
        from contactcenter.routing.engine import enqueue_ticket, load_policy

        enqueue_ticket(session, ticket, now, load_policy(settings), due_at=ctx.due_at)
    return IntakeResult("created" if created else "appended", ticket.id, ticket.number,
                        message.id, customer.id, rule.value, reopened,
                        written=(ticket, message, customer))


def ingest_inbound(session: Session, contact: InboundContact, *,
                   settings: Settings | None = None, now: dt.datetime | None = None,
                   after_apply: Callable[[Session, IntakeResult, InboundContact], None]
                   | None = None) -> IntakeResult:
    """Turn one contact into state and commit once; a redelivered contact is a duplicate.

    ``after_apply`` runs in the same transaction, before the commit.
    """
    settings = settings or Settings()
    try:
        result = apply_contact(session, contact, settings, now)
        if contact.raw_id is not None:
            state = {"duplicate": RawState.DUPLICATE, "ignored": RawState.IGNORED}.get(
                result.status, RawState.PROCESSED)
            _mark_raw(session, contact.raw_id, state, "", result.ticket_id)
        if after_apply is not None:
            after_apply(session, result, contact)
        session.commit()
        return result
    except IntegrityError:
        # A concurrent writer delivered the same contact first: that is a duplicate.
        session.rollback()
        duplicate = _duplicate(session, contact)
        if duplicate is None:
            raise
        return duplicate
    except BaseException:
        session.rollback()
        raise


def _mark_raw(session: Session, raw_id: int, state: RawState, error: str,
              ticket_id: int | None) -> None:
    raw = session.get(RawInbound, raw_id)
    if raw is None:
        return
    raw.state = state
    raw.error = error[:5000]
    raw.processed_at = utcnow()
    raw.ticket_id = ticket_id


def store_raw(session: Session, channel: str, external_id: str, payload: bytes, *,
              inbox_id: int | None = None, content_type: str = "application/octet-stream"
              ) -> tuple[RawInbound, bool]:
    """Commit the raw payload before anything else; return it and whether it is new.

    A redelivery of the same (channel, external id) returns the stored row, so a
    channel can acknowledge again without storing twice.
    """
    existing = session.scalar(select(RawInbound).where(
        RawInbound.channel == channel, RawInbound.external_id == external_id))
    if existing is not None:
        return existing, False
    raw = RawInbound(channel=channel, external_id=external_id[:500], payload=payload,
                     inbox_id=inbox_id, content_type=content_type)
    session.add(raw)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = session.scalar(select(RawInbound).where(
            RawInbound.channel == channel, RawInbound.external_id == external_id))
        if existing is None:
            raise
        return existing, False
    return raw, True


def process_raw(session: Session, raw_id: int, registry: ChannelRegistry,
                settings: Settings, *, after_apply: AfterApply | None = None
                ) -> IntakeResult | None:
    """Parse a stored raw payload with its channel's adapter and ingest it.

    Any failure rolls the intake back and marks the raw row failed with the
    error text (the payload is never touched); ``None`` is returned then. So
    ``after_apply`` (run in the intake's transaction, given the payload) must not
    raise for anything short of a broken intake.
    """
    raw = session.get(RawInbound, raw_id)
    if raw is None:
        raise IntakeError(f"no raw payload {raw_id}")
    if raw.state in (RawState.PROCESSED, RawState.DUPLICATE, RawState.IGNORED):
        message = session.scalar(select(Message).where(Message.raw_id == raw.id))
        if message is None:
            return IntakeResult(raw.state, None, None, None, None, raw.state)
        return IntakeResult("duplicate", message.ticket_id, message.ticket.number, message.id,
                            message.customer_id, "duplicate")
    raw.attempts += 1
    session.commit()
    try:
        adapter = registry.get(raw.channel)
        payload = raw.payload
        contact = adapter.to_inbound(payload, inbox_id=raw.inbox_id, raw_id=raw.id)
        hook = None
        if after_apply is not None:
            def hook(s: Session, result: IntakeResult, c: InboundContact) -> None:
                after_apply(s, result, c, payload)
        return ingest_inbound(session, contact, settings=settings, after_apply=hook)
    except Exception as exc:
        session.rollback()
        if (isinstance(exc, (OperationalError, InterfaceError, PendingRollbackError))
                and session.get_bind().dialect.name != "sqlite"):
            # The database server went away (outage, cut connection), not the payload: it
            # stays pending for a retry or the intake sweep, not for a manual replay.
            raise
        quarantined = isinstance(exc, QuarantineError)
        if quarantined:
            log.warning("raw payload %s (%s %s) quarantined: %s", raw_id, raw.channel,
                        raw.external_id, exc)
        else:
            log.exception("intake of raw payload %s (%s %s) failed", raw_id, raw.channel,
                          raw.external_id)
        raw = session.get(RawInbound, raw_id)
        assert raw is not None
        raw.state = RawState.QUARANTINED if quarantined else RawState.FAILED
        raw.error = f"{type(exc).__name__}: {exc}"[:5000]
        raw.processed_at = utcnow()
        record_event(session, "raw.failed", {"raw_id": raw.id, "channel": raw.channel,
                                             "error": raw.error[:200]}, [])
        session.commit()
        return None


def _apply_payload(session: Session, channel: str, external_id: str, payload: bytes,
                   registry: ChannelRegistry, settings: Settings, inbox_id: int | None,
                   content_type: str, contact: InboundContact | None,
                   after_apply: AfterApply | None) -> tuple[IntakeResult, int]:
    """Parse (unless given), store the raw row and apply the contact, without committing."""
    if contact is None:
        contact = registry.get(channel).to_inbound(payload, inbox_id=inbox_id, raw_id=None)
    raw = RawInbound(channel=channel, external_id=external_id[:500], payload=payload,
                     inbox_id=inbox_id, content_type=content_type, attempts=1)
    session.add(raw)
    session.flush()
    contact = dataclasses.replace(contact, raw_id=raw.id, inbox_id=inbox_id)
    result = apply_contact(session, contact, settings)
    raw.state = {"duplicate": RawState.DUPLICATE, "ignored": RawState.IGNORED}.get(
        result.status, RawState.PROCESSED)
    raw.error = ""
    raw.processed_at = utcnow()
    raw.ticket_id = result.ticket_id
    if after_apply is not None:
        after_apply(session, result, contact, payload)
    return result, raw.id


def _raw_exists(session: Session, channel: str, external_id: str) -> bool:
    return session.scalar(select(RawInbound.id).where(
        RawInbound.channel == channel, RawInbound.external_id == external_id[:500])) is not None


def ingest_payload(session: Session, channel: str, external_id: str, payload: bytes,
                   registry: ChannelRegistry, settings: Settings, *,
                   inbox_id: int | None = None, content_type: str = "application/octet-stream",
                   contact: InboundContact | None = None, known_new: bool = False,
                   after_apply: AfterApply | None = None
                   ) -> tuple[IntakeResult | None, int]:
    """Store a payload and ingest it in ONE transaction when all goes well; return (result, raw id).

    The payload is parsed before anything is written (``contact`` given: parsed
    already, e.g. by a worker process); the raw row, the customer, the ticket, the
    message, the events and whatever ``after_apply`` adds (the email acknowledgement)
    then commit together, so the common case pays one commit. Whenever that fails (a
    parse error, a threading bug, a constraint), the transaction rolls back and the
    slow path runs: the raw payload is committed on its own (the acknowledgement
    point) and processed again, ending failed or quarantined and replayable; the hook
    does not run then. A payload already stored is answered from its row
    (``known_new``: the caller has just looked and found none).
    """
    if known_new or not _raw_exists(session, channel, external_id):
        try:
            result, raw_id = _apply_payload(session, channel, external_id, payload, registry,
                                            settings, inbox_id, content_type, contact,
                                            after_apply)
            session.commit()
            return result, raw_id
        except Exception:
            # Anything at all: fall back to the two-step path, which keeps the payload and
            # records the error on it.
            session.rollback()
    raw, _new = store_raw(session, channel, external_id, payload, inbox_id=inbox_id,
                          content_type=content_type)
    return process_raw(session, raw.id, registry, settings), raw.id


def apply_payload_nested(session: Session, channel: str, external_id: str, payload: bytes,
                         registry: ChannelRegistry, settings: Settings, *,
                         inbox_id: int | None = None,
                         content_type: str = "application/octet-stream",
                         contact: InboundContact | None = None,
                         after_apply: AfterApply | None = None
                         ) -> tuple[IntakeResult, int] | None:
    """Do ``ingest_payload``'s fast path inside a SAVEPOINT of the caller's transaction.

    For a writer that commits several payloads at once (``ingest email``): nothing is
    committed here. On any failure the savepoint alone is rolled back (the other
    payloads of the transaction are untouched, and so are their pending events) and
    None is returned: the caller commits what it has, then runs ``ingest_payload``,
    whose slow path keeps this payload failed or quarantined and replayable.
    """
    pending = session.info.setdefault("pending_events", [])
    mark = len(pending)
    try:
        with session.begin_nested():
            return _apply_payload(session, channel, external_id, payload, registry, settings,
                                  inbox_id, content_type, contact, after_apply)
    except Exception:
        log.debug("fast path of %s %s failed; it takes the slow path", channel, external_id,
                  exc_info=True)
        # The savepoint's event rows were never written: they must not be published.
        del session.info.setdefault("pending_events", [])[mark:]
        return None


def replay_failed(session: Session, registry: ChannelRegistry, settings: Settings,
                  channel: str | None = None, limit: int = 1000) -> list[tuple[int, IntakeResult | None]]:
    """Process failed raw payloads again; return each id with its new result."""
    query = select(RawInbound.id).where(
        RawInbound.state.in_([RawState.FAILED, RawState.PENDING, RawState.QUARANTINED]))
    if channel:
        query = query.where(RawInbound.channel == channel)
    ids = list(session.scalars(query.order_by(RawInbound.id).limit(limit)))
    return [(raw_id, process_raw(session, raw_id, registry, settings)) for raw_id in ids]
