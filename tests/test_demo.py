"""The demo data set: realistic, deterministic and loaded only once."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import phonenumbers
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contactcenter.accounts.models import AgentSkill, Role, User, UserRole
from contactcenter.accounts.service import authenticate
from contactcenter.config import Settings
from contactcenter.customers.models import (
    Contract,
    Customer,
    CustomerIdentity,
    Organisation,
    Product,
    Purchase,
)
from contactcenter.db import Database, utcnow
from contactcenter.demo import DEMO_PASSWORD, DEMO_USERS, load_demo
from contactcenter.tickets.models import Direction, Inbox, Message, QueueMember, Ticket
from tests.factories import make_user


def count(session: Session, query: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def test_the_demo_loads_the_promised_data_set_once(db: Database, settings: Settings,
                                                   session: Session) -> None:
    summary = load_demo(db, settings)
    assert "200 customers" in summary and DEMO_PASSWORD in summary

    customers = session.scalars(select(Customer)).all()
    assert 190 <= len(customers) <= 210
    assert sum(1 for c in customers if len(c.identities) > 1) >= 20
    assert any(re.search("[А-Яа-яЁё]", c.name) for c in customers)
    assert any(re.fullmatch("[A-Za-z .'-]+", c.name) for c in customers)
    assert count(session, select(Organisation.id)) == 2
    for phone in session.scalars(select(CustomerIdentity.address)
                                 .where(CustomerIdentity.kind == "phone")):
        assert phonenumbers.is_possible_number(phonenumbers.parse(phone))
        assert phone.startswith(("+79", "+1"))

    assert 12 <= count(session, select(Product.id)) <= 40  # the demo set and the offer catalogue
    assert 500 <= count(session, select(Purchase.id)) <= 700
    today = utcnow().date()
    contracts = session.scalars(select(Contract)).all()
    assert 50 <= len(contracts) <= 70
    assert any(c.status_on(today) == "expiring" for c in contracts)
    assert any(c.status_on(today) == "lapsed" for c in contracts)

    agents = session.scalars(select(User).join(UserRole)
                             .where(UserRole.role == Role.AGENT)).all()
    assert len(agents) == 10 and all(agent.skills for agent in agents)
    assert {a.languages for a in agents} >= {"en", "ru"}
    assert count(session, select(QueueMember.id)) >= 10
    assert count(session, select(AgentSkill.id)) >= 10
    for email, _role in DEMO_USERS:
        assert authenticate(session, email, DEMO_PASSWORD).email == email

    tickets = session.scalars(select(Ticket)).all()
    assert len(tickets) >= 250
    assert len({t.channel for t in tickets}) >= 4
    statuses = {t.status for t in tickets}
    assert {"closed", "solved"} <= statuses and statuses & {"new", "open", "pending"}
    assert min(t.created_at for t in tickets) < utcnow() - dt.timedelta(days=60)
    assert max(t.last_activity_at for t in tickets) <= utcnow()
    assert count(session, select(Message.id).where(Message.direction == Direction.INBOUND)) \
        >= len(tickets)
    outbound = session.scalars(select(Message.delivery_state)
                               .where(Message.direction == Direction.OUTBOUND)).all()
    # The history's replies were delivered; only today's visit survey may wait for a relay.
    assert outbound and set(outbound) <= {"sent", "pending"}
    assert outbound.count("pending") <= 2
    assert count(session, select(Inbox.channel).distinct()) == 6

    session.rollback()
    assert load_demo(db, settings) == ""
    assert count(session, select(Customer.id)) == len(customers)
    assert count(session, select(Ticket.id)) == len(tickets)


def test_the_demo_leaves_an_installation_with_users_alone(db: Database, settings: Settings,
                                                          session: Session) -> None:
    make_user(session, "admin")
    session.commit()
    assert load_demo(db, settings) == ""
    assert count(session, select(Customer.id)) == 0
    assert count(session, select(Ticket.id)) == 0
