"""Protocol abuse, slow clients and floods against the SMTP server (RELIABILITY.md 5.1).

SMTP-4: smuggled end-of-data sequences, an overlong command, a 2,000-octet body line,
NUL bytes and unknown recipients, each followed by proof that the server still serves.
SMTP-5: idle and dribbling sessions time out with 421 4.4.2; one address gets at most
``smtp_max_connections_per_ip`` sessions (421 4.7.0 beyond); others deliver meanwhile.
"""

from __future__ import annotations

import re
import select
import smtplib
import time
from collections.abc import Callable

import pytest

from contactcenter.channels.email.smtp import SmtpServer
from contactcenter.channels.email.smtp_protocol import address_key
from contactcenter.db import Database
from contactcenter.tickets.models import RawInbound, Ticket
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
    stand_in_parser_fixture,
    start_smtp_fixture,
    tickets,
    wait_until,
)
from tests.conftest import SHARED

Start = Callable[..., SmtpServer]
pytestmark = pytest.mark.usefixtures("stand_in_parser")


def open_transaction(wire: Wire) -> None:
    assert wire.reply().startswith("220")
    assert wire.command("EHLO client.example").startswith("250")
    begin_data(wire)


def begin_data(wire: Wire) -> None:
    assert wire.command("MAIL FROM:<anna@example.com>").startswith("250")
    assert wire.command(f"RCPT TO:<{SUPPORT}>").startswith("250")
    assert wire.command("DATA").startswith("354")


