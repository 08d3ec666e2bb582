"""Agents' routing state: presence, wrap-up, socket grace, capacity and teams.

Only ``available`` agents are offered work. Leaving ``available`` withdraws the
agent's pending offers (the items are routed again); coming back matches them
with waiting work. Wrap-up ends by itself at ``wrap_up_until``; an agent whose
desktop socket has been gone longer than the grace goes offline.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contactcenter.accounts.models import User
from contactcenter.routing.errors import AgentNotFoundError, InvalidStateError
from contactcenter.routing.events import record_item_event, record_presence_event
from contactcenter.routing.matching import (
    MatchResult,
    match_agent,
    match_item,
    touch,
)
from contactcenter.routing.models import (
    AgentCapacity,
    AgentState,
    ItemKind,
    ItemState,
    Offer,
    OfferOutcome,
    Presence,
    RoutingItem,
    Team,
)
from contactcenter.routing.offering import change_load
from contactcenter.routing.policy import RoutingPolicy
from contactcenter.routing.store import begin_write, lock_agent, lock_item
from contactcenter.routing.vacancy import encode_free_kinds, refresh_free_kinds
from contactcenter.tickets.models import QueueMember


def ensure_agent(session: Session, user_id: int, now: dt.datetime, policy: RoutingPolicy
                 ) -> AgentState:
    """Return the agent's routing state, creating it (offline, default capacities) if new."""
    state = session.get(AgentState, user_id)
    if state is not None:
        return state
    if session.get(User, user_id) is None:
        raise AgentNotFoundError(f"no user {user_id}")
    try:
        with session.begin_nested():
            state = AgentState(user_id=user_id, presence=Presence.OFFLINE, presence_since=now,
                               updated_at=now, free_kinds=encode_free_kinds(
                                   kind.value for kind in ItemKind
                                   if policy.capacity_for(kind) > 0))
            session.add(state)
            session.flush()
            session.add_all([AgentCapacity(user_id=user_id, kind=kind.value,
                                           maximum=policy.capacity_for(kind), load=0)
                             for kind in ItemKind])
            session.flush()
    except IntegrityError:
        # Another transaction created it first.
        state = session.get(AgentState, user_id)
        if state is None:
            raise
    return state


def release_offer(session: Session, item: RoutingItem, outcome: OfferOutcome,
                  now: dt.datetime, policy: RoutingPolicy, reason: str = "") -> int | None:
    """End an item's pending offer (agent locked): the item waits again, the load drops."""
    agent_id = item.agent_id
    offer = session.scalars(select(Offer).where(Offer.item_id == item.id,
                                                Offer.outcome == OfferOutcome.PENDING)).first()
    if offer is not None:
        offer.outcome = outcome
        offer.ended_at = now
        offer.reason = reason[:200]
    if agent_id is not None:
        change_load(session, agent_id, item.kind, -1, policy)
    item.state = ItemState.WAITING
    item.agent_id = None
    item.offered_at = None
    item.offer_expires_at = None
    session.flush()
    record_item_event(session, f"offer.{outcome.value}", item,
                      {"offer_id": offer.id if offer else None, "reason": reason},
                      agents=[agent_id])
    touch(session, items=[item.id])
    return agent_id


def queue_ids_of(session: Session, agent_id: int) -> list[int]:
    """Return the queues an agent serves."""
    return list(session.scalars(select(QueueMember.queue_id)
                                .where(QueueMember.user_id == agent_id)))


def apply_presence(session: Session, state: AgentState, presence: Presence, now: dt.datetime,
                   policy: RoutingPolicy, reason: str = "",
                   wrap_up_until: dt.datetime | None = None) -> list[int]:
    """Change a locked agent's presence; return the items whose offers were withdrawn."""
    previous = state.presence
    withdrawn: list[int] = []
    if presence != Presence.AVAILABLE:
        offered = session.scalars(select(RoutingItem.id).where(
            RoutingItem.agent_id == state.user_id, RoutingItem.state == ItemState.OFFERED
        ).order_by(RoutingItem.id)).all()
        for item_id in offered:
            # The agent is locked: items only with SKIP LOCKED (one being accepted is skipped).
            item = lock_item(session, item_id, skip_locked=True)
            if item is None or item.state != ItemState.OFFERED or item.agent_id != state.user_id:
                continue
            release_offer(session, item, OfferOutcome.WITHDRAWN, now, policy,
                          f"agent {presence.value}")
            withdrawn.append(item.id)
    if presence == Presence.AVAILABLE:
        state.lapsed_offers = 0
    state.wrap_up_until = wrap_up_until if presence == Presence.WRAP_UP else None
    if previous == presence and not reason:
        session.flush()
        return withdrawn
    state.presence = presence
    state.presence_reason = reason[:200]
    state.presence_since = now
    session.flush()
    record_presence_event(session, state, previous, queue_ids_of(session, state.user_id))
    touch(session, agents=[state.user_id])
    return withdrawn


