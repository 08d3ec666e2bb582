"""More faults of the scaled deployment: a stopped scheduler, and providers failing then recovering.

Each test starts the real processes (``tests/ops/deployment.py``) and checks the promise that
matters after the fault: SLA breaches reported once with the instant they really happened,
every outbound message sent once, every inbound contact stored once.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import select

from contactcenter.config import Settings
from contactcenter.db import Database, utcnow
from contactcenter.events import EventLog
from contactcenter.jobs import RqJobQueue
from contactcenter.sla.models import SlaClock
from contactcenter.sla.sweep import run_sweep
from contactcenter.tickets.intake import ingest_inbound
from contactcenter.tickets.models import DeliveryState, Message
from tests.channels.email.dovecot import Dovecot, dovecot_fixture  # noqa: F401 - fixture
from tests.channels.phone.twilio_fake import FakeTwilio, start_fake_twilio
from tests.factories import make_contact
from tests.ops.deployment import Deployment, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SCHEDULER = ("scheduler",)


def add_clock(db: Database, due_in: float, name: str) -> tuple[int, int, dt.datetime]:
    """Open a ticket with a running SLA clock due ``due_in`` seconds from now.

    Returns (ticket id, clock id, due instant).
    """
    now = utcnow()
    due = (now + dt.timedelta(seconds=due_in)).replace(microsecond=0)
    with db.session() as session:
        result = ingest_inbound(session, make_contact(subject=f"SLA {name}",
                                                      sender=f"{name}@example.com"))
        clock = SlaClock(ticket_id=result.ticket_id, kind="resolution", cycle=9,
                         target_minutes=1, started_at=now, running_since=now,
                         due_at=due, next_check_at=due)
        session.add(clock)
        session.commit()
        return result.ticket_id, clock.id, due


def breach_events(db: Database, ticket_id: int) -> list[dict[str, Any]]:
    """The ``sla.breached`` events of the test clock of one ticket."""
    with db.session() as session:
        payloads = session.scalars(select(EventLog.payload).where(
            EventLog.type == "sla.breached").order_by(EventLog.id))
        return [p for p in payloads
                if p["ticket_id"] == ticket_id and p["kind"] == "resolution"]


def clock_row(db: Database, clock_id: int) -> SlaClock:
    with db.session() as session:
        clock = session.get(SlaClock, clock_id)
        assert clock is not None
        session.expunge(clock)
        return clock


def test_scheduler_stopped_reports_each_breach_once_with_its_true_instant(
        deployment: Deployment, pg_db: Database) -> None:
    # Running normally: an overdue clock is reported by the scheduler's first sweep.
    first_ticket, first_clock, first_due = add_clock(pg_db, -5, "before")
    deployment.start_worker(queues="sla,default")
    scheduler = deployment.start(*SCHEDULER, "scheduler")
    wait_until(lambda: breach_events(pg_db, first_ticket), timeout=60,
               what="the breach reported while the scheduler runs " + scheduler.output())
    # The scheduler stops (crash, deploy); breaches fall due while it is away.
    scheduler.terminate()
    stopped_at = utcnow()
    away = [add_clock(pg_db, 1 + n, f"away{n}") for n in range(3)]
    time.sleep(6)
    for ticket_id, clock_id, _due in away:
        assert breach_events(pg_db, ticket_id) == [], "reported with no scheduler running"
        assert clock_row(pg_db, clock_id).breach_reported_at is None
    # Back again (its supervisor restarts it): each is reported once, with the instant it
    # was due, not the instant it was noticed.
    restarted = deployment.start("scheduler2", "scheduler")
    for ticket_id, clock_id, due in away:
        events = wait_until(lambda t=ticket_id: breach_events(pg_db, t), timeout=75,
                            what="the breaches after the restart " + restarted.output())
        assert len(events) == 1, events
        assert dt.datetime.fromisoformat(events[0]["breached_at"]) == due
        clock = clock_row(pg_db, clock_id)
        assert clock.breached_at == due
        assert clock.breach_reported_at is not None and clock.breach_reported_at > due
        assert clock.breach_reported_at > stopped_at
        assert clock.next_check_at is None  # nothing left to report
    # A later sweep (the next slot, or a second scheduler's) reports nothing again.
    with pg_db.session() as session:
        later = run_sweep(session, Settings(data_dir=deployment.tmp / "data",
                                            secret_key=deployment.secret_key),
                          utcnow() + dt.timedelta(hours=1))
    assert not [r for r in later.reports if r["clock_id"] in
                {first_clock, *(clock_id for _, clock_id, _ in away)}], later.reports
    for ticket_id, _clock_id, _due in [*away, (first_ticket, first_clock, first_due)]:
        assert len(breach_events(pg_db, ticket_id)) == 1


# --- Twilio REST failing, then recovering ---------------------------------------------

TWILIO_TOKEN = "12345678901234567890123456789012"
TWILIO_ACCOUNT = "AC" + "0" * 32
PUBLIC = "https://cc.example.test"
SMS_LINE = "+12025550101"


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """The recording Twilio stand-in, on a loopback port of this test."""
    state, server = start_fake_twilio()
    yield state
    server.shutdown()


def twilio_settings(deployment: Deployment, twilio: FakeTwilio) -> Settings:
    """The settings a scheduler's sweep process would have (Twilio pointed at the stand-in)."""
    return Settings(data_dir=deployment.tmp / "data", database_url=deployment.pg_url,
                    secret_key=deployment.secret_key, public_url=PUBLIC,
                    twilio_account_sid=TWILIO_ACCOUNT, twilio_auth_token=TWILIO_TOKEN,
                    twilio_api_base_url=twilio.url, twilio_api_timeout_seconds=1,
                    twilio_sms_from=SMS_LINE)


