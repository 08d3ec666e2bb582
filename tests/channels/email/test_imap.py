"""One poll of a real Dovecot: stored before flagged, no duplicates, no gaps.

The IMAP guarantees are checked on raw rows (stored, flagged, counted once), which
hold whether or not the email parser exists; the ticket-level assertions run once
``contactcenter/channels/email/parser.py`` is there.
"""

from __future__ import annotations

from typing import Any

import pytest
from imapclient import IMAPClient
from sqlalchemy import select

from contactcenter.channels.base import ChannelRegistry, QuarantineError
from contactcenter.channels.email import imap_poll
from contactcenter.channels.email.imap import PollResult, poll_once
from contactcenter.channels.email.imap_client import IMAP_ERRORS
from contactcenter.channels.email.imap_config import MailboxConfig
from contactcenter.channels.email.imap_state import find_mailbox_state
from contactcenter.channels.email.models import ImapSkippedMessage, ImapWatermark
from contactcenter.config import Settings
from contactcenter.db import Database
from contactcenter.tickets.models import Inbox, RawState
from tests.channels.email.dovecot import (
    HAS_PARSER,
    Dovecot,
    append,
    assert_tickets,
    flags_by_message_id,
    ids,
    mail,
    mailbox_of,
    raw_rows,
    require_dovecot,
    stored_ids,
)

pytestmark = pytest.mark.imap


