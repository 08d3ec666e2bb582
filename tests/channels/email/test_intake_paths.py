"""Every path that processes stored mail acknowledges it, and email HTML is sanitised once.

The intake job (``intake.process_raw``) and ``contactcenter replay`` reach stored
mail through ``intake.process_stored``, which asks the email adapter: a new
ticket gets the acknowledgement the SMTP path gives (once, caps respected).
The email parser's HTML arrives typed as sanitised and is stored as it is;
HTML from any other channel (a plain ``str``) is still cleaned by intake.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter import cli
from contactcenter.channels.base import Identity, InboundContact, load_builtin_adapters
from contactcenter.channels.email.loop_models import AutoreplyLog
from contactcenter.channels.email.parser import email_to_contact
from contactcenter.channels.email.receive import store_email
from contactcenter.config import Settings
from contactcenter.db import Database
from contactcenter.jobs import InlineJobQueue
from contactcenter.tickets import html as html_module
from contactcenter.tickets.html import SanitisedHtml, is_sanitised, sanitise_html
from contactcenter.tickets.intake import ingest_inbound, replay_failed
from contactcenter.tickets.models import (
    DeliveryState,
    Direction,
    Inbox,
    Message,
    RawInbound,
    RawState,
    Ticket,
)
from tests.channels.email import test_outbound_sink as sinks
from tests.channels.email.test_intake_sweep import INBOX, mail, settings  # noqa: F401 (fixture)
from tests.channels.email.test_outbound_sink import Sink

sink_server = sinks.sink_server
sink = sinks.sink

EVIL_HTML = (b"From: Anna <anna@example.com>\r\nTo: help@acme.test\r\nSubject: Hi\r\n"
             b"Message-ID: <html-1@mail.example.com>\r\nContent-Type: text/html; charset=utf-8"
             b"\r\n\r\n<p onclick=\"steal()\">Hello<script>alert(1)</script>"
             b"<img src=\"https://track.example/p.gif\"><a href=\"javascript:x()\">x</a></p>\r\n")


def acknowledgements(session: Session) -> list[Message]:
    return list(session.scalars(select(Message).where(
        Message.direction == Direction.OUTBOUND, Message.auto_submitted.is_(True))
        .order_by(Message.id)))


def count_cleans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = html_module._clean

    def spy(html: str, attribute_filter: object) -> str:
        calls.append(html)
        return real(html, attribute_filter)  # type: ignore[arg-type]

    monkeypatch.setattr(html_module, "_clean", spy)
    return calls


def test_intake_job_acknowledges_a_new_email_ticket_once(
        session: Session, inbox: Inbox, jobs: InlineJobQueue, sink: Sink) -> None:
    row, _new = store_email(session, mail("job-1@mail.example.com"), inbox.id)
    jobs.enqueue("intake.process_raw", row.id)
    jobs.enqueue("intake.process_raw", row.id)  # a repeated job: nothing more
    assert jobs.failures == []
    session.expire_all()
    raw = session.get(RawInbound, row.id)
    assert raw is not None and raw.state == RawState.PROCESSED
    [ack] = acknowledgements(session)
    assert ack.ticket_id == raw.ticket_id and ack.recipient == "anna@example.com"
    assert ack.delivery_state == DeliveryState.SENT  # its delivery was enqueued by the job
    [delivery] = sink.deliveries
    assert delivery.message["In-Reply-To"] == "<job-1@mail.example.com>"


def test_replay_acknowledges_with_loop_caps(session: Session, settings: Settings,
                                            inbox: Inbox, sink: Sink) -> None:
    capped = settings.replace(autoreply_sender_hourly_cap=1)
    ids = []
    for raw in (mail("r1@mail.example.com", subject="First"),
                mail("r2@mail.example.com", subject="Second"),
                mail("bot@mail.example.com", sender="robot@example.org",
                     Auto_Submitted="auto-replied")):
        row, _new = store_email(session, raw, inbox.id)
        row.state = RawState.FAILED  # as a broken parser left it
        ids.append(row.id)
    session.commit()
    results = replay_failed(session, load_builtin_adapters(), capped, "email")
    assert [r.status for _id, r in results if r] == ["created", "created", "created"]
    # Replayed again: all processed, nothing more acknowledged.
    assert replay_failed(session, load_builtin_adapters(), capped, "email") == []
    session.expire_all()
    [ack] = acknowledgements(session)
    assert ack.recipient == "anna@example.com" and ack.delivery_state == DeliveryState.PENDING
    reasons = [r.suppressed_reason for r in session.scalars(
        select(AutoreplyLog).where(AutoreplyLog.sender == "anna@example.com")
        .order_by(AutoreplyLog.id))]
    assert reasons == [None, "sender_hourly_cap"]
    assert sink.deliveries == []  # no job queue: the outbox sweep sends it


def test_replay_command_acknowledges_a_failed_email(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    sink_server: Sink) -> None:
    url = f"sqlite:///{tmp_path / 'cc.db'}"
    monkeypatch.setenv("CONTACTCENTER_DATABASE_URL", url)
    monkeypatch.setenv("CONTACTCENTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CONTACTCENTER_SECRET_KEY", "test-secret-key-not-for-production")
    database = Database(url)
    database.upgrade()
    with database.session() as session:
        box = Inbox(name="Help", channel="email", address=INBOX)
        session.add(box)
        session.commit()
        row, _new = store_email(session, mail("cli-1@mail.example.com"), box.id)
        row.state = RawState.FAILED
        session.commit()
    out = CliRunner().invoke(cli.main, ["replay", "--channel", "email"])
    assert out.exit_code == 0, out.output
    [line] = [json.loads(x) for x in out.output.splitlines() if x.startswith("{")]
    assert line["status"] == "created"
    with database.session() as session:
        [ack] = acknowledgements(session)
        ticket = session.get(Ticket, ack.ticket_id)
        assert ticket is not None and ticket.number == line["ticket"]
    database.dispose()


def test_email_html_is_sanitised_once_and_stored_clean(
        session: Session, settings: Settings, inbox: Inbox,
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_cleans(monkeypatch)
    contact = email_to_contact(EVIL_HTML, inbox_id=inbox.id, raw_id=None)
    parsed_cleans = len(calls)
    assert parsed_cleans >= 1 and is_sanitised(contact.html)
    result = ingest_inbound(session, contact, settings=settings)
    assert len(calls) == parsed_cleans  # intake trusted the parser's typed HTML
    stored = session.get(Message, result.message_id)
    assert stored is not None
    for bad in ("<script", "onclick", "javascript:", " src="):
        assert bad not in stored.html
    assert 'data-remote-src="https://track.example/p.gif"' in stored.html
    assert type(stored.html) is str


def test_other_channels_html_is_still_sanitised_by_intake(
        session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_cleans(monkeypatch)
    evil = '<p onclick="x()">Hi<script>alert(1)</script><a href="javascript:y()">y</a></p>'
    # An adapter's plain str, even one that looks sanitised, is cleaned again.
    contact = InboundContact(channel="form", external_id="form-1",
                             sender=Identity("email", "bob@example.com", "Bob"),
                             subject="Form", text="Hi", html=evil)
    result = ingest_inbound(session, contact, settings=settings)
    assert calls  # intake's own pass ran
    stored = session.get(Message, result.message_id)
    assert stored is not None and stored.html == "<p>Hi<a rel=\"noopener noreferrer nofollow\">y</a></p>"


def test_sanitised_type_does_not_survive_a_change() -> None:
    clean = sanitise_html("<b>ok</b>")
    assert isinstance(clean, SanitisedHtml) and is_sanitised(clean)
    assert not is_sanitised(clean + "<script>x</script>")
    assert not is_sanitised(clean[:3]) and not is_sanitised(str(clean))
    assert sanitise_html(clean + "<script>x</script>") == "<b>ok</b>"


def test_short_commands_migrate_only_when_the_database_is_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory

    from contactcenter.db import alembic_config, packaged_head

    assert {packaged_head()} == set(
        ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())
    settings = Settings(data_dir=tmp_path / "data", secret_key="test-secret-key-not-for-production")
    upgrades: list[str] = []
    real = command.upgrade

    def counted(config: object, revision: str) -> None:
        upgrades.append(revision)
        real(config, revision)  # type: ignore[arg-type]

    monkeypatch.setattr(command, "upgrade", counted)
    cli._db(settings).dispose()  # a fresh database: migrated
    assert upgrades == ["head"]
    cli._db(settings).dispose()  # at head: Alembic is not run again
    assert upgrades == ["head"]
    behind = Database(settings.effective_database_url)
    command.downgrade(alembic_config(behind.url, behind.engine), "-1")
    assert behind.revision() != packaged_head()
    behind.dispose()
    database = cli._db(settings)  # behind: the full upgrade path
    assert upgrades == ["head", "head"]
    assert database.revision() == packaged_head()
    database.dispose()