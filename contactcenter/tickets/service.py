"""Ticket use cases after intake: replies, notes, status changes, assignment, lookups."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.db import utcnow
from contactcenter.events import record_event
from contactcenter.tickets.errors import InvalidTransitionError, TicketNotFoundError
from contactcenter.tickets.html import sanitise_html
from contactcenter.tickets.intake import ticket_rooms, ticket_summary
from contactcenter.tickets.models import (
    DeliveryState,
    Direction,
    Message,
    Ticket,
    TicketStatus,
)

if TYPE_CHECKING:
    from contactcenter.routing.policy import RoutingPolicy

ALLOWED = {
    TicketStatus.NEW: {TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.ON_HOLD,
                       TicketStatus.SOLVED, TicketStatus.CLOSED},
    TicketStatus.OPEN: {TicketStatus.PENDING, TicketStatus.ON_HOLD, TicketStatus.SOLVED,
                        TicketStatus.CLOSED},
    TicketStatus.PENDING: {TicketStatus.OPEN, TicketStatus.ON_HOLD, TicketStatus.SOLVED,
                           TicketStatus.CLOSED},
    TicketStatus.ON_HOLD: {TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.SOLVED,
                           TicketStatus.CLOSED},
    TicketStatus.SOLVED: {TicketStatus.OPEN, TicketStatus.CLOSED},
    TicketStatus.CLOSED: set(),
}


def get_ticket(session: Session, number: int) -> Ticket:
    """Return a ticket by its number or raise."""
    ticket = session.scalar(select(Ticket).where(Ticket.number == number))
    if ticket is None:
        raise TicketNotFoundError(f"no ticket #{number}")
    return ticket


def list_messages(session: Session, ticket: Ticket, limit: int = 500) -> list[Message]:
    """Return a ticket's messages, oldest first."""
    return list(session.scalars(ticket.messages.select().order_by(Message.id).limit(limit)))


def _routing_policy(policy: RoutingPolicy | None) -> RoutingPolicy:
    from contactcenter.routing.policy import default_policy

    return policy or default_policy()


def change_status(session: Session, ticket: Ticket, status: str, actor_user_id: int | None,
                  now: dt.datetime | None = None, *, policy: RoutingPolicy | None = None
                  ) -> Ticket:
    """Move a ticket to a new status if its life allows it.

    A ticket that stops waiting for an answer (pending, on hold, solved, closed)
    completes its routing item; one reopened goes back in front of the router.
    """
    now = now or utcnow()
    new = TicketStatus(status)
    old = TicketStatus(ticket.status)
    if new == old:
        return ticket
    if new not in ALLOWED[old]:
        raise InvalidTransitionError(f"a {old} ticket cannot become {new}")
    ticket.status = new
    if new == TicketStatus.SOLVED:
        ticket.solved_at = now
    elif new == TicketStatus.CLOSED:
        ticket.closed_at = now
    elif old == TicketStatus.SOLVED:
        ticket.solved_at = None
        ticket.reopen_count += 1
    ticket.last_activity_at = now
    session.flush()
    record_event(session, "ticket.status_changed",
                 {**ticket_summary(ticket), "from": old.value, "by": actor_user_id},
                 ticket_rooms(ticket))
    from contactcenter import hooks
    from contactcenter.routing.engine import complete_for_ticket, enqueue_ticket

    hooks.run(hooks.STATUS_HOOKS,
              hooks.StatusContext(session, ticket, old.value, new.value, actor_user_id, now))
    if new in (TicketStatus.NEW, TicketStatus.OPEN):
        from contactcenter.sla.service import earliest_due

        enqueue_ticket(session, ticket, now, _routing_policy(policy),
                       due_at=earliest_due(session, ticket.id))
    else:
        complete_for_ticket(session, ticket.id, now, _routing_policy(policy))
    return ticket


