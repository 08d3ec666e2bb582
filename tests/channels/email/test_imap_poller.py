"""The poller process against a real Dovecot: IDLE, polling, restarts, failures, stop."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import Any

import pytest

from contactcenter.channels.email.imap import poll_once, run_poller
from contactcenter.channels.email.imap_client import IMAP_ERRORS
from contactcenter.channels.email.imap_config import MailboxConfig
from contactcenter.channels.email.imap_state import find_mailbox_state, record_failure
from contactcenter.config import Settings
from contactcenter.db import Database
from tests.channels.email.dovecot import (
    INBOX_ADDRESS,
    Dovecot,
    append,
    flags_by_message_id,
    ids,
    mail,
    mailbox_of,
    raw_rows,
    require_dovecot,
    stored_ids,
    wait_until,
)

pytestmark = pytest.mark.imap


def test_wrong_password_is_counted_and_alerts_after_three_failures(
        dovecot: Dovecot, imap_db: Database, imap_settings: Settings, registry: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    mailbox = mailbox_of(dovecot, password="wrong")
    with pytest.raises(IMAP_ERRORS):
        poll_once(mailbox, imap_db, registry, imap_settings)
    # Dovecot's auth penalty slows repeated failures from one address down to seconds
    # each: the next two are recorded directly.
    with imap_db.session() as session:
        for _ in range(2):
            record_failure(session, mailbox.key, ConnectionRefusedError("refused"))
        state = find_mailbox_state(session, mailbox.key)
        assert state is not None and state.consecutive_failures == 3
        assert state.last_error == "ConnectionRefusedError: refused"
    levels = [r.levelname for r in caplog.records if "failed (" in r.getMessage()]
    assert levels == ["WARNING", "WARNING", "ERROR"]
    assert "wrong" not in caplog.text  # the password is never logged


def test_tls_certificates_are_verified_unless_told_otherwise(
        imap_db: Database, imap_settings: Settings, registry: Any) -> None:
    require_dovecot()
    server = Dovecot(tls=True)  # a self-signed certificate
    server.start()
    try:
        append(server, mail(1), mail(2))
        implicit = mailbox_of(server, port=server.tls_port, ssl=True)
        with pytest.raises(ssl.SSLCertVerificationError):
            poll_once(implicit, imap_db, registry, imap_settings)
        with pytest.raises(ssl.SSLCertVerificationError):
            poll_once(mailbox_of(server, starttls=True), imap_db, registry, imap_settings)
        assert raw_rows(imap_db) == []

        assert poll_once(implicit.replace(tls_verify=False), imap_db, registry,
                         imap_settings).stored == 2
        append(server, mail(3))
        assert poll_once(mailbox_of(server, starttls=True, tls_verify=False), imap_db,
                         registry, imap_settings).stored == 1
        assert stored_ids(imap_db) == ids(1, 2, 3)
    finally:
        server.cleanup()


def test_a_server_that_stops_answering_times_out(
        imap_db: Database, imap_settings: Settings, registry: Any) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []

    def greet_then_stall() -> None:
        conn, _ = listener.accept()
        accepted.append(conn)
        conn.sendall(b"* OK IMAP4rev1 ready\r\n")  # then never answers LOGIN

    threading.Thread(target=greet_then_stall, daemon=True).start()
    mailbox = MailboxConfig(host="127.0.0.1", port=listener.getsockname()[1], user="test",
                            password="test", ssl=False, timeout_seconds=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(IMAP_ERRORS):
            poll_once(mailbox, imap_db, registry, imap_settings)
    finally:
        listener.close()
        for conn in accepted:
            conn.close()
    assert time.monotonic() - started < 3


# --- the poller process --------------------------------------------------------------------

def start_poller(settings: Settings, db: Database, registry: Any
                 ) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=run_poller, args=(settings, stop, db, registry),
                              daemon=True)
    thread.start()
    return stop, thread


def url_of(server: Dovecot, options: str) -> str:
    return f"imap://test:test@127.0.0.1:{server.port}/INBOX?inbox={INBOX_ADDRESS}&{options}"


def test_poller_with_idle_picks_up_new_mail_quickly_and_stops_cleanly(
        dovecot: Dovecot, imap_db: Database, imap_settings: Settings, registry: Any) -> None:
    append(dovecot, mail(1))
    # Polling every 300 s: only IDLE can explain a pickup within seconds.
    settings = imap_settings.replace(
        imap_mailboxes=url_of(dovecot, "poll=300&timeout=5&backoff=0.05&backoff_max=0.5"))
    stop, thread = start_poller(settings, imap_db, registry)
    try:
        wait_until(lambda: len(raw_rows(imap_db)) == 1)
        time.sleep(0.3)  # let it enter IDLE
        append(dovecot, mail(2))
        assert wait_until(lambda: len(raw_rows(imap_db)) == 2, timeout=5) < 4
        wait_until(lambda: all(b"\\Seen" in f for f in flags_by_message_id(dovecot).values()))

        dovecot.restart()  # BYE during IDLE: reconnect with backoff, nothing lost
        append(dovecot, mail(3))
        wait_until(lambda: len(raw_rows(imap_db)) == 3)
    finally:
        stop.set()
        stopping = time.monotonic()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert time.monotonic() - stopping < 3
    assert stored_ids(imap_db) == ids(1, 2, 3)
    with imap_db.session() as session:
        state = find_mailbox_state(session, f"test@127.0.0.1:{dovecot.port}/INBOX")
        assert state is not None
        assert state.failures_total >= 1 and state.consecutive_failures == 0


def test_poller_polls_servers_without_idle(
        dovecot_without_idle: Dovecot, imap_db: Database, imap_settings: Settings,
        registry: Any) -> None:
    server = dovecot_without_idle
    settings = imap_settings.replace(imap_mailboxes=url_of(server, "poll=0.2&timeout=5"))
    stop, thread = start_poller(settings, imap_db, registry)
    try:
        append(server, mail(1), mail(2))
        wait_until(lambda: len(raw_rows(imap_db)) == 2)
        append(server, mail(3))
        wait_until(lambda: len(raw_rows(imap_db)) == 3)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert stored_ids(imap_db) == ids(1, 2, 3)
