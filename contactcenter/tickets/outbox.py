"""Deliver stored replies through their channel's adapter; a sweep redoes what was lost.

A reply is committed with ``delivery_state=pending`` before anything is sent.
``deliver_message`` claims it under a row lock (``sending``), calls the adapter
and records the outcome; it is idempotent, so a repeated job does nothing.
``sweep_outbox`` finds replies whose job was lost (pending past their attempt
time, or stuck in ``sending``) and delivers them again, with backoff.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from contactcenter.accounts.models import User
from contactcenter.channels.base import ChannelRegistry, OutboundMessage, PermanentDeliveryError
from contactcenter.config import Settings
from contactcenter.db import utcnow
from contactcenter.events import record_event
from contactcenter.tickets.attachments import attachment_path
from contactcenter.tickets.intake import ticket_rooms
from contactcenter.tickets.models import (
    DeliveryState,
    Direction,
    Inbox,
    Message,
    MessageReference,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
STUCK_AFTER = dt.timedelta(minutes=10)
MAX_REFERENCES = 50


def backoff(attempts: int) -> dt.timedelta:
    """Return how long to wait after a failed attempt: 1, 2, 4 ... minutes, at most 2 hours."""
    return dt.timedelta(minutes=min(2 ** max(attempts - 1, 0), 120))


def to_outbound(session: Session, message: Message, settings: Settings | None = None
                ) -> OutboundMessage:
    """Build what the adapter sends from a stored reply, answering the last inbound message.

    The thread chain is the answered message's own references (stored at intake)
    followed by its id (RFC 5322 section 3.6.4); attachments are resolved to their
    content-addressed files under the data folder of ``settings``.
    """
    ticket = message.ticket
    last_inbound = session.execute(
        select(Message.id, Message.external_id).where(
            Message.ticket_id == ticket.id, Message.direction == Direction.INBOUND,
            Message.external_id.is_not(None), Message.id < message.id,
        ).order_by(Message.id.desc()).limit(1)
    ).first()
    references: tuple[str, ...] = ()
    if last_inbound is not None:
        references = tuple(session.scalars(
            select(MessageReference.ref).where(MessageReference.message_id == last_inbound[0])
            .order_by(MessageReference.id).limit(MAX_REFERENCES)
        ))
    inbox = session.get(Inbox, message.inbox_id) if message.inbox_id is not None else None
    author = (session.get(User, message.author_user_id)
              if message.author_user_id is not None else None)
    data_dir = (settings or Settings()).data_dir
    return OutboundMessage(
        message_id=message.id, channel=message.channel, recipient=message.recipient,
        subject=message.subject, text=message.text, html=message.html,
        external_id=message.external_id, ticket_number=ticket.number,
        reply_token=ticket.reply_token,
        in_reply_to=(last_inbound[1],) if last_inbound is not None and last_inbound[1] else (),
        inbox_address=inbox.address if inbox is not None else "",
        references=references,
        attachments=tuple((a.filename, a.content_type, attachment_path(data_dir, a.sha256))
                          for a in message.attachments),
        language=ticket.customer.language,
        sender_name=author.name if author is not None and not message.auto_submitted else "",
        auto_submitted=message.auto_submitted,
    )


def deliver_message(session: Session, message_id: int, registry: ChannelRegistry,
                    settings: Settings, now: dt.datetime | None = None) -> str:
    """Send one pending reply; return the delivery state it ends in."""
    now = now or utcnow()
    # Claim the reply with one conditional UPDATE (compare-and-set): of two jobs racing
    # for it, on SQLite as on PostgreSQL, exactly one sees a row change and sends.
    claim = session.execute(
        update(Message)
        .where(Message.id == message_id, Message.direction == Direction.OUTBOUND,
               or_(Message.delivery_state == DeliveryState.PENDING,
                   and_(Message.delivery_state == DeliveryState.SENDING,
                        or_(Message.next_attempt_at.is_(None),
                            Message.next_attempt_at <= now))))
        .values(delivery_state=DeliveryState.SENDING,
                delivery_attempts=Message.delivery_attempts + 1,
                next_attempt_at=now + STUCK_AFTER)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    message = session.get(Message, message_id, populate_existing=True)
    if message is None or message.direction != Direction.OUTBOUND:
        return "missing"
    if not claim.rowcount:  # type: ignore[attr-defined]
        return str(message.delivery_state)
    try:
        result = registry.get(message.channel).send(to_outbound(session, message, settings),
                                                    settings)
    except Exception as exc:
        log.warning("delivery of message %s failed (attempt %s): %s", message_id,
                    message.delivery_attempts, exc)
        message.delivery_error = f"{type(exc).__name__}: {exc}"[:2000]
        # A permanent refusal (an SMTP 5xx) will not change with retries: fail it now,
        # with the provider's answer, so the agent sees it at once.
        if message.delivery_attempts >= MAX_ATTEMPTS or isinstance(exc, PermanentDeliveryError):
            message.delivery_state = DeliveryState.FAILED
            message.next_attempt_at = None
        else:
            message.delivery_state = DeliveryState.PENDING
            message.next_attempt_at = now + backoff(message.delivery_attempts)
    else:
        message.delivery_state = DeliveryState.SENT
        message.delivered_at = now
        message.next_attempt_at = None
        message.delivery_error = ""
        if result.provider_id and not message.external_id:
            message.external_id = result.provider_id[:500]
    record_event(session, "message.delivery_changed",
                 {"message_id": message.id, "ticket_id": message.ticket_id,
                  "delivery_state": message.delivery_state,
                  "attempts": message.delivery_attempts}, ticket_rooms(message.ticket))
    session.commit()
    return str(message.delivery_state)


def due_messages(session: Session, now: dt.datetime | None = None, limit: int = 500) -> list[int]:
    """Return ids of replies that should be (re)delivered now."""
    now = now or utcnow()
    return list(session.scalars(
        select(Message.id).where(
            Message.direction == Direction.OUTBOUND,
            or_(Message.delivery_state == DeliveryState.PENDING,
                Message.delivery_state == DeliveryState.SENDING),
            or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now),
        ).order_by(Message.id).limit(limit)
    ))


def sweep_outbox(session: Session, registry: ChannelRegistry, settings: Settings,
                 now: dt.datetime | None = None) -> dict[str, int]:
    """Deliver every due reply; return counts by resulting state."""
    counts: dict[str, int] = {}
    for message_id in due_messages(session, now):
        state = deliver_message(session, message_id, registry, settings, now)
        counts[state] = counts.get(state, 0) + 1
    return counts