def assign_ticket(session: Session, ticket: Ticket, user_id: int | None,
                  actor_user_id: int | None, now: dt.datetime | None = None) -> Ticket:
    """Give a ticket to an agent (or take it back to the queue with None)."""
    from contactcenter import hooks

    now = now or utcnow()
    previous = ticket.assignee_id
    ticket.assignee_id = user_id
    if ticket.status == TicketStatus.NEW and user_id is not None:
        ticket.status = TicketStatus.OPEN
    session.flush()
    rooms = ticket_rooms(ticket)
    if previous is not None and previous != user_id:
        rooms.append(f"agent:{previous}")
    record_event(session, "ticket.assigned",
                 {**ticket_summary(ticket), "previous_assignee_id": previous,
                  "by": actor_user_id}, rooms)
    hooks.run(hooks.ASSIGN_HOOKS,
              hooks.AssignContext(session, ticket, previous, actor_user_id, now))
    return ticket


CHANNEL_IDENTITY = {"email": "email", "sms": "phone", "whatsapp": "phone", "voice": "phone",
                    "form": "email", "chat": "chat"}


def _identity_for(ticket: Ticket, channel: str) -> str:
    """The customer's address on a channel (their first identity of its kind), or ""."""
    kind = CHANNEL_IDENTITY.get(channel)
    for identity in ticket.customer.identities:
        if kind is None or identity.kind == kind:
            return identity.address
    return ""


def add_reply(session: Session, ticket: Ticket, author_user_id: int, text: str,
              html: str = "", *, internal: bool = False, now: dt.datetime | None = None,
              policy: RoutingPolicy | None = None, live: bool = False,
              channel: str | None = None) -> Message:
    """Store a reply (pending delivery, for the outbox) or an internal note.

    ``live`` is for a conversation still going on (a chat, an SMS exchange during a
    call): the ticket stays open and its routing item keeps the agent's slot.
    ``channel`` replies on another channel than the ticket's (e.g. email to a chat).

    A reply answers the ticket: its routing item is complete and the agent's
    capacity is free for the next one.
    """
    now = now or utcnow()
    status_change: tuple[str, str] | None = None
    if not text.strip() and not html.strip():
        raise ValueError("a reply needs text")
    if ticket.status == TicketStatus.CLOSED and not internal:
        raise InvalidTransitionError("a closed ticket takes no replies")
    channel = channel or ticket.channel
    last_inbound = session.scalar(
        ticket.messages.select().where(Message.direction == Direction.INBOUND,
                                       Message.channel == channel)
        .order_by(Message.id.desc()).limit(1)
    )
    recipient = last_inbound.sender if last_inbound else _identity_for(ticket, channel)
    if not internal and channel != ticket.channel and not recipient:
        raise ValueError(f"the customer has no address for {channel}")
    message = Message(
        ticket_id=ticket.id,
        direction=Direction.NOTE if internal else Direction.OUTBOUND,
        channel=channel, inbox_id=ticket.inbox_id if channel == ticket.channel else None,
        author_user_id=author_user_id, subject=f"Re: {ticket.subject} [#{ticket.number}]"[:500],
        text=text[:100_000], html=sanitise_html(html),
        delivery_state=DeliveryState.NONE if internal else DeliveryState.PENDING,
        next_attempt_at=None if internal else now,
        recipient=recipient,
        received_at=now, created_at=now, updated_at=now,
    )
    session.add(message)
    if not internal:
        if ticket.first_response_at is None:
            ticket.first_response_at = now
        if ticket.status in (TicketStatus.NEW, TicketStatus.OPEN) and not live:
            # The answer is with the customer now: the ticket waits on them.
            status_change = (str(ticket.status), TicketStatus.PENDING.value)
            ticket.status = TicketStatus.PENDING
    ticket.last_activity_at = now
    session.flush()
    record_event(session, "message.created",
                 {"ticket_id": ticket.id, "number": ticket.number, "message_id": message.id,
                  "direction": message.direction, "channel": message.channel,
                  "customer_id": ticket.customer_id}, ticket_rooms(ticket))
    from contactcenter import hooks

    hooks.run(hooks.REPLY_HOOKS, hooks.ReplyContext(session, ticket, message, internal, now))
    if status_change is not None:
        hooks.run(hooks.STATUS_HOOKS, hooks.StatusContext(
            session, ticket, status_change[0], status_change[1], author_user_id, now))
    if not internal and not live:
        from contactcenter.routing.engine import complete_for_ticket

        complete_for_ticket(session, ticket.id, now, _routing_policy(policy))
    return message
