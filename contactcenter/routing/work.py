"""Routing items' lives after arrival: complete, abandon, transfer and manual assignment,
all through the same locks and eligibility rules as automatic matching.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from sqlalchemy import bindparam, exists, inspect, literal, null, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from contactcenter.db import utcnow
from contactcenter.db_postgres import fetch
from contactcenter.routing.eligibility import AgentSnapshot, ineligibility
from contactcenter.routing.errors import InvalidStateError, ItemNotFoundError, NotEligibleError
from contactcenter.routing.events import record_item_event
from contactcenter.routing.matching import (
    MatchResult,
    forget_unplaced,
    give,
    match_agent,
    match_item,
    touch,
)
from contactcenter.routing.models import (
    ACTIVE_STATES,
    HELD_STATES,
    AgentState,
    ItemState,
    Presence,
    RoutingItem,
    RoutingItemSkill,
)
from contactcenter.routing.offering import change_load
from contactcenter.routing.offers import withdraw_offer
from contactcenter.routing.policy import RoutingPolicy
from contactcenter.routing.presence import apply_presence, ensure_agent
from contactcenter.routing.rules import rules_clock
from contactcenter.routing.snapshot import agent_snapshot, queue_of
from contactcenter.routing.store import (
    begin_write,
    item_snapshot,
    lock_agent,
    lock_item,
    lock_item_and_agent,
)
from contactcenter.routing.vacancy import shift_params, shift_select, take_shift_rows
from contactcenter.tickets.models import Ticket


def _lock_held(session: Session, item_id: int) -> tuple[RoutingItem, AgentState | None]:
    if session.get_bind().dialect.name == "postgresql":
        both = lock_item_and_agent(session, item_id)
        if both is not None:
            return both if both[0].state in HELD_STATES else (both[0], None)
    item = lock_item(session, item_id)
    if item is None:
        raise ItemNotFoundError(f"no routing item {item_id}")
    state = (lock_agent(session, item.agent_id)
             if item.state in HELD_STATES and item.agent_id is not None else None)
    return item, state


def _completed_item(flag: Any) -> Any:
    """The CTE that marks the item completed, once the agent's load has dropped."""
    items: Any = RoutingItem.__table__
    return (update(items)
            .where(items.c.id == bindparam("done_item"), exists(select(flag.c.user_id)))
            .values(state=literal(ItemState.COMPLETED.value), completed_at=bindparam("done_at"),
                    handle_seconds=bindparam("done_handle"), offer_expires_at=null(),
                    updated_at=bindparam("done_stamp"))
            .returning(items.c.id).cte("completed_item"))


@functools.lru_cache(maxsize=64)
def _completion_statement(exclusive: frozenset[tuple[str, str]]) -> Any:
    """PostgreSQL: lower the agent's load, rewrite their flag, complete the item and read
    the agent's new snapshot, in one statement (``vacancy.shift_select``)."""
    return shift_select(False, exclusive, False, True, along=_completed_item)


def _complete_held(session: Session, item: RoutingItem, handle: int, now: dt.datetime,
                   policy: RoutingPolicy, snapshot_of: AgentState | None
                   ) -> AgentSnapshot | None:
    """Complete an assigned item and lower its agent's load (both locked) in one statement.

    The item object is given the written values as committed ones.
    """
    assert item.agent_id is not None
    params = shift_params(item.agent_id, item.kind, -1)
    values = {"state": ItemState.COMPLETED.value, "completed_at": now,
              "handle_seconds": handle, "offer_expires_at": None, "updated_at": utcnow()}
    params.update(done_item=item.id, done_at=now, done_handle=handle,
                  done_stamp=values["updated_at"])
    rows = fetch(session, _completion_statement(policy.exclusive), params)
    agent = take_shift_rows(session, rows, params, snapshot_of)
    for key, value in values.items():
        set_committed_value(item, key, value)
    return agent


def complete_item(session: Session, item_id: int, now: dt.datetime, policy: RoutingPolicy,
                  *, wrap_up: bool = True) -> MatchResult:
    """Finish an item (answered ticket, ended call or chat); the agent may wrap up."""
    begin_write(session)
    item, state = _lock_held(session, item_id)
    if item.state not in ACTIVE_STATES:
        return MatchResult()
    if item.state == ItemState.OFFERED:
        offered_to = item.agent_id
        withdraw_offer(session, item, now, "completed", policy)
        item.state = ItemState.COMPLETED
        item.completed_at = now
        session.flush()
        record_item_event(session, "item.completed", item, agents=[offered_to])
        return (match_agent(session, offered_to, now, policy) if offered_to is not None
                else MatchResult())
    agent = None
    written = False
    if item.state == ItemState.ASSIGNED and item.agent_id is not None:
        # The agent's snapshot after the change comes with it: matching them next
        # needs no read of its own.
        snapshot_of = state if state is not None and state.user_id == item.agent_id else None
        handle = max(0, int((now - (item.answered_at or now)).total_seconds()))
        if session.get_bind().dialect.name == "postgresql" and not inspect(item).modified:
            agent = _complete_held(session, item, handle, now, policy, snapshot_of)
            written = True
        else:
            agent = change_load(session, item.agent_id, item.kind, -1, policy,
                                snapshot_of=snapshot_of)
            item.handle_seconds = handle
    if not written:
        item.state = ItemState.COMPLETED
        item.completed_at = now
        item.offer_expires_at = None
        session.flush()
    record_item_event(session, "item.completed", item)
    if state is None:
        return MatchResult()
    seconds = int(policy.wrap_up.get(item.kind, 0))
    withdrawn: list[int] = []
    if wrap_up and seconds > 0 and state.presence == Presence.AVAILABLE:
        # Wrap-up withdraws the agent's open offers: route those items again at once.
        withdrawn = apply_presence(session, state, Presence.WRAP_UP, now, policy, "wrap-up",
                                   wrap_up_until=now + dt.timedelta(seconds=seconds))
    touch(session, agents=[state.user_id])
    result = MatchResult()
    for withdrawn_id in withdrawn:
        result.merge(match_item(session, withdrawn_id, now, policy))
    if withdrawn or state.presence != Presence.AVAILABLE:
        agent = None  # presence or loads changed since the snapshot
    return result.merge(match_agent(session, state.user_id, now, policy, agent=agent))


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
    withdraw_offer(session, item, now, "abandoned", policy)
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
        withdraw_offer(session, item, now, "transferred", policy)
    if from_agent is not None:
        change_load(session, from_agent, item.kind, -1, policy)
        item.state = ItemState.WAITING
        item.agent_id = None
    forget_unplaced(session, item.id)
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
        withdraw_offer(session, item, now, "assigned by hand", policy)
    target = states[agent_id]
    assert target is not None
    _check(session, item, target, policy, now)
    result = MatchResult([give(session, item, target, policy, now, direct=True,
                               actor_id=actor_id)])
    if previous is not None and previous != agent_id:
        result.merge(match_agent(session, previous, now, policy))
    return result