def post_sms(web: str, n: int) -> int:
    """Post one inbound SMS webhook signed as Twilio signs it; return the status code."""
    from twilio.request_validator import RequestValidator

    params = {"AccountSid": TWILIO_ACCOUNT, "MessageSid": f"SMfa{n:030x}", "SmsStatus": "received",
              "From": f"+7916123450{n}", "To": SMS_LINE, "Body": f"Router {n} is down",
              "NumMedia": "0", "NumSegments": "1", "ApiVersion": "2010-04-01"}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC + "/twilio/sms", params)
    return requests.post(web + "/twilio/sms", data=params, timeout=10,
                         headers={"X-Twilio-Signature": signature}).status_code


def sms_replies(db: Database) -> list[Any]:
    with db.session() as session:
        return list(session.execute(select(
            Message.id, Message.delivery_state, Message.external_id, Message.delivery_error)
            .where(Message.direction == "outbound", Message.channel == "sms")))


def test_twilio_failing_then_recovering_sends_each_sms_reply_once(
        deployment: Deployment, pg_db: Database, fake_twilio: FakeTwilio) -> None:
    from contactcenter.channels.base import load_builtin_adapters
    from contactcenter.tickets.models import Inbox, Queue, Ticket
    from contactcenter.tickets.outbox import sweep_outbox
    from contactcenter.tickets.service import add_reply
    from tests.factories import make_user

    with pg_db.session() as session:
        queue = session.scalar(select(Queue).where(Queue.slug == "support"))
        assert queue is not None
        session.add(Inbox(name="SMS", channel="sms", address=SMS_LINE, queue_id=queue.id))
        agent = make_user(session, "agent", queues=(queue,))
        session.commit()
        agent_id = agent.id
    settings = twilio_settings(deployment, fake_twilio)
    deployment.extra_env.update(
        CONTACTCENTER_PUBLIC_URL=PUBLIC, CONTACTCENTER_TWILIO_ACCOUNT_SID=TWILIO_ACCOUNT,
        CONTACTCENTER_TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        CONTACTCENTER_TWILIO_API_BASE_URL=fake_twilio.url,
        CONTACTCENTER_TWILIO_API_TIMEOUT_SECONDS="1", CONTACTCENTER_TWILIO_SMS_FROM=SMS_LINE)
    deployment.start_web()
    deployment.start_worker(queues="inbound,outbound,default")
    web = f"http://127.0.0.1:{deployment.web_port}"
    assert [post_sms(web, n) for n in range(4)] == [200] * 4
    tickets = wait_until(lambda: _sms_tickets(pg_db), timeout=40, what="four SMS tickets")
    # Twilio fails: two 500s and two requests that outlast our timeout.
    fake_twilio.fail(500, "timeout", 500, "timeout")
    with pg_db.session() as session:
        replies = [add_reply(session, session.get(Ticket, t), agent_id, f"On it ({t})")
                   for t in tickets]
        session.commit()
        reply_ids = [r.id for r in replies]
    jobs = RqJobQueue(deployment.redis.url)
    try:
        for reply_id in reply_ids:  # what the reply view enqueues after its commit
            jobs.enqueue("outbox.deliver", reply_id, key=f"outbox:{reply_id}")
    finally:
        jobs.stop()
    wait_until(lambda: not fake_twilio.failures and all(
        state == DeliveryState.PENDING and error for _, state, _, error in sms_replies(pg_db)),
        timeout=40, what=f"the replies back to pending {sms_replies(pg_db)}")
    assert fake_twilio.message_sids == []  # nothing created while failing
    assert {("500" in e) or ("time" in e) for *_, e in sms_replies(pg_db)} == {True}
    # Twilio recovers; the scheduler's sweep, once the backoff has passed, sends each once.
    with pg_db.session() as session:
        swept = sweep_outbox(session, load_builtin_adapters(), settings,
                             now=utcnow() + dt.timedelta(minutes=2))
    assert swept == {"sent": 4}, swept
    rows = sms_replies(pg_db)
    assert all(state == DeliveryState.SENT for _, state, _, _ in rows), rows
    assert sorted(sid for _, _, sid, _ in rows) == sorted(fake_twilio.message_sids)
    assert len(set(fake_twilio.message_sids)) == 4  # one Twilio message per reply
    assert len(fake_twilio.posts("/Messages.json")) == 8  # four failed tries, four sent
    with pg_db.session() as session:
        assert sweep_outbox(session, load_builtin_adapters(), settings,
                            now=utcnow() + dt.timedelta(hours=3)) == {}