# Bare LF and CR-LF variants that some servers took for the end of data (CVE-2024-27305).
FAKE_ENDS = [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r", b"\r.\r", b"\n.\r"]


@pytest.mark.parametrize("fake_end", FAKE_ENDS, ids=[repr(e) for e in FAKE_ENDS])
def test_smuggled_end_of_data_makes_exactly_one_message(
        start_smtp: Start, mail_db: Database, fake_end: bytes) -> None:
    server = start_smtp()
    wire = Wire(server.port)
    open_transaction(wire)
    smuggled = (b"MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<" + SUPPORT.encode()
                + b">\r\nDATA\r\nFrom: ceo@example.test\r\nSubject: smuggled\r\n\r\nPay now\r\n")
    wire.send(make_message("Carrier").rstrip(b"\r\n") + fake_end + smuggled + b".\r\n")
    assert wire.reply().startswith("250 2.0.0")
    assert wire.command("NOOP").startswith("250 ")  # no queued replies from smuggled commands
    wire.close()
    server.wait_idle()
    [raw] = raw_rows(mail_db)
    assert b"Subject: smuggled" in raw.payload  # kept as body text of the one message
    assert [t.subject for t in tickets(mail_db)] == ["Carrier"]


def test_overlong_command_gets_500_and_the_session_goes_on(start_smtp: Start,
                                                            mail_db: Database) -> None:
    server = start_smtp()
    wire = Wire(server.port)
    assert wire.reply().startswith("220")
    assert wire.command("EHLO client.example").startswith("250")
    assert wire.command("MAIL FROM:<" + "a" * 10_000 + "@example.com>").startswith("500 5.5.2")
    assert wire.command("NOOP " + "x" * 10_000).startswith("500 5.5.2")
    begin_data(wire)
    assert wire.command(make_message("After the long line").rstrip(b"\r\n") + b"\r\n.") \
        .startswith("250")
    wire.close()
    assert count(mail_db, RawInbound) == 1


def test_2000_octet_body_line_is_accepted_and_kept_byte_exact(start_smtp: Start,
                                                               mail_db: Database) -> None:
    # aiosmtpd's default (1001 octets per line, RFC 5321 4.5.3.1.6) would answer 500
    # after the final dot; real mail has such lines, so they are accepted up to 64 KiB.
    server = start_smtp()
    wire = Wire(server.port)
    open_transaction(wire)
    line = b"y" * 2000
    assert wire.command(make_message("Long line").rstrip(b"\r\n") + b"\r\n" + line + b"\r\n.") \
        .startswith("250")
    wire.close()
    server.wait_idle()
    [raw] = raw_rows(mail_db)
    assert b"\r\n" + line + b"\r\n" in raw.payload
    assert [t.subject for t in tickets(mail_db)] == ["Long line"]


@pytest.mark.parametrize("name", ["bounces/bsd-lhost-gmx-03.eml", "zammad/mail084.box"])
def test_corpus_mail_with_overlong_lines_is_accepted(start_smtp: Start, mail_db: Database,
                                                     name: str) -> None:
    path = SHARED / "corpus" / "email" / name
    if not path.exists():
        pytest.skip(f"{path} is not here")
    raw = re.sub(rb"\r?\n", b"\r\n", path.read_bytes())
    assert max(len(line) for line in raw.split(b"\r\n")) > 998
    server = start_smtp()
    deliver(server, raw)
    [stored] = raw_rows(mail_db)
    assert stored.payload == raw


def test_body_line_over_64_kib_is_refused_after_data_and_the_session_goes_on(
        start_smtp: Start, mail_db: Database) -> None:
    server = start_smtp()
    wire = Wire(server.port)
    open_transaction(wire)
    body = make_message("Huge line").rstrip(b"\r\n") + b"\r\n" + b"z" * 70_000 + b"\r\n."
    assert wire.command(body).startswith("500 5.5.2")
    begin_data(wire)  # the same session delivers the next message
    assert wire.command(make_message("Short lines").rstrip(b"\r\n") + b"\r\n.") \
        .startswith("250")
    wire.close()
    server.wait_idle()
    assert [t.subject for t in tickets(mail_db)] == ["Short lines"]


def test_nul_bytes_are_kept_in_the_body_and_refused_in_commands(
        start_smtp: Start, mail_db: Database) -> None:
    server = start_smtp()
    wire = Wire(server.port)
    assert wire.reply().startswith("220")
    assert wire.command("EHLO client.example").startswith("250")
    assert wire.command(b"MAIL FROM:<an\x00na@example.com>").startswith("553 5.1.7")
    assert wire.command("MAIL FROM:<anna@example.com>").startswith("250")
    assert wire.command(b"RCPT TO:<supp\x00ort@example.test>").startswith("553 5.1.3")
    assert wire.command("RSET").startswith("250")
    assert wire.command(b"\x00\x00\x00")[:1] == "5"
    begin_data(wire)
    message = make_message("Nul bytes", body="before\x00after")
    assert wire.command(message.rstrip(b"\r\n") + b"\r\n.").startswith("250")
    wire.close()
    server.wait_idle()
    [raw] = raw_rows(mail_db)
    assert b"before\x00after" in raw.payload


def test_unknown_recipients_do_not_stop_the_server(start_smtp: Start, mail_db: Database) -> None:
    server = start_smtp()
    wire = Wire(server.port)
    assert wire.reply().startswith("220")
    assert wire.command("EHLO client.example").startswith("250")
    assert wire.command("MAIL FROM:<spam@example.net>").startswith("250")
    for n in range(20):
        assert wire.command(f"RCPT TO:<guess{n}@example.test>").startswith("550 5.1.1")
    assert wire.command("DATA").startswith("503")  # no accepted recipient: no message
    wire.close()
    with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as client:
        client.sendmail("anna@example.com", [SUPPORT], make_message("Still open"))
    server.wait_idle()
    assert count(mail_db, Ticket) == 1


def test_idle_session_times_out_with_421(start_smtp: Start) -> None:
    server = start_smtp(smtp_timeout_seconds=1)
    wire = Wire(server.port)
    assert wire.reply().startswith("220")
    started = time.monotonic()
    assert wire.reply().startswith("421 4.4.2")
    assert wire.closed(timeout=3)
    assert 0.8 < time.monotonic() - started < 5


def test_dribbling_client_times_out_although_it_keeps_sending(start_smtp: Start) -> None:
    server = start_smtp(smtp_timeout_seconds=1)
    wire = Wire(server.port)
    assert wire.reply().startswith("220")
    assert wire.command("EHLO client.example").startswith("250")
    started = time.monotonic()
    reply = ""
    for byte in b"NOOP and never an end of line " * 4:
        try:
            wire.send(bytes([byte]))
        except OSError:
            break
        if select.select([wire.sock], [], [], 0.2)[0]:
            reply = wire.reply()
            break
    assert reply.startswith("421 4.4.2")
    assert time.monotonic() - started < 5


def test_keepalive_noops_are_cut_off(start_smtp: Start) -> None:
    server = start_smtp()
    wire = Wire(server.port)
    assert wire.reply().startswith("220")
    replies = [wire.command("NOOP") for _ in range(51)]
    assert all(r.startswith("250") for r in replies[:50])
    assert replies[50].startswith("421 4.7.0")
    assert wire.closed(timeout=3)


def test_connections_over_the_per_address_cap_get_421(start_smtp: Start) -> None:
    server = start_smtp(smtp_max_connections_per_ip=3)
    held = [Wire(server.port, source="127.0.0.2") for _ in range(3)]
    for wire in held:
        assert wire.reply().startswith("220")
    extra = Wire(server.port, source="127.0.0.2")
    assert extra.reply().startswith("421 4.7.0")
    assert extra.closed(timeout=3)
    other = Wire(server.port, source="127.0.0.3")  # another address is not affected
    assert other.reply().startswith("220")
    held.pop().close()  # a freed slot is usable again

    def admitted() -> bool:
        again = Wire(server.port, source="127.0.0.2")
        try:
            return again.reply().startswith("220")
        finally:
            again.close()

    wait_until(admitted, timeout=3)
    for wire in [*held, other, extra]:
        wire.close()


def test_well_behaved_sender_delivers_during_a_flood_and_50_idle_sessions(
        start_smtp: Start, mail_db: Database) -> None:
    server = start_smtp(smtp_max_connections_per_ip=20)
    idle = [Wire(server.port, source=f"127.0.0.{10 + n % 5}") for n in range(50)]
    flood = [Wire(server.port, source="127.0.0.2") for _ in range(30)]
    greetings = [wire.reply()[:3] for wire in flood]
    assert greetings.count("220") == 20 and greetings.count("421") == 10
    assert all(wire.reply().startswith("220") for wire in idle)
    started = time.monotonic()
    with smtplib.SMTP("127.0.0.1", server.port, timeout=5,
                      source_address=("127.0.0.1", 0)) as client:
        client.sendmail("anna@example.com", [SUPPORT], make_message("During the flood"))
    assert time.monotonic() - started < 5  # generous: CI machines are busy
    server.wait_idle()
    assert [t.subject for t in tickets(mail_db)] == ["During the flood"]
    for wire in idle + flood:
        wire.close()


@pytest.mark.parametrize(("peer", "key"), [
    (("192.0.2.7", 2525), "192.0.2.7"),
    (("2001:db8:1:2:3:4:5:6", 2525, 0, 0), "2001:db8:1:2::/64"),
    (("::ffff:192.0.2.7", 2525, 0, 0), "192.0.2.7"),
    (None, "None"),
])
def test_connections_are_counted_per_ipv4_address_or_ipv6_64(peer: object, key: str) -> None:
    assert address_key(peer) == key
