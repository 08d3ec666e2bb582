"""What the IMAP poller remembers: UID watermarks, mailbox health and skipped messages.

A mailbox is named by a stable key (``MailboxConfig.key``: user, host, port and
folder, or an explicit name). UIDs only mean something within one UIDVALIDITY
(RFC 3501 section 2.3.1.1), so the watermark is kept per (mailbox, UIDVALIDITY):
a new UIDVALIDITY starts a fresh watermark at 0, and Message-ID dedupe keeps the
resync from duplicating anything. UIDs are 32-bit unsigned, hence BigInteger.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from contactcenter.db import Base, TimestampMixin, utcnow

MAILBOX_KEY_LENGTH = 300


class ImapWatermark(TimestampMixin, Base):
    """The highest UID handled in a mailbox folder under one UIDVALIDITY."""

    __tablename__ = "imap_watermarks"
    __table_args__ = (
        UniqueConstraint("mailbox", "uidvalidity", name="uq_imap_watermarks_mailbox_uidvalidity"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(MAILBOX_KEY_LENGTH))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)


class ImapMailboxState(TimestampMixin, Base):
    """A mailbox's health as the supervisor dashboard shows it.

    ``consecutive_failures`` counts failed connections or polls since the last
    success (an alert is due at three); ``failures_total`` never resets.
    """

    __tablename__ = "imap_mailbox_states"

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(MAILBOX_KEY_LENGTH), unique=True)
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    failures_total: Mapped[int] = mapped_column(default=0)
    messages_total: Mapped[int] = mapped_column(BigInteger, default=0)
    skipped_total: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_failure_at: Mapped[dt.datetime | None]
    last_success_at: Mapped[dt.datetime | None]


class ImapSkippedMessage(Base):
    """A message the poller left on the server without importing it (oversized, say).

    The row is what an admin sees: where the message is, how big it was, why it
    was skipped. The watermark moves past it, so it is not retried every poll.
    """

    __tablename__ = "imap_skipped_messages"
    __table_args__ = (
        UniqueConstraint("mailbox", "uidvalidity", "uid",
                         name="uq_imap_skipped_messages_mailbox_uidvalidity_uid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(MAILBOX_KEY_LENGTH))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    message_id: Mapped[str] = mapped_column(String(500), default="")
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
