"""Turn tickets and messages into the JSON the API, the CLI and the desktop share."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from contactcenter.customers.serialize import serialize_customer_brief
from contactcenter.tickets.models import Message, Ticket
from contactcenter.tickets.service import list_messages


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def serialize_message(message: Message) -> dict[str, Any]:
    """Return one message with its attachments' names and types."""
    return {
        "id": message.id,
        "direction": message.direction,
        "channel": message.channel,
        "sender": message.sender,
        "recipient": message.recipient,
        "author_user_id": message.author_user_id,
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
        "external_id": message.external_id,
        "received_at": _iso(message.received_at),
        "delivery_state": message.delivery_state,
        "attachments": [{"id": a.id, "filename": a.filename, "content_type": a.content_type,
                         "size": a.size, "inline": a.inline,
                         "preview": a.preview_state == "ready"} for a in message.attachments],
    }


def serialize_ticket_brief(ticket: Ticket) -> dict[str, Any]:
    """Return a ticket's own fields."""
    return {
        "id": ticket.id,
        "number": ticket.number,
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "channel": ticket.channel,
        "queue": ticket.queue.slug if ticket.queue else None,
        "assignee_id": ticket.assignee_id,
        "customer_id": ticket.customer_id,
        "created_at": _iso(ticket.created_at),
        "updated_at": _iso(ticket.updated_at),
        "last_activity_at": _iso(ticket.last_activity_at),
        "first_response_at": _iso(ticket.first_response_at),
        "solved_at": _iso(ticket.solved_at),
        # Opened by mail naming another ticket without proof of sender (RELIABILITY ID-1).
        "sender_unverified": ticket.sender_unverified,
        "claimed_ticket_number": ticket.claimed_ticket_number,
    }


def serialize_ticket(session: Session, ticket: Ticket) -> dict[str, Any]:
    """Return a ticket with its customer (no financial data) and its messages."""
    data = serialize_ticket_brief(ticket)
    data["customer"] = serialize_customer_brief(ticket.customer)
    data["messages"] = [serialize_message(m) for m in list_messages(session, ticket)]
    return data
