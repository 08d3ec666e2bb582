"""The ticket's life drives its routing item: answered or parked completes it, reopened requeues."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.customers.models import Customer
from contactcenter.routing import engine
from contactcenter.routing.models import AgentCapacity, ItemState, RoutingItem
from contactcenter.routing.policy import RoutingPolicy
from contactcenter.tickets.models import Ticket, TicketStatus
from contactcenter.tickets.service import add_reply, change_status
from tests.routing.helpers import T0, make_agent, make_queue


def _ticket(session: Session, queue_id: int) -> Ticket:
    customer = Customer(name="Anna")
    session.add(customer)
    session.flush()
    ticket = Ticket(number=5000 + customer.id, subject="Router", channel="email",
                    customer_id=customer.id, queue_id=queue_id, reply_token="t" * 16,
                    status=TicketStatus.NEW, last_activity_at=T0)
    session.add(ticket)
    session.flush()
    return ticket


def _items(session: Session, ticket: Ticket) -> list[RoutingItem]:
    return list(session.scalars(select(RoutingItem).where(RoutingItem.ticket_id == ticket.id)
                                .order_by(RoutingItem.id)))


def test_a_reply_completes_the_item_and_frees_the_agent(session: Session,
                                                        policy: RoutingPolicy) -> None:
    queue = make_queue(session)
    agent = make_agent(session, policy, queue)
    ticket = _ticket(session, queue.id)
    enqueued = engine.enqueue_ticket(session, ticket, T0, policy)
    assert enqueued is not None and enqueued.match.decisions
    offer = enqueued.match.decisions[0]
    engine.accept_offer(session, offer.offer_id, agent.id, T0, policy)
    load = session.scalar(select(AgentCapacity.load).where(
        AgentCapacity.user_id == agent.id, AgentCapacity.kind == "ticket"))
    assert load == 1

    add_reply(session, ticket, agent.id, "Please restart it.", now=T0, policy=policy)

    assert [i.state for i in _items(session, ticket)] == [ItemState.COMPLETED]
    load = session.scalar(select(AgentCapacity.load).where(
        AgentCapacity.user_id == agent.id, AgentCapacity.kind == "ticket"))
    assert load == 0


def test_an_internal_note_leaves_the_item_alone(session: Session, policy: RoutingPolicy) -> None:
    queue = make_queue(session)
    agent = make_agent(session, policy, queue, presence="away")
    ticket = _ticket(session, queue.id)
    engine.enqueue_ticket(session, ticket, T0, policy)
    add_reply(session, ticket, agent.id, "Checking with billing", internal=True, now=T0, policy=policy)
    assert [i.state for i in _items(session, ticket)] == [ItemState.WAITING]


def test_parking_completes_and_reopening_requeues(session: Session, policy: RoutingPolicy) -> None:
    queue = make_queue(session)
    ticket = _ticket(session, queue.id)
    engine.enqueue_ticket(session, ticket, T0, policy)
    change_status(session, ticket, TicketStatus.ON_HOLD, None, T0, policy=policy)
    assert [i.state for i in _items(session, ticket)] == [ItemState.COMPLETED]
    change_status(session, ticket, TicketStatus.OPEN, None, T0, policy=policy)
    assert [i.state for i in _items(session, ticket)] == [ItemState.COMPLETED, ItemState.WAITING]


def test_intake_puts_a_new_ticket_in_front_of_the_router(session: Session, settings: Any,
                                                         policy: RoutingPolicy) -> None:
    from contactcenter.tickets.intake import ingest_inbound
    from tests.factories import make_contact, make_inbox

    queue = make_queue(session)
    agent = make_agent(session, policy, queue)
    inbox = make_inbox(session, queue)
    session.commit()
    result = ingest_inbound(session, make_contact(inbox_id=inbox.id), settings=settings, now=T0)
    ticket = session.get(Ticket, result.ticket_id)
    items = _items(session, ticket)
    assert [i.state for i in items] == [ItemState.OFFERED]
    assert items[0].agent_id == agent.id


def test_automatic_mail_is_not_routed(session: Session, settings: Any,
                                      policy: RoutingPolicy) -> None:
    import dataclasses

    from contactcenter.tickets.intake import ingest_inbound
    from tests.factories import make_contact, make_inbox

    queue = make_queue(session)
    inbox = make_inbox(session, queue)
    session.commit()
    contact = dataclasses.replace(make_contact(inbox_id=inbox.id), auto_submitted=True)
    result = ingest_inbound(session, contact, settings=settings, now=T0)
    assert _items(session, session.get(Ticket, result.ticket_id)) == []