def _sms_tickets(db: Database) -> list[int]:
    from contactcenter.tickets.models import Ticket

    with db.session() as session:
        ids = list(session.scalars(select(Ticket.id).where(Ticket.channel == "sms")))
    return ids if len(ids) == 4 else []


# --- Dovecot restarting while the IMAP poller works ---------------------------------------

def test_dovecot_restart_mid_poll_imports_each_mail_once(
        deployment: Deployment, pg_db: Database, dovecot: Dovecot) -> None:
    from tests.channels.email.dovecot import INBOX_ADDRESS, append, flags_by_message_id, mail

    deployment.extra_env["CONTACTCENTER_IMAP_MAILBOXES"] = (
        f"imap://test:test@127.0.0.1:{dovecot.port}/INBOX?inbox={INBOX_ADDRESS}"
        "&poll=1&timeout=5&backoff=0.2&backoff_max=1")
    append(dovecot, *(mail(n, body="It blinks red. " * 2000) for n in range(1, 13)))
    deployment.start_worker(queues="inbound,outbound,default")
    poller = deployment.start("imap", "imap")
    # The poller is mid-batch (some imported, some not): Dovecot goes away and comes back.
    wait_until(lambda: 0 < len(imap_raws(pg_db)) < 12, timeout=60, interval=0.05,
               what="the poller mid-batch " + poller.output())
    dovecot.restart()
    append(dovecot, *(mail(n) for n in range(13, 16)))
    expected = {f"msg-{n}@customer.test" for n in range(1, 16)}
    wait_until(lambda: set(imap_raws(pg_db)) == expected, timeout=90,
               what="every mail imported " + poller.output())
    raws = imap_raws(pg_db)
    assert len(raws) == len(expected), raws  # none twice
    wait_until(lambda: all(b"\\Seen" in f for f in flags_by_message_id(dovecot).values()),
               timeout=30, what="every mail flagged seen")
    with pg_db.session() as session:
        from contactcenter.tickets.models import RawInbound, Ticket

        wait_until(lambda: _count(pg_db, Ticket) == 15, timeout=60, what="15 tickets")
        states = set(session.scalars(select(RawInbound.state)))
    assert states == {"processed"}, states
    assert poller.alive()


def imap_raws(db: Database) -> list[str]:
    from contactcenter.tickets.models import RawInbound

    with db.session() as session:
        return list(session.scalars(select(RawInbound.external_id).where(
            RawInbound.channel == "email")))


def _count(db: Database, model: Any) -> int:
    from sqlalchemy import func

    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


# --- the outbound relay stalling past our timeout, then recovering -----------------------

def test_relay_stalling_past_the_timeout_leaves_at_most_one_duplicate_per_reply(
        deployment: Deployment, pg_db: Database) -> None:
    """A relay that answers after we gave up: the documented at-most-one duplicate.

    SMTP cannot tell us whether a message whose 250 never arrived was taken (RFC 5321
    section 6.1 accepts duplicates over losses), so the reply is retried with the same
    Message-ID: the recipient's mail system sees at most one duplicate, never a loss.
    """
    from collections import Counter

    from tests.channels.email.smtp_support import make_message
    from tests.ops.test_faults import assert_outbound_once, send_like_an_mta, sweep_later

    deployment.relay.delay = 8.0  # longer than CONTACTCENTER_SMTP_RELAY_TIMEOUT_SECONDS=5
    deployment.relay.taken_before_delay = True
    deployment.start_smtp()
    deployment.start_worker(queues="outbound")
    for i in range(2):
        send_like_an_mta(deployment.smtp_port,
                         make_message(f"Stall {i}", sender=f"st{i}@example.com"), "st@example.com")

    def retried() -> list[Any]:  # both back to pending, each with the reason the agent sees
        with pg_db.session() as session:
            rows = list(session.execute(select(Message.delivery_state, Message.delivery_error)
                                        .where(Message.direction == "outbound")))
        return rows if len(rows) == 2 and all(
            state == DeliveryState.PENDING and error for state, error in rows) else []

    wait_until(retried, timeout=60, what="both replies back to pending after the time-out")
    assert len(deployment.relay.received) == 2  # taken, although we never saw the 250
    deployment.relay.delay = 0.0
    assert sweep_later(deployment, 2) == {"sent": 2}  # after the first backoff
    assert_outbound_once(pg_db, deployment.relay.received, tolerated=2)
    assert max(Counter(deployment.relay.received).values()) == 2  # never more than one extra
    assert sweep_later(deployment, 200) == {}
