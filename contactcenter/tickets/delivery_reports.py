"""Apply a delivery report (a bounce) to the outbound message it reports on.

A report never opens a ticket: it marks the message we sent as failed, with the
status and diagnostic the remote server gave, so the agent sees it on the message.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.channels.base import InboundContact
from contactcenter.events import record_event
from contactcenter.tickets.models import DeliveryState, Direction, Message

if TYPE_CHECKING:
    from contactcenter.tickets.intake import IntakeResult


def apply_delivery_report(session: Session, contact: InboundContact, now: dt.datetime
                          ) -> IntakeResult:
    """Mark the reported outbound message failed; return an ``ignored`` intake result."""
    from contactcenter.tickets.intake import IntakeResult, ticket_rooms

    report = contact.delivery_report
    assert report is not None
    ids = [i[:500] for i in (*report.original_ids, *contact.thread.in_reply_to) if i][:50]
    message = session.scalar(
        select(Message).where(Message.external_id.in_(ids),
                              Message.direction == Direction.OUTBOUND)
        .order_by(Message.id.desc()).limit(1)
    ) if ids else None
    if message is None:
        return IntakeResult("ignored", None, None, None, None, "delivery_report_unmatched")
    if report.kind not in ("failed", "delayed"):
        # A vacation reply, a feedback report or a delivery confirmation: nothing failed.
        return IntakeResult("ignored", message.ticket_id, message.ticket.number, message.id,
                            message.customer_id, f"delivery_report_{report.kind}")
    reason = " ".join(x for x in (report.status, report.diagnostic) if x) or "undeliverable"
    recipients = ", ".join(report.recipients)
    if report.hard:
        message.delivery_state = DeliveryState.FAILED
        message.next_attempt_at = None
    message.delivery_error = (f"bounced ({recipients}): {reason}" if recipients
                              else f"bounced: {reason}")[:2000]
    session.flush()
    record_event(session, "message.delivery_changed",
                 {"message_id": message.id, "ticket_id": message.ticket_id,
                  "delivery_state": message.delivery_state,
                  "attempts": message.delivery_attempts, "error": message.delivery_error[:200]},
                 ticket_rooms(message.ticket))
    return IntakeResult("ignored", message.ticket_id, message.ticket.number, message.id,
                        message.customer_id, "delivery_report")
