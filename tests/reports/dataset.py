"""A small fixed data set whose report figures are computed by hand in the tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from contactcenter.routing.models import AgentCapacity, AgentState, RoutingItem
from contactcenter.tickets.models import Direction, Message, Queue, Ticket
from tests.factories import make_customer, make_queue, make_user

DAY = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)   # a Monday
NOW = DAY + dt.timedelta(hours=12)               # noon


@dataclass
class Dataset:
    """Handles to the rows the tests filter on."""

    support: Queue
    sales: Queue
    agent_a: int
    agent_b: int
    tickets: list[Ticket]


def at(hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    """Return a time on the data set's day."""
    return DAY + dt.timedelta(hours=hour, minutes=minute, seconds=second)


def make_item(session: Session, queue: Queue, kind: str, channel: str, enqueued: dt.datetime,
              *, wait: int | None = None, abandoned_after: int | None = None,
              agent_id: int | None = None, tier: str | None = None, state: str | None = None,
              handle: int | None = None) -> RoutingItem:
    """Add a routing item: answered after ``wait`` s, abandoned after ``abandoned_after``, or waiting."""
    item = RoutingItem(kind=kind, channel=channel, queue_id=queue.id, enqueued_at=enqueued,
                       rules_since=enqueued, value_tier=tier, agent_id=agent_id,
                       state=state or "waiting")
    if wait is not None:
        item.answered_at = enqueued + dt.timedelta(seconds=wait)
        item.wait_seconds = wait
        item.state = state or "completed"
        item.handle_seconds = handle
        if handle is not None:
            item.completed_at = item.answered_at + dt.timedelta(seconds=handle)
    if abandoned_after is not None:
        item.abandoned_at = enqueued + dt.timedelta(seconds=abandoned_after)
        item.state = "abandoned"
    session.add(item)
    return item


def make_ticket(session: Session, number: int, queue: Queue, customer_id: int, created: dt.datetime,
                *, first_response: int | None = None, solved: int | None = None,
                assignee: int | None = None, channel: str = "email", reopen: int = 0,
                inbound: int = 1, outbound: int = 0) -> Ticket:
    """Add a ticket with times in seconds after creation and its messages."""
    ticket = Ticket(number=number, subject=f"T{number}", channel=channel,
                    customer_id=customer_id, queue_id=queue.id, assignee_id=assignee,
                    reply_token=f"tok{number}", created_at=created, updated_at=created,
                    last_activity_at=created, reopen_count=reopen,
                    status="solved" if solved is not None else "open")
    if first_response is not None:
        ticket.first_response_at = created + dt.timedelta(seconds=first_response)
    if solved is not None:
        ticket.solved_at = created + dt.timedelta(seconds=solved)
    session.add(ticket)
    session.flush()
    for i in range(inbound):
        session.add(Message(ticket_id=ticket.id, direction=Direction.INBOUND, channel=channel,
                            text="q", external_id=f"in-{number}-{i}", received_at=created))
    for _ in range(outbound):
        session.add(Message(ticket_id=ticket.id, direction=Direction.OUTBOUND, channel=channel,
                            text="a", received_at=created))
    return ticket


def build(session: Session) -> Dataset:
    """Create the data set (see the tests for the hand-computed figures)."""
    support = make_queue(session, "support")
    sales = make_queue(session, "sales")
    a = make_user(session, "agent", queues=(support,))
    b = make_user(session, "agent", queues=(support, sales))
    for user, presence in ((a, "available"), (b, "away")):
        session.add(AgentState(user_id=user.id, presence=presence, presence_since=at(8)))
    session.flush()
    for user in (a, b):
        session.add(AgentCapacity(user_id=user.id, kind="call", maximum=1, load=0))
    gold = make_customer(session, "Gold", value_tier="A")
    plain = make_customer(session, "Plain", value_tier="C")
    tickets = [
        # number, queue, customer, created, first response s, solved s
        make_ticket(session, 1, support, gold.id, at(9, 0), first_response=60, solved=600,
                    assignee=a.id, outbound=1),
        make_ticket(session, 2, support, plain.id, at(9, 30), first_response=120, solved=3600,
                    assignee=a.id, outbound=2),
        make_ticket(session, 3, support, plain.id, at(10, 15), first_response=300,
                    assignee=b.id, outbound=1),
        make_ticket(session, 4, sales, gold.id, at(10, 45), first_response=600, solved=1200,
                    assignee=b.id, outbound=1, reopen=1),
        make_ticket(session, 5, sales, plain.id, at(11, 5), channel="chat"),
    ]
    # Calls in support (target 20 s): waits 10, 20, 30 answered; one abandoned after 40 s.
    make_item(session, support, "call", "voice", at(9, 0), wait=10, agent_id=a.id, tier="A",
              handle=300)
    make_item(session, support, "call", "voice", at(9, 10), wait=20, agent_id=a.id, tier="C",
              handle=200)
    make_item(session, support, "call", "voice", at(11, 50), wait=30, agent_id=b.id, tier="C",
              handle=100)
    make_item(session, support, "call", "voice", at(11, 52), abandoned_after=40, tier="C")
    # Chats in sales (target 60 s): one answered after 90 s; one still waiting since 11:58.
    make_item(session, sales, "chat", "chat", at(10, 0), wait=90, agent_id=b.id, tier="A")
    make_item(session, sales, "chat", "chat", at(11, 58), tier="C")
    # Yesterday's call: outside every window of the day.
    make_item(session, support, "call", "voice", DAY - dt.timedelta(hours=2), wait=5, tier="A")
    session.commit()
    return Dataset(support, sales, a.id, b.id, tickets)
