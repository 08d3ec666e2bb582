"""Put work in front of the router: score it, find its sticky agent, queue it, match it.

``enqueue_item`` is for any kind of work (a live call or chat from its channel,
or a ticket); ``enqueue_ticket`` is what intake and the ticket lifecycle call for
a ticket waiting for an answer: it creates the ticket's routing item, or
refreshes the one it has.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, true
from sqlalchemy.orm import Session

from contactcenter.customers.models import Contract, Customer
from contactcenter.routing.events import record_item_event
from contactcenter.routing.matching import MatchResult, match_item, touch
from contactcenter.routing.models import (
    ACTIVE_STATES,
    AgentState,
    ItemKind,
    ItemState,
    Presence,
    RoutingItem,
    RoutingItemSkill,
)
from contactcenter.routing.policy import RoutingPolicy
from contactcenter.routing.priority import PriorityInputs, priority_score
from contactcenter.routing.rules import preferred_lead, rules_clock
from contactcenter.routing.snapshot import queue_of
from contactcenter.routing.store import begin_write, lock_item, mark_created
from contactcenter.routing.vacancy import has_room_for
from contactcenter.routing.work import transfer_item
from contactcenter.tickets.models import QueueMember, Ticket, TicketStatus

STICKY_PRESENCES = (Presence.AVAILABLE, Presence.BUSY, Presence.WRAP_UP)


@dataclass
class Enqueued:
    """A routing item just queued (or updated) and what matching it decided."""

    item: RoutingItem
    match: MatchResult = field(default_factory=MatchResult)


def rescore(item: RoutingItem, policy: RoutingPolicy, now: dt.datetime) -> None:
    """Recompute an item's stored priority, explanation and next rescoring time."""
    scored = priority_score(PriorityInputs(
        kind=item.kind, channel=item.channel, enqueued_at=item.enqueued_at,
        value_tier=item.value_tier, lifetime_value=item.lifetime_value,
        contract_level=item.contract_level, response_minutes=item.response_minutes,
        due_at=item.due_at, manual_priority=item.manual_priority), policy.weights, now)
    item.priority = scored.score
    item.priority_reason = scored.reason
    item.rescore_at = scored.changes_at


@functools.lru_cache(maxsize=1)
def _customer_value_statement() -> Any:
    """The customer's value and best active contract: built once, values bound.

    Binds ``value_customer`` and ``value_today``.
    """
    customer_id: Any = bindparam("value_customer")
    today: Any = bindparam("value_today")
    # The customer's own contracts and their organisation's count alike.
    organisation = select(Customer.organisation_id).where(
        Customer.id == customer_id).scalar_subquery()
    contract = (select(Contract.level, Contract.response_minutes)
                .where(or_(Contract.customer_id == customer_id,
                           and_(Contract.organisation_id.is_not(None),
                                Contract.organisation_id == organisation)),
                       Contract.starts_on <= today, Contract.ends_on >= today)
                .order_by(Contract.response_minutes.asc().nulls_last(), Contract.id).limit(1)
                .subquery())
    found = (select(Customer.value_tier, Customer.lifetime_value, contract.c.level,
                    contract.c.response_minutes)
             .select_from(Customer).outerjoin(contract, true())
             .where(Customer.id == customer_id))
    return found, select(contract.c.level, contract.c.response_minutes)


def _customer_value(session: Session, customer_id: int | None, today: dt.date
                    ) -> tuple[str | None, object, str | None, int | None]:
    """The customer's tier and lifetime value and their best active contract, in one query."""
    if customer_id is None:
        return None, None, None, None
    found, contract_only = _customer_value_statement()
    params = {"value_customer": customer_id, "value_today": today}
    row = session.execute(found, params).first()
    if row is None:
        contract_row = session.execute(contract_only, params).first()
        return (None, None, contract_row[0] if contract_row else None,
                contract_row[1] if contract_row else None)
    return row[0], row[1], row[2], row[3]


def _present_member_clause(agent_id: Any, queue_id: int) -> Any:
    """SQL: the agent is a member of the queue and present (available, busy or wrapping up)."""
    return (select(AgentState.user_id)
            .join(QueueMember, QueueMember.user_id == AgentState.user_id)
            .where(AgentState.user_id == agent_id, QueueMember.queue_id == queue_id,
                   AgentState.presence.in_(STICKY_PRESENCES)).exists())


def _free_now_clause(agent_id: Any, queue_id: int, kind: str) -> Any:
    """SQL: an agent of the queue is available with room for this kind of work now.

    Room as matching sees it (``free_kinds``): capacity left *and* no excluding
    kind held, so an agent on a chat is not "free" for a call.
    """
    return (select(AgentState.user_id)
            .join(QueueMember, QueueMember.user_id == AgentState.user_id)
            .where(AgentState.user_id == agent_id, QueueMember.queue_id == queue_id,
                   has_room_for(kind)).exists())


def _present_member(session: Session, agent_id: int, queue_id: int) -> bool:
    return bool(session.scalar(select(_present_member_clause(agent_id, queue_id))))


