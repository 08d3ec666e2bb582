"""Mail over an IMAP mailbox's size limit: a visible ticket, one postmaster notice, its own folder.

Zammad's rule (RELIABILITY 2.3, ATT-2): oversized mail goes to a folder of its
own and the sender gets a "message too large" reply. The poller never downloads
the body; it records the message as skipped (``imap_state.record_skipped``,
what an admin sees), then calls ``notify_oversized`` with the header block only
(``BODY.PEEK[HEADER]``, at most ``HEADER_BYTES``), which

1. parses those headers with the email channel's own parser (so the sender
   rules of RELIABILITY ID-3 apply: no usable or an ambiguous From, or a bounce,
   means no ticket and no notice, only the skipped row);
2. opens a ticket with a placeholder message saying what arrived, how big it
   was and where it is kept, keyed by the mail's Message-ID so that seeing the
   same mail again (a UIDVALIDITY change, a second mailbox) is a duplicate and
   sends nothing: one notice per message;
3. stores the notice in the ticket's acknowledgement slot, through the same
   loop rules and caps (``loops.notify_too_large``): never to automatic mail,
   robots, mailer-daemons or our own addresses, and it goes out through the
   outbox like any reply.

``MailboxConfig.oversized_folder`` set: the poller then moves the message there
(after the commit); unset, it stays where it is, flagged skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from imapclient import IMAPClient
from sqlalchemy.orm import Session

from contactcenter.channels.base import Identity, InboundContact, QuarantineError, ThreadHints
from contactcenter.channels.email.loops import Acknowledgement, notify_too_large
from contactcenter.channels.email.parser import parse_email
from contactcenter.config import Settings
from contactcenter.tickets.intake import IntakeResult, ingest_inbound

log = logging.getLogger(__name__)

HEADER_BYTES = 64 * 1024
HEADER_ITEM = f"BODY.PEEK[HEADER]<0.{HEADER_BYTES}>"


@dataclass(frozen=True)
class OversizedOutcome:
    """What became of one oversized message: its ticket (if any) and the notice."""

    status: str  # created | duplicate | no_ticket
    ticket_id: int | None
    notice_message_id: int | None
    reason: str | None


def fetch_headers(client: IMAPClient, uids: list[int]) -> dict[int, bytes]:
    """Return the header block (at most ``HEADER_BYTES``) of each UID, without setting \\Seen."""
    if not uids:
        return {}
    fetched = client.fetch(uids, [HEADER_ITEM])
    heads: dict[int, bytes] = {}
    for uid, item in fetched.items():
        for key, value in item.items():
            if isinstance(key, bytes) and key.startswith(b"BODY[HEADER]") \
                    and isinstance(value, bytes):
                heads[uid] = value
    return heads


def placeholder_text(size: int, limit: int, where: str) -> str:
    """Return what the agent reads in place of the mail that was too large to import."""
    return (f"[This message was not imported: it is {size} bytes, over the {limit} byte "
            f"limit. The original is kept on the mail server: {where}.]")


def notify_oversized(session: Session, head: bytes, settings: Settings, *, size: int,
                     limit: int, where: str, inbox_id: int | None) -> OversizedOutcome:
    """Open the placeholder ticket and store the one notice (see the module doc); commits."""
    block = head if head.endswith(b"\r\n\r\n") else head.rstrip(b"\r\n") + b"\r\n\r\n"
    try:
        parsed = parse_email(block)
    except QuarantineError as exc:
        return OversizedOutcome("no_ticket", None, None, f"unreadable headers: {exc}"[:200])
    if not parsed.from_address or parsed.sender_doubt or parsed.delivery_report is not None:
        reason = ("delivery report" if parsed.delivery_report is not None
                  else parsed.sender_doubt or "no sender address")
        return OversizedOutcome("no_ticket", None, None, reason)
    contact = InboundContact(
        channel="email", external_id=parsed.message_id,
        sender=Identity("email", parsed.from_address, parsed.from_name),
        subject=parsed.subject, text=placeholder_text(size, limit, where), inbox_id=inbox_id,
        recipient=parsed.recipient, auto_submitted=parsed.auto_submitted,
        thread=ThreadHints(thread_on_open_ticket=False, verify_sender=True),
        language=parsed.language, metadata={"too_large": size},
    )
    notices: list[Acknowledgement] = []

    def after_apply(s: Session, result: IntakeResult, _contact: Any) -> None:
        if result.status == "created" and result.written is not None:
            ticket, message, customer = result.written
            notices.append(notify_too_large(s, ticket, message, customer, block, settings,
                                            size=size, limit=limit))

    result = ingest_inbound(session, contact, settings=settings, after_apply=after_apply)
    notice = notices[0] if notices else None
    return OversizedOutcome(result.status, result.ticket_id,
                            notice.message_id if notice else None,
                            notice.reason if notice else "already notified")
