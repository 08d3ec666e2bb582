"""A small world for the API tests: two queues, users of every role, tokens and tickets."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from contactcenter.accounts.models import User
from contactcenter.config import Settings
from contactcenter.customers.models import Customer
from contactcenter.tickets.intake import ingest_inbound
from contactcenter.tickets.models import Inbox, Queue, Ticket
from contactcenter.tickets.service import get_ticket
from tests.factories import (
    bearer,
    make_contact,
    make_customer,
    make_inbox,
    make_queue,
    make_token,
    make_user,
)


@dataclass
class World:
    queue_a: Queue
    queue_b: Queue
    inbox_a: Inbox
    inbox_b: Inbox
    agent: User
    other_agent: User
    supervisor: User
    admin: User
    editor: User
    tokens: dict[str, str]
    olga: Customer
    boris: Customer
    mine: Ticket          # queue A: visible to the agent
    theirs: Ticket        # queue B: not visible to the agent
    assigned: Ticket      # queue B but assigned to the agent: visible
    loose: Ticket         # no queue, no assignee: visible to every agent

    def headers(self, who: str) -> dict[str, str]:
        return bearer(self.tokens[who])


def ingest(session: Any, settings: Settings, **kwargs: Any) -> Ticket:
    """Ingest one contact and return its ticket."""
    result = ingest_inbound(session, make_contact(**kwargs), settings=settings)
    assert result.ticket_number is not None
    return get_ticket(session, result.ticket_number)


@pytest.fixture
def world(session: Any, settings: Settings) -> World:
    queue_a, queue_b = make_queue(session, "billing"), make_queue(session, "tech")
    inbox_a, inbox_b = make_inbox(session, queue_a), make_inbox(session, queue_b)
    agent = make_user(session, "agent", email="agent@example.test", queues=(queue_a,))
    other = make_user(session, "agent", email="other@example.test", queues=(queue_b,))
    supervisor = make_user(session, "supervisor", email="super@example.test")
    admin = make_user(session, "admin", email="admin@example.test")
    editor = make_user(session, "knowledge_editor", email="kb@example.test")
    olga = make_customer(session, "Olga Smirnova", email="olga@example.com",
                         phone="+79161234567", lifetime_value=Decimal("1234.50"),
                         balance=Decimal("-20.00"))
    boris = make_customer(session, "Boris Hidden", email="boris@example.com",
                          phone="+442071234567")
    session.commit()
    tokens = {name: make_token(session, user) for name, user in
              (("agent", agent), ("other", other), ("supervisor", supervisor),
               ("admin", admin), ("editor", editor))}
    mine = ingest(session, settings, inbox_id=inbox_a.id, sender="olga@example.com",
                  name="Olga Smirnova", subject="Invoice is wrong", text="Please fix it.")
    theirs = ingest(session, settings, inbox_id=inbox_b.id, sender="boris@example.com",
                    name="Boris Hidden", subject="Secret router trouble", text="Hidden.")
    assigned = ingest(session, settings, inbox_id=inbox_b.id, sender="carl@example.com",
                      name="Carl Assigned", subject="Assigned router trouble", text="Hi")
    assigned.assignee_id = agent.id
    session.commit()
    loose = ingest(session, settings, sender="dora@example.com", name="Dora Loose",
                   subject="Loose question", text="Anyone?")
    return World(queue_a, queue_b, inbox_a, inbox_b, agent, other, supervisor, admin, editor,
                 tokens, olga, boris, mine, theirs, assigned, loose)