def set_presence(session: Session, agent_id: int, presence: str, now: dt.datetime,
                 policy: RoutingPolicy, reason: str = "",
                 wrap_up_until: dt.datetime | None = None) -> MatchResult:
    """Set an agent's presence; an available agent is matched at once with waiting work."""
    begin_write(session)
    wanted = Presence(presence)
    ensure_agent(session, agent_id, now, policy)
    if wanted != Presence.AVAILABLE:
        # Items before the agent: lock the offered items first, waiting if need be.
        for item_id in session.scalars(select(RoutingItem.id).where(
                RoutingItem.agent_id == agent_id, RoutingItem.state == ItemState.OFFERED
        ).order_by(RoutingItem.id)).all():
            lock_item(session, item_id)
    state = lock_agent(session, agent_id)
    assert state is not None
    withdrawn = apply_presence(session, state, wanted, now, policy, reason, wrap_up_until)
    result = MatchResult()
    for item_id in withdrawn:
        result.merge(match_item(session, item_id, now, policy))
    if wanted == Presence.AVAILABLE:
        result.merge(match_agent(session, agent_id, now, policy))
    return result


def mark_disconnected(session: Session, agent_id: int, now: dt.datetime) -> None:
    """Note that the agent's desktop socket dropped (offline after the grace period)."""
    state = session.get(AgentState, agent_id)
    if state is not None and state.disconnected_at is None:
        state.disconnected_at = now
        session.flush()


def mark_connected(session: Session, agent_id: int, now: dt.datetime) -> None:
    """Note that the agent's desktop socket is back (cancels the grace countdown)."""
    del now
    state = session.get(AgentState, agent_id)
    if state is not None and state.disconnected_at is not None:
        state.disconnected_at = None
        session.flush()


def disconnected_ids(session: Session, now: dt.datetime, policy: RoutingPolicy,
                     limit: int = 500) -> list[int]:
    """Return agents whose socket has been gone longer than the grace (not yet offline)."""
    return list(session.scalars(select(AgentState.user_id).where(
        AgentState.disconnected_at <= now - policy.presence_grace,
        AgentState.presence != Presence.OFFLINE).order_by(AgentState.user_id).limit(limit)))


def wrap_up_over_ids(session: Session, now: dt.datetime, limit: int = 500) -> list[int]:
    """Return agents in wrap-up whose time is over."""
    return list(session.scalars(select(AgentState.user_id).where(
        AgentState.presence == Presence.WRAP_UP, AgentState.wrap_up_until <= now
    ).order_by(AgentState.user_id).limit(limit)))


def expire_disconnected(session: Session, now: dt.datetime, policy: RoutingPolicy,
                        limit: int = 500) -> MatchResult:
    """Set offline the agents whose socket has been gone longer than the grace.

    All in this transaction; ``sweep.run_sweep`` commits after each agent instead.
    """
    result = MatchResult()
    for agent_id in disconnected_ids(session, now, policy, limit):
        result.merge(set_presence(session, agent_id, Presence.OFFLINE, now, policy,
                                  "desktop disconnected"))
    return result


def end_wrap_ups(session: Session, now: dt.datetime, policy: RoutingPolicy,
                 limit: int = 500) -> MatchResult:
    """Make agents whose wrap-up time is over available again (and match them).

    All in this transaction; ``sweep.run_sweep`` commits after each agent instead.
    """
    result = MatchResult()
    for agent_id in wrap_up_over_ids(session, now, limit):
        result.merge(set_presence(session, agent_id, Presence.AVAILABLE, now, policy,
                                  "wrap-up over"))
    return result


def set_capacity(session: Session, agent_id: int, kind: str, maximum: int, now: dt.datetime,
                 policy: RoutingPolicy) -> MatchResult:
    """Change how many items of a kind an agent may hold.

    Raises ``InvalidStateError`` when the agent holds more than the new maximum:
    lower it once they have finished some (capacity is never exceeded).
    """
    begin_write(session)
    ensure_agent(session, agent_id, now, policy)
    state = lock_agent(session, agent_id)
    assert state is not None
    held = session.scalar(select(AgentCapacity.load).where(
        AgentCapacity.user_id == agent_id, AgentCapacity.kind == ItemKind(kind).value)) or 0
    if held > maximum:
        raise InvalidStateError(f"agent {agent_id} holds {held} {kind} items, more than "
                                f"{maximum}")
    session.execute(update(AgentCapacity).where(
        AgentCapacity.user_id == agent_id, AgentCapacity.kind == ItemKind(kind).value
    ).values(maximum=max(0, maximum)).execution_options(synchronize_session=False))
    refresh_free_kinds(session, agent_id, policy)
    touch(session, agents=[agent_id])
    return match_agent(session, agent_id, now, policy)


def ensure_team(session: Session, slug: str, name: str | None = None) -> Team:
    """Return the team with this slug, creating it if new."""
    team = session.scalar(select(Team).where(Team.slug == slug))
    if team is None:
        team = Team(slug=slug, name=name or slug)
        session.add(team)
        session.flush()
    return team


def set_team(session: Session, agent_id: int, team_slug: str | None, now: dt.datetime,
             policy: RoutingPolicy) -> MatchResult:
    """Put an agent in a team (or none) and match them: rules steps may target teams."""
    begin_write(session)
    ensure_agent(session, agent_id, now, policy)
    team_id = ensure_team(session, team_slug).id if team_slug else None
    state = lock_agent(session, agent_id)
    assert state is not None
    state.team_id = team_id
    session.flush()
    touch(session, agents=[agent_id])
    return match_agent(session, agent_id, now, policy)
