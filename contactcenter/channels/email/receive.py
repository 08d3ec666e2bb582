"""Receive one raw email from any source (SMTP, IMAP, files): store it, then process it.

``store_email`` is the durable step a source acknowledges after (SMTP 250, IMAP
\\Seen or move); ``process_email`` parses and ingests the stored bytes, and never
raises for a bad message: the raw row ends processed, duplicate, ignored,
quarantined or failed, and stays replayable.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.channels.base import ChannelRegistry
from contactcenter.config import Settings
from contactcenter.tickets.intake import process_raw, store_raw
from contactcenter.tickets.models import Inbox, RawInbound

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

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return {"status": self.status, "ticket": self.ticket, "customer": self.customer,
                "reason": self.reason}


def store_email(session: Session, raw: bytes, inbox_id: int | None) -> tuple[RawInbound, bool]:
    """Commit the raw bytes (the acknowledgement point); return the row and whether it is new."""
    return store_raw(session, CHANNEL, message_id_of(raw), raw, inbox_id=inbox_id,
                     content_type="message/rfc822")


def process_email(session: Session, raw_id: int, registry: ChannelRegistry,
                  settings: Settings) -> Received:
    """Parse and ingest a stored email; report its outcome (never raises for bad mail)."""
    result = process_raw(session, raw_id, registry, settings)
    row = session.get(RawInbound, raw_id)
    assert row is not None
    if result is None:
        return Received(str(row.state), raw_id, None, None, row.error or None)
    reason = None if result.status in ("created", "appended") else result.rule
    return Received(result.status, raw_id, result.ticket_number, result.customer_id, reason)


def receive_email(session: Session, raw: bytes, registry: ChannelRegistry, settings: Settings,
                  inbox_id: int | None = None) -> Received:
    """Store then process one email; a redelivery of stored bytes reports ``duplicate``."""
    row, new = store_email(session, raw, inbox_id)
    if not new and row.state not in ("pending", "failed"):
        ticket = None
        if row.ticket_id is not None:
            from contactcenter.tickets.models import Ticket

            found = session.get(Ticket, row.ticket_id)
            ticket = found.number if found else None
        return Received("duplicate", row.id, ticket, None, "already received")
    return process_email(session, row.id, registry, settings)
