"""Poll IMAP mailboxes into the email channel: one thread per mailbox, IDLE where offered.

``run_poller`` is the ``contactcenter imap`` process: it reads the mailboxes
from settings (``imap_config``) and watches each in its own thread until the
stop event is set (or SIGTERM/SIGINT when it owns the event). A watcher keeps
one connection: it polls (``imap_poll.poll_mailbox``), then waits in IDLE
(RFC 2177), re-issued every ``idle_seconds`` because servers may drop an IDLE
after 30 minutes, or sleeps ``poll_seconds`` when the server has no IDLE. A
lost connection, a server restart or a database error is logged, counted on the
mailbox's health row (``imap_mailbox_states``) and retried with exponential
backoff and jitter, capped; nothing was acknowledged that was not stored, so a
retry loses and duplicates nothing.

Provider fields read: UIDVALIDITY, UID, FLAGS, RFC822.SIZE, the Message-ID header
and the whole message (``BODY.PEEK[]``), which ``store_email`` keeps and the email
adapter turns into an ``InboundContact`` such as::

    InboundContact(channel="email", external_id="CAF=abc@mail.example.com",
                   sender=Identity("email", "anna@example.com", "Anna Petrova"),
                   subject="Router down", text="It blinks red.", inbox_id=3, raw_id=41)
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from imapclient import IMAPClient

from contactcenter.channels.base import ChannelRegistry, load_builtin_adapters
from contactcenter.channels.email.imap_client import IMAP_ERRORS, connect, disconnect
from contactcenter.channels.email.imap_config import MailboxConfig, mailboxes_from_settings
from contactcenter.channels.email.imap_poll import PollResult, poll_mailbox
from contactcenter.channels.email.imap_state import record_failure, record_success
from contactcenter.config import Settings, SettingsError
from contactcenter.db import Database

if TYPE_CHECKING:
    from contactcenter.jobs import JobQueue

__all__ = ["MailboxConfig", "PollResult", "poll_once", "run_poller", "watch_mailbox"]

log = logging.getLogger(__name__)

# How often a waiting watcher looks at its stop event.
IDLE_SLICE_SECONDS = 1.0
# When an IDLE is interrupted once to catch mail that slipped in as it began.
IDLE_SETTLE_SECONDS = 1.0


class ConnectionLostError(ConnectionError):
    """The server ended the session (BYE, or end of file during IDLE)."""


def poll_once(mailbox: MailboxConfig, db: Database, registry: ChannelRegistry,
              settings: Settings, *, jobs: JobQueue | None = None,
              after_batch: Callable[[PollResult], None] | None = None) -> PollResult:
    """Connect, take up to ``run_cap`` new messages, disconnect; record health either way.

    Connection and server errors are counted on the mailbox's health row and
    raised: nothing is flagged that was not stored, so simply call again.
    """
    try:
        client = connect(mailbox)
        try:
            result = poll_mailbox(client, mailbox, db, registry, settings, jobs=jobs,
                                  after_batch=after_batch)
        finally:
            disconnect(client)
    except Exception as exc:
        _record_failure(db, mailbox, exc)
        raise
    _record_success(db, mailbox, result)
    return result


def backoff_delay(failures: int, base: float, cap: float) -> float:
    """Return the wait before retry number ``failures``: exponential, capped, jittered.

    "Equal jitter": half the exponential delay plus a random half, so that many
    pollers cut off by one outage do not reconnect in lockstep.
    """
    delay = min(cap, base * float(2 ** max(0, min(failures - 1, 30))))
    return delay / 2 + random.uniform(0, delay / 2)


def _is_new_mail(response: tuple[Any, ...]) -> bool:
    return len(response) >= 2 and response[1] in (b"EXISTS", b"RECENT")


def wait_for_mail(client: IMAPClient, mailbox: MailboxConfig, stop: threading.Event) -> None:
    """Wait in IDLE until new mail, ``idle_seconds`` or stop; raise if the server hangs up.

    One second in, the IDLE is interrupted once for a NOOP: Dovecot only watches
    the folder from the moment IDLE starts, so mail that landed between our last
    command and that moment would otherwise wait for the next renewal.
    """
    client.idle()
    deadline = time.monotonic() + mailbox.idle_seconds
    settle_at: float | None = time.monotonic() + IDLE_SETTLE_SECONDS
    while not stop.is_set() and time.monotonic() < deadline:
        started = time.monotonic()
        responses = client.idle_check(timeout=IDLE_SLICE_SECONDS)
        if any(r and r[0] == b"BYE" for r in responses):
            raise ConnectionLostError(f"{mailbox.key}: the server said BYE during IDLE")
        if any(_is_new_mail(r) for r in responses):
            break
        if not responses and time.monotonic() - started < IDLE_SLICE_SECONDS / 2:
            # Readable yet nothing parsed: usually end of file. DONE tells for sure
            # (it raises on a dead connection).
            break
        if settle_at is not None and time.monotonic() >= settle_at:
            settle_at = None
            _text, done = client.idle_done()
            _text, noop = client.noop()
            if any(_is_new_mail(r) for r in [*done, *noop]):
                return
            client.idle()
    client.idle_done()


def _record_failure(db: Database, mailbox: MailboxConfig, exc: BaseException) -> None:
    try:
        with db.session() as session:
            record_failure(session, mailbox.key, exc)
    except Exception:  # the database is down too: the log is all there is
        log.exception("IMAP mailbox %s failed (%s: %s) and the failure could not be recorded",
                      mailbox.key, type(exc).__name__, exc)


def _record_success(db: Database, mailbox: MailboxConfig, result: PollResult) -> None:
    with db.session() as session:
        record_success(session, mailbox.key, result.uidvalidity, result.stored)


def watch_mailbox(mailbox: MailboxConfig, db: Database, registry: ChannelRegistry,
                  settings: Settings, stop: threading.Event, jobs: JobQueue | None = None
                  ) -> None:
    """Poll one mailbox until ``stop`` is set, reconnecting with backoff (a thread's target)."""
    failures = 0
    while not stop.is_set():
        client: IMAPClient | None = None
        try:
            client = connect(mailbox)
            idle = mailbox.idle and client.has_capability("IDLE")
            repolled = False
            log.info("IMAP mailbox %s connected (%s)", mailbox.key,
                     "IDLE" if idle else f"polling every {mailbox.poll_seconds:g} s")
            while not stop.is_set():
                result = poll_mailbox(client, mailbox, db, registry, settings, jobs=jobs)
                _record_success(db, mailbox, result)
                failures = 0
                if result.stored or result.oversized:
                    log.info("IMAP mailbox %s: %d stored, %d already stored, %d oversized, "
                             "%d failed processing", mailbox.key, result.stored,
                             result.already_stored, result.oversized, result.failed)
                # A backlog, or mail that arrived during this poll (its EXISTS went by
                # in a reply to one of our commands, and IDLE does not repeat it): poll
                # again. An announcement alone earns one more poll, not a busy loop.
                if result.more or result.examined or (result.announced and not repolled):
                    repolled = not (result.more or result.examined)
                    continue
                repolled = False
                if idle:
                    wait_for_mail(client, mailbox, stop)
                else:
                    stop.wait(mailbox.poll_seconds)
        except Exception as exc:
            # Nothing is acknowledged before it is stored, so whatever broke (network,
            # server, database) the retry loses nothing; it must only never stop.
            failures += 1
            if not isinstance(exc, IMAP_ERRORS):
                log.exception("IMAP mailbox %s: unexpected error", mailbox.key)
            _record_failure(db, mailbox, exc)
            stop.wait(backoff_delay(failures, mailbox.backoff_seconds,
                                    mailbox.backoff_max_seconds))
        finally:
            if client is not None:
                disconnect(client)
    log.info("IMAP mailbox %s stopped", mailbox.key)


def _stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    """Set ``stop`` on SIGTERM and SIGINT; return a function restoring the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda _signum, _frame: stop.set())

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def run_poller(settings: Settings, stop: threading.Event | None = None,
               db: Database | None = None, registry: ChannelRegistry | None = None, *,
               jobs: JobQueue | None = None) -> None:
    """Watch every configured mailbox, each in its own thread, until ``stop`` is set.

    Without a ``stop`` event, SIGTERM and SIGINT stop it. Without ``db``, the
    configured database is opened (not migrated: ``contactcenter db upgrade``).
    ``jobs`` (optional) sends new tickets' acknowledgements at once; without it
    the outbox sweep of the web or worker process sends them. Raises
    ``SettingsError`` when no mailbox is configured.
    """
    mailboxes = mailboxes_from_settings(settings)
    if not mailboxes:
        raise SettingsError("no IMAP mailbox configured: set CONTACTCENTER_IMAP_HOST "
                            "or CONTACTCENTER_IMAP_MAILBOXES")
    database = db or Database(settings.effective_database_url)
    registry = registry or load_builtin_adapters()
    restore: Callable[[], None] = lambda: None
    if stop is None:
        stop = threading.Event()
        restore = _stop_on_signals(stop)
    threads = [threading.Thread(target=watch_mailbox, name=f"imap:{m.key}", daemon=True,
                                args=(m, database, registry, settings, stop, jobs))
               for m in mailboxes]
    try:
        for thread in threads:
            thread.start()
        while not stop.wait(0.5):
            pass
    finally:
        stop.set()
        for mailbox, thread in zip(mailboxes, threads, strict=True):
            if thread.is_alive():
                thread.join(timeout=mailbox.timeout_seconds + IDLE_SLICE_SECONDS + 5)
        restore()
        if db is None:
            database.dispose()
