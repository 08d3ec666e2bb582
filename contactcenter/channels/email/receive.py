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

from contactcenter.channels.base import ChannelRegistry
from contactcenter.config import Settings
from contactcenter.tickets.intake import IntakeResult, ingest_payload, process_raw, store_raw
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
    if message_id is not None and jobs is not None:
        try:
            jobs.enqueue("outbox.deliver", message_id, key=f"deliver:{message_id}")
        except Exception:  # the outbox sweep delivers it later; the row is committed
            log.exception("could not enqueue delivery of acknowledgement %s", message_id)
    return message_id


def process_email(session: Session, raw_id: int, registry: ChannelRegistry,
                  settings: Settings, *, jobs: JobQueue | None = None,
                  acknowledge_new: bool = True) -> Received:
    """Parse and ingest a stored email; report its outcome (never raises for bad mail).

    A new ticket gets its acknowledgement stored (``loops``; ``acknowledge_new=False``
    skips it, for an import of old mail); with ``jobs`` given, its delivery is
    enqueued at once, otherwise the outbox sweep sends it.
    """
    result = process_raw(session, raw_id, registry, settings)
    return _received(session, raw_id, result, settings, jobs, acknowledge_new)


def _received(session: Session, raw_id: int, result: IntakeResult | None, settings: Settings,
              jobs: JobQueue | None, acknowledge_new: bool) -> Received:
    row = session.get(RawInbound, raw_id)
    assert row is not None
    if result is None:
        return Received(str(row.state), raw_id, None, None, row.error or None)
    reason = None if result.status in ("created", "appended") else result.rule
    ack = None
    if acknowledge_new and result.status == "created" and result.ticket_id is not None:
        ack = acknowledge(session, result.ticket_id, settings, jobs)
    return Received(result.status, raw_id, result.ticket_number, result.customer_id, reason,
                    ack)


def receive_email(session: Session, raw: bytes, registry: ChannelRegistry, settings: Settings,
                  inbox_id: int | None = None, *, jobs: JobQueue | None = None,
                  acknowledge_new: bool = True) -> Received:
    """Store and process one email, in one transaction when it goes well.

    A redelivery of bytes already stored reports ``duplicate``; a stored message that
    failed before is processed again.
    """
    external_id = message_id_of(raw)
    existing = session.scalar(select(RawInbound).where(
        RawInbound.channel == CHANNEL, RawInbound.external_id == external_id[:500]))
    if existing is not None:
        if existing.state not in ("pending", "failed"):
            ticket = None
            if existing.ticket_id is not None:
                from contactcenter.tickets.models import Ticket

                found = session.get(Ticket, existing.ticket_id)
                ticket = found.number if found else None
            return Received("duplicate", existing.id, ticket, None, "already received")
        return process_email(session, existing.id, registry, settings, jobs=jobs,
                             acknowledge_new=acknowledge_new)
    result, raw_id = ingest_payload(session, CHANNEL, external_id, raw, registry, settings,
                                    inbox_id=inbox_id, content_type="message/rfc822")
    return _received(session, raw_id, result, settings, jobs, acknowledge_new)
