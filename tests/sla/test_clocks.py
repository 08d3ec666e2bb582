"""Clocks through a ticket's life: intake, replies, pauses, resumes, solve and reopen."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from contactcenter.sla.models import SlaClock, TicketSla
from contactcenter.tickets.intake import ingest_inbound
from contactcenter.tickets.models import Ticket
from contactcenter.tickets.service import add_reply, change_status
from tests.factories import make_contact, make_inbox, make_queue, make_user
from tests.sla.conftest import MONDAY

H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)


def clocks(session, ticket_id):
    return {(c.kind, c.cycle): c for c in session.scalars(
        select(SlaClock).where(SlaClock.ticket_id == ticket_id))}


def open_ticket(session, settings, now=MONDAY, sender=None, queue=None):
    inbox = make_inbox(session, queue or make_queue(session))
    result = ingest_inbound(session, make_contact(sender=sender, inbox_id=inbox.id),
                            settings=settings, now=now)
    return session.get(Ticket, result.ticket_id)


def test_a_new_ticket_gets_the_default_policy_with_its_reason(session, settings, sla_config):
    ticket = open_ticket(session, settings)
    sla = session.get(TicketSla, ticket.id)
    assert sla.policy_name == "Standard"
    assert "no conditions (default)" in sla.reason
    got = clocks(session, ticket.id)
    assert set(got) == {("first_response", 1), ("resolution", 1)}
    assert got[("first_response", 1)].due_at == MONDAY + 4 * H
    assert got[("first_response", 1)].warn_at == MONDAY + 4 * H * 0.8
    assert got[("resolution", 1)].due_at == MONDAY + 48 * H


def test_the_router_is_told_the_earliest_deadline(session, settings, sla_config):
    from contactcenter.routing.models import RoutingItem

    ticket = open_ticket(session, settings)
    item = session.scalars(select(RoutingItem).where(RoutingItem.ticket_id == ticket.id)).one()
    assert item.due_at == MONDAY + 4 * H


def test_reply_meets_first_response_and_a_note_does_not(session, settings, sla_config):
    ticket = open_ticket(session, settings)
    agent = make_user(session)
    add_reply(session, ticket, agent.id, "note", internal=True, now=MONDAY + 10 * M)
    assert clocks(session, ticket.id)[("first_response", 1)].met_at is None
    add_reply(session, ticket, agent.id, "Hello", now=MONDAY + 30 * M)
    session.commit()
    first = clocks(session, ticket.id)[("first_response", 1)]
    assert first.state == "met" and first.met_at == MONDAY + 30 * M
    assert first.business_seconds == 30 * 60 and first.breached_at is None


def test_pending_pauses_and_a_customer_message_resumes_with_the_remaining_time(
        session, settings, sla_config):
    ticket = open_ticket(session, settings, sender="pause@example.com")
    agent = make_user(session)
    # The reply sets the ticket pending: the resolution clock stops after 1 h.
    add_reply(session, ticket, agent.id, "Try this", now=MONDAY + H)
    session.commit()
    resolution = clocks(session, ticket.id)[("resolution", 1)]
    assert resolution.state == "paused" and resolution.elapsed_seconds == 3600
    assert resolution.due_at is None and resolution.next_check_at is None
    # Customer writes back 5 hours later: resumes with 47 h left, next response starts.
    ingest_inbound(session, make_contact(sender="pause@example.com",
                                         inbox_id=ticket.inbox_id), settings=settings,
                   now=MONDAY + 6 * H)
    got = clocks(session, ticket.id)
    assert got[("resolution", 1)].state == "running"
    assert got[("resolution", 1)].due_at == MONDAY + 6 * H + 47 * H
    assert got[("next_response", 1)].due_at == MONDAY + 6 * H + 8 * H
    # The next reply meets it; a second customer message starts cycle 2.
    add_reply(session, ticket, agent.id, "Done?", now=MONDAY + 7 * H)
    ingest_inbound(session, make_contact(sender="pause@example.com",
                                         inbox_id=ticket.inbox_id), settings=settings,
                   now=MONDAY + 8 * H)
    got = clocks(session, ticket.id)
    assert got[("next_response", 1)].met_at == MONDAY + 7 * H
    assert got[("next_response", 2)].state == "running"


def test_on_hold_pauses_only_when_the_policy_says_so(session, settings, sla_config):
    from contactcenter.customers.models import Contract
    from tests.factories import make_customer

    ticket = open_ticket(session, settings)  # Standard: pause_on_hold false
    change_status(session, ticket, "on_hold", None, MONDAY + H)
    assert clocks(session, ticket.id)[("resolution", 1)].state == "running"
    customer = make_customer(session, email="gold@example.com")
    session.add(Contract(external_id="C-HOLD", customer_id=customer.id, level="Gold",
                         starts_on=dt.date(2026, 1, 1), ends_on=dt.date(2026, 12, 31)))
    session.commit()
    gold = open_ticket(session, settings, sender="gold@example.com")
    assert session.get(TicketSla, gold.id).policy_name == "Gold"
    change_status(session, gold, "on_hold", None, MONDAY + H)
    assert clocks(session, gold.id)[("resolution", 1)].state == "paused"


def test_business_hours_clock_over_the_weekend_and_resume(session, settings, sla_config):
    from contactcenter.customers.models import Contract
    from tests.factories import make_customer

    customer = make_customer(session, email="weekend@example.com")
    session.add(Contract(external_id="C-WE", customer_id=customer.id, level="Gold",
                         starts_on=dt.date(2026, 1, 1), ends_on=dt.date(2026, 12, 31)))
    session.commit()
    friday = dt.datetime(2026, 3, 6, 15, 30, tzinfo=dt.UTC)  # 16:30 Berlin
    ticket = open_ticket(session, settings, now=friday, sender="weekend@example.com")
    got = clocks(session, ticket.id)
    # Priority raised to high by the contract; first response 60 business minutes:
    # 30 min on Friday, 30 min from Monday 09:00 Berlin.
    assert ticket.priority == "high"
    assert got[("first_response", 1)].due_at == dt.datetime(2026, 3, 9, 8, 30, tzinfo=dt.UTC)
    # Paused Friday 16:45, resumed Monday 10:00 Berlin: 15 min used, 45 left -> 10:45.
    change_status(session, ticket, "pending", None, friday + 15 * M)
    change_status(session, ticket, "open", None, dt.datetime(2026, 3, 9, 9, 0, tzinfo=dt.UTC))
    first = clocks(session, ticket.id)[("first_response", 1)]
    assert first.due_at == dt.datetime(2026, 3, 9, 9, 45, tzinfo=dt.UTC)


def test_solved_meets_resolution_and_reopen_runs_it_on(session, settings, sla_config):
    ticket = open_ticket(session, settings, sender="solve@example.com")
    change_status(session, ticket, "solved", None, MONDAY + 2 * H)
    resolution = clocks(session, ticket.id)[("resolution", 1)]
    assert resolution.state == "met" and resolution.business_seconds == 2 * 3600
    # The customer writes again a day later: reopened, runs on with 46 h left.
    ingest_inbound(session, make_contact(sender="solve@example.com", inbox_id=ticket.inbox_id),
                   settings=settings, now=MONDAY + 26 * H)
    resolution = clocks(session, ticket.id)[("resolution", 1)]
    assert resolution.state == "running" and resolution.met_at is None
    assert resolution.due_at == MONDAY + 26 * H + 46 * H


def test_ticket_clocks_for_the_desktop(session, settings, sla_config):
    from contactcenter.sla.service import ticket_clocks

    ticket = open_ticket(session, settings)
    rows = ticket_clocks(session, ticket, MONDAY + H)
    first = next(r for r in rows if r["kind"] == "first_response")
    assert first["business_minutes_used"] == 60 and first["business_minutes_left"] == 180
    assert first["policy"] == "Standard" and not first["breached"] and not first["paused"]
    late = ticket_clocks(session, ticket, MONDAY + 5 * H)
    assert next(r for r in late if r["kind"] == "first_response")["breached"]
