"""A throwaway Dovecot IMAP server for tests, and helpers for the poller's tests.

Dovecot refuses to serve mail as root and its auth process runs as the user
``dovecot``, which cannot enter pytest's root-only ``tmp_path``: the server's
folder is made with ``mkdtemp`` and handed to that user. Stopping kills the whole
process group, because a SIGTERM to the master alone leaves logged-in ``imap``
processes serving (see ../shared/RECIPES.md section 2). A missing binary skips
the tests, except in CI (``CI=true``) where it fails them.

The second half holds what the IMAP tests share: a file database (the poller
uses threads), messages named by number, and views of the mailbox and raw rows.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient
from sqlalchemy import func, select

from contactcenter.channels.email.imap_config import MailboxConfig
from contactcenter.config import Settings
from contactcenter.db import Database
from contactcenter.tickets.models import Inbox, RawInbound, RawState, Ticket

DOVECOT = "/usr/sbin/dovecot"
USER = "test"
PASSWORD = "test"
IN_CI = os.environ.get("CI") == "true"

CONF = """base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
{ssl}
disable_plaintext_auth = no
auth_failure_delay = 0
mail_max_userip_connections = 100
mail_location = maildir:{d}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = {uid}
{extra}
passdb {{
  driver = passwd-file
  args = {d}/users
}}
userdb {{
  driver = static
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
"""
# With ``tls=True``: a self-signed certificate, STARTTLS on the plain port and TLS
# on ``tls_port`` (the IMAPS one); otherwise ``ssl = no`` and nothing on it.
TLS_CONF = """ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
"""


def free_port() -> int:
    """Return a loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    """Wait until something accepts connections on a loopback port."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing answers on port {port}")


class Dovecot:
    """One Dovecot master with its own configuration, users file and maildirs."""

    def __init__(self, extra: str = "", tls: bool = False) -> None:
        pw = pwd.getpwnam("dovecot")  # made by the dovecot-core package
        self.d = Path(tempfile.mkdtemp(prefix="dovecot-"))
        self.port = free_port()
        self.tls_port = free_port()
        self.tls = tls
        if tls:  # openssl comes with dovecot-core
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                            "-subj", "/CN=imap.example.test", "-keyout", str(self.d / "key.pem"),
                            "-out", str(self.d / "cert.pem")], check=True, capture_output=True)
        self.conf = self.d / "dovecot.conf"
        self.conf.write_text(CONF.format(
            d=self.d, port=self.port, tls_port=self.tls_port, uid=pw.pw_uid, gid=pw.pw_gid,
            extra=extra, ssl=TLS_CONF.format(d=self.d) if tls else "ssl = no"))
        (self.d / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        (self.d / "mail").mkdir()
        for path in (self.d, self.conf, self.d / "users", self.d / "mail"):
            os.chown(path, pw.pw_uid, pw.pw_gid)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the master in the foreground (-F) in a new process group."""
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.conf)],
                                     start_new_session=True)
        wait_port(self.port)
        if self.tls:
            wait_port(self.tls_port)

    def stop(self) -> None:
        """Stop the master and every ``imap`` child (the whole process group)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        """Stop then start on the same port with the same mail."""
        self.stop()
        self.start()

    def connect(self) -> IMAPClient:
        """Return a logged-in client (the test's own view of the mailbox)."""
        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=5)
        client.login(USER, PASSWORD)
        return client

    def cleanup(self) -> None:
        """Stop and remove everything."""
        self.stop()
        shutil.rmtree(self.d, ignore_errors=True)


