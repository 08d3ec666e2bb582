"""The inbound SMTP server, driven by smtplib on loopback: routing, SIZE and the 250 gate.

RELIABILITY.md 5.1: SMTP-1 (store unavailable: 451, nothing half-written, one ticket
after the retry), SMTP-2 (a parsing bug: 250, kept as failed, replayable) and SMTP-3
(oversize: 552 5.3.4 before DATA when declared, after it when not, memory bounded).
"""

from __future__ import annotations

import json
import smtplib
import socket
import threading
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from contactcenter.channels.email import smtp as smtp_module
from contactcenter.channels.email.adapter import EmailChannel
from contactcenter.channels.email.smtp import SmtpServer
from contactcenter.channels.email.smtp_writer import MAX_STORES_AHEAD, WriterTurns
from contactcenter.cli import main
from contactcenter.config import Settings
from contactcenter.db import Database
from contactcenter.tickets.models import RawInbound, RawState, Ticket
from tests.channels.email.smtp_support import (  # noqa: F401 (fixtures by name)
    SUPPORT,
    Wire,
    count,
    deliver,
    mail_db_fixture,
    mail_registry_fixture,
    mail_settings_fixture,
    make_message,
    raw_rows,
    stand_in_contact,
    stand_in_parser_fixture,
    start_smtp_fixture,
    tickets,
    wait_until,
)

Start = Callable[..., SmtpServer]


def test_well_formed_message_becomes_a_ticket_with_its_subject_and_sender(
        start_smtp: Start, mail_db: Database) -> None:
    server = start_smtp()
    deliver(server, make_message("Router down", "Anna Petrova <anna@example.com>"))
    [ticket] = tickets(mail_db)
    assert ticket.subject == "Router down"
    assert ticket.channel == "email"
    assert [i.address for i in ticket.customer.identities] == ["anna@example.com"]
    [raw] = raw_rows(mail_db)
    assert raw.state == RawState.PROCESSED and raw.ticket_id == ticket.id


