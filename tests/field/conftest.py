"""Shared builders for the field tests: a ticket with a customer, technicians, a contract."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from contactcenter.config import Settings
from contactcenter.customers.models import Contract
from contactcenter.field.service import save_technician
from contactcenter.sla.models import SlaCalendar
from contactcenter.tickets.intake import ingest_inbound
from contactcenter.tickets.models import Ticket
from contactcenter.tickets.service import get_ticket
from tests.factories import make_contact, make_inbox, make_queue, make_user


def ingest(session: Any, settings: Settings, **kwargs: Any) -> Ticket:
    """Ingest one contact (committing) and return its ticket."""
    result = ingest_inbound(session, make_contact(**kwargs), settings=settings)
    assert result.ticket_number is not None
    return get_ticket(session, result.ticket_number)


@dataclass
class Field:
    ticket: Ticket
    other_ticket: Ticket
    agent: Any
    supervisor: Any
    tech_a: Any
    tech_b: Any
    calendar: SlaCalendar


@pytest.fixture
def field(session: Any, settings: Settings) -> Field:
    queue = make_queue(session, "repairs")
    inbox = make_inbox(session, queue)
    agent = make_user(session, "agent", email="agent@example.test", queues=(queue,))
    supervisor = make_user(session, "supervisor", email="super@example.test")
    tech_a = make_user(session, "technician", email="tech-a@example.test")
    tech_a.name = "Anton Fixer"
    tech_b = make_user(session, "technician", email="tech-b@example.test")
    tech_b.name = "Boris Wrench"
    calendar = SlaCalendar(name="Office", timezone="UTC", hours="mon-fri 09:00-17:00")
    session.add(calendar)
    session.flush()
    save_technician(session, tech_a.id, skills="router,fiber", areas="north",
                    calendar_id=calendar.id, hourly_rate="60")
    save_technician(session, tech_b.id, skills="router", areas="south",
                    calendar_id=calendar.id, hourly_rate="50")
    session.commit()
    ticket = ingest(session, settings, inbox_id=inbox.id, subject="Router dead",
                    sender="olga@example.com", name="Olga Smirnova",
                    text="My router does not power on.")
    other = ingest(session, settings, inbox_id=inbox.id, subject="Another customer",
                   sender="boris@example.com", name="Boris Other")
    return Field(ticket, other, agent, supervisor, tech_a, tech_b, calendar)


def add_contract(session: Any, field: Field, level: str = "Premium") -> Contract:
    contract = Contract(external_id=f"c-{level}", customer_id=field.ticket.customer_id,
                        level=level, starts_on=dt.date(2026, 1, 1),
                        ends_on=dt.date(2027, 1, 1), calendar_id=field.calendar.id)
    session.add(contract)
    session.commit()
    return contract
