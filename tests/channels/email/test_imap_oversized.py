"""Oversized mail in an IMAP mailbox, against a real Dovecot (RELIABILITY 2.2, 2.3, ATT-2).

The poller downloads only the headers of a message over the limit, records it as
skipped (the admin's record), opens a ticket whose placeholder says where the
mail is, stores ONE "message too large" notice through the outbox (loop rules
apply: no notice to automatic mail or a mailer-daemon) and, when the mailbox has
an ``oversized_folder``, moves the message there after the commit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from contactcenter.channels.email.imap import poll_once
from contactcenter.channels.email.loop_models import AutoreplyLog
from contactcenter.channels.email.models import ImapSkippedMessage, ImapWatermark
from contactcenter.config import Settings
from contactcenter.db import Database
from contactcenter.tickets.models import DeliveryState, Direction, Message, Ticket
from tests.channels.email.dovecot import (
    Dovecot,
    append,
    flags_by_message_id,
    ids,
    mail,
    mailbox_of,
    stored_ids,
)

BIG = "x" * 6000
LIMIT = 3000


def messages(db: Database, direction: str) -> list[Message]:
    with db.session() as session:
        return list(session.scalars(select(Message).where(Message.direction == direction)
                                    .order_by(Message.id)))


def test_oversized_mail_is_moved_and_its_sender_told_once(
        dovecot: Dovecot, imap_db: Database, imap_settings: Settings, registry: Any) -> None:
    append(dovecot, mail(1), mail(2, body=BIG), mail(3),
           mail(4, body=BIG, extra="Auto-Submitted: auto-replied\r\n"),
           mail(5, body=BIG).replace(b"From: Customer 5 <customer5@customer.test>",
                                     b"From: MAILER-DAEMON <mailer-daemon@customer.test>"))
    mailbox = mailbox_of(dovecot, max_message_bytes=LIMIT, oversized_folder="Oversized")

    result = poll_once(mailbox, imap_db, registry, imap_settings)

    assert (result.stored, result.oversized) == (2, 3)
    assert stored_ids(imap_db) == ids(1, 3)  # the big ones were never downloaded
    # Moved to their own folder, untouched (not \Seen); the rest stays in INBOX.
    moved = flags_by_message_id(dovecot, "Oversized")
    assert set(moved) == set(ids(2, 4, 5))
    assert all(b"\\Seen" not in flags for flags in moved.values())
    assert set(flags_by_message_id(dovecot)) == set(ids(1, 3))
    with imap_db.session() as session:
        skipped = session.scalars(select(ImapSkippedMessage).order_by(ImapSkippedMessage.uid))
        assert [(s.uid, s.reason) for s in skipped] == [
            (2, "oversized"), (4, "oversized"), (5, "oversized")]
        # Customer 2 and the auto-replier get a placeholder ticket; the mailer-daemon
        # too (nothing lost), but it is automatic mail: never an answer.
        placeholders = {m.external_id: m for m in session.scalars(select(Message).where(
            Message.direction == Direction.INBOUND, Message.raw_id.is_(None)))}
        assert set(placeholders) == set(ids(2, 4, 5))
        text = placeholders["msg-2@customer.test"].text
        assert "not imported" in text and f"{LIMIT} byte limit" in text and "Oversized" in text
        logs = {row.sender: row.suppressed_reason
                for row in session.scalars(select(AutoreplyLog).where(
                    AutoreplyLog.ticket_id.in_([m.ticket_id for m in placeholders.values()])))}
        assert logs == {"customer2@customer.test": None,
                        "customer4@customer.test": "auto_submitted",
                        "mailer-daemon@customer.test": "auto_submitted"}
    notices = [m for m in messages(imap_db, Direction.OUTBOUND)
               if "too large" in m.subject.lower()]
    assert len(notices) == 1
    [notice] = notices
    assert notice.recipient == "customer2@customer.test" and notice.auto_submitted
    assert notice.delivery_state == DeliveryState.PENDING  # the outbox sends it
    assert "is 6.1 KB, larger than the 2.9 KB we can accept" in notice.text

    # Seen again (UIDVALIDITY reset: the watermark starts over): no second notice.
    append(dovecot, mail(2, body=BIG))
    with imap_db.session() as session:
        for row in session.scalars(select(ImapWatermark)):
            session.delete(row)
        session.commit()
    again = poll_once(mailbox, imap_db, registry, imap_settings)
    assert again.oversized == 1
    assert len([m for m in messages(imap_db, Direction.OUTBOUND)
                if "too large" in m.subject.lower()]) == 1
    with imap_db.session() as session:
        assert session.scalar(select(Ticket).where(Ticket.subject == "Router problem 2")
                              ) is not None
        tickets = session.scalars(select(Ticket.id).where(
            Ticket.subject == "Router problem 2")).all()
        assert len(tickets) == 1


def test_without_a_folder_oversized_mail_stays_put_and_is_still_told(
        dovecot: Dovecot, imap_db: Database, imap_settings: Settings, registry: Any) -> None:
    append(dovecot, mail(7, body=BIG))
    mailbox = mailbox_of(dovecot, max_message_bytes=LIMIT)
    result = poll_once(mailbox, imap_db, registry, imap_settings)
    assert (result.stored, result.oversized) == (0, 1)
    assert b"\\Seen" not in flags_by_message_id(dovecot)["msg-7@customer.test"]
    notices = messages(imap_db, Direction.OUTBOUND)
    assert [m.recipient for m in notices] == ["customer7@customer.test"]
    assert poll_once(mailbox, imap_db, registry, imap_settings).examined == 0
