"""Builders shared by the phone tests: numbers, queues, an available agent, a known caller."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from contactcenter.accounts.models import User
from contactcenter.config import Settings
from contactcenter.customers.models import Contract, Customer, CustomerIdentity
from contactcenter.db import utcnow
from contactcenter.routing.engine import load_policy, set_presence
from contactcenter.tickets.models import Inbox, Queue
from tests.factories import make_user

CALLER = "+79161234567"
LINE = "+12025550100"
SMS_LINE = "+12025550101"


@dataclass
class Line:
    """What a phone test needs: queues, inboxes, an agent and a known customer."""

    support: Queue
    billing: Queue
    voice_inbox: Inbox
    sms_inbox: Inbox
    agent: User
    customer: Customer


def make_line(session: Session, settings: Settings, *, available: bool = True,
              contract: bool = True) -> Line:
    """Create the support line: queues, a voice and an SMS number, an agent and a caller."""
    support = Queue(slug="support", name="Technical support")
    billing = Queue(slug="billing", name="Billing")
    session.add_all([support, billing])
    session.flush()
    voice_inbox = Inbox(name="Hotline", channel="phone", address=LINE, queue_id=support.id)
    sms_inbox = Inbox(name="SMS", channel="sms", address=SMS_LINE, queue_id=support.id)
    session.add_all([voice_inbox, sms_inbox])
    agent = make_user(session, "agent", queues=(support, billing))
    customer = Customer(name="Anna Petrova", language="ru", value_tier="B",
                        lifetime_value=Decimal("1200.00"))
    customer.identities.append(CustomerIdentity(kind="phone", address=CALLER))
    session.add(customer)
    session.flush()
    if contract:
        today = utcnow().date()
        session.add(Contract(external_id=f"C-{customer.id}", customer_id=customer.id,
                             level="Gold", starts_on=today - dt.timedelta(days=30),
                             ends_on=today + dt.timedelta(days=300), response_minutes=60))
    session.commit()
    if available:
        set_presence(session, agent.id, "available", utcnow(), load_policy(settings))
        session.commit()
    return Line(support, billing, voice_inbox, sms_inbox, agent, customer)


def first(rows: Any) -> Any:
    """Return the only element of a list, failing loudly otherwise."""
    items = list(rows)
    assert len(items) == 1, items
    return items[0]
