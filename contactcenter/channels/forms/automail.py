"""Automatic e-mail of the web channels: form acknowledgements and chat transcripts.

Both are stored as pending outbound e-mail on the ticket (the outbox delivers
them through the e-mail adapter) and logged in ``autoreply_log`` under their own
kind, so that the automatic-mail caps of the e-mail channel apply to them too:
a form posted a thousand times with a victim's address does not mail them a
thousand times. At most one of each kind per ticket (the log's unique key).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from contactcenter.channels.email.loop_models import AutoreplyLog
from contactcenter.channels.email.loops import (
    cap_reason,
    count_autoreplies,
    is_robot_address,
    note_autoreply_sent,
)
from contactcenter.channels.email.outbound import subject_with_token
from contactcenter.config import Settings
from contactcenter.events import record_event
from contactcenter.tickets.intake import ticket_rooms
from contactcenter.tickets.models import DeliveryState, Direction, Message, Ticket


def store_automatic_email(session: Session, ticket: Ticket, recipient: str, subject: str,
                          text: str, kind: str, settings: Settings, now: dt.datetime
                          ) -> tuple[Message | None, str | None]:
    """Store one automatic e-mail (no commit); return it, or None with the reason withheld."""
    reason: str | None = None
    if not settings.autoreply_enabled:
        reason = "disabled"
    elif not recipient or is_robot_address(recipient):
        reason = "robot_sender"
    else:
        reason = cap_reason(count_autoreplies(session, recipient, ticket.inbox_id, now), settings)
    message = None
    if reason is None:
        message = Message(
            # No inbox on the message: a form's or chat's inbox is no mailbox to send from,
            # so the mail goes out from the configured support address.
            ticket_id=ticket.id, direction=Direction.OUTBOUND, channel="email",
            inbox_id=None, author_user_id=None,
            subject=subject_with_token(subject, ticket.number)[:500], text=text, html="",
            auto_submitted=True, delivery_state=DeliveryState.PENDING, next_attempt_at=now,
            recipient=recipient[:320], received_at=now, created_at=now, updated_at=now)
        session.add(message)
        session.flush()
        record_event(session, "message.created",
                     {"ticket_id": ticket.id, "number": ticket.number, "message_id": message.id,
                      "direction": message.direction, "channel": message.channel,
                      "customer_id": ticket.customer_id}, ticket_rooms(ticket))
    if reason is None:
        note_autoreply_sent(session, ticket.inbox_id)
    session.add(AutoreplyLog(kind=kind, sender=recipient[:320], inbox_id=ticket.inbox_id,
                             ticket_id=ticket.id, sent_at=now, suppressed_reason=reason,
                             message_id=message.id if message is not None else None))
    session.flush()
    return message, reason