@pytest.mark.usefixtures("stand_in_parser")
def test_raw_bytes_are_committed_before_the_250(start_smtp: Start, mail_db: Database,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    store = SmtpServer.store

    def store_and_look(self: SmtpServer, raw: bytes, inbox_id: int | None) -> int:
        raw_id = store(self, raw, inbox_id)
        seen.append(count(mail_db, RawInbound))  # another session already sees the row
        return raw_id

    monkeypatch.setattr(SmtpServer, "store", store_and_look)
    server = start_smtp()
    message = make_message("Printer jam")
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo()
        client.mail("anna@example.com")
        client.rcpt(SUPPORT)
        code, text = client.data(message)
    assert code == 250 and text.startswith(b"2.0.0")
    server.wait_idle()
    assert seen == [1]
    [raw] = raw_rows(mail_db)
    assert raw.payload == message  # byte-exact, dot-unstuffed
    assert raw.inbox_id is not None and raw.content_type == "message/rfc822"
    assert [t.subject for t in tickets(mail_db)] == ["Printer jam"]


@pytest.mark.usefixtures("stand_in_parser")
def test_plus_addressed_recipient_is_delivered_to_the_base_inbox(
        start_smtp: Start, mail_db: Database) -> None:
    server = start_smtp()
    deliver(server, make_message(to="support+t1001-ab12@example.test"),
         to=["Support+t1001-ab12@Example.TEST"])
    [raw] = raw_rows(mail_db)
    [ticket] = tickets(mail_db)
    assert raw.inbox_id is not None and ticket.inbox_id == raw.inbox_id


def test_unknown_recipient_is_refused_at_rcpt_with_550(start_smtp: Start,
                                                       mail_db: Database) -> None:
    server = start_smtp()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        deliver(server, make_message(), to=["nobody@example.test"])
    code, text = refused.value.recipients["nobody@example.test"]
    assert code == 550 and text.startswith(b"5.1.1")
    assert count(mail_db, RawInbound) == 0
    # The session is still usable: a known recipient next to an unknown one gets the mail.
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        failed = client.sendmail("a@example.com", ["nobody@example.test", SUPPORT],
                                 make_message("Mixed"))
    assert failed == {"nobody@example.test": (550, failed["nobody@example.test"][1])}
    assert count(mail_db, RawInbound) == 1


@pytest.mark.usefixtures("stand_in_parser")
def test_message_for_several_inboxes_is_stored_once_with_the_first(
        start_smtp: Start, mail_db: Database) -> None:
    from tests.factories import make_inbox

    with mail_db.session() as session:
        other = make_inbox(session, channel="email")
        other.address = "sales@example.test"
        session.commit()
        other_id = other.id
    server = start_smtp()
    deliver(server, make_message("Two inboxes"), to=["sales@example.test", SUPPORT])
    [raw] = raw_rows(mail_db)
    assert raw.inbox_id == other_id
    assert len(tickets(mail_db)) == 1


def test_ehlo_announces_the_configured_size_limit_and_no_auth(start_smtp: Start) -> None:
    server = start_smtp(smtp_max_message_bytes=123_456)
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "123456"
        assert "auth" not in client.esmtp_features
        assert "8bitmime" in client.esmtp_features and "smtputf8" in client.esmtp_features


def test_declared_size_over_the_limit_is_refused_before_data(start_smtp: Start,
                                                             mail_db: Database) -> None:
    server = start_smtp(smtp_max_message_bytes=10_000)
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo()
        code, text = client.mail("anna@example.com", ["SIZE=10001"])
        assert (code, text[:5]) == (552, b"5.3.4")
        assert client.mail("anna@example.com", ["SIZE=9000"])[0] == 250
    assert count(mail_db, RawInbound) == 0


def test_undeclared_stream_over_the_limit_gets_552_without_being_held(
        start_smtp: Start, mail_db: Database) -> None:
    limit = 1024 * 1024
    server = start_smtp(smtp_max_message_bytes=limit)
    wire = Wire(server.port)
    assert wire.reply().startswith("220")
    assert wire.command("EHLO client.example").startswith("250")
    assert wire.command("MAIL FROM:<anna@example.com>").startswith("250")
    assert wire.command(f"RCPT TO:<{SUPPORT}>").startswith("250")
    assert wire.command("DATA").startswith("354")
    line = b"x" * 998 + b"\r\n"
    chunk = b"Subject: big\r\n\r\n" + line * 64
    tracemalloc.start()
    try:
        for _ in range(16 * 1024 * 1024 // len(chunk)):  # 16 MiB through a 1 MiB limit
            wire.send(chunk)
        reply = wire.command(".")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reply.startswith("552 5.3.4")
    assert peak < 6 * limit, peak  # the limit's worth at most, plus buffers: never 16 MiB
    assert wire.command("NOOP").startswith("250")  # the session goes on
    wire.close()
    assert count(mail_db, RawInbound) == 0


@pytest.mark.usefixtures("stand_in_parser")
def test_store_unavailable_answers_451_and_the_retry_makes_one_ticket(
        start_smtp: Start, mail_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(*_args: Any) -> Any:
        raise OperationalError("INSERT INTO raw_inbound", {}, Exception("disk I/O error"))

    server = start_smtp()
    message = make_message("Retry me")
    with monkeypatch.context() as patch:
        patch.setattr(smtp_module, "store_email", unavailable)
        with pytest.raises(smtplib.SMTPDataError) as refused:
            deliver(server, message)
    assert refused.value.smtp_code == 451
    assert refused.value.smtp_error.startswith(b"4.3.0")
    assert b"disk" not in refused.value.smtp_error and b"Error" not in refused.value.smtp_error
    assert count(mail_db, RawInbound) == 0 and count(mail_db, Ticket) == 0
    deliver(server, message)  # the database is back: the client's retry goes through
    deliver(server, message)  # a duplicate resend (a lost 250) is still one ticket
    assert count(mail_db, RawInbound) == 1
    assert [t.subject for t in tickets(mail_db)] == ["Retry me"]


@pytest.mark.usefixtures("stand_in_parser")
def test_locked_database_answers_451_then_delivers_once_released(
        start_smtp: Start, mail_settings: Settings, mail_db: Database) -> None:
    server = start_smtp()

    @event.listens_for(mail_db.engine, "connect")
    def short_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=200")

    mail_db.engine.dispose()  # new connections get the short wait
    locker = Database(mail_settings.effective_database_url)
    with locker.engine.connect() as conn:
        conn.exec_driver_sql("BEGIN EXCLUSIVE")
        message = make_message("Locked out")
        with pytest.raises(smtplib.SMTPDataError) as refused:
            deliver(server, message)
        assert (refused.value.smtp_code, refused.value.smtp_error[:5]) == (451, b"4.3.0")
        conn.exec_driver_sql("ROLLBACK")
    locker.dispose()
    deliver(server, message)
    assert count(mail_db, RawInbound) == 1
    assert [t.subject for t in tickets(mail_db)] == ["Locked out"]


def test_a_bug_while_storing_answers_451_without_internals(
        start_smtp: Start, mail_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any) -> Any:
        raise RuntimeError("secret /srv/path exploded")

    monkeypatch.setattr(smtp_module, "store_email", broken)
    server = start_smtp()
    wire = Wire(server.port)
    wire.reply()
    wire.command("EHLO client.example")
    wire.command("MAIL FROM:<anna@example.com>")
    wire.command(f"RCPT TO:<{SUPPORT}>")
    wire.command("DATA")
    reply = wire.command(make_message().rstrip(b"\r\n") + b"\r\n.")
    assert reply.startswith("451 4.3.0")
    assert "secret" not in reply and "RuntimeError" not in reply and "500" not in reply
    # The envelope was reset: a new transaction starts cleanly on the same session.
    assert wire.command("MAIL FROM:<anna@example.com>").startswith("250")
    wire.close()


@pytest.mark.usefixtures("stand_in_parser")
def test_parser_bug_answers_250_and_keeps_the_raw_failed_for_replay(
        start_smtp: Start, mail_settings: Settings, mail_db: Database,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_smtp()
    deliver(server, make_message("boom: this one breaks the parser"))
    deliver(server, make_message("A fine message", sender="bob@example.com"))
    failed, fine = raw_rows(mail_db)
    assert failed.state == RawState.FAILED and "injected parser bug" in failed.error
    assert fine.state == RawState.PROCESSED
    assert [t.subject for t in tickets(mail_db)] == ["A fine message"]

    env = {"CONTACTCENTER_DATABASE_URL": mail_settings.effective_database_url,
           "CONTACTCENTER_DATA_DIR": str(mail_settings.data_dir)}
    runner = CliRunner()
    monkeypatch.setattr("contactcenter.cli._db", lambda settings, upgrade=True: mail_db)
    still = runner.invoke(main, ["replay", "--channel", "email"], env=env)
    assert still.exit_code == 0, still.output
    assert [json.loads(line)["status"] for line in still.stdout.splitlines()] == ["failed"]

    monkeypatch.setattr(EmailChannel, "to_inbound",  # the parser is fixed
                        lambda self, payload, **kw: stand_in_contact(
                            payload.replace(b"boom", b"fixed"), **kw))
    done = runner.invoke(main, ["replay", "--channel", "email"], env=env)
    assert [json.loads(line)["status"] for line in done.stdout.splitlines()] == ["created"]
    assert count(mail_db, Ticket) == 2


@pytest.mark.usefixtures("stand_in_parser")
def test_quarantined_message_is_answered_250_and_kept_with_its_reason(
        start_smtp: Start, mail_db: Database) -> None:
    server = start_smtp()
    deliver(server, make_message("quarantine me"))
    [raw] = raw_rows(mail_db)
    assert raw.state == RawState.QUARANTINED and "too many MIME parts" in raw.error
    assert count(mail_db, Ticket) == 0


@pytest.mark.usefixtures("stand_in_parser")
def test_mail_is_processed_after_the_250_in_arrival_order(
        start_smtp: Start, mail_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    parse = EmailChannel.to_inbound

    def slow_parser(self: EmailChannel, payload: bytes, **kwargs: Any) -> Any:
        release.wait(10)
        return parse(self, payload, **kwargs)

    monkeypatch.setattr(EmailChannel, "to_inbound", slow_parser)
    server = start_smtp()
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        for n in range(3):  # all three answered 250 while the parser is stuck
            client.sendmail("anna@example.com", [SUPPORT], make_message(f"In order {n}"))
    assert {r.state for r in raw_rows(mail_db)} == {RawState.PENDING}
    release.set()
    server.wait_idle()
    assert {r.state for r in raw_rows(mail_db)} == {RawState.PROCESSED}
    [ticket] = tickets(mail_db)  # one customer, one open ticket, threaded in order
    assert ticket.subject == "In order 0"


@pytest.mark.usefixtures("stand_in_parser")
def test_concurrent_senders_each_get_their_message_stored_once(
        start_smtp: Start, mail_db: Database) -> None:
    server = start_smtp()
    errors: list[BaseException] = []

    def deliver(n: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
                client.sendmail(f"p{n}@example.com", [SUPPORT],
                                make_message(f"Parallel {n}", sender=f"p{n}@example.com"))
        except (smtplib.SMTPException, OSError) as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    server.wait_idle()
    assert count(mail_db, Ticket) == 12
    assert count(mail_db, RawInbound) == 12


def test_stop_closes_the_listener_and_open_sessions(start_smtp: Start) -> None:
    server = start_smtp()
    wire = Wire(server.port)
    assert wire.reply().startswith("220")
    server.stop()
    assert wire.closed(timeout=3)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_stores_take_their_write_turn_before_processing_but_cannot_starve_it() -> None:
    turns = WriterTurns()
    order: list[str] = []

    def take(kind: str) -> None:
        with turns.store() if kind == "s" else turns.process():
            order.append(kind)

    held = turns.store()
    held.__enter__()
    waiting = [threading.Thread(target=take, args=("p",))]
    waiting += [threading.Thread(target=take, args=("s",)) for _ in range(MAX_STORES_AHEAD + 5)]
    for thread in waiting:
        thread.start()
    wait_until(lambda: turns._stores_waiting == MAX_STORES_AHEAD + 5
               and turns._processing_waiting == 1)
    held.__exit__(None, None, None)
    for thread in waiting:
        thread.join(5)
    assert order[0] == "s"  # a client waiting for its 250 goes first
    assert order.index("p") <= MAX_STORES_AHEAD  # then processing gets its turn
    assert len(order) == MAX_STORES_AHEAD + 6
    assert WriterTurns(enabled=False).enabled is False
