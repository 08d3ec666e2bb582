"""More faults of the scaled deployment: a stopped scheduler, and providers failing then recovering.

Each test starts the real processes (``tests/ops/deployment.py``) and checks the promise that
matters after the fault: SLA breaches reported once with the instant they really happened,
every outbound message sent once, every inbound contact stored once.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.db import Database, utcnow
from contactcenter.events import EventLog
from contactcenter.sla.models import SlaClock
from contactcenter.tickets.intake import ingest_inbound
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
    # Later sweeps (the next slots, a second scheduler) report nothing again.
    deployment.start("scheduler3", "scheduler")
    time.sleep(35)  # at least one more 30-second sweep slot
    for ticket_id, _clock_id, _due in [*away, (first_ticket, first_clock, first_due)]:
        assert len(breach_events(pg_db, ticket_id)) == 1
