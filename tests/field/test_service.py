"""Visits on a real database: deadlines from contracts, offers, dispatch, outcomes, sweep."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.events import EventLog
from contactcenter.field import links
from contactcenter.field.dispatch import suggest
from contactcenter.field.models import Confirmation, OfferedSlot, Visit, VisitState
from contactcenter.field.service import (
    FieldError,
    assign_visit,
    check_in,
    check_out,
    create_visit,
    record_part,
    record_photo,
    start_travel,
    visits_of_ticket,
)
from contactcenter.field.sweep import run_sweep
from contactcenter.tickets.models import TicketStatus
from contactcenter.tickets.service import list_messages
from tests.field.conftest import Field, add_contract

MON_9 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def new_visit(session: Any, settings: Any, field: Field, now: dt.datetime = MON_9,
              **data: Any) -> Visit:
    body = {"address": "1 Main St", "area": "north", "problem": "Router dead",
            "skills": ["fiber"], **data}
    visit = create_visit(session, settings, field.ticket, field.agent.id, body, now)
    session.commit()
    return visit


def types(session: Any) -> list[str]:
    return list(session.scalars(select(EventLog.type).order_by(EventLog.id)))


def test_visit_deadline_follows_the_contract_on_its_calendar(session: Any, settings: Any,
                                                             field: Field) -> None:
    add_contract(session, field, "Premium")  # 480 business minutes, office 09-17 mon-fri
    friday_3pm = dt.datetime(2026, 3, 6, 15, tzinfo=dt.UTC)
    visit = new_visit(session, settings, field, friday_3pm)
    assert visit.onsite_minutes == 480
    assert visit.due_at == dt.datetime(2026, 3, 9, 15, tzinfo=dt.UTC)
    assert visit.contract_id is not None
    texts = [m.text for m in list_messages(session, field.ticket)]
    assert any("[Visit #" in t and "on site by 2026-03-09 15:00" in t for t in texts)


def test_a_contracts_own_onsite_commitment_wins_over_its_levels(session: Any, settings: Any,
                                                                field: Field) -> None:
    contract = add_contract(session, field, "Premium")  # the level says 480 minutes
    contract.onsite_minutes = 90
    session.commit()
    friday_3pm = dt.datetime(2026, 3, 6, 15, tzinfo=dt.UTC)
    visit = new_visit(session, settings, field, friday_3pm)
    assert visit.onsite_minutes == 90
    # Within the 2 business hours left on Friday (office 09-17).
    assert visit.due_at == dt.datetime(2026, 3, 6, 16, 30, tzinfo=dt.UTC)


def test_without_contract_there_is_no_deadline_and_address_is_remembered(
        session: Any, settings: Any, field: Field) -> None:
    first = new_visit(session, settings, field)
    assert first.due_at is None
    second = create_visit(session, settings, field.ticket, field.agent.id,
                          {"problem": "Again"}, MON_9)
    assert (second.address, second.area) == ("1 Main St", "north")
    assert [v.id for v in visits_of_ticket(session, field.ticket.id)] == [first.id, second.id]
    with pytest.raises(FieldError):
        create_visit(session, settings, field.other_ticket, field.agent.id, {"problem": "x"})
    with pytest.raises(FieldError):
        create_visit(session, settings, field.ticket, field.agent.id,
                     {"problem": "x", "priority": "whenever"})


def test_slots_offered_by_email_and_confirmed_through_the_signed_link(
        session: Any, settings: Any, field: Field) -> None:
    add_contract(session, field)
    visit = new_visit(session, settings, field)
    offer, link = links.offer_slots(session, settings, visit, "email", field.agent.id, MON_9)
    session.commit()
    assert visit.confirmation == Confirmation.OFFERED
    slots = links.slots_of(session, offer)
    assert len(slots) == settings.field_slot_count
    assert all(9 <= s.starts_at.hour < 17 for s in slots)
    outbound = [m for m in list_messages(session, field.ticket) if m.direction == "outbound"]
    assert outbound[-1].channel == "email" and link in outbound[-1].text
    token = link.rsplit("/", 1)[1]
    assert links.find_offer(session, settings, token) is offer
    assert links.find_offer(session, settings, token[:-2] + "xx") is None
    assert links.find_offer(session, settings.replace(secret_key="other"), token) is None
    links.answer_offer(session, settings, offer, slots[2].id, MON_9)
    session.commit()
    assert visit.window_start == slots[2].starts_at
    assert visit.confirmation == Confirmation.CONFIRMED
    assert visit.confirmed_via == "link-email"
    with pytest.raises(FieldError, match="already answered"):
        links.answer_offer(session, settings, offer, slots[1].id, MON_9)
    assert "field.slot_confirmed" in types(session)


def test_an_offer_refuses_foreign_slots_and_expires(session: Any, settings: Any,
                                                    field: Field) -> None:
    visit = new_visit(session, settings, field)
    with pytest.raises(FieldError, match="no address for sms"):
        links.offer_slots(session, settings, visit, "sms", field.agent.id, MON_9)
    offer, _ = links.offer_slots(session, settings, visit, "email", field.agent.id, MON_9)
    other, _ = links.offer_slots(session, settings, visit, "phone", field.agent.id, MON_9)
    session.commit()
    foreign = links.slots_of(session, other)[0]
    with pytest.raises(FieldError):
        links.answer_offer(session, settings, offer, foreign.id, MON_9)
    with pytest.raises(FieldError, match="expired"):
        links.answer_offer(session, settings, offer, links.slots_of(session, offer)[0].id,
                           MON_9 + dt.timedelta(days=30))


def test_suggestions_and_assignment_reach_the_technician_room(session: Any, settings: Any,
                                                              field: Field) -> None:
    visit = new_visit(session, settings, field, skills=["router"])
    ranked = suggest(session, visit, MON_9)
    assert [s.user_id for s in ranked] == [field.tech_a.id, field.tech_b.id]  # a is in north
    only_fiber = new_visit(session, settings, field, skills=["fiber"], area="south")
    assert [s.user_id for s in suggest(session, only_fiber, MON_9)] == [field.tech_a.id]
    assign_visit(session, visit, field.tech_a.id, field.supervisor.id, MON_9)
    session.commit()
    event = session.scalars(select(EventLog).where(EventLog.type == "field.visit_assigned")).one()
    assert f"agent:{field.tech_a.id}" in event.rooms and "supervisors" in event.rooms
    assert "cost" not in str(event.payload)
    with pytest.raises(FieldError):
        assign_visit(session, visit, field.agent.id, field.supervisor.id, MON_9)


def work(session: Any, settings: Any, field: Field, outcome: str) -> Visit:
    visit = new_visit(session, settings, field)
    assign_visit(session, visit, field.tech_a.id, field.supervisor.id, MON_9)
    start_travel(session, visit, field.tech_a.id, MON_9)
    check_in(session, visit, field.tech_a.id, MON_9 + dt.timedelta(minutes=30))
    record_part(session, visit, field.tech_a.id, {"name": "Router X", "sku": "RX-1",
                                                  "quantity": 1, "unit_cost": "89.90"})
    record_photo(session, settings, visit, field.tech_a.id, "before.png", PNG)
    check_out(session, settings, visit, field.tech_a.id,
              {"outcome": outcome, "notes": "Swapped the router", "signed_by": "Olga"},
              MON_9 + dt.timedelta(minutes=120))
    session.commit()
    return visit


def test_outcome_fixed_records_time_cost_survey_and_timeline(session: Any, settings: Any,
                                                             field: Field) -> None:
    visit = work(session, settings, field, "fixed")
    assert visit.state == VisitState.COMPLETED
    assert (visit.travel_minutes, visit.work_minutes) == (30, 90)
    assert visit.parts_cost == Decimal("89.90")
    assert visit.labour_cost == Decimal("120.00")  # 2 h at 60
    texts = [m.text for m in list_messages(session, field.ticket)]
    assert any("checked in" in t for t in texts)
    assert any("fixed" in t and "Signed by Olga" in t for t in texts)
    assert any("/field/survey/" in t for t in texts)
    assert len(visits_of_ticket(session, field.ticket.id)) == 1


def test_another_visit_reopens_the_ticket_and_creates_the_follow_up(
        session: Any, settings: Any, field: Field) -> None:
    field.ticket.status = TicketStatus.PENDING
    session.commit()
    visit = work(session, settings, field, "another_visit")
    assert field.ticket.status == TicketStatus.OPEN
    visits = visits_of_ticket(session, field.ticket.id)
    assert len(visits) == 2
    follow = visits[1]
    assert follow.follow_up_of_id == visit.id and follow.state == VisitState.PENDING
    assert (follow.address, follow.skills) == (visit.address, visit.skills)


def test_technician_steps_are_refused_on_other_visits_and_bad_files(
        session: Any, settings: Any, field: Field) -> None:
    visit = new_visit(session, settings, field)
    assign_visit(session, visit, field.tech_a.id, field.supervisor.id, MON_9)
    with pytest.raises(FieldError):
        check_in(session, visit, field.tech_b.id, MON_9)
    check_in(session, visit, field.tech_a.id, MON_9)
    with pytest.raises(FieldError, match="type"):
        record_photo(session, settings, visit, field.tech_a.id, "x.png", b"<html>hi</html>")
    with pytest.raises(FieldError, match="larger"):
        record_photo(session, settings.replace(field_photo_max_bytes=10), visit,
                     field.tech_a.id, "x.png", PNG)
    with pytest.raises(FieldError):
        record_part(session, visit, field.tech_a.id, {"name": "x", "unit_cost": "-1"})
    with pytest.raises(FieldError):
        check_out(session, settings, visit, field.tech_a.id, {"outcome": "shrug"})


def test_sweep_warns_then_breaches_once(session: Any, settings: Any, field: Field) -> None:
    add_contract(session, field, "Enterprise")  # 240 business minutes
    visit = new_visit(session, settings, field)
    assert visit.due_at == MON_9 + dt.timedelta(hours=4)
    assert run_sweep(session, settings, MON_9).warned == 0
    assert run_sweep(session, settings, MON_9 + dt.timedelta(minutes=200)).warned == 1
    assert run_sweep(session, settings, MON_9 + dt.timedelta(minutes=210)).warned == 0
    assert run_sweep(session, settings, MON_9 + dt.timedelta(minutes=241)).breached == 1
    assert run_sweep(session, settings, MON_9 + dt.timedelta(minutes=300)).breached == 0
    assert types(session).count("field.visit_breached") == 1
    assert session.scalar(select(OfferedSlot.id)) is None


def test_demo_seeds_technicians_and_visits_once(session: Any, settings: Any,
                                                field: Field) -> None:
    from contactcenter.field.demo import seed_demo

    ids = seed_demo(session, settings, MON_9)
    session.commit()
    assert len(ids) == 2  # the two open tickets of the fixture
    visits = [session.get(Visit, i) for i in ids]
    assert visits[0].state == VisitState.ASSIGNED and visits[0].window_start is not None
    assert visits[1].state == VisitState.COMPLETED and visits[1].outcome == "fixed"
    assert seed_demo(session, settings, MON_9) == []


def test_closing_the_ticket_cancels_visits_not_started(session: Any, settings: Any,
                                                       field: Field) -> None:
    from contactcenter.tickets.service import change_status

    waiting = new_visit(session, settings, field)
    done = work(session, settings, field, "fixed")
    change_status(session, field.ticket, "closed", field.agent.id, MON_9)
    session.commit()
    assert waiting.state == VisitState.CANCELLED
    assert done.state == VisitState.COMPLETED
