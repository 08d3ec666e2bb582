"""The IMAP poller's database side: watermarks, dedupe lookups, skipped messages, health.

Every function takes the ``Session`` and commits what it records, because each
record is a promise the poller relies on after a crash: a watermark says "every
UID up to here is stored or deliberately skipped", a health row is what the
supervisor dashboard reads.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contactcenter.channels.email.models import (
    ImapMailboxState,
    ImapSkippedMessage,
    ImapWatermark,
)
from contactcenter.channels.email.receive import CHANNEL
from contactcenter.db import utcnow
from contactcenter.tickets.models import RawInbound

log = logging.getLogger(__name__)

ALERT_AFTER_FAILURES = 3
LOOKUP_CHUNK = 500


def find_watermark(session: Session, mailbox: str, uidvalidity: int) -> int:
    """Return the highest UID handled under this UIDVALIDITY (0: none yet)."""
    value = session.scalar(select(ImapWatermark.last_uid).where(
        ImapWatermark.mailbox == mailbox, ImapWatermark.uidvalidity == uidvalidity))
    return int(value or 0)


def save_watermark(session: Session, mailbox: str, uidvalidity: int, last_uid: int) -> None:
    """Move the watermark forward (never back) and commit."""
    row = session.scalar(select(ImapWatermark).where(
        ImapWatermark.mailbox == mailbox, ImapWatermark.uidvalidity == uidvalidity))
    if row is None:
        try:
            with session.begin_nested():
                session.add(ImapWatermark(mailbox=mailbox, uidvalidity=uidvalidity,
                                          last_uid=last_uid))
        except IntegrityError:  # another poller of the same mailbox got there first
            row = session.scalar(select(ImapWatermark).where(
                ImapWatermark.mailbox == mailbox, ImapWatermark.uidvalidity == uidvalidity))
    if row is not None and last_uid > row.last_uid:
        row.last_uid = last_uid
    session.commit()


def find_stored(session: Session, message_ids: Iterable[str]) -> dict[str, tuple[int, str, int]]:
    """Return ``{message id: (raw id, state, attempts)}`` for the ids already stored."""
    ids = list(dict.fromkeys(message_ids))
    found: dict[str, tuple[int, str, int]] = {}
    for start in range(0, len(ids), LOOKUP_CHUNK):
        rows = session.execute(select(RawInbound.external_id, RawInbound.id, RawInbound.state,
                                      RawInbound.attempts)
                               .where(RawInbound.channel == CHANNEL,
                                      RawInbound.external_id.in_(ids[start:start + LOOKUP_CHUNK])))
        for external_id, raw_id, state, attempts in rows:
            found[external_id] = (raw_id, str(state), attempts)
    session.rollback()  # end the read transaction: SQLite writers must not wait on it
    return found


def record_skipped(session: Session, mailbox: str, uidvalidity: int, uid: int, *, size: int,
                   message_id: str, reason: str, detail: str) -> None:
    """Record (once) a message left on the server, and count it on the mailbox's health row."""
    exists = session.scalar(select(ImapSkippedMessage.id).where(
        ImapSkippedMessage.mailbox == mailbox, ImapSkippedMessage.uidvalidity == uidvalidity,
        ImapSkippedMessage.uid == uid))
    if exists is None:
        session.add(ImapSkippedMessage(mailbox=mailbox, uidvalidity=uidvalidity, uid=uid,
                                       size=size, message_id=message_id[:500], reason=reason,
                                       detail=detail))
        _state(session, mailbox).skipped_total += 1
    session.commit()


def _state(session: Session, mailbox: str) -> ImapMailboxState:
    row = session.scalar(select(ImapMailboxState).where(ImapMailboxState.mailbox == mailbox))
    if row is None:
        try:
            with session.begin_nested():
                row = ImapMailboxState(mailbox=mailbox, consecutive_failures=0, failures_total=0,
                                       messages_total=0, skipped_total=0, last_error="")
                session.add(row)
        except IntegrityError:
            row = session.scalar(select(ImapMailboxState)
                                 .where(ImapMailboxState.mailbox == mailbox))
            assert row is not None
    return row


def record_success(session: Session, mailbox: str, uidvalidity: int | None,
                   messages: int) -> None:
    """Reset the consecutive-failure count after a poll that completed, and commit."""
    row = _state(session, mailbox)
    if row.consecutive_failures:
        log.info("IMAP mailbox %s is back after %d failures", mailbox, row.consecutive_failures)
    row.consecutive_failures = 0
    row.last_success_at = utcnow()
    row.messages_total += messages
    if uidvalidity is not None:
        row.uidvalidity = uidvalidity
    session.commit()


def record_failure(session: Session, mailbox: str, error: BaseException) -> int:
    """Count a failed connection or poll, log it, commit; return the consecutive count.

    Every failure is a warning; from the third in a row on it is an error, the
    alert level (RELIABILITY.md IMAP-4).
    """
    session.rollback()
    row = _state(session, mailbox)
    row.consecutive_failures += 1
    row.failures_total += 1
    row.last_error = f"{type(error).__name__}: {error}"[:2000]
    row.last_failure_at = utcnow()
    count = row.consecutive_failures
    session.commit()
    level = logging.ERROR if count >= ALERT_AFTER_FAILURES else logging.WARNING
    log.log(level, "IMAP mailbox %s failed (%d in a row): %s", mailbox, count, row.last_error)
    return count


def find_mailbox_state(session: Session, mailbox: str) -> ImapMailboxState | None:
    """Return a mailbox's health row, if it was ever polled."""
    return session.scalar(select(ImapMailboxState).where(ImapMailboxState.mailbox == mailbox))
