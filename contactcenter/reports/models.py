"""Customer satisfaction surveys: one question after a ticket is solved.

A survey is created when a ticket is solved (one per solve: a ticket reopened
and solved again is asked again) and sent by email with a signed link, or
shown at the end of a chat. The agent, queue and channel are copied onto the
row when it is created, so reports group by them without joining history and
a later reassignment does not move a past score to someone else.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from contactcenter.db import Base, only_set, utcnow


class SurveyChannel(StrEnum):
    """How the survey reaches the customer."""

    EMAIL = "email"
    CHAT = "chat"


class CsatSurvey(Base):
    """One CSAT question for one solved ticket, and its answer (score 1-5, comment)."""

    __tablename__ = "csat_surveys"
    __table_args__ = (
        UniqueConstraint("ticket_id", "solve_round", name="uq_csat_surveys_ticket_round"),
        Index("ix_csat_surveys_answered", "answered_at"),
        Index("ix_csat_surveys_agent_answered", "agent_id", "answered_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    solve_round: Mapped[int] = mapped_column(default=0)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(16))
    via: Mapped[str] = mapped_column(String(16), default=SurveyChannel.EMAIL)
    recipient: Mapped[str] = mapped_column(String(320), default="")
    nonce: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
    expires_at: Mapped[dt.datetime]
    answered_at: Mapped[dt.datetime | None]
    score: Mapped[int | None]
    comment: Mapped[str] = mapped_column(Text, default="")


# Indexes the reports need on other packages' tables: every report filters on a period of
# one of these times, with or without a queue. Declared here (and created by this package's
# migration) so that a report's cost stays with the package that asks for it.
def _report_indexes() -> None:
    from contactcenter.routing.models import RoutingItem
    from contactcenter.tickets.models import Ticket

    Index("ix_tickets_created_at", Ticket.created_at)
    Index("ix_tickets_first_response_at", Ticket.first_response_at)
    Index("ix_tickets_solved_at", Ticket.solved_at)
    Index("ix_routing_items_answered_at", RoutingItem.answered_at, **only_set("answered_at"))
    Index("ix_routing_items_abandoned_at", RoutingItem.abandoned_at,
          **only_set("abandoned_at"))


_report_indexes()
