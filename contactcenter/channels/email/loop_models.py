"""What the automatic-answer guard remembers: one row per decision to answer or not.

``AutoreplyLog`` is both the counter the caps read (rows with no
``suppressed_reason`` are automatic messages sent) and what the supervisor
dashboard shows: why a customer got no acknowledgement, and when a mailbox hit
its hourly ceiling (``suppressed_reason == "mailbox_ceiling"``: automatic mail of
that mailbox is paused).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from contactcenter.db import Base, utcnow


class AutoreplyLog(Base):
    """One automatic message sent, or withheld with the reason why.

    At most one row per ticket and kind: the unique constraint is what makes
    "one acknowledgement per new ticket" hold even when two workers race.
    """

    __tablename__ = "autoreply_log"
    __table_args__ = (
        UniqueConstraint("ticket_id", "kind", name="uq_autoreply_log_ticket_id_kind"),
        Index("ix_autoreply_log_sender_sent_at", "sender", "sent_at"),
        Index("ix_autoreply_log_inbox_sent_at", "inbox_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), default="acknowledgement")
    sender: Mapped[str] = mapped_column(String(320))
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inboxes.id", ondelete="SET NULL"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"))
    sent_at: Mapped[dt.datetime] = mapped_column(default=utcnow)  # or withheld, at that time
    suppressed_reason: Mapped[str | None] = mapped_column(String(64))
