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
import functools
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, bindparam, event, func, select, update
from sqlalchemy.exc import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    PendingRollbackError,
)
from sqlalchemy.orm import Session, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from contactcenter.channels.base import (
    AttachmentRef,
    ChannelRegistry,
    InboundContact,
    QuarantineError,
)
from contactcenter.config import Settings
from contactcenter.customers.errors import CustomerError
from contactcenter.customers.models import Customer
from contactcenter.customers.service import add_identity, identify_customer
from contactcenter.db import insert_now, utcnow
from contactcenter.events import record_event, room
from contactcenter.hooks import drop_cache_on_change, transaction_cache
from contactcenter.tickets.attachments import safe_filename, store_bytes, sync_files
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
from contactcenter.tickets.reply_token import (
    MAX_MINTED_REFS,
    is_token_for,
    normalise_recipient,
    read_minted_ids,
    reply_token_key,
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


@functools.cache
def _bump_ticket_counter() -> Any:
    """The counter's increment as a Core statement, built once.

    On the table, not the mapped class: an ORM-enabled UPDATE pays for its session
    synchronisation (and an autoflush) on every new ticket, ten times the SQL's cost.
    """
    table = cast(Table, Counter.__table__)
    return (update(table).where(table.c.name == "ticket").values(value=table.c.value + 1)
            .returning(table.c.value))


def next_ticket_number(session: Session) -> int:
    """Return the next ticket number, incremented under the counter's row lock."""
    value = session.scalar(_bump_ticket_counter())
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


def _identify(session: Session, contact: InboundContact, *, retried: bool = False) -> Customer:
    """The sender's customer (made if new). ``retried``: the caller retries any failure
    on its slow path, so a customer created concurrently needs no SAVEPOINT of its own."""
    try:
        customer, _created = identify_customer(
            session, contact.sender.kind, contact.sender.address,
            name=contact.sender.name, language=contact.language, savepoint=not retried,
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
            now: dt.datetime, window_days: int, settings: Settings | None = None
            ) -> tuple[Ticket | None, ThreadRule, int | None]:
    """Look candidates up strongest first, stopping as soon as one decides.

    Returns the ticket (None: open one), the rule, and the id of a ticket the contact
    named without proof (``verify_sender`` contacts only: the new ticket is unverified).
    """
    hints = contact.thread
    found: dict[str, Any] = {"explicit": None, "reply_token_ok": False, "replied_to": None,
                             "recent": None, "replied_to_ok": False}

    def decide() -> ThreadDecision:
        return choose_thread(customer_id=customer.id, organisation_id=customer.organisation_id,
                             thread_on_open_ticket=hints.thread_on_open_ticket, now=now,
                             window_days=window_days, verify_sender=hints.verify_sender,
                             **found)

    if hints.verify_sender:
        found["explicit"], found["reply_token_ok"] = _token_reference(
            session, contact, customer, settings or Settings())
    elif hints.ticket_number is not None:
        explicit, token = _candidate(session, Ticket.number == hints.ticket_number)
        found["explicit"] = explicit
        found["reply_token_ok"] = bool(explicit and hints.reply_token
                                       and secrets.compare_digest(token, hints.reply_token))
    decision = decide()
    if decision.rule is not ThreadRule.EXPLICIT and hints.in_reply_to:
        if hints.verify_sender:
            found["replied_to"], found["replied_to_ok"] = _sender_reference(session, contact)
        else:
            found["replied_to"], _ = _candidate(
                session, Message.channel == contact.channel,
                Message.external_id.in_(hints.in_reply_to[:50]),
                join_message=True, order=(Message.id.desc(),))
        decision = decide()
    if decision.rule is ThreadRule.NEW and found["replied_to"] is None:
        # A reply that arrived before the message it answers is waiting on a ticket of
        # its own: the original joins it when it finally comes.
        if hints.verify_sender:
            found["replied_to"], found["replied_to_ok"] = _sender_reference(
                session, contact, reverse=True)
        else:
            found["replied_to"], _ = _candidate(
                session, MessageReference.channel == contact.channel,
                MessageReference.ref == contact.external_id[:500],
                join_reference=True, order=(MessageReference.id,))
        decision = decide()
    if (decision.rule is ThreadRule.NEW and hints.thread_on_open_ticket
            and decision.claimed_ticket_id is None):
        conditions = [Ticket.customer_id == customer.id, Ticket.channel == contact.channel,
                      Ticket.status != TicketStatus.CLOSED]
        if contact.inbox_id is not None:
            conditions.append(Ticket.inbox_id == contact.inbox_id)
        found["recent"], _ = _candidate(
            session, *conditions, order=(Ticket.last_activity_at.desc(), Ticket.id.desc()))
        decision = decide()
    if decision.ticket_id is None:
        return None, decision.rule, decision.claimed_ticket_id
    # The customer is in the session already (identified above): joining it again would
    # also select-in load its identities, one query per appended message for nothing.
    return (session.get(Ticket, decision.ticket_id, options=[lazyload(Ticket.customer)]),
            decision.rule, None)


def _token_reference(session: Session, contact: InboundContact, customer: Customer,
                     settings: Settings) -> tuple[Candidate | None, bool]:
    """Return the ticket a possibly forged sender names, and whether a token proves it.

    Tokens come from the plus-address and from our Message-IDs in the reply headers;
    one counts when it was minted for that ticket and the sender's address. The
    ticket's raw secret (what mail carried before tokens were bound to addresses)
    still counts for the ticket's own customer. Without proof, the ticket named
    (token's, else the subject's number) is returned as a claim.
    """
    hints = contact.thread
    pairs: list[tuple[int, str]] = []
    if hints.ticket_number is not None and hints.reply_token:
        pairs.append((hints.ticket_number, hints.reply_token))
    pairs += [p for p in read_minted_ids(hints.in_reply_to) if p not in pairs]
    if not pairs and hints.ticket_number is None:
        return None, False
    key = reply_token_key(settings) if pairs else b""
    claim: Candidate | None = None
    for number, token in pairs[:MAX_MINTED_REFS + 1]:
        candidate, secret = _candidate(session, Ticket.number == number)
        if candidate is None:
            continue
        if is_token_for(key, number, secret, contact.sender.address, token) or (
                candidate.customer_id == customer.id
                and secrets.compare_digest(secret, token)):
            return candidate, True
        claim = claim or candidate
    if claim is None and hints.ticket_number is not None:
        claim, _ = _candidate(session, Ticket.number == hints.ticket_number)
    return claim, False


@functools.cache
def _sender_reference_statement(reverse: bool) -> Any:
    """Build (once) the look-up of ``_sender_reference``, its values as bound parameters.

    Every new e-mail runs the reverse look-up: building the joined select per call cost
    about as much as running it.
    """
    query = (select(Ticket.id, Ticket.customer_id, Customer.organisation_id, Ticket.status,
                    Ticket.last_activity_at, Message.sender, Message.direction)
             .join(Customer, Customer.id == Ticket.customer_id))
    if reverse:
        query = (query.join(MessageReference, MessageReference.ticket_id == Ticket.id)
                 .join(Message, Message.id == MessageReference.message_id)
                 .where(MessageReference.channel == bindparam("channel"),
                        MessageReference.ref == bindparam("ref"))
                 .order_by(MessageReference.id))
    else:
        query = (query.join(Message, Message.ticket_id == Ticket.id)
                 .where(Message.channel == bindparam("channel"),
                        Message.external_id.in_(bindparam("refs", expanding=True)))
                 .order_by(Message.id.desc()))
    return query.limit(50)


def _sender_reference(session: Session, contact: InboundContact, *,
                      reverse: bool = False) -> tuple[Candidate | None, bool]:
    """Return the ticket reply headers name, and whether this sender wrote the message named.

    Forward: the newest message of the channel whose id the reply headers name.
    ``reverse``: the message that named this one's id (a reply that came first).
    """
    params: dict[str, Any] = {"channel": contact.channel}
    if reverse:
        params["ref"] = contact.external_id[:500]
    else:
        params["refs"] = list(contact.thread.in_reply_to[:50])
    rows = session.execute(_sender_reference_statement(reverse), params).all()
    if not rows:
        return None, False
    sender = normalise_recipient(contact.sender.address)
    for row in rows:
        if row[6] == Direction.INBOUND and normalise_recipient(row[5]) == sender:
            return Candidate(row[0], row[1], row[2], row[3], row[4]), True
    first = rows[0]
    return Candidate(first[0], first[1], first[2], first[3], first[4]), False


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


UNSYNCED = "unsynced_attachments"


@event.listens_for(Session, "before_commit")
def _sync_attachments(session: Session) -> None:
    """Make the attachment files of the transaction durable before the rows naming them.

    Written unsynced during intake, they are fsynced together here (a batch of ``ingest
    email`` pays for them at once); a failure fails the commit.
    """
    if session.in_nested_transaction() or not session.info.get(UNSYNCED):
        return
    sync_files(session.info[UNSYNCED])
    session.info.pop(UNSYNCED, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_unsynced(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # rolled back: the files may stay, unreferenced
        session.info.pop(UNSYNCED, None)


def _store_attachments(session: Session, contact: InboundContact, settings: Settings
                       ) -> tuple[list[Attachment], list[str]]:
    """Store a contact's files (unless stored already); return their rows, not yet written,
    and the notes on those left out. The files are fsynced at the commit."""
    files: list[Attachment] = []
    notes: list[str] = []
    for index, ref in enumerate(contact.attachments):
        name = safe_filename(ref.filename, f"attachment-{index + 1}")
        if index >= MAX_ATTACHMENTS:
            notes.append(f"[{len(contact.attachments) - MAX_ATTACHMENTS} more attachments dropped]")
            break
        if ref.length > settings.attachment_max_bytes:
            notes.append(f"[attachment {name} removed: {ref.length} bytes is over the limit]")
            continue
        # Stored already (by a parse worker, fsynced there): only the row is written here.
        digest = ref.sha256 or store_bytes(settings.data_dir, ref.data,
                                           unsynced=session.info.setdefault(UNSYNCED, []))
        files.append(Attachment(
            filename=name, content_type=(ref.content_type or "application/octet-stream")[:127],
            size=ref.length, sha256=digest, content_id=ref.content_id, inline=ref.inline,
            preview_state=None, preview_sha256=None,
        ))
    return files, notes


def store_attachments_ahead(contact: InboundContact, data_dir: Path,
                            max_bytes: int) -> InboundContact:
    """Store the files intake would store, durably, and return the contact without their bytes.

    For a parse worker (``ingest email``): the single writer then only writes rows, and
    no bytes cross between the processes. The same rules as ``_store_attachments`` (the
    first ``MAX_ATTACHMENTS``, none over ``max_bytes``); what they exclude is left as it
    is, for the writer's notes. Content-addressed files, fsynced here: one whose message
    never commits stays unreferenced, as after a rolled-back intake.
    """
    if not contact.attachments:
        return contact
    refs: list[AttachmentRef] = []
    written: list[Path] = []
    for index, ref in enumerate(contact.attachments):
        if index >= MAX_ATTACHMENTS or ref.sha256 is not None or len(ref.data) > max_bytes:
            refs.append(ref)
            continue
        digest = store_bytes(data_dir, ref.data, unsynced=written)
        refs.append(dataclasses.replace(ref, data=b"", sha256=digest, size=len(ref.data)))
    sync_files(written)
    return dataclasses.replace(contact, attachments=tuple(refs))


class InboxFacts(NamedTuple):
    """What intake reads of an inbox."""

    queue_id: int | None
    reopen_window_days: int | None


def _inbox_facts(session: Session, inbox_id: int | None) -> InboxFacts | None:
    """Read an inbox's queue and reopen window once per transaction (a batch reads it often)."""
    if inbox_id is None:
        return None
    cache = transaction_cache(session, "intake_inboxes")
    if inbox_id not in cache:
        row = session.execute(select(Inbox.queue_id, Inbox.reopen_window_days)
                              .where(Inbox.id == inbox_id)).first()
        cache[inbox_id] = InboxFacts(row[0], row[1]) if row is not None else None
    facts: InboxFacts | None = cache[inbox_id]
    return facts


drop_cache_on_change(Inbox)


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
                  now: dt.datetime | None = None, *, raw_is_new: bool = False
                  ) -> IntakeResult:
    """Do intake's work in the session's transaction without committing.

    ``raw_is_new``: the caller has just stored the contact's raw payload as new, so a
    message with the same id is rare (our own Message-ID coming back); it is not looked
    up first but left to the messages' unique constraint, whose IntegrityError sends
    the caller to its slow path, which reports the duplicate. So does a customer created
    by a concurrent writer (no SAVEPOINT is spent on that race).
    """
    now = now or utcnow()
    if not raw_is_new or contact.delivery_report is not None:
        duplicate = _duplicate(session, contact)
        if duplicate is not None:
            return duplicate
    if contact.delivery_report is not None:
        from contactcenter.tickets.delivery_reports import apply_delivery_report

        return apply_delivery_report(session, contact, now)
    customer = _identify(session, contact, retried=raw_is_new)
    inbox = _inbox_facts(session, contact.inbox_id)
    window = (inbox.reopen_window_days if inbox and inbox.reopen_window_days is not None
              else settings.reopen_window_days)
    ticket, rule, claimed = _thread(session, contact, customer, now, window, settings)
    if ticket is None and claimed is None:
        grouped = _over_sender_limit(session, contact, customer, now, settings)
        if grouped is not None:
            ticket, rule = grouped, ThreadRule.SENDER_LIMIT
    number = next_ticket_number(session) if ticket is None else None
    created = ticket is None
    reopened = False
    if ticket is None:
        ticket = Ticket(
            number=number,
            subject=(contact.subject or contact.text.strip().split("\n", 1)[0])[:500]
            or NO_CONTENT,
            channel=contact.channel, customer_id=customer.id, inbox_id=contact.inbox_id,
            queue_id=inbox.queue_id if inbox else None, reply_token=secrets.token_hex(8),
            status=TicketStatus.NEW, last_activity_at=now, last_customer_message_at=now,
            created_at=now, updated_at=now,
        )
        if claimed is not None:
            # It named a ticket it could not prove it belongs to (RELIABILITY ID-1).
            ticket.sender_unverified = True
            ticket.claimed_ticket_number = session.scalar(
                select(Ticket.number).where(Ticket.id == claimed))
        # Inserted now by one statement each, ticket, message and files: no flush of the
        # unit of work (its sort and bookkeeping cost more than the statements).
        insert_now(session, ticket)
    elif ticket.status == TicketStatus.SOLVED:
        ticket.reopen(now)
        reopened = True
    elif ticket.status in (TicketStatus.PENDING,):
        ticket.status = TicketStatus.OPEN
    # Sanitised once: HTML the email parser cleaned with this same policy arrives typed
    # (``SanitisedHtml``) and is stored as it is; every other channel's is cleaned here.
    html = str(sanitise_html(contact.html))
    text = contact.text if contact.text.strip() or html else NO_CONTENT
    message = Message(
        direction=Direction.INBOUND, channel=contact.channel,
        inbox_id=contact.inbox_id, customer_id=customer.id,
        sender=contact.sender.address[:320], subject=contact.subject[:500], text=text, html=html,
        quoted_text=contact.quoted_text, auto_submitted=contact.auto_submitted,
        external_id=contact.external_id[:500], raw_id=contact.raw_id,
        received_at=contact.received_at or now, created_at=now, updated_at=now,
        ticket_id=ticket.id,
    )
    files, notes = _store_attachments(session, contact, settings)
    if notes:
        message.text = message.text + "\n\n" + "\n".join(notes)
    insert_now(session, message)
    for file in files:
        file.message_id = message.id
        insert_now(session, file)
    set_committed_value(message, "attachments", files)
    if not created:  # a new ticket was written with these
        ticket.last_activity_at = now
        ticket.last_customer_message_at = now
        session.flush()
    refs = [{"message_id": message.id, "ticket_id": ticket.id, "channel": contact.channel,
             "ref": ref} for ref in dict.fromkeys(r[:500] for r in contact.thread.in_reply_to[:50]
                                                 if r)]
    if refs:
        # One Core statement for all of them: nothing reads these rows back as objects, and
        # ORM instances would cost another flush of the unit of work per reply.
        session.execute(cast(Table, MessageReference.__table__).insert(), refs)
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
    if not contact.auto_submitted and not contact.routed_live and ticket.queue_id is not None:
        # The ticket waits for an answer: put it in front of the router (or rescore it).
        # A contact routed live (a ringing call) gets its routing item from its channel.
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


@functools.cache
def _raw_statements() -> tuple[Any, Any]:
    """The raw row's insert (returning its id) and its final update, parameterised."""
    table = cast(Table, RawInbound.__table__)
    return (table.insert().returning(table.c.id),
            table.update().where(table.c.id == bindparam("raw_id")))


def _apply_payload(session: Session, channel: str, external_id: str, payload: bytes,
                   registry: ChannelRegistry, settings: Settings, inbox_id: int | None,
                   content_type: str, contact: InboundContact | None,
                   after_apply: AfterApply | None) -> tuple[IntakeResult, int]:
    """Parse (unless given), store the raw row and apply the contact, without committing."""
    if contact is None:
        contact = registry.get(channel).to_inbound(payload, inbox_id=inbox_id, raw_id=None)
    # Core statements on the table: the row is written and updated once, and no ORM
    # object (nor a flush of its own) is needed for it. The statements are built once
    # and given their values as parameters: ``.values(payload=...)`` per message cost
    # more than the SQL itself (half of this step in a profile of ``ingest email``).
    insert, _mark = _raw_statements()
    raw_id = session.execute(insert, {
        "channel": channel, "external_id": external_id[:500], "payload": payload,
        "inbox_id": inbox_id, "content_type": content_type, "attempts": 1,
        "received_at": utcnow(), "state": RawState.PENDING, "error": ""}).scalar_one()
    contact = dataclasses.replace(contact, raw_id=raw_id, inbox_id=inbox_id)
    result = apply_contact(session, contact, settings, raw_is_new=True)
    # The raw row's outcome is written just before the commit, with the other rows of the
    # transaction (``ingest email``'s batch) in one executemany: an UPDATE of its own per
    # message rewrote the whole row, payload included, in SQLite.
    session.info.setdefault(RAW_MARKS, []).append({
        "raw_id": raw_id, "error": "", "processed_at": utcnow(), "ticket_id": result.ticket_id,
        "state": {"duplicate": RawState.DUPLICATE, "ignored": RawState.IGNORED}.get(
            result.status, RawState.PROCESSED)})
    if after_apply is not None:
        after_apply(session, result, contact, payload)
    return result, raw_id


RAW_MARKS = "pending_raw_marks"  # session.info: raw rows' outcomes, written before the commit


@event.listens_for(Session, "before_commit")
def _write_raw_marks(session: Session) -> None:
    """Write the outcomes the transaction's fast paths left (``_apply_payload``) at once."""
    if session.in_nested_transaction() or not session.info.get(RAW_MARKS):
        return
    marks = session.info.pop(RAW_MARKS)
    session.execute(_raw_statements()[1], marks)


@event.listens_for(Session, "after_soft_rollback")
def _drop_raw_marks(session: Session, previous: Any) -> None:
    # Only the outermost rollback: a SAVEPOINT's caller trims its own (apply_payload_nested).
    if not previous.nested and previous.parent is None:
        session.info.pop(RAW_MARKS, None)


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
                         after_apply: AfterApply | None = None, savepoint: bool = True
                         ) -> tuple[IntakeResult, int] | None:
    """Do ``ingest_payload``'s fast path inside a SAVEPOINT of the caller's transaction.

    For a writer that commits several payloads at once (``ingest email``): nothing is
    committed here. On any failure the savepoint alone is rolled back (the other
    payloads of the transaction are untouched, and so are their pending events) and
    None is returned: the caller commits what it has, then runs ``ingest_payload``,
    whose slow path keeps this payload failed or quarantined and replayable.

    ``savepoint=False``: no SAVEPOINT, and any failure propagates; the caller must then
    roll its whole transaction back (and redo the payloads it held, see ``ingest email``).
    """
    if not savepoint:
        return _apply_payload(session, channel, external_id, payload, registry, settings,
                              inbox_id, content_type, contact, after_apply)
    mark = len(session.info.setdefault("pending_events", []))
    marks = len(session.info.setdefault(RAW_MARKS, []))
    try:
        with session.begin_nested():
            return _apply_payload(session, channel, external_id, payload, registry, settings,
                                  inbox_id, content_type, contact, after_apply)
    except Exception:
        log.debug("fast path of %s %s failed; it takes the slow path", channel, external_id,
                  exc_info=True)
        # The savepoint's event rows were never written: they must not be published; nor
        # must its raw row's outcome be written (the row is gone with the savepoint).
        del session.info.setdefault("pending_events", [])[mark:]
        del session.info.setdefault(RAW_MARKS, [])[marks:]
        return None


def process_stored(session: Session, raw_id: int, registry: ChannelRegistry,
                   settings: Settings, *, jobs: Any = None) -> IntakeResult | None:
    """Process a stored payload the way its channel's own receiver does.

    A channel whose receiver does more than ``process_raw`` in the same step (email
    acknowledges a new ticket, with its loop guards) offers it as its adapter's
    optional ``process_stored``; the intake job and replays come through here, so
    they behave as the live path does without intake knowing any channel. ``jobs``
    (a ``JobQueue``): where follow-up work such as a delivery is enqueued.
    """
    channel = session.scalar(select(RawInbound.channel).where(RawInbound.id == raw_id))
    if channel is None:
        raise IntakeError(f"no raw payload {raw_id}")
    own = getattr(registry.find(channel), "process_stored", None)
    if own is not None:
        result: IntakeResult | None = own(session, raw_id, registry, settings, jobs=jobs)
        return result
    return process_raw(session, raw_id, registry, settings)


def replay_failed(session: Session, registry: ChannelRegistry, settings: Settings,
                  channel: str | None = None, limit: int = 1000, *, jobs: Any = None
                  ) -> list[tuple[int, IntakeResult | None]]:
    """Process failed raw payloads again (as their channel's receiver would); return each result."""
    query = select(RawInbound.id).where(
        RawInbound.state.in_([RawState.FAILED, RawState.PENDING, RawState.QUARANTINED]))
    if channel:
        query = query.where(RawInbound.channel == channel)
    ids = list(session.scalars(query.order_by(RawInbound.id).limit(limit)))
    return [(raw_id, process_stored(session, raw_id, registry, settings, jobs=jobs))
            for raw_id in ids]
