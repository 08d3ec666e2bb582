"""Routing items' lives: enqueue (with priority and sticky agent), complete, abandon,
transfer and manual assignment, all through the same locks and eligibility rules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.customers.models import Contract, Customer
from contactcenter.routing.eligibility import ineligibility
from contactcenter.routing.errors import InvalidStateError, ItemNotFoundError, NotEligibleError
from contactcenter.routing.events import record_item_event
from contactcenter.routing.matching import (
    MatchResult,
    change_load,
    give,
    match_agent,
    match_item,
    touch,
)
from contactcenter.routing.models import (
    ACTIVE_STATES,
    HELD_STATES,
    AgentState,
    ItemKind,
    ItemState,
    Presence,
    RoutingItem,
    RoutingItemSkill,
)
from contactcenter.routing.offers import withdraw_offer
from contactcenter.routing.presence import apply_presence, ensure_agent
from contactcenter.routing.priority import PriorityInputs, priority_score
from contactcenter.routing.rules import RoutingPolicy, rules_clock
from contactcenter.routing.store import (
    agent_snapshot,
    begin_write,
    item_snapshot,
    lock_agent,
    lock_item,
    queue_of,
)
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


def _customer_value(session: Session, customer_id: int | None, today: dt.date
                    ) -> tuple[str | None, object, str | None, int | None]:
    if customer_id is None:
        return None, None, None, None
    customer = session.execute(select(Customer.value_tier, Customer.lifetime_value)
                               .where(Customer.id == customer_id)).first()
    contract = session.execute(
        select(Contract.level, Contract.response_minutes)
        .where(Contract.customer_id == customer_id, Contract.starts_on <= today,
               Contract.ends_on >= today)
        .order_by(Contract.response_minutes.asc().nulls_last(), Contract.id).limit(1)).first()
    return (customer[0] if customer else None, customer[1] if customer else None,
            contract[0] if contract else None, contract[1] if contract else None)


def _present_member(session: Session, agent_id: int, queue_id: int) -> bool:
    return session.scalar(
        select(AgentState.user_id).join(QueueMember, QueueMember.user_id == AgentState.user_id)
        .where(AgentState.user_id == agent_id, QueueMember.queue_id == queue_id,
               AgentState.presence.in_(STICKY_PRESENCES))) is not None


def sticky_agent(session: Session, customer_id: int | None, queue_id: int, now: dt.datetime,
                 policy: RoutingPolicy) -> int | None:
    """Return the agent who last answered the customer within the window, if at work here."""
    if customer_id is None or policy.sticky_window <= dt.timedelta(0):
        return None
    agent_id = session.scalar(
        select(RoutingItem.agent_id)
        .where(RoutingItem.customer_id == customer_id,
               RoutingItem.answered_at >= now - policy.sticky_window,
               RoutingItem.agent_id.is_not(None))
        .order_by(RoutingItem.answered_at.desc()).limit(1))
    if agent_id is None or not _present_member(session, agent_id, queue_id):
        return None
    return agent_id


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
    preferred = (preferred_agent_id if preferred_agent_id is not None
                 and _present_member(session, preferred_agent_id, queue_id)
                 else sticky_agent(session, customer_id, queue_id, now, policy))
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
    record_item_event(session, "item.queued", item)
    touch(session, items=[item.id])
    return Enqueued(item, match_item(session, item.id, now, policy) if match else MatchResult())


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


def _lock_held(session: Session, item_id: int) -> tuple[RoutingItem, AgentState | None]:
    item = lock_item(session, item_id)
    if item is None:
        raise ItemNotFoundError(f"no routing item {item_id}")
    state = (lock_agent(session, item.agent_id)
             if item.state in HELD_STATES and item.agent_id is not None else None)
    return item, state


def complete_item(session: Session, item_id: int, now: dt.datetime, policy: RoutingPolicy,
                  *, wrap_up: bool = True) -> MatchResult:
    """Finish an item (answered ticket, ended call or chat); the agent may wrap up."""
    begin_write(session)
    item, state = _lock_held(session, item_id)
    if item.state not in ACTIVE_STATES:
        return MatchResult()
    if item.state == ItemState.OFFERED:
        offered_to = item.agent_id
        withdraw_offer(session, item, now, "completed")
        item.state = ItemState.COMPLETED
        item.completed_at = now
        session.flush()
        record_item_event(session, "item.completed", item, agents=[offered_to])
        return (match_agent(session, offered_to, now, policy) if offered_to is not None
                else MatchResult())
    if item.state == ItemState.ASSIGNED and item.agent_id is not None:
        change_load(session, item.agent_id, item.kind, -1)
        item.handle_seconds = max(0, int((now - (item.answered_at or now)).total_seconds()))
    item.state = ItemState.COMPLETED
    item.completed_at = now
    item.offer_expires_at = None
    session.flush()
    record_item_event(session, "item.completed", item)
    if state is None:
        return MatchResult()
    seconds = int(policy.wrap_up.get(item.kind, 0))
    if wrap_up and seconds > 0 and state.presence == Presence.AVAILABLE:
        apply_presence(session, state, Presence.WRAP_UP, now, "wrap-up",
                       wrap_up_until=now + dt.timedelta(seconds=seconds))
    touch(session, agents=[state.user_id])
    return match_agent(session, state.user_id, now, policy)


def complete_for_ticket(session: Session, ticket_id: int, now: dt.datetime,
                        policy: RoutingPolicy) -> MatchResult:
    """Complete the active routing items of a ticket (answered, solved or closed)."""
    result = MatchResult()
    for item_id in session.scalars(select(RoutingItem.id).where(
            RoutingItem.ticket_id == ticket_id, RoutingItem.state.in_(ACTIVE_STATES)
    ).order_by(RoutingItem.id)).all():
        result.merge(complete_item(session, item_id, now, policy, wrap_up=False))
    return result


def abandon_item(session: Session, item_id: int, now: dt.datetime, policy: RoutingPolicy
                 ) -> MatchResult:
    """The customer gave up (hung up, left the chat); an item being handled just completes."""
    begin_write(session)
    item, _state = _lock_held(session, item_id)
    if item.state == ItemState.ASSIGNED:
        return complete_item(session, item_id, now, policy)
    if item.state not in ACTIVE_STATES:
        return MatchResult()
    agent_id = item.agent_id if item.state == ItemState.OFFERED else None
    withdraw_offer(session, item, now, "abandoned")
    item.state = ItemState.ABANDONED
    item.abandoned_at = now
    session.flush()
    record_item_event(session, "item.abandoned", item, agents=[agent_id])
    if agent_id is None:
        return MatchResult()
    return match_agent(session, agent_id, now, policy)


def _check(session: Session, item: RoutingItem, state: AgentState, policy: RoutingPolicy,
           now: dt.datetime) -> None:
    reasons = ineligibility(agent_snapshot(session, state),
                            item_snapshot(session, item, policy, now, with_refusals=False),
                            policy, now, check_steps=False)
    if reasons:
        raise NotEligibleError(reasons)


def _move_queue(session: Session, item: RoutingItem, queue_id: int, policy: RoutingPolicy,
                now: dt.datetime) -> None:
    queue = queue_of(session, queue_id)
    item.queue_id = queue_id
    item.language = queue.language
    item.skills = [RoutingItemSkill(skill=queue.skill, min_level=1)] if queue.skill else []
    item.preferred_agent_id = None
    item.rules_since = rules_clock(policy.rules_for(queue.slug), now, False)
    if item.ticket_id is not None:
        ticket = session.get(Ticket, item.ticket_id)
        if ticket is not None:
            ticket.queue_id = queue_id


def transfer_item(session: Session, item_id: int, now: dt.datetime, policy: RoutingPolicy, *,
                  to_agent_id: int | None = None, to_queue_id: int | None = None,
                  actor_id: int | None = None) -> MatchResult:
    """Hand an item to another agent (assigned at once, if eligible) or another queue.

    Raises ``NotEligibleError`` when the agent may not take it; roll back then.
    """
    if to_agent_id is None and to_queue_id is None:
        raise ValueError("transfer to an agent or a queue")
    begin_write(session)
    item = lock_item(session, item_id)
    if item is None:
        raise ItemNotFoundError(f"no routing item {item_id}")
    if item.state not in ACTIVE_STATES:
        raise InvalidStateError(f"item {item_id} is {item.state}")
    from_agent = item.agent_id if item.state == ItemState.ASSIGNED else None
    offered_to = item.agent_id if item.state == ItemState.OFFERED else None
    from_queue = item.queue_id
    if to_agent_id is not None:
        ensure_agent(session, to_agent_id, now, policy)
    # Agents in ascending id order, after the item.
    states = {agent_id: lock_agent(session, agent_id) for agent_id in
              sorted({a for a in (from_agent, offered_to, to_agent_id) if a is not None})}
    if item.state == ItemState.OFFERED:
        withdraw_offer(session, item, now, "transferred")
    if from_agent is not None:
        change_load(session, from_agent, item.kind, -1)
        item.state = ItemState.WAITING
        item.agent_id = None
    if to_queue_id is not None and to_queue_id != item.queue_id:
        _move_queue(session, item, to_queue_id, policy, now)
    session.flush()
    result = MatchResult()
    if to_agent_id is not None:
        target = states[to_agent_id]
        assert target is not None
        _check(session, item, target, policy, now)
        result.decisions.append(give(session, item, target, policy, now, direct=True,
                                     actor_id=actor_id))
    elif item.ticket_id is not None:
        from contactcenter.tickets.service import assign_ticket

        ticket = session.get(Ticket, item.ticket_id)
        if ticket is not None and ticket.assignee_id is not None:
            assign_ticket(session, ticket, None, actor_id)
    record_item_event(session, "item.transferred", item,
                      {"from_agent_id": from_agent, "to_agent_id": to_agent_id,
                       "from_queue_id": from_queue, "by": actor_id}, agents=[from_agent])
    touch(session, items=[item.id], agents=[a for a in (from_agent,) if a is not None])
    if item.state == ItemState.WAITING:
        record_item_event(session, "item.queued", item)
        result.merge(match_item(session, item.id, now, policy))
    for freed in sorted({a for a in (from_agent, offered_to) if a is not None}):
        result.merge(match_agent(session, freed, now, policy))
    return result


def assign_manually(session: Session, item_id: int, agent_id: int, now: dt.datetime,
                    policy: RoutingPolicy, *, actor_id: int | None = None) -> MatchResult:
    """Give a waiting (or offered) item to a chosen agent, if the rules allow them to take it.

    The queue's waiting steps do not apply (the choice is explicit); presence,
    queue, language, skills and capacity do. Raises ``NotEligibleError``.
    """
    begin_write(session)
    ensure_agent(session, agent_id, now, policy)
    item = lock_item(session, item_id)
    if item is None:
        raise ItemNotFoundError(f"no routing item {item_id}")
    if item.state not in (ItemState.WAITING, ItemState.OFFERED):
        raise InvalidStateError(f"item {item_id} is {item.state}; transfer it instead")
    previous = item.agent_id if item.state == ItemState.OFFERED else None
    states = {a: lock_agent(session, a)
              for a in sorted({a for a in (previous, agent_id) if a is not None})}
    if item.state == ItemState.OFFERED:
        withdraw_offer(session, item, now, "assigned by hand")
    target = states[agent_id]
    assert target is not None
    _check(session, item, target, policy, now)
    result = MatchResult([give(session, item, target, policy, now, direct=True,
                               actor_id=actor_id)])
    if previous is not None and previous != agent_id:
        result.merge(match_agent(session, previous, now, policy))
    return result
