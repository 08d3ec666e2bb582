"""Take new mail from one IMAP folder: by UID above a watermark, stored before it is flagged.

The order follows Zammad's IMAP driver and Chatwoot's fixes (RELIABILITY.md 2.2):

1. SELECT the folder and read UIDVALIDITY; the watermark is kept per
   (mailbox, UIDVALIDITY), so a new UIDVALIDITY starts again at UID 0.
2. ``UID SEARCH UID n+1:*`` for everything above the watermark (never "since
   yesterday" nor "the last N"), at most ``run_cap`` per run.
3. Per batch, a cheap FETCH of RFC822.SIZE, FLAGS and
   ``BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]``: ``\\Deleted`` messages are left
   alone, oversized ones are recorded as skipped (not downloaded), and a
   Message-ID already stored is not downloaded again.
4. ``BODY.PEEK[]`` for the rest (``BODY[]`` would set ``\\Seen`` before we
   stored anything, RFC 3501 6.4.5), each stored with ``store_email``, which
   commits; a message the server refuses to send (NO) is recorded as skipped.
5. Only then ``\\Seen``, or a move to the processed folder (UID MOVE, else
   COPY + ``\\Deleted`` + UID EXPUNGE of our own UIDs only, RFC 4315).
6. Processing (parse, thread, ticket); a failure leaves the raw row failed or
   quarantined for replay and never stops the mailbox.
7. The watermark moves past the batch.

A crash anywhere repeats at most the current batch, and the repeat is
recognised by Message-ID (or the raw bytes' MD5 when there is none): no
duplicates, no gaps.
"""

from __future__ import annotations

import imaplib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imapclient import IMAPClient
from sqlalchemy.orm import Session

from contactcenter.channels.base import ChannelRegistry
from contactcenter.channels.email.imap_client import (
    DELETED,
    is_mail_announced,
    mark_done,
    move_to,
    open_folder,
)
from contactcenter.channels.email.imap_config import MailboxConfig
from contactcenter.channels.email.imap_oversized import fetch_headers, notify_oversized
from contactcenter.channels.email.imap_state import (
    find_stored,
    find_watermark,
    record_skipped,
    save_watermark,
)
from contactcenter.channels.email.receive import (
    enqueue_delivery,
    find_inbox,
    message_id_of,
    process_email,
    store_email,
)
from contactcenter.config import Settings
from contactcenter.db import Database
from contactcenter.tickets.models import RawState

if TYPE_CHECKING:
    from contactcenter.jobs import JobQueue

log = logging.getLogger(__name__)

