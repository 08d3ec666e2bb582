"""Inboxes, queues, tickets, messages, attachments and raw inbound payloads."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, WriteOnlyMapped, mapped_column, relationship

from contactcenter.customers.models import Customer
from contactcenter.db import Base, TimestampMixin, utcnow


class TicketStatus(StrEnum):
    """Where a ticket is in its life."""

    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    ON_HOLD = "on_hold"
    SOLVED = "solved"
    CLOSED = "closed"


OPEN_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.ON_HOLD)


class Priority(StrEnum):
    """A ticket's manual priority."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Direction(StrEnum):
    """Who a message came from."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"
    NOTE = "note"


class DeliveryState(StrEnum):
    """Where an outbound message is on its way out (the outbox)."""

    NONE = "none"
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class RawState(StrEnum):
    """What became of a raw inbound payload."""

    PENDING = "pending"
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    FAILED = "failed"
    QUARANTINED = "quarantined"


class Counter(Base):
    """A named counter incremented under a row lock (ticket numbers)."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int]


class Queue(TimestampMixin, Base):
    """A line of work: a team's queue, with the skills and language it needs."""

    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(8))
    skill: Mapped[str | None] = mapped_column(String(64))


class QueueMember(Base):
    """An agent's membership of a queue: they see and are offered its work."""

    __tablename__ = "queue_members"
    __table_args__ = (UniqueConstraint("queue_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


class Inbox(TimestampMixin, Base):
    """An entry point of one channel: a mailbox, a phone number, a chat widget, a form."""

    __tablename__ = "inboxes"
    __table_args__ = (UniqueConstraint("channel", "address", name="uq_inboxes_channel_address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(320))
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    reopen_window_days: Mapped[int | None]
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    queue: Mapped[Queue | None] = relationship(lazy="joined")


class Ticket(TimestampMixin, Base):
    """A customer's case: one subject, many messages across channels."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_customer_status", "customer_id", "status", "last_activity_at"),
        Index("ix_tickets_queue_status", "queue_id", "status"),
        Index("ix_tickets_assignee_status", "assignee_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    subject: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(16), default=TicketStatus.NEW)
    priority: Mapped[str] = mapped_column(String(16), default=Priority.NORMAL)
    channel: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inboxes.id", ondelete="SET NULL"))
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reply_token: Mapped[str] = mapped_column(String(32))
    last_activity_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_customer_message_at: Mapped[dt.datetime | None]
    first_response_at: Mapped[dt.datetime | None]
    solved_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]
    reopen_count: Mapped[int] = mapped_column(default=0)
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"))
    # Opened by mail that named another ticket without proof (a reply token minted for
    # the sender, or the sender's own earlier Message-ID): the From may be forged, so
    # agents see a warning and no automatic mail answers it (RELIABILITY ID-1).
    sender_unverified: Mapped[bool] = mapped_column(default=False, server_default=false())
    claimed_ticket_number: Mapped[int | None]

    customer: Mapped[Customer] = relationship(lazy="joined")
    queue: Mapped[Queue | None] = relationship(lazy="joined")
    messages: WriteOnlyMapped[Message] = relationship(
        back_populates="ticket", order_by="Message.id"
    )

    @property
    def is_open(self) -> bool:
        """Whether the ticket still needs work."""
        return self.status in OPEN_STATUSES

    def reopen(self, now: dt.datetime) -> None:
        """Reopen a solved ticket because the customer wrote again."""
        if self.status == TicketStatus.CLOSED:
            raise ValueError("a closed ticket cannot be reopened")
        self.status = TicketStatus.OPEN
        self.solved_at = None
        self.reopen_count += 1
        self.last_activity_at = now


class Message(TimestampMixin, Base):
    """One message on a ticket: from the customer, to the customer or an internal note."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_messages_channel_external_id"),
        Index("ix_messages_ticket", "ticket_id", "id"),
        Index("ix_messages_delivery", "delivery_state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    direction: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inboxes.id", ondelete="SET NULL"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    sender: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(String(500), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    quoted_text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str] = mapped_column(Text, default="")
    auto_submitted: Mapped[bool] = mapped_column(default=False)
    external_id: Mapped[str | None] = mapped_column(String(500))
    raw_id: Mapped[int | None] = mapped_column(
        ForeignKey("raw_inbound.id", ondelete="SET NULL"), index=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    delivery_state: Mapped[str] = mapped_column(String(16), default=DeliveryState.NONE)
    delivery_attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime | None]
    delivered_at: Mapped[dt.datetime | None]
    delivery_error: Mapped[str] = mapped_column(Text, default="")
    recipient: Mapped[str] = mapped_column(String(320), default="")

    ticket: Mapped[Ticket] = relationship(back_populates="messages")
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="message", lazy="selectin", order_by="Attachment.id"
    )


class MessageReference(Base):
    """An id a message refers to (In-Reply-To, References): threads replies, even early ones."""

    __tablename__ = "message_references"
    __table_args__ = (UniqueConstraint("message_id", "ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    channel: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(500), index=True)


class Attachment(TimestampMixin, Base):
    """A file attached to a message, stored content-addressed in the data folder."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_id: Mapped[str | None] = mapped_column(String(255))
    inline: Mapped[bool] = mapped_column(default=False)
    # The thumbnail job's outcome (None: not tried yet; "ready", "failed", "none": no
    # preview for this type) and the digest of the PNG thumbnail it stored (ATT-2).
    preview_state: Mapped[str | None] = mapped_column(String(16))
    preview_sha256: Mapped[str | None] = mapped_column(String(64))

    message: Mapped[Message] = relationship(back_populates="attachments")


class RawInbound(Base):
    """The raw payload of a contact, kept before it is parsed, with what became of it."""

    __tablename__ = "raw_inbound"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_raw_inbound_channel_external_id"),
        Index("ix_raw_inbound_state", "state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(500))
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inboxes.id", ondelete="SET NULL"))
    content_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    state: Mapped[str] = mapped_column(String(16), default=RawState.PENDING)
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(default=0)
    processed_at: Mapped[dt.datetime | None]
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), index=True)


class TicketTag(Base):
    """A label on a ticket (lower-case, unique per ticket)."""

    __tablename__ = "ticket_tags"
    __table_args__ = (UniqueConstraint("ticket_id", "tag"), Index("ix_ticket_tags_tag", "tag"))

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(64))


class TicketLink(Base):
    """Two tickets that belong together: ``related`` both ways, or ``merged`` into the target."""

    __tablename__ = "ticket_links"
    __table_args__ = (UniqueConstraint("ticket_id", "other_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    other_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Draft(Base):
    """An agent's unsent reply, saved server-side so that a dropped connection loses nothing."""

    __tablename__ = "drafts"
    __table_args__ = (UniqueConstraint("user_id", "ticket_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text, default="")
    internal: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SavedView(Base):
    """An agent's named inbox filter."""

    __tablename__ = "saved_views"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CannedResponse(TimestampMixin, Base):
    """A reusable reply with placeholders such as ``{{customer.name}}`` and ``{{ticket.number}}``."""

    __tablename__ = "canned_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    shortcut: Mapped[str] = mapped_column(String(32), unique=True)
    body: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8))