def test_poll_stores_then_flags_seen_and_tickets_each_message(
        dovecot: Dovecot, imap_db: Database, imap_settings: Settings, registry: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    append(dovecot, mail(1), mail(2), mail(3))
    flagged_while_stored: list[bool] = []
    real_mark_done = imap_poll.mark_done

    def checking_mark_done(client: Any, mailbox: MailboxConfig, uids: list[int]) -> None:
        if uids:
            fetched = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]", "FLAGS"])
            on_server = {v[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().split("<")[1]
                         .split(">")[0] for v in fetched.values()}
            flagged_while_stored.append(on_server <= set(stored_ids(imap_db)))
            assert all(b"\\Seen" not in v[b"FLAGS"] for v in fetched.values())
        real_mark_done(client, mailbox, uids)

    monkeypatch.setattr(imap_poll, "mark_done", checking_mark_done)
    result = poll_once(mailbox_of(dovecot), imap_db, registry, imap_settings)

    assert (result.stored, result.already_stored, result.examined) == (3, 0, 3)
    assert flagged_while_stored and all(flagged_while_stored)
    assert stored_ids(imap_db) == ids(1, 2, 3)
    assert all(b"\\Seen" in flags for flags in flags_by_message_id(dovecot).values())
    with imap_db.session() as session:
        inbox_id = session.scalar(select(Inbox.id))
    assert {row.inbox_id for row in raw_rows(imap_db)} == {inbox_id}
    assert raw_rows(imap_db)[0].payload == mail(1)
    assert_tickets(imap_db, 3)

    again = poll_once(mailbox_of(dovecot), imap_db, registry, imap_settings)
    assert (again.examined, again.stored) == (0, 0)
    assert again.watermark == result.watermark
    assert stored_ids(imap_db) == ids(1, 2, 3)
    with imap_db.session() as session:
        state = find_mailbox_state(session, mailbox_of(dovecot).key)
        assert state is not None
        assert (state.consecutive_failures, state.messages_total) == (0, 3)
        assert state.uidvalidity == result.uidvalidity


def test_lost_watermark_and_flags_are_recovered_by_message_id(
        dovecot: Dovecot, imap_db: Database, imap_settings: Settings, registry: Any) -> None:
    append(dovecot, mail(1), mail(2))
    poll_once(mailbox_of(dovecot), imap_db, registry, imap_settings)
    # As if the poller died after storing, before the flags and the watermark.
    with imap_db.session() as session:
        session.execute(ImapWatermark.__table__.delete())
        session.commit()
    client = dovecot.connect()
    client.select_folder("INBOX")
    client.remove_flags(client.search("ALL"), [b"\\Seen"])
    client.logout()

    result = poll_once(mailbox_of(dovecot), imap_db, registry, imap_settings)

    assert (result.stored, result.already_stored) == (0, 2)
    assert stored_ids(imap_db) == ids(1, 2)
    assert all(b"\\Seen" in flags for flags in flags_by_message_id(dovecot).values())


def test_crash_before_the_commit_leaves_mail_unseen_for_the_next_poll(
        dovecot: Dovecot, imap_db: Database, imap_settings: Settings, registry: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    append(dovecot, mail(1), mail(2))

    def broken_store(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk full")

    with monkeypatch.context() as patched, pytest.raises(RuntimeError):
        patched.setattr(imap_poll, "store_email", broken_store)
        poll_once(mailbox_of(dovecot), imap_db, registry, imap_settings)
    assert raw_rows(imap_db) == []
    assert all(b"\\Seen" not in flags for flags in flags_by_message_id(dovecot).values())
    with imap_db.session() as session:
        state = find_mailbox_state(session, mailbox_of(dovecot).key)
        assert state is not None and state.consecutive_failures == 1
        assert "disk full" in state.last_error

    result = poll_once(mailbox_of(dovecot), imap_db, registry, imap_settings)
    assert result.stored == 2
    assert stored_ids(imap_db) == ids(1, 2)
    assert all(b"\\Seen" in flags for flags in flags_by_message_id(dovecot).values())
    with imap_db.session() as session:
        state = find_mailbox_state(session, mailbox_of(dovecot).key)
        assert state is not None
        assert (state.consecutive_failures, state.failures_total) == (0, 1)


def test_crash_between_commit_and_flag_neither_duplicates_nor_loses(
        dovecot: Dovecot, imap_db: Database, imap_settings: Settings, registry: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    append(dovecot, mail(1), mail(2))

    def lost_connection(client: Any, mailbox: MailboxConfig, uids: list[int]) -> None:
        if uids:
            raise ConnectionResetError("connection reset by peer")

    with monkeypatch.context() as patched, pytest.raises(ConnectionResetError):
        patched.setattr(imap_poll, "mark_done", lost_connection)
        poll_once(mailbox_of(dovecot), imap_db, registry, imap_settings)
    assert stored_ids(imap_db) == ids(1, 2)
    assert all(b"\\Seen" not in flags for flags in flags_by_message_id(dovecot).values())

    result = poll_once(mailbox_of(dovecot), imap_db, registry, imap_settings)
    assert (result.stored, result.already_stored) == (0, 2)
    assert stored_ids(imap_db) == ids(1, 2)
    assert all(b"\\Seen" in flags for flags in flags_by_message_id(dovecot).values())
    # Stored but never processed before the crash: processed now, once.
    assert {row.attempts for row in raw_rows(imap_db)} == {1}
    assert_tickets(imap_db, 2)


def test_server_restart_between_batches_resumes_without_gaps_or_duplicates(
        dovecot: Dovecot, imap_db: Database, imap_settings: Settings, registry: Any) -> None:
    append(dovecot, *(mail(n) for n in range(1, 8)))
    mailbox = mailbox_of(dovecot, batch_size=3)
    batches: list[int] = []

    def kill_after_first_batch(result: PollResult) -> None:
        batches.append(result.watermark)
        if len(batches) == 1:
            dovecot.stop()

    with pytest.raises(IMAP_ERRORS):
        poll_once(mailbox, imap_db, registry, imap_settings, after_batch=kill_after_first_batch)
    assert stored_ids(imap_db) == ids(1, 2, 3)
    with pytest.raises(OSError):  # down: refused, counted, raised
        poll_once(mailbox, imap_db, registry, imap_settings)

    dovecot.start()
    append(dovecot, mail(8))
    result = poll_once(mailbox, imap_db, registry, imap_settings)

    assert result.stored == 5 and result.examined == 5  # 4..8 only: resumed at the watermark
    assert stored_ids(imap_db) == ids(*range(1, 9))
    flags = flags_by_message_id(dovecot)
    assert len(flags) == 8 and all(b"\\Seen" in f for f in flags.values())
    with imap_db.session() as session:
        state = find_mailbox_state(session, mailbox.key)
        assert state is not None
        assert (state.consecutive_failures, state.failures_total) == (0, 2)
    assert_tickets(imap_db, 8)


def test_uidvalidity_change_imports_new_mail_and_dedupes_old_by_message_id(
        dovecot: Dovecot, imap_db: Database, imap_settings: Settings, registry: Any) -> None:
    mailbox = mailbox_of(dovecot, folder="Support")
    append(dovecot, mail(1), mail(2), mail(3), folder="Support")
    first = poll_once(mailbox, imap_db, registry, imap_settings)
    assert first.stored == 3

    client = dovecot.connect()  # the folder is rebuilt: every UID starts again
    client.delete_folder("Support")
    client.create_folder("Support")
    client.logout()
    append(dovecot, mail(2), mail(3), mail(4), mail(5), folder="Support")
    second = poll_once(mailbox, imap_db, registry, imap_settings)

    assert second.uidvalidity != first.uidvalidity
    assert (second.stored, second.already_stored) == (2, 2)
    assert stored_ids(imap_db) == ids(1, 2, 3, 4, 5)
    assert all(b"\\Seen" in f for f in flags_by_message_id(dovecot, "Support").values())
    with imap_db.session() as session:
        marks = {(w.uidvalidity, w.last_uid) for w in session.scalars(select(ImapWatermark))}
    assert marks == {(first.uidvalidity, 3), (second.uidvalidity, 4)}
    assert_tickets(imap_db, 5)


class PoisonAware:
    """The real email adapter, except for messages marked to break it."""

    kind = "email"

    def __init__(self, real: Any) -> None:
        self.real = real

    def enabled(self, settings: Settings) -> bool:
        return True

    def check(self, settings: Settings) -> str:
        return "ok"

    def to_inbound(self, payload: bytes, *, inbox_id: int | None, raw_id: int | None) -> Any:
        if b"X-Poison: yes" in payload:
            raise ValueError("the parser chokes on this one")
        if b"X-Too-Deep: yes" in payload:
            raise QuarantineError("MIME nesting over the limit")
        return self.real.to_inbound(payload, inbox_id=inbox_id, raw_id=raw_id)

    def send(self, outbound: Any, settings: Settings) -> Any:
        raise NotImplementedError


def test_message_that_fails_to_parse_is_stored_flagged_and_left_for_replay(
        dovecot: Dovecot, imap_db: Database, imap_settings: Settings, registry: Any) -> None:
    poisoned = ChannelRegistry()
    poisoned.register(PoisonAware(registry.get("email")))
    append(dovecot, mail(1, extra="X-Poison: yes\r\n"), mail(2, extra="X-Too-Deep: yes\r\n"),
           mail(3))

    result = poll_once(mailbox_of(dovecot), imap_db, poisoned, imap_settings)

    assert result.stored == 3
    assert all(b"\\Seen" in f for f in flags_by_message_id(dovecot).values())
    rows = {row.external_id: row for row in raw_rows(imap_db)}
    assert rows["msg-1@customer.test"].state == RawState.FAILED
    assert "chokes" in rows["msg-1@customer.test"].error
    assert rows["msg-2@customer.test"].state == RawState.QUARANTINED
    assert rows["msg-3@customer.test"].state == (RawState.PROCESSED if HAS_PARSER
                                                 else RawState.FAILED)
    again = poll_once(mailbox_of(dovecot), imap_db, poisoned, imap_settings)
    assert again.examined == 0
    assert {row.attempts for row in raw_rows(imap_db)} == {1}  # not retried by the poller


def test_oversized_and_deleted_messages_are_left_on_the_server(
        dovecot: Dovecot, imap_db: Database, imap_settings: Settings, registry: Any) -> None:
    append(dovecot, mail(1), mail(2, body="x" * 5000), mail(3))
    append(dovecot, mail(4), flags=(b"\\Deleted",))
    mailbox = mailbox_of(dovecot, max_message_bytes=2000)

    result = poll_once(mailbox, imap_db, registry, imap_settings)

    assert (result.stored, result.oversized, result.deleted) == (2, 1, 1)
    assert stored_ids(imap_db) == ids(1, 3)
    flags = flags_by_message_id(dovecot)
    assert b"\\Seen" not in flags["msg-2@customer.test"]
    assert flags["msg-4@customer.test"] == {b"\\Deleted"}
    with imap_db.session() as session:
        skipped = session.scalars(select(ImapSkippedMessage)).one()
        assert (skipped.uid, skipped.reason, skipped.message_id) == (
            2, "oversized", "msg-2@customer.test")
        assert skipped.size > 5000
        state = find_mailbox_state(session, mailbox.key)
        assert state is not None and state.skipped_total == 1
    assert poll_once(mailbox, imap_db, registry, imap_settings).examined == 0


def test_a_message_the_server_refuses_to_send_does_not_hold_up_the_rest(
        dovecot: Dovecot, imap_db: Database, imap_settings: Settings, registry: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    append(dovecot, mail(1), mail(2), mail(3))
    real_fetch = IMAPClient.fetch

    def fetch(self: IMAPClient, messages: Any, data: Any, *args: Any) -> Any:
        if "BODY.PEEK[]" in data and 2 in list(messages):  # as Dovecot does for a corrupt file
            raise IMAPClient.Error("FETCH failed: NO [SERVERBUG] Internal error occurred")
        return real_fetch(self, messages, data, *args)

    monkeypatch.setattr(IMAPClient, "fetch", fetch)
    result = poll_once(mailbox_of(dovecot), imap_db, registry, imap_settings)

    assert (result.stored, result.unfetchable) == (2, 1)
    assert stored_ids(imap_db) == ids(1, 3)
    assert b"\\Seen" not in flags_by_message_id(dovecot)["msg-2@customer.test"]
    with imap_db.session() as session:
        skipped = session.scalars(select(ImapSkippedMessage)).one()
        assert (skipped.uid, skipped.reason) == (2, "unfetchable")
        assert "SERVERBUG" in skipped.detail


def test_message_without_message_id_is_stored_once_by_its_digest(
        dovecot: Dovecot, imap_db: Database, imap_settings: Settings, registry: Any) -> None:
    bare = b"From: someone@customer.test\r\nSubject: no id\r\n\r\nhello\r\n"
    append(dovecot, bare)
    poll_once(mailbox_of(dovecot), imap_db, registry, imap_settings)
    with imap_db.session() as session:
        session.execute(ImapWatermark.__table__.delete())
        session.commit()
    result = poll_once(mailbox_of(dovecot), imap_db, registry, imap_settings)
    assert (result.stored, result.already_stored) == (0, 1)
    [row] = raw_rows(imap_db)
    assert row.external_id.endswith("@generated")


@pytest.mark.parametrize("capabilities", ["", "IMAP4rev1 LITERAL+ UIDPLUS"],
                         ids=["uid-move", "copy-and-uid-expunge"])
def test_move_to_processed_folder_takes_only_our_messages(
        capabilities: str, imap_db: Database, imap_settings: Settings, registry: Any) -> None:
    require_dovecot()
    server = Dovecot(extra=f"imap_capability = {capabilities}" if capabilities else "")
    server.start()
    try:
        append(server, mail(1), mail(2))
        append(server, mail(3), flags=(b"\\Deleted",))  # someone else's, not ours to expunge
        mailbox = mailbox_of(server, processed_folder="Processed")

        result = poll_once(mailbox, imap_db, registry, imap_settings)
        assert result.stored == 2
        assert flags_by_message_id(server) == {"msg-3@customer.test": {b"\\Deleted"}}
        moved = flags_by_message_id(server, "Processed")
        assert set(moved) == {"msg-1@customer.test", "msg-2@customer.test"}
        assert all(b"\\Seen" in f and b"\\Deleted" not in f for f in moved.values())

        append(server, mail(4))
        assert poll_once(mailbox, imap_db, registry, imap_settings).stored == 1
        assert set(flags_by_message_id(server, "Processed")) == set(ids(1, 2, 4))
        assert stored_ids(imap_db) == ids(1, 2, 4)
    finally:
        server.cleanup()


def test_run_cap_bounds_each_poll_and_the_rest_follows(
        dovecot: Dovecot, imap_db: Database, imap_settings: Settings, registry: Any) -> None:
    append(dovecot, *(mail(n) for n in range(1, 6)))
    mailbox = mailbox_of(dovecot, run_cap=2, batch_size=1)
    runs = [poll_once(mailbox, imap_db, registry, imap_settings) for _ in range(3)]
    assert [(r.stored, r.more) for r in runs] == [(2, True), (2, True), (1, False)]
    assert stored_ids(imap_db) == ids(1, 2, 3, 4, 5)


def test_mail_arriving_during_a_poll_is_noticed_for_the_next_one(
        dovecot: Dovecot, imap_db: Database, imap_settings: Settings, registry: Any) -> None:
    append(dovecot, mail(1), mail(2))

    def arrives_meanwhile(result: PollResult) -> None:
        if result.watermark == 1:
            append(dovecot, mail(3))

    result = poll_once(mailbox_of(dovecot, batch_size=1), imap_db, registry, imap_settings,
                       after_batch=arrives_meanwhile)
    assert (result.stored, result.more, result.announced) == (2, False, True)
    again = poll_once(mailbox_of(dovecot), imap_db, registry, imap_settings)
    assert (again.stored, again.announced) == (1, False)
    assert stored_ids(imap_db) == ids(1, 2, 3)