META_ITEMS = ["RFC822.SIZE", "FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]
BODY_ITEM = "BODY.PEEK[]"
BODY_CHUNK_MESSAGES = 25
BODY_CHUNK_BYTES = 32 * 1024 * 1024
# A stored row still pending was interrupted between store and process; it is
# processed again on a later poll, but not forever (a message that kills the poller).
MAX_PENDING_ATTEMPTS = 3


@dataclass
class PollResult:
    """What one poll of one mailbox did.

    ``more``: the run cap left messages for the next run. ``announced``: the
    server announced new mail while this poll ran, so poll again before IDLE.
    ``raw_ids`` are the raw rows this poll stored.
    """

    mailbox: str
    uidvalidity: int
    watermark: int
    examined: int = 0
    stored: int = 0
    already_stored: int = 0
    deleted: int = 0
    oversized: int = 0
    unfetchable: int = 0
    processed: int = 0
    failed: int = 0
    more: bool = False
    announced: bool = False
    raw_ids: list[int] = field(default_factory=list)


def _header_message_id(item: dict[bytes, Any]) -> str | None:
    for key, value in item.items():
        if (isinstance(key, bytes) and key.startswith(b"BODY[HEADER.FIELDS")
                and isinstance(value, bytes) and value.strip()):
            found = message_id_of(value + b"\r\n")
            # message_id_of falls back to a digest of what it was given: here that
            # would be the header lines, not the message, so download it instead.
            return None if found.endswith("@generated") else found
    return None


def _chunks(uids: list[int], sizes: dict[int, int]) -> Iterator[list[int]]:
    chunk: list[int] = []
    total = 0
    for uid in uids:
        if chunk and (len(chunk) >= BODY_CHUNK_MESSAGES
                      or total + sizes.get(uid, 0) > BODY_CHUNK_BYTES):
            yield chunk
            chunk, total = [], 0
        chunk.append(uid)
        total += sizes.get(uid, 0)
    if chunk:
        yield chunk


@dataclass
class _Poll:
    client: IMAPClient
    mailbox: MailboxConfig
    session: Session
    registry: ChannelRegistry
    settings: Settings
    uidvalidity: int
    inbox_id: int | None
    limit: int
    result: PollResult
    jobs: JobQueue | None
    oversized: list[tuple[int, int]] = field(default_factory=list)  # (UID, size) this batch

    def take(self, batch: list[int]) -> None:
        """Store, acknowledge, then process one batch of UIDs (see the module doc)."""
        wanted, known, sizes = self._examine(batch)
        self._handle_oversized()
        stored = find_stored(self.session, known.values())
        done: list[int] = []
        later: dict[int, int] = {}  # raw id -> UID, in order; a Message-ID twice is one row
        download: list[int] = []
        for uid in wanted:
            hit = stored.get(known.get(uid, ""))
            if hit is None:
                download.append(uid)
                continue
            done.append(uid)
            self.result.already_stored += 1
            if hit[1] == RawState.PENDING and hit[2] < MAX_PENDING_ATTEMPTS:
                later.setdefault(hit[0], uid)
        mark_done(self.client, self.mailbox, done)
        for chunk in _chunks(download, sizes):
            done = []
            for uid, raw in self._bodies(chunk, sizes).items():
                row, new = store_email(self.session, raw, self.inbox_id)
                done.append(uid)
                if new:
                    self.result.stored += 1
                    self.result.raw_ids.append(row.id)
                    later.setdefault(row.id, uid)
                else:
                    self.result.already_stored += 1
                    if row.state == RawState.PENDING and row.attempts < MAX_PENDING_ATTEMPTS:
                        later.setdefault(row.id, uid)
            mark_done(self.client, self.mailbox, done)
        for raw_id, uid in later.items():
            self._process(raw_id, uid)

    def _examine(self, batch: list[int]) -> tuple[list[int], dict[int, str], dict[int, int]]:
        """Fetch sizes, flags and Message-IDs; return the UIDs worth a look, ids and sizes."""
        meta = self.client.fetch(batch, META_ITEMS)
        wanted: list[int] = []
        known: dict[int, str] = {}
        sizes: dict[int, int] = {}
        for uid in batch:
            item = meta.get(uid)
            if item is None:  # expunged since the search
                continue
            self.result.examined += 1
            if DELETED in item.get(b"FLAGS", ()):
                self.result.deleted += 1
                continue
            sizes[uid] = int(item.get(b"RFC822.SIZE") or 0)
            message_id = _header_message_id(item)
            if sizes[uid] > self.limit:
                self.result.oversized += 1
                self._skip(uid, sizes[uid], message_id or "", "oversized",
                           f"{sizes[uid]} bytes, over the {self.limit} byte limit")
                self.oversized.append((uid, sizes[uid]))
                continue
            if message_id:
                known[uid] = message_id
            wanted.append(uid)
        return wanted, known, sizes

    def _handle_oversized(self) -> None:
        """Tell each oversized message's sender once, then move it to its own folder.

        Only the headers are fetched (``imap_oversized``). A failure to open the
        placeholder ticket is logged and leaves the skipped row as the admin's
        record; the move happens after the commit, like every flag we set.
        """
        taken, self.oversized = self.oversized, []
        if not taken:
            return
        target = self.mailbox.oversized_folder
        where = f"mailbox {self.mailbox.key}, folder {target or self.mailbox.folder}"
        heads = fetch_headers(self.client, [uid for uid, _ in taken])
        for uid, size in taken:
            head = heads.get(uid)
            if head is None:
                continue
            try:
                outcome = notify_oversized(self.session, head, self.settings, size=size,
                                           limit=self.limit, where=where,
                                           inbox_id=self.inbox_id)
            except Exception:
                self.session.rollback()
                log.exception("IMAP mailbox %s: UID %d: no ticket for the oversized message",
                              self.mailbox.key, uid)
                continue
            log.info("IMAP mailbox %s: UID %d oversized: %s (notice %s, %s)", self.mailbox.key,
                     uid, outcome.status, outcome.notice_message_id, outcome.reason)
            enqueue_delivery(self.jobs, outcome.notice_message_id)
        if target:
            move_to(self.client, [uid for uid, _ in taken], target, self.mailbox.key)

    def _bodies(self, chunk: list[int], sizes: dict[int, int]) -> dict[int, bytes]:
        """Fetch whole messages with BODY.PEEK[]; one the server refuses is skipped.

        A NO for one broken message (Dovecot answers ``NO [SERVERBUG]`` for a
        corrupt mail file) must not hold the mailbox up forever: the chunk is
        retried a message at a time and the refused one recorded. A lost
        connection (``abort``, socket errors) is raised as it is.
        """
        try:
            fetched = self.client.fetch(chunk, [BODY_ITEM])
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            if len(chunk) > 1:
                bodies: dict[int, bytes] = {}
                for uid in chunk:
                    bodies.update(self._bodies([uid], sizes))
                return bodies
            self.result.unfetchable += 1
            self._skip(chunk[0], sizes.get(chunk[0], 0), "", "unfetchable", str(exc)[:2000])
            return {}
        bodies = {}
        for uid in chunk:
            raw = fetched.get(uid, {}).get(b"BODY[]")
            if isinstance(raw, bytes):  # else expunged since the metadata fetch
                bodies[uid] = raw
        return bodies

    def _skip(self, uid: int, size: int, message_id: str, reason: str, detail: str) -> None:
        log.warning("IMAP mailbox %s: UID %d (%s) left on the server, %s: %s",
                    self.mailbox.key, uid, message_id or "no Message-ID", reason, detail)
        record_skipped(self.session, self.mailbox.key, self.uidvalidity, uid, size=size,
                       message_id=message_id, reason=reason, detail=detail)

    def _process(self, raw_id: int, uid: int) -> None:
        try:
            received = process_email(self.session, raw_id, self.registry, self.settings,
                                     jobs=self.jobs)
        except Exception:
            # The raw row is committed and replayable (`contactcenter replay`); the
            # mailbox goes on with the next message.
            self.session.rollback()
            log.exception("IMAP mailbox %s: processing raw payload %s (UIDVALIDITY %d, UID %d) "
                          "failed", self.mailbox.key, raw_id, self.uidvalidity, uid)
            self.result.failed += 1
            return
        if received.status in (RawState.FAILED, RawState.QUARANTINED):
            # Stored and acknowledged: it waits, failed or quarantined, for a replay.
            log.warning("IMAP mailbox %s: UIDVALIDITY %d UID %d stored as raw payload %s, "
                        "%s: %s", self.mailbox.key, self.uidvalidity, uid, raw_id,
                        received.status, received.reason)
            self.result.failed += 1
        else:
            self.result.processed += 1


def _inbox_id(session: Session, mailbox: MailboxConfig) -> int | None:
    address = mailbox.inbox or (mailbox.user if "@" in mailbox.user else "")
    inbox = find_inbox(session, address) if address else None
    if inbox is None and mailbox.inbox:
        log.warning("IMAP mailbox %s: no email inbox has the address %s; mail is stored "
                    "without an inbox", mailbox.key, mailbox.inbox)
    return inbox.id if inbox is not None else None


def message_limit(mailbox: MailboxConfig, settings: Settings) -> int:
    """Return the largest message this mailbox downloads, in bytes."""
    return (mailbox.max_message_bytes or settings.imap_max_message_bytes
            or settings.smtp_max_message_bytes)


def poll_mailbox(client: IMAPClient, mailbox: MailboxConfig, db: Database,
                 registry: ChannelRegistry, settings: Settings, *,
                 jobs: JobQueue | None = None,
                 after_batch: Callable[[PollResult], None] | None = None) -> PollResult:
    """Take up to ``run_cap`` new messages through a logged-in client (see the module doc).

    ``jobs`` lets a new ticket's acknowledgement be sent at once (without it the
    outbox sweep sends it). ``after_batch`` is called after each batch's watermark
    is saved (tests use it to break the connection between two batches).
    """
    uidvalidity = open_folder(client, mailbox)
    with db.session() as session:
        inbox_id = _inbox_id(session, mailbox)
        watermark = find_watermark(session, mailbox.key, uidvalidity)
        session.rollback()  # no transaction left open while the server answers
        found = client.search(["UID", f"{watermark + 1}:*"])
        uids = sorted(uid for uid in found if uid > watermark)  # n:* always names the last
        result = PollResult(mailbox.key, uidvalidity, watermark,
                            more=len(uids) > mailbox.run_cap)
        poll = _Poll(client, mailbox, session, registry, settings, uidvalidity, inbox_id,
                     message_limit(mailbox, settings), result, jobs)
        uids = uids[:mailbox.run_cap]
        for start in range(0, len(uids), mailbox.batch_size):
            batch = uids[start:start + mailbox.batch_size]
            poll.take(batch)
            save_watermark(session, mailbox.key, uidvalidity, batch[-1])
            result.watermark = batch[-1]
            if after_batch is not None:
                after_batch(result)
    result.announced = is_mail_announced(client)
    return result
