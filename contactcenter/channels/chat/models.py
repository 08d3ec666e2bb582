"""Chat sessions: one live conversation between a site visitor and the agents.

The conversation's messages are the ticket's messages (intake writes the
visitor's, the chat service the agent's); this row holds what only a live chat
has: the visitor's token and page, the routing item, who joined, read receipts
and the clocks the inactivity sweep reads.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from contactcenter.db import Base, TimestampMixin, utcnow


class ChatState(StrEnum):
    """Where a chat is in its life."""

    WAITING = "waiting"  # in the queue, no agent yet
    ACTIVE = "active"  # an agent joined
    ENDED = "ended"


LIVE_STATES = (ChatState.WAITING, ChatState.ACTIVE)


class ChatSession(TimestampMixin, Base):
    """One live chat: the visitor, their page, the ticket, the routing item and the agent."""

    __tablename__ = "chat_sessions"
    __table_args__ = (
        Index("ix_chat_sessions_state_activity", "state", "last_activity_at"),
        Index("ix_chat_sessions_visitor", "visitor_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    visitor_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=ChatState.WAITING)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    routing_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("routing_items.id", ondelete="SET NULL"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    identified: Mapped[bool] = mapped_column(default=False)
    external_user_id: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    topic: Mapped[str] = mapped_column(String(100), default="")
    page_url: Mapped[str] = mapped_column(String(2000), default="")
    page_title: Mapped[str] = mapped_column(String(300), default="")
    user_agent: Mapped[str] = mapped_column(String(500), default="")
    address: Mapped[str] = mapped_column(String(64), default="")
    language: Mapped[str | None] = mapped_column(String(8))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    accepted_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    ended_reason: Mapped[str] = mapped_column(String(32), default="")
    last_visitor_at: Mapped[dt.datetime | None]
    last_agent_at: Mapped[dt.datetime | None]
    last_activity_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    warned_at: Mapped[dt.datetime | None]
    visitor_read_id: Mapped[int] = mapped_column(default=0)
    agent_read_id: Mapped[int] = mapped_column(default=0)
    transcript_sent_at: Mapped[dt.datetime | None]

    @property
    def is_live(self) -> bool:
        """Whether the chat still takes messages."""
        return self.state in LIVE_STATES
