"""Mail left pending (stored, then a storage or database failure) gets its acknowledgement from the sweep.

The intake sweep replays raw payloads that were stored (the 250 was given) but
never processed. For email it must do what the SMTP server's own processing does:
a new ticket's acknowledgement is stored and delivered once, automatic mail gets
none, and the per-sender caps still hold.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.channels.base import load_builtin_adapters
from contactcenter.channels.email.loop_models import AutoreplyLog
from contactcenter.channels.email.receive import store_email
from contactcenter.config import Settings
from contactcenter.db import Database, utcnow
from contactcenter.jobs import InlineJobQueue, JobContext
from contactcenter.tickets.jobs import sweep_pending_raw
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
from tests.channels.email.test_outbound_sink import Sink

sink_server = sinks.sink_server
sink = sinks.sink

INBOX = "help@acme.test"


def mail(message_id: str, sender: str = "anna@example.com", subject: str = "Router down",
         **headers: str) -> bytes:
    lines = [f"From: Anna <{sender}>", f"To: {INBOX}", f"Subject: {subject}",
             f"Message-ID: <{message_id}>", "Content-Type: text/plain; charset=utf-8"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\nIt blinks red.\r\n").encode()


@pytest.fixture
def settings(tmp_path: Path, sink_server: Sink) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url="sqlite://",
                    secret_key="test-secret-key-not-for-production", testing=True,
                    smtp_relay_host="127.0.0.1", smtp_relay_port=sink_server.port,
                    smtp_domain="support.acme.test")


def left_pending(session: Session, inbox: Inbox, *raws: bytes) -> list[int]:
    """Store mail as the SMTP server does before its 250, then leave it unprocessed."""
    ids = []
    for raw in raws:
        row, new = store_email(session, raw, inbox.id)
        assert new and row.state == RawState.PENDING
        row.received_at = utcnow() - dt.timedelta(minutes=10)  # past the sweep's grace
        ids.append(row.id)
    session.commit()
    return ids


def acknowledgements(session: Session) -> list[Message]:
    return list(session.scalars(select(Message).where(
        Message.direction == Direction.OUTBOUND, Message.auto_submitted.is_(True))
        .order_by(Message.id)))


def test_swept_mail_gets_the_acknowledgement_once(session: Session, inbox: Inbox,
                                                  jobs: InlineJobQueue, sink: Sink) -> None:
    [raw_id] = left_pending(session, inbox, mail("lost@mail.example.com"))
    jobs.enqueue("intake.sweep")
    assert jobs.failures == []
    session.expire_all()
    raw = session.get(RawInbound, raw_id)
    assert raw is not None and raw.state == RawState.PROCESSED
    ticket = session.get(Ticket, raw.ticket_id)
    assert ticket is not None
    [ack] = acknowledgements(session)
    assert ack.ticket_id == ticket.id and ack.recipient == "anna@example.com"
    assert ack.delivery_state == DeliveryState.SENT  # delivered through the job queue
    [delivery] = sink.deliveries
    assert delivery.rcpt_tos == ("anna@example.com",)
    assert delivery.message["In-Reply-To"] == "<lost@mail.example.com>"
    assert f"[#{ticket.number}]" in str(delivery.message["Subject"])
    # The sweep again (and a redelivery of the same mail): nothing more is sent.
    jobs.enqueue("intake.sweep")
    store_email(session, mail("lost@mail.example.com"), inbox.id)
    jobs.enqueue("intake.sweep")
    assert len(acknowledgements(session)) == 1 and len(sink.deliveries) == 1


def test_swept_mail_respects_loop_guards_and_caps(session: Session, settings: Settings,
                                                  db: Database, inbox: Inbox,
                                                  sink: Sink) -> None:
    capped = settings.replace(autoreply_sender_hourly_cap=1)
    left_pending(session, inbox,
                 mail("a1@mail.example.com", subject="First"),
                 mail("a2@mail.example.com", subject="Second"),  # over the hourly cap
                 mail("bot@mail.example.com", sender="robot@example.org", subject="Away",
                      Auto_Submitted="auto-replied"))
    swept = sweep_pending_raw(JobContext(db=db, settings=capped,
                                         registry=load_builtin_adapters()))
    assert swept == 3
    session.expire_all()
    assert {r.state for r in session.scalars(select(RawInbound))} == {RawState.PROCESSED}
    # Stored pending (no job queue here: the outbox sweep sends it), to Anna only.
    [ack] = acknowledgements(session)
    assert ack.recipient == "anna@example.com" and ack.delivery_state == DeliveryState.PENDING
    reasons = [r.suppressed_reason for r in session.scalars(
        select(AutoreplyLog).where(AutoreplyLog.sender == "anna@example.com")
        .order_by(AutoreplyLog.id))]
    assert reasons == [None, "sender_hourly_cap"]
    assert session.scalar(select(AutoreplyLog).where(
        AutoreplyLog.sender == "robot@example.org", AutoreplyLog.suppressed_reason.is_(None))
    ) is None
    assert sink.deliveries == []