def require_dovecot() -> None:
    """Skip without the binary, but fail in CI where IMAP tests must run."""
    if os.path.exists(DOVECOT):
        return
    message = f"{DOVECOT} is missing (apt-get install -y dovecot-imapd)"
    if IN_CI:
        pytest.fail(message + " (required when CI=true)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(name="dovecot")
def dovecot_fixture() -> Iterator[Dovecot]:
    """A running Dovecot with an empty mailbox for user ``test`` (password ``test``)."""
    require_dovecot()
    server = Dovecot()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(name="dovecot_without_idle")
def dovecot_without_idle_fixture() -> Iterator[Dovecot]:
    """A running Dovecot that does not announce IDLE (so the poller polls)."""
    require_dovecot()
    server = Dovecot(extra="imap_capability = IMAP4rev1 LITERAL+ UIDPLUS MOVE")
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


# --- the poller's side ---------------------------------------------------------------

INBOX_ADDRESS = "support@example.test"
HAS_PARSER = importlib.util.find_spec("contactcenter.channels.email.parser") is not None


def mail(n: int, *, body: str = "It blinks red.", extra: str = "") -> bytes:
    """Return a small message whose Message-ID is ``msg-<n>@customer.test``."""
    return (f"From: Customer {n} <customer{n}@customer.test>\r\n"
            f"To: {INBOX_ADDRESS}\r\n"
            f"Subject: Router problem {n}\r\n"
            f"Date: Mon, 02 Mar 2026 09:00:{n % 60:02d} +0000\r\n"
            f"Message-ID: <msg-{n}@customer.test>\r\n"
            f"{extra}"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{body}\r\n").encode()


@pytest.fixture(name="imap_settings")
def imap_settings_fixture(tmp_path: Path) -> Settings:
    # A file database: the poller's threads each open their own connections.
    return Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path}/imap.db",
                    secret_key="test-secret-key-not-for-production", testing=True)


@pytest.fixture(name="imap_db")
def imap_db_fixture(imap_settings: Settings) -> Iterator[Database]:
    database = Database(imap_settings.effective_database_url)
    database.create_all()
    with database.session() as session:
        session.add(Inbox(name="Support", channel="email", address=INBOX_ADDRESS))
        session.commit()
    yield database
    database.dispose()


def mailbox_of(server: Dovecot, **changes: Any) -> MailboxConfig:
    return MailboxConfig(host="127.0.0.1", port=server.port, user="test", password="test",
                         ssl=False, timeout_seconds=5, inbox=INBOX_ADDRESS,
                         backoff_seconds=0.05, backoff_max_seconds=0.5).replace(**changes)


def append(server: Dovecot, *messages: bytes, folder: str = "INBOX",
           flags: tuple[bytes, ...] = ()) -> None:
    client = server.connect()
    try:
        if folder != "INBOX" and not client.folder_exists(folder):
            client.create_folder(folder)
        for message in messages:
            client.append(folder, message, flags=flags)
    finally:
        client.logout()


def flags_by_message_id(server: Dovecot, folder: str = "INBOX") -> dict[str, set[bytes]]:
    """Return every message in a folder as ``{Message-ID: flags}`` (duplicates would collide)."""
    client = server.connect()
    try:
        client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        found: dict[str, set[bytes]] = {}
        if not uids:
            return found
        for item in client.fetch(uids, ["FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]).values():
            header = item[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().strip()
            key = header.partition(":")[2].strip().strip("<>") or f"none-{len(found)}"
            assert key not in found, f"{key} twice in {folder}"
            found[key] = set(item[b"FLAGS"])
        return found
    finally:
        client.logout()


def raw_rows(db: Database) -> list[RawInbound]:
    with db.session() as session:
        return list(session.scalars(select(RawInbound).order_by(RawInbound.id)))


def stored_ids(db: Database) -> list[str]:
    ids = [row.external_id for row in raw_rows(db)]
    assert len(ids) == len(set(ids))
    return sorted(ids)


def ids(*numbers: int) -> list[str]:
    return sorted(f"msg-{n}@customer.test" for n in numbers)


def assert_tickets(db: Database, count: int) -> None:
    """With the parser, every stored message made a ticket; without it, all failed."""
    with db.session() as session:
        tickets = session.scalar(select(func.count()).select_from(Ticket))
    states = {row.state for row in raw_rows(db)}
    if HAS_PARSER:
        assert tickets == count
        assert states == {RawState.PROCESSED}
    else:
        assert tickets == 0
        assert states == {RawState.FAILED}


def wait_until(condition: Callable[[], bool], timeout: float = 8.0) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
    return time.monotonic() - started
