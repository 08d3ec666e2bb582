"""Receive mail by SMTP: recipients to inboxes, the raw bytes committed before the 250.

Provider fields read: the envelope recipients (``RCPT TO``, each mapped to an email
inbox with plus-addressing understood: ``support+anything@x`` is ``support@x``) and the
message bytes after ``DATA``. Everything else comes from the message itself, through
the email adapter (``parser.email_to_contact``), for example::

    InboundContact(channel="email", external_id="CAF=abc@mail.example.com", inbox_id=3,
                   sender=Identity("email", "anna@example.com", "Anna Petrova"),
                   subject="Router down", text="It blinks red.", raw_id=812)

Replies (RFC 5321, with RFC 3463 enhanced codes):

- ``RCPT`` to an address no email inbox has: ``550 5.1.1`` (refused at RCPT, so no
  bounce is ever sent to a forged sender); more than ``MAX_RECIPIENTS``:
  ``452 4.5.3``; the inbox lookup itself failing: ``451 4.3.0``.
- ``EHLO`` announces ``SIZE`` (``CONTACTCENTER_SMTP_MAX_MESSAGE_BYTES``);
  ``MAIL FROM:<..> SIZE=N`` above it gets ``552 5.3.4`` before DATA, and an
  undeclared stream above it gets ``552 5.3.4`` after the final dot. aiosmtpd keeps at
  most the limit in memory and discards the rest line by line as it arrives.
- ``DATA``: ``250`` only once the raw message is committed (``store_email`` in its own
  session, on a worker thread so a slow database does not stall other sessions); any
  failure to store answers ``451 4.3.0`` and nothing internal is said. Parsing and
  threading run after the commit, on this server's intake thread, so a message that
  fails there is still answered 250 and stays stored as failed or
  quarantined, replayable with ``contactcenter replay``.
- A message for several inboxes is stored once, with the first recipient's inbox:
  deduplication is per Message-ID anyway, and one customer mail is one ticket.
- Body lines longer than RFC 5321's 998 octets are accepted and stored as they came,
  up to 64 KiB (``smtp_protocol.MAX_LINE_OCTETS``); a longer line gets ``500 5.5.2``
  after the final dot, nothing is stored, and the session goes on.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiosmtpd.smtp import Envelope, Session

from contactcenter.channels.base import ChannelRegistry
from contactcenter.channels.email.receive import find_inbox, process_email, store_email
from contactcenter.channels.email.smtp_protocol import GuardedSMTP, RoutedEnvelope, SessionTable
from contactcenter.channels.email.smtp_writer import TurnAwareRegistry, WriterTurns
from contactcenter.config import Settings, SettingsError
from contactcenter.db import Database
from contactcenter.jobs import JobQueue
from contactcenter.tickets.models import RawState

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 100  # RFC 5321 §4.5.3.1.8: at least 100 must be accepted
DB_THREADS = 8
DEFAULT_MAX_BYTES = 25 * 1024 * 1024
# Per-session command budgets: a client that loops on NOOP or VRFY to keep a session
# alive is cut off (421) instead of holding it forever; real mail needs far fewer.
CALL_LIMITS = {"NOOP": 50, "VRFY": 10, "EXPN": 10, "HELP": 10, "AUTH": 3, "*": 10_000}
STORE_FAILED = "451 4.3.0 Temporary failure storing the message, try again later"
LOOKUP_FAILED = "451 4.3.0 Temporary failure looking the recipient up, try again later"
LOCAL_ERROR = "451 4.3.0 Local error in processing, try again later"
NO_SUCH_MAILBOX = "550 5.1.1 Recipient address rejected: no such mailbox here"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
BAD_SENDER = "553 5.1.7 Sender address contains control characters"
BAD_RECIPIENT = "553 5.1.3 Recipient address contains control characters"


def has_control_characters(address: str) -> bool:
    """Whether an envelope address holds a C0 control or DEL (a NUL breaks PostgreSQL text)."""
    return any(ord(char) < 32 or ord(char) == 127 for char in address)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """Return the STARTTLS context of the configured certificate, or None without one."""
    cert, key = settings.smtp_tls_cert, settings.smtp_tls_key
    if not cert and not key:
        return None
    if not cert or not key:
        raise SettingsError("CONTACTCENTER_SMTP_TLS_CERT and CONTACTCENTER_SMTP_TLS_KEY "
                            "must be set together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class MailHandler:
    """aiosmtpd hooks: recipient lookup, the durable store, and a safe exception reply."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_EHLO(self, smtp: GuardedSMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        """Answer EHLO without an AUTH line: nobody logs in to deliver mail here."""
        session.host_name = hostname
        return [line for line in responses if not line.startswith("250-AUTH")]

    async def handle_MAIL(self, smtp: GuardedSMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        """Take the envelope sender, unless it carries control characters (NUL and kin)."""
        if has_control_characters(address):
            return BAD_SENDER
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, smtp: GuardedSMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        """Accept a recipient only if it maps to an email inbox."""
        assert isinstance(envelope, RoutedEnvelope)
        if has_control_characters(address):
            return BAD_RECIPIENT
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return TOO_MANY_RECIPIENTS
        try:
            inbox_id = await self.server.run_db(self.server.find_inbox_id, address)
        except Exception:
            log.exception("SMTP recipient lookup failed for %r from %r", address, session.peer)
            return LOOKUP_FAILED
        if inbox_id is None:
            log.info("SMTP recipient %r refused (no inbox) from %r", address, session.peer)
            return NO_SUCH_MAILBOX
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        envelope.inbox_ids.append(inbox_id)
        return "250 2.1.5 OK"

    async def handle_DATA(self, smtp: GuardedSMTP, session: Session, envelope: Envelope) -> str:
        """Commit the raw bytes, then answer 250; answer 451 if they cannot be stored."""
        raw = envelope.original_content or b""
        inbox_ids = envelope.inbox_ids if isinstance(envelope, RoutedEnvelope) else []
        try:
            raw_id = await self.server.run_db(self.server.store, raw,
                                              inbox_ids[0] if inbox_ids else None)
        except Exception:
            log.exception("SMTP message from %r (%d bytes, MAIL FROM %r) not stored: "
                          "answered 451", session.peer, len(raw), envelope.mail_from)
            return STORE_FAILED
        return f"250 2.0.0 OK: stored as {raw_id}"

    async def handle_exception(self, error: Exception) -> str:
        """Answer any other failure with a temporary error that tells nothing internal."""
        log.error("SMTP session error answered 451", exc_info=error)
        return LOCAL_ERROR


class SmtpServer:
    """The inbound SMTP server on its own thread and asyncio loop.

    Stored mail is parsed and threaded by ``process_email`` on one intake thread of
    this server, in arrival order (a reply after the message it answers), right after
    its 250; mail still queued there when the server stops stays ``pending`` in the
    database, where the ``intake.sweep`` job finds it.

    :param jobs: where follow-up work goes (the delivery of a new ticket's
        acknowledgement); without one, the outbox sweep delivers it.
    """

    def __init__(self, db: Database, registry: ChannelRegistry, settings: Settings,
                 jobs: JobQueue | None = None, *, host: str | None = None,
                 port: int | None = None) -> None:
        self.db = db
        self.registry = registry
        self.settings = settings
        self.jobs = jobs
        self.host = host if host is not None else settings.smtp_host
        self.port = port if port is not None else settings.smtp_port
        self.tls = tls_context(settings)
        self.sessions = SessionTable(settings.smtp_max_connections_per_ip)
        self.handler = MailHandler(self)
        self._db_pool: ThreadPoolExecutor | None = None
        self._processor: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self.turns = WriterTurns(enabled=db.engine.dialect.name == "sqlite")
        self._processing_registry = TurnAwareRegistry(registry, self.turns)

    # --- database work (worker threads) ---------------------------------------------

    def find_inbox_id(self, address: str) -> int | None:
        """Return the id of the email inbox an address delivers to, or None."""
        with self.db.session() as session:
            inbox = find_inbox(session, address)
            return inbox.id if inbox is not None else None

    def store(self, raw: bytes, inbox_id: int | None) -> int:
        """Commit the raw message (the 250 gate) and hand it on for processing."""
        with self.turns.store(), self.db.session() as session:
            row, new = store_email(session, raw, inbox_id)
            raw_id, state = row.id, row.state
        if (new or state in (RawState.PENDING, RawState.FAILED)) and self._processor is not None:
            try:
                self._processor.submit(self.process, raw_id)
            except RuntimeError:  # shutting down: the row is pending, the sweep takes it
                log.warning("stored raw email %s left pending for the intake sweep", raw_id)
        return raw_id

    def process(self, raw_id: int) -> None:
        """Parse and ingest one stored message (failures leave it marked, never raise)."""
        try:
            with self.turns.process(), self.db.session() as session:
                process_email(session, raw_id, self._processing_registry, self.settings,
                              jobs=self.jobs)
        except Exception:
            log.exception("processing of stored raw email %s failed; left for the sweep", raw_id)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until the mail stored so far has been processed (tests, benchmarks)."""
        if self._processor is not None:
            self._processor.submit(lambda: None).result(timeout)

    async def run_db(self, func: Any, *args: Any) -> Any:
        """Run blocking database work on the worker pool, off the event loop."""
        assert self._db_pool is not None
        return await asyncio.get_running_loop().run_in_executor(self._db_pool, func, *args)

    # --- lifecycle --------------------------------------------------------------------

    def _protocol(self) -> GuardedSMTP:
        return GuardedSMTP(
            self.handler, sessions=self.sessions,
            data_size_limit=self.settings.smtp_max_message_bytes or DEFAULT_MAX_BYTES,
            enable_SMTPUTF8=True, hostname=self.settings.smtp_domain, ident="ESMTP",
            auth_exclude_mechanism=("LOGIN", "PLAIN"),
            tls_context=self.tls, timeout=float(self.settings.smtp_timeout_seconds or 300),
            command_call_limit=CALL_LIMITS, loop=self._loop,
        )

    def start(self) -> None:
        """Bind and serve on a background thread; return once listening (or raise)."""
        if self._thread is not None:
            return
        self._db_pool = ThreadPoolExecutor(DB_THREADS, thread_name_prefix="smtp-db")
        # One thread keeps arrival order, so a reply is processed after its original.
        self._processor = ThreadPoolExecutor(1, thread_name_prefix="smtp-intake")
        loop = self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[OSError] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(loop.create_server(
                    self._protocol, self.host, self.port, reuse_address=True))
            except OSError as exc:  # address in use, unknown host: start() raises it
                failure.append(exc)
            finally:
                ready.set()
            if self._server is None:
                loop.close()
                return
            try:
                loop.run_forever()
            finally:
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.close()

        self._thread = threading.Thread(target=run, name="smtp-server", daemon=True)
        self._thread.start()
        ready.wait()
        if self._server is None:
            self._thread.join()
            self._thread = None
            self._shutdown_pools()
            raise failure[0] if failure else RuntimeError("the SMTP server did not start")
        assert self._server is not None
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("inbound SMTP listening on %s:%s", self.host, self.port)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop listening, close open sessions, and finish the processing already queued."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for protocol in list(self.sessions.open):
                protocol.close()
            await asyncio.sleep(0)

        try:
            asyncio.run_coroutine_threadsafe(close(), loop).result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            self._thread = None
            self._shutdown_pools()

    def _shutdown_pools(self) -> None:
        if self._db_pool is not None:
            self._db_pool.shutdown(wait=True)  # stores in flight finish (their rows commit)
        if self._processor is not None:
            # Processing already started finishes; the rest stays pending for the sweep.
            self._processor.shutdown(wait=True, cancel_futures=True)
        self._db_pool = self._processor = None

    def serve_until(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set (the ``contactcenter smtp`` process)."""
        self.start()
        try:
            while not stop.wait(1.0):
                pass
        finally:
            self.stop()
