"""The sweep: each warning and breach reported once, escalation, catch-up after an outage."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from contactcenter.db import Database
from contactcenter.events import EventLog
from contactcenter.sla.loader import load_config
from contactcenter.sla.models import SlaClock, SlaNotification
from contactcenter.sla.sweep import parse_actions, run_sweep
from contactcenter.tickets.intake import ingest_inbound
from contactcenter.tickets.models import Ticket
from contactcenter.tickets.service import add_reply
from tests.factories import make_contact, make_inbox, make_queue, make_user
from tests.sla.conftest import CONFIG, MONDAY

H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)


def open_ticket(session, settings, now=MONDAY):
    inbox = make_inbox(session, make_queue(session))
    result = ingest_inbound(session, make_contact(inbox_id=inbox.id), settings=settings,
                            now=now)
    return session.get(Ticket, result.ticket_id)


def sla_events(session):
    return [(e.type, e.payload["kind"], e.payload.get("breached_at"))
            for e in session.scalars(select(EventLog).where(EventLog.type.like("sla.%"))
                                     .order_by(EventLog.id))]


def test_warning_then_breach_each_reported_once(session, settings, sla_config):
    settings = settings.replace(sla_on_breach="", sla_notify_emails="ops@example.test")
    ticket = open_ticket(session, settings)
    # First response: 240 min, warning at 80 % (192 min).
    assert run_sweep(session, settings, MONDAY + 3 * H).to_json()["warned"] == 0
    result = run_sweep(session, settings, MONDAY + 3 * H + 13 * M)
    assert (result.warned, result.breached) == (1, 0)
    assert run_sweep(session, settings, MONDAY + 3 * H + 30 * M).warned == 0
    result = run_sweep(session, settings, MONDAY + 4 * H + M)
    assert (result.warned, result.breached) == (0, 1)
    for minutes in (2, 30, 600):
        again = run_sweep(session, settings, MONDAY + 4 * H + minutes * M)
        assert (again.warned, again.breached) == (0, 0)
    assert sla_events(session) == [
        ("sla.warning", "first_response", None),
        ("sla.breached", "first_response", (MONDAY + 4 * H).isoformat())]
    event = session.scalars(select(EventLog).where(EventLog.type == "sla.breached")).one()
    assert f"ticket:{ticket.id}" in event.rooms and "supervisors" in event.rooms
    assert session.scalars(select(SlaNotification.recipient)).all() == ["ops@example.test"]


def test_catch_up_after_an_outage_reports_once_with_the_true_breach_time(
        session, settings, sla_config):
    settings = settings.replace(sla_on_breach="")
    tickets = [open_ticket(session, settings, MONDAY + i * M) for i in range(3)]
    answered = tickets[2]
    add_reply(session, answered, make_user(session).id, "late answer",
              now=MONDAY + 5 * H)                 # answered late while the sweep was down
    session.commit()
    # The scheduler was stopped for the whole day; it comes back at 20:00.
    result = run_sweep(session, settings, MONDAY + 11 * H)
    assert (result.warned, result.breached) == (0, 3)
    breaches = sorted(sla_events(session))
    assert breaches == sorted([("sla.breached", "first_response",
                                (MONDAY + i * M + 4 * H).isoformat()) for i in range(3)])
    assert run_sweep(session, settings, MONDAY + 12 * H).breached == 0
    clock = session.scalars(select(SlaClock).where(SlaClock.ticket_id == answered.id,
                                                   SlaClock.kind == "first_response")).one()
    assert clock.state == "met" and clock.breached_at == MONDAY + 2 * M + 4 * H
    assert clock.next_check_at is None


def test_breach_escalation_raises_priority_and_rescores(session, settings, sla_config):
    from contactcenter.routing.models import RoutingItem

    settings = settings.replace(sla_on_breach="raise_priority", sla_on_warning="")
    ticket = open_ticket(session, settings)
    item = session.scalars(select(RoutingItem).where(RoutingItem.ticket_id == ticket.id)).one()
    before = item.priority
    run_sweep(session, settings, MONDAY + 5 * H)
    session.refresh(ticket)
    session.refresh(item)
    assert ticket.priority == "high"
    assert item.manual_priority == "high" and item.priority > before
    assert [e.type for e in session.scalars(select(EventLog).where(
        EventLog.type == "sla.escalated"))] == ["sla.escalated"]


def test_parse_actions():
    assert parse_actions("raise_priority, queue:tier2,priority:urgent") == [
        "raise_priority", "queue:tier2", "priority:urgent"]
    with pytest.raises(ValueError):
        parse_actions("drop_table")


def test_sweep_job_runs_through_the_job_queue(session, settings, sla_config, jobs):
    open_ticket(session, settings, dt.datetime(2020, 1, 6, 9, tzinfo=dt.UTC))
    session.commit()
    jobs.enqueue("sla.sweep")
    assert not jobs.failures
    assert ("sla.breached", "first_response") in [e[:2] for e in sla_events(session)]


@pytest.mark.postgres
def test_sweep_on_postgresql_catches_up_once(pg_db: Database, settings):
    settings = settings.replace(sla_on_breach="raise_priority")
    with pg_db.session() as session:
        load_config(session, CONFIG)
        session.commit()
        for i in range(5):
            open_ticket(session, settings, MONDAY + i * M)
        session.commit()
    with pg_db.session() as a, pg_db.session() as b:
        first = run_sweep(a, settings, MONDAY + 10 * H, batch=2)
        second = run_sweep(b, settings, MONDAY + 10 * H, batch=2)
    assert first.breached + second.breached == 5
    with pg_db.session() as session:
        times = sorted(e.payload["breached_at"] for e in session.scalars(
            select(EventLog).where(EventLog.type == "sla.breached")))
        assert times == [(MONDAY + i * M + 4 * H).isoformat() for i in range(5)]
        assert all(t.priority == "high" for t in session.scalars(select(Ticket)))
