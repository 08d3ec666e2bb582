"""What a supervisor acts on: at-risk work, reassignment, priority, notes, failed intake.

Each action is a use case that takes the session and commits nothing; the web
layer commits (and the routing engine settles) after it. Reassignment goes
through ``tickets.service.assign_ticket`` (so ``ticket.assigned`` reaches the
new agent's desktop) and moves an active routing item with it; a routing
refusal (the agent is full or away) leaves the ticket with its new owner and
the item where it was, which the answer reports.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.accounts.models import User
from contactcenter.customers.models import Contract, Customer
from contactcenter.routing.errors import RoutingError
from contactcenter.routing.models import ACTIVE_STATES, HELD_STATES, RoutingItem
from contactcenter.routing.policy import RoutingPolicy
from contactcenter.tickets.models import (
    OPEN_STATUSES,
    Priority,
    RawInbound,
    RawState,
    Ticket,
)

PRIORITY_ORDER = [Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT]


class ActionError(ValueError):
    """A supervisor action that cannot be done (unknown ticket or agent, bad value)."""


def at_risk(session: Session, now: dt.datetime, window_minutes: int, lapse_days: int,
            limit: int = 200) -> dict[str, Any]:
    """Return open tickets due within the window (or overdue) and contracts about to lapse.

    A ticket's deadline is the earliest of its running SLA clocks' ``due_at``
    and its active routing item's ``due_at`` (the deadline the router knows).
    """
    horizon = now + dt.timedelta(minutes=window_minutes)
    due: dict[int, tuple[dt.datetime, str]] = {}
    for ticket_id, due_at, state in session.execute(
            select(RoutingItem.ticket_id, RoutingItem.due_at, RoutingItem.state)
            .where(RoutingItem.state.in_(ACTIVE_STATES), RoutingItem.due_at.is_not(None),
                   RoutingItem.due_at <= horizon, RoutingItem.ticket_id.is_not(None))
            .order_by(RoutingItem.due_at).limit(limit)):
        due.setdefault(ticket_id, (due_at, f"routing ({state})"))
    for ticket_id, due_at, kind in _sla_deadlines(session, horizon, limit):
        if ticket_id not in due or due_at < due[ticket_id][0]:
            due[ticket_id] = (due_at, kind.replace("_", " "))
    tickets = []
    ids = sorted(due, key=lambda t: due[t][0])[:limit]
    rows = {t.id: (t, name) for t, name in session.execute(
        select(Ticket, User.name).outerjoin(User, User.id == Ticket.assignee_id)
        .where(Ticket.id.in_(ids), Ticket.status.in_(OPEN_STATUSES)))} if ids else {}
    for ticket_id in ids:
        if ticket_id not in rows:
            continue
        ticket, agent_name = rows[ticket_id]
        due_at, target = due[ticket_id]
        seconds = int((due_at - now).total_seconds())
        tickets.append({"ticket_id": ticket.id, "number": ticket.number,
                        "subject": ticket.subject, "priority": ticket.priority,
                        "status": ticket.status, "queue_id": ticket.queue_id,
                        "assignee_id": ticket.assignee_id, "assignee": agent_name,
                        "target": target, "due_at": due_at.isoformat(),
                        "seconds_left": seconds, "breached": seconds < 0})
    today = now.date()
    contracts = [{"contract_id": c.id, "customer_id": c.customer_id, "customer": name,
                  "level": c.level, "ends_on": c.ends_on.isoformat(),
                  "days_left": (c.ends_on - today).days}
                 for c, name in session.execute(
                     select(Contract, Customer.name)
                     .join(Customer, Customer.id == Contract.customer_id)
                     .where(Contract.ends_on >= today,
                            Contract.ends_on <= today + dt.timedelta(days=lapse_days))
                     .order_by(Contract.ends_on).limit(limit))]
    return {"tickets": tickets, "contracts": contracts}


def _sla_deadlines(session: Session, horizon: dt.datetime, limit: int
                   ) -> list[tuple[int, dt.datetime, str]]:
    """Return (ticket, due, target kind) of running SLA clocks due by ``horizon``, if any."""
    try:
        from contactcenter.sla.models import ClockState, SlaClock
    except ImportError:
        return []
    return [(t, d, k) for t, d, k in session.execute(
        select(SlaClock.ticket_id, SlaClock.due_at, SlaClock.kind)
        .where(SlaClock.state == ClockState.RUNNING, SlaClock.due_at.is_not(None),
               SlaClock.due_at <= horizon)
        .order_by(SlaClock.due_at).limit(limit))]


def _ticket(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise ActionError("no such ticket")
    return ticket


def reassign(session: Session, ticket_id: int, agent_id: int, actor_id: int,
             now: dt.datetime, policy: RoutingPolicy) -> dict[str, Any]:
    """Give a ticket to another agent, moving its routing item when the agent can take it.

    Call it first in a transaction: a routing refusal rolls the session back.
    """
    from contactcenter.routing.engine import assign_manually, transfer_item
    from contactcenter.tickets.service import assign_ticket

    ticket = _ticket(session, ticket_id)
    agent = session.get(User, agent_id)
    if agent is None or not agent.is_active:
        raise ActionError("no such agent")
    item = session.scalar(select(RoutingItem).where(
        RoutingItem.ticket_id == ticket.id, RoutingItem.state.in_(ACTIVE_STATES))
        .order_by(RoutingItem.id.desc()).limit(1))
    routed = None
    if item is not None and item.agent_id != agent_id:
        # Run first in the transaction, so that a refusal can roll back to a clean state.
        try:
            if item.state in HELD_STATES:
                transfer_item(session, item.id, now, policy, to_agent_id=agent_id,
                              actor_id=actor_id)
            else:
                assign_manually(session, item.id, agent_id, now, policy, actor_id=actor_id)
            routed = "moved"
        except RoutingError as exc:
            session.rollback()
            routed = f"kept in queue: {exc}"
        ticket = _ticket(session, ticket_id)
    if ticket.assignee_id != agent_id:
        assign_ticket(session, ticket, agent_id, actor_id, now)
    return {"ticket_id": ticket.id, "assignee_id": agent_id, "routing": routed}


def raise_priority(session: Session, ticket_id: int, priority: str | None,
                   actor_id: int, now: dt.datetime) -> dict[str, Any]:
    """Set a ticket's priority (one step up when none is given) and rescore its item."""
    from contactcenter.events import record_event
    from contactcenter.tickets.intake import ticket_rooms, ticket_summary

    ticket = _ticket(session, ticket_id)
    if priority is None:
        current = PRIORITY_ORDER.index(Priority(ticket.priority))
        priority = PRIORITY_ORDER[min(current + 1, len(PRIORITY_ORDER) - 1)].value
    if priority not in {p.value for p in Priority}:
        raise ActionError("priority must be low, normal, high or urgent")
    previous = ticket.priority
    ticket.priority = priority
    ticket.last_activity_at = now
    for item in session.scalars(select(RoutingItem).where(
            RoutingItem.ticket_id == ticket.id, RoutingItem.state.in_(ACTIVE_STATES))):
        item.manual_priority = priority
        item.rescore_at = now
    session.flush()
    record_event(session, "ticket.updated",
                 {**ticket_summary(ticket), "changed": {"priority": [previous, priority]},
                  "by": actor_id}, ticket_rooms(ticket))
    return {"ticket_id": ticket.id, "priority": priority, "previous": previous}


def add_note(session: Session, ticket_id: int, actor_id: int, text: Any,
             now: dt.datetime) -> dict[str, Any]:
    """Add an internal note for the agent (never sent to the customer)."""
    from contactcenter.tickets.service import add_reply

    if not isinstance(text, str) or not text.strip() or len(text) > 10_000:
        raise ActionError("a note needs text (at most 10,000 characters)")
    ticket = _ticket(session, ticket_id)
    message = add_reply(session, ticket, actor_id, text.strip(), internal=True, now=now)
    return {"ticket_id": ticket.id, "message_id": message.id}


def failed_intake(session: Session, limit: int = 100) -> list[dict[str, Any]]:
    """Return raw payloads that could not be processed, newest first (no payload bytes)."""
    return [{"id": r.id, "channel": r.channel, "external_id": r.external_id[:200],
             "state": r.state, "error": r.error[:500], "attempts": r.attempts,
             "received_at": r.received_at.isoformat(), "size": len(r.payload or b"")}
            for r in session.scalars(
                select(RawInbound).where(RawInbound.state.in_((RawState.FAILED,
                                                               RawState.QUARANTINED)))
                .order_by(RawInbound.id.desc()).limit(limit))]