def sticky_agent(session: Session, customer_id: int | None, queue_id: int, now: dt.datetime,
                 policy: RoutingPolicy, kind: str | None = None) -> int | None:
    """Return the agent who last answered the customer within the window, when available.

    With ``kind``, the agent must be free for that kind of work now: a returning
    caller is not kept waiting for an agent busy with someone else (the issue's
    "sticky routing to the agent who last helped the customer, when available").
    One round trip: the last agent and whether they qualify, read together.
    """
    if customer_id is None or policy.sticky_window <= dt.timedelta(0):
        return None
    last = (select(RoutingItem.agent_id)
            .where(RoutingItem.customer_id == customer_id,
                   RoutingItem.answered_at >= now - policy.sticky_window,
                   RoutingItem.agent_id.is_not(None))
            .order_by(RoutingItem.answered_at.desc()).limit(1).subquery())
    # Free now implies present and a member.
    qualifies = (_free_now_clause(last.c.agent_id, queue_id, kind) if kind is not None
                 else _present_member_clause(last.c.agent_id, queue_id))
    row = session.execute(select(last.c.agent_id, qualifies)).first()
    if row is None or row[0] is None or not row[1]:
        return None
    return int(row[0])


def enqueue_item(session: Session, *, kind: str, channel: str, queue_id: int, now: dt.datetime,
                 policy: RoutingPolicy, customer_id: int | None = None,
                 ticket_id: int | None = None, skills: Mapping[str, int] | None = None,
                 language: str | None = None, manual_priority: str = "normal",
                 due_at: dt.datetime | None = None, external_ref: str | None = None,
                 preferred_agent_id: int | None = None, match: bool = True) -> Enqueued:
    """Queue a piece of work (a live call or chat, or a ticket) and try to place it at once.

    Skills and language default to the queue's; the customer's tier, lifetime
    value and active contract are read now and kept on the item for rescoring.
    """
    begin_write(session)
    queue = queue_of(session, queue_id)
    rules = policy.rules_for(queue.slug)
    tier, ltv, level, minutes = _customer_value(session, customer_id, now.date())
    chosen = (preferred_agent_id if preferred_agent_id is not None
              and _present_member(session, preferred_agent_id, queue_id) else None)
    sticky = (sticky_agent(session, customer_id, queue_id, now, policy,
                           kind=ItemKind(kind).value) if chosen is None else None)
    preferred = chosen if chosen is not None else sticky
    item = RoutingItem(
        kind=ItemKind(kind).value, channel=channel[:16], queue_id=queue_id, ticket_id=ticket_id,
        customer_id=customer_id, external_ref=external_ref,
        language=language if language is not None else queue.language,
        state=ItemState.WAITING, manual_priority=manual_priority, value_tier=tier,
        lifetime_value=ltv, contract_level=level, response_minutes=minutes, due_at=due_at,
        enqueued_at=now, rules_since=rules_clock(rules, now, preferred is not None),
        preferred_agent_id=preferred, created_at=now, updated_at=now)
    required = dict(skills) if skills is not None else ({queue.skill: 1} if queue.skill else {})
    item.skills = [RoutingItemSkill(skill=s, min_level=lvl) for s, lvl in sorted(required.items())]
    rescore(item, policy, now)
    session.add(item)
    session.flush()
    mark_created(session, item.id)
    record_item_event(session, "item.queued", item)
    touch(session, items=[item.id])
    if not match:
        return Enqueued(item)
    result = match_item(session, item.id, now, policy)
    if sticky is not None and item.state == ItemState.WAITING and preferred_lead(rules):
        # The sticky agent was free a moment ago but took other work (or was busy
        # being matched elsewhere): they are no longer "available", so the customer
        # is not held for them; the item goes to the wider steps at once (the
        # agent still ranks first if they free up).
        item.rules_since = rules_clock(rules, now, False)
        session.flush()
        result.merge(match_item(session, item.id, now, policy))
    return Enqueued(item, result)


def enqueue_ticket(session: Session, ticket: Ticket, now: dt.datetime, policy: RoutingPolicy,
                   *, due_at: dt.datetime | None = None, match: bool = True) -> Enqueued | None:
    """Put a ticket waiting for an answer in front of the router (or refresh its item).

    Returns None for a ticket without a queue or not waiting for an answer. A
    ticket already being handled keeps its item; a waiting one is rescored.
    """
    if ticket.queue_id is None or ticket.status not in (TicketStatus.NEW, TicketStatus.OPEN):
        return None
    begin_write(session)
    active_id = session.scalar(select(RoutingItem.id).where(
        RoutingItem.ticket_id == ticket.id, RoutingItem.state.in_(ACTIVE_STATES)
    ).order_by(RoutingItem.id).limit(1))
    if active_id is not None:
        item = lock_item(session, active_id)
        assert item is not None
        item.manual_priority = ticket.priority
        if due_at is not None:
            item.due_at = due_at
        rescore(item, policy, now)
        result = MatchResult()
        if item.state == ItemState.WAITING and item.queue_id != ticket.queue_id:
            result = transfer_item(session, item.id, now, policy, to_queue_id=ticket.queue_id)
        session.flush()
        return Enqueued(item, result)
    return enqueue_item(session, kind=ItemKind.TICKET, channel=ticket.channel,
                        queue_id=ticket.queue_id, now=now, policy=policy,
                        customer_id=ticket.customer_id, ticket_id=ticket.id,
                        manual_priority=ticket.priority, due_at=due_at,
                        preferred_agent_id=ticket.assignee_id, match=match)
