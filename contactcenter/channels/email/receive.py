"""Receive one raw email from any source (SMTP, IMAP, files): store it, then process it.

``store_email`` is the durable step a source acknowledges after (SMTP 250, IMAP
\\Seen or move); ``process_email`` parses and ingests the stored bytes, and never
raises for a bad message: the raw row ends processed, duplicate, ignored,
quarantined or failed, and stays replayable.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.channels.base import ChannelRegistry, InboundContact
from contactcenter.config import Settings
from contactcenter.tickets.intake import (
    AfterApply,
    IntakeResult,
    apply_payload_nested,
    ingest_payload,
    process_raw,
    store_raw,
)
from contactcenter.tickets.models import Inbox, RawInbound

if TYPE_CHECKING:
    from contactcenter.jobs import JobQueue

log = logging.getLogger(__name__)

CHANNEL = "email"
HEADER_SCAN_BYTES = 256 * 1024
MESSAGE_ID_RE = re.compile(r"<?\s*([^<>\s]{1,450})\s*>?")


def message_id_of(raw: bytes) -> str:
    """Return the message's Message-ID, or a deterministic one from the raw bytes' MD5.

    Only the header block is read (bounded), with the lenient compat32 policy, so a
    message whose body cannot be parsed still gets its real id. A message without
    one gets ``md5-<hex>@generated``: a redelivery of the same bytes is then still
    recognised as a duplicate.
    """
    head = raw[:HEADER_SCAN_BYTES]
    end = head.find(b"\r\n\r\n")
    if end < 0:
        end = head.find(b"\n\n")
    if end >= 0:
        head = head[: end + 2]
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(head)
        value = headers.get("Message-ID")
    except Exception:  # a header block too broken to read: fall back to the digest
        value = None
    if value:
        match = MESSAGE_ID_RE.search(str(value))
        if match:
            return match.group(1)
    return f"md5-{hashlib.md5(raw).hexdigest()}@generated"


def split_address(address: str) -> tuple[str, str | None]:
    """Split plus-addressing: ``support+t1001-ab12@x`` -> (``support@x``, ``t1001-ab12``)."""
    address = address.strip().strip("<>").lower()
    local, at, domain = address.rpartition("@")
    if not at:
        return address, None
    base, plus, tag = local.partition("+")
    return f"{base}@{domain}", (tag or None) if plus else None


def find_inbox(session: Session, recipient: str) -> Inbox | None:
    """Return the email inbox a recipient address delivers to (plus-addressing understood)."""
    base, _tag = split_address(recipient)
    return session.scalar(select(Inbox).where(Inbox.channel == CHANNEL, Inbox.address == base))


@dataclass(frozen=True)
class Received:
    """What became of one received email (the ``ingest email`` JSON line)."""

    status: str  # created | appended | duplicate | quarantined | ignored | failed
    raw_id: int
    ticket: int | None
    customer: int | None
    reason: str | None
    acknowledgement: int | None = None  # the pending acknowledgement of a new ticket

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return {"status": self.status, "ticket": self.ticket, "customer": self.customer,
                "reason": self.reason}


def store_email(session: Session, raw: bytes, inbox_id: int | None) -> tuple[RawInbound, bool]:
    """Commit the raw bytes (the acknowledgement point); return the row and whether it is new."""
    return store_raw(session, CHANNEL, message_id_of(raw), raw, inbox_id=inbox_id,
                     content_type="message/rfc822")


def acknowledge(session: Session, ticket_id: int, settings: Settings,
                jobs: JobQueue | None = None) -> int | None:
    """Store a new ticket's acknowledgement and enqueue its delivery; return its message id.

    The email is already ingested and committed: a failure here costs the customer an
    acknowledgement, never their message, so it is logged rather than raised.
    """
    from contactcenter.channels.email.loops import acknowledge_new_ticket

    try:
        message_id = acknowledge_new_ticket(session, ticket_id, settings).message_id
    except Exception:
        session.rollback()
        log.exception("acknowledgement of ticket id %s failed", ticket_id)
        return None
    enqueue_delivery(jobs, message_id)
    return message_id


def process_email(session: Session, raw_id: int, registry: ChannelRegistry,
                  settings: Settings, *, jobs: JobQueue | None = None,
                  acknowledge_new: bool = True) -> Received:
    """Parse and ingest a stored email; report its outcome (never raises for bad mail).

    A new ticket gets its acknowledgement stored (``loops``; ``acknowledge_new=False``
    skips it, for an import of old mail); with ``jobs`` given, its delivery is
    enqueued at once, otherwise the outbox sweep sends it.
    """
    acknowledged: list[int | None] = []
    hook = (acknowledging_hook(settings, acknowledged, guarded=True) if acknowledge_new
            else None)
    result = process_raw(session, raw_id, registry, settings, after_apply=hook)
    return _received(session, raw_id, result, settings, jobs, acknowledge_new, acknowledged)


def process_stored_email(session: Session, raw_id: int, registry: ChannelRegistry,
                         settings: Settings, *, jobs: JobQueue | None = None
                         ) -> IntakeResult | None:
    """``intake.process_stored`` for email: ``process_email``, answered as intake answers.

    The intake job and ``contactcenter replay`` reach stored mail through this (the
    email adapter's ``process_stored``), so a ticket they open is acknowledged exactly
    as one opened right after the SMTP 250: once, loop guards and caps included.
    """
    acknowledged: list[int | None] = []
    result = process_raw(session, raw_id, registry, settings,
                         after_apply=acknowledging_hook(settings, acknowledged, guarded=True))
    _received(session, raw_id, result, settings, jobs, True, acknowledged)
    return result


def _received(session: Session, raw_id: int, result: IntakeResult | None, settings: Settings,
              jobs: JobQueue | None, acknowledge_new: bool,
              acknowledged: list[int | None] | None = None) -> Received:
    """Report an outcome; a new ticket not acknowledged in its transaction is acknowledged now."""
    if result is None:
        row = session.execute(select(RawInbound.state, RawInbound.error)
                              .where(RawInbound.id == raw_id)).one()
        return Received(str(row[0]), raw_id, None, None, row[1] or None)
    reason = None if result.status in ("created", "appended") else result.rule
    ack = None
    if acknowledge_new and result.status == "created" and result.ticket_id is not None:
        if acknowledged:  # decided in the intake's own transaction (the fast path)
            ack = acknowledged[0]
            enqueue_delivery(jobs, ack)
        else:
            ack = acknowledge(session, result.ticket_id, settings, jobs)
    return Received(result.status, raw_id, result.ticket_number, result.customer_id, reason,
                    ack)


def enqueue_delivery(jobs: JobQueue | None, message_id: int | None) -> None:
    """Enqueue the delivery of a committed acknowledgement (the outbox sweep is the backstop)."""
    if message_id is None or jobs is None:
        return
    try:
        jobs.enqueue("outbox.deliver", message_id, key=f"deliver:{message_id}")
    except Exception:  # the outbox sweep delivers it later; the row is committed
        log.exception("could not enqueue delivery of acknowledgement %s", message_id)


def acknowledging_hook(settings: Settings, acknowledged: list[int | None], *,
                       guarded: bool = False) -> AfterApply:
    """Return an intake hook that stores a new ticket's acknowledgement in its transaction.

    The decision, the pending outbound message and the ``autoreply_log`` row then
    commit with the ticket (one transaction instead of two); the headers are read
    from the raw bytes in hand, not from the database. The acknowledgement's message
    id (or None) is appended to ``acknowledged``. Should it fail, the whole fast path
    rolls back and the slow path stores the mail first and acknowledges it afterwards;
    ``guarded`` (for ``process_raw``, where a failure would mark the mail failed): it
    runs in a SAVEPOINT instead, and a failure leaves ``acknowledged`` empty, so the
    acknowledgement is tried again in a transaction of its own after the commit.
    """
    from contactcenter.channels.email.loops import acknowledge_opening

    def hook(session: Session, result: IntakeResult, contact: InboundContact,
             raw: bytes) -> None:
        if result.status != "created" or result.written is None:
            return
        ticket, message, customer = result.written
        if not guarded:
            acknowledged.append(acknowledge_opening(
                session, ticket, message, customer, raw, settings,
                read_ahead=contact.metadata).message_id)
            return
        pending = session.info.setdefault("pending_events", [])
        mark = len(pending)
        try:
            with session.begin_nested():
                done = acknowledge_opening(session, ticket, message, customer, raw, settings)
        except Exception:
            log.exception("acknowledgement of ticket #%s failed in its intake; retried after "
                          "the commit", ticket.number)
            del session.info.setdefault("pending_events", [])[mark:]
            return
        acknowledged.append(done.message_id)

    return hook


def _existing(session: Session, external_id: str) -> tuple[int, str, int | None] | None:
    row = session.execute(select(RawInbound.id, RawInbound.state, RawInbound.ticket_id).where(
        RawInbound.channel == CHANNEL, RawInbound.external_id == external_id[:500])).first()
    return (row[0], row[1], row[2]) if row is not None else None


def _duplicate(session: Session, raw_id: int, ticket_id: int | None) -> Received:
    ticket = None
    if ticket_id is not None:
        from contactcenter.tickets.models import Ticket

        ticket = session.scalar(select(Ticket.number).where(Ticket.id == ticket_id))
    return Received("duplicate", raw_id, ticket, None, "already received")


def receive_email(session: Session, raw: bytes, registry: ChannelRegistry, settings: Settings,
                  inbox_id: int | None = None, *, jobs: JobQueue | None = None,
                  acknowledge_new: bool = True, contact: InboundContact | None = None
                  ) -> Received:
    """Store and process one email, in one transaction when it goes well.

    A redelivery of bytes already stored reports ``duplicate``; a stored message that
    failed before is processed again. ``contact``: the message already parsed (by a
    worker process). A new ticket's acknowledgement commits with it.
    """
    external_id = message_id_of(raw)
    existing = _existing(session, external_id)
    if existing is not None:
        raw_id, state, ticket_id = existing
        if state not in ("pending", "failed"):
            return _duplicate(session, raw_id, ticket_id)
        return process_email(session, raw_id, registry, settings, jobs=jobs,
                             acknowledge_new=acknowledge_new)
    acknowledged: list[int | None] = []
    hook = acknowledging_hook(settings, acknowledged) if acknowledge_new else None
    result, raw_id = ingest_payload(session, CHANNEL, external_id, raw, registry, settings,
                                    inbox_id=inbox_id, content_type="message/rfc822",
                                    contact=contact, known_new=True, after_apply=hook)
    return _received(session, raw_id, result, settings, jobs, acknowledge_new, acknowledged)


def existing_raw(session: Session, external_ids: list[str]
                 ) -> dict[str, tuple[int, str, int | None]]:
    """Look many messages up at once: external id -> (raw id, state, ticket id) of those stored.

    For a batch writer (``ingest email``), one query per chunk instead of one per message.
    """
    wanted = list(dict.fromkeys(e[:500] for e in external_ids))
    found: dict[str, tuple[int, str, int | None]] = {}
    for start in range(0, len(wanted), 500):
        for row in session.execute(select(
                RawInbound.external_id, RawInbound.id, RawInbound.state, RawInbound.ticket_id)
                .where(RawInbound.channel == CHANNEL,
                       RawInbound.external_id.in_(wanted[start:start + 500]))):
            found[row[0]] = (row[1], row[2], row[3])
    return found


def receive_email_nested(session: Session, raw: bytes, registry: ChannelRegistry,
                         settings: Settings, inbox_id: int | None = None, *,
                         acknowledge_new: bool = True,
                         contact: InboundContact | None = None,
                         external_id: str | None = None,
                         known_new: bool = False, savepoint: bool = True) -> Received | None:
    """``receive_email``'s common case inside a SAVEPOINT of a batch; nothing is committed.

    Returns None when the message needs more than the fast path (already stored and
    failed before, or its parse or intake failed): the savepoint is rolled back, and
    the caller commits its batch and then calls ``receive_email`` for it. The caller
    enqueues the delivery of ``Received.acknowledgement`` after its commit. A given
    ``contact`` must be the email adapter's parse of these bytes: its external id is
    ``message_id_of(raw)`` already, and the header block is not read again; so is a
    given ``external_id``. ``known_new``: the caller has just looked (``existing_raw``)
    and found no stored copy. ``savepoint=False``: no SAVEPOINT, and a failure of the
    fast path raises (``apply_payload_nested``): the caller rolls back its transaction.
    """
    if external_id is None:
        external_id = (contact.external_id if contact is not None
                       and contact.channel == CHANNEL else message_id_of(raw))
    existing = None if known_new else _existing(session, external_id)
    if existing is not None:
        raw_id, state, ticket_id = existing
        if state not in ("pending", "failed"):
            return _duplicate(session, raw_id, ticket_id)
        return None
    acknowledged: list[int | None] = []
    hook = acknowledging_hook(settings, acknowledged) if acknowledge_new else None
    done = apply_payload_nested(session, CHANNEL, external_id, raw, registry, settings,
                                inbox_id=inbox_id, content_type="message/rfc822",
                                contact=contact, after_apply=hook, savepoint=savepoint)
    if done is None:
        return None
    result, raw_id = done
    reason = None if result.status in ("created", "appended") else result.rule
    return Received(result.status, raw_id, result.ticket_number, result.customer_id, reason,
                    acknowledged[0] if acknowledged else None)
