"""The life of an offer: accepted, declined, or withdrawn when its time runs out.

A declined or lapsed item waits again and is routed at once to someone else
(the refusing agent is passed over for the cooldown); an agent who lets
``lapse_limit`` offers in a row lapse is set away, as they are evidently not at
their desk.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.routing.errors import InvalidStateError, OfferNotFoundError
from contactcenter.routing.events import record_item_event
from contactcenter.routing.matching import MatchResult, mark_assigned, match_agent, match_item
from contactcenter.routing.models import (
    ItemState,
    Offer,
    OfferOutcome,
    Presence,
    RoutingItem,
)
from contactcenter.routing.policy import RoutingPolicy
from contactcenter.routing.presence import apply_presence, release_offer
from contactcenter.routing.store import begin_write, lock_agent, lock_item


def _pending(session: Session, offer_id: int, agent_id: int) -> tuple[Offer, RoutingItem]:
    offer = session.get(Offer, offer_id, populate_existing=True)
    if offer is None or offer.agent_id != agent_id:
        raise OfferNotFoundError(f"no offer {offer_id} for agent {agent_id}")
    item = lock_item(session, offer.item_id)
    session.refresh(offer)
    if (item is None or offer.outcome != OfferOutcome.PENDING
            or item.state != ItemState.OFFERED or item.agent_id != agent_id):
        raise InvalidStateError(f"offer {offer_id} is {offer.outcome}, no longer open")
    return offer, item


def accept_offer(session: Session, offer_id: int, agent_id: int, now: dt.datetime,
                 policy: RoutingPolicy) -> RoutingItem:
    """Accept an open offer: the item becomes the agent's (and its ticket theirs)."""
    del policy
    begin_write(session)
    offer, item = _pending(session, offer_id, agent_id)
    if offer.expires_at is not None and now >= offer.expires_at:
        raise InvalidStateError(f"offer {offer_id} expired at {offer.expires_at.isoformat()}")
    state = lock_agent(session, agent_id)
    offer.outcome = OfferOutcome.ACCEPTED
    offer.ended_at = now
    if state is not None:
        state.lapsed_offers = 0
    record_item_event(session, "offer.accepted", item, {"offer_id": offer.id})
    mark_assigned(session, item, agent_id, now, agent_id)
    session.flush()
    return item


def decline_offer(session: Session, offer_id: int, agent_id: int, now: dt.datetime,
                  policy: RoutingPolicy, reason: str = "") -> MatchResult:
    """Decline an open offer: the item is routed to someone else, the agent gets other work."""
    begin_write(session)
    _offer, item = _pending(session, offer_id, agent_id)
    state = lock_agent(session, agent_id)
    release_offer(session, item, OfferOutcome.DECLINED, now, policy, reason or "declined")
    if state is not None:
        state.lapsed_offers = 0
    result = match_item(session, item.id, now, policy)
    return result.merge(match_agent(session, agent_id, now, policy))


def expire_offers(session: Session, now: dt.datetime, policy: RoutingPolicy,
                  limit: int = 500) -> MatchResult:
    """Withdraw offers whose time ran out, set away agents who keep missing them, re-route."""
    begin_write(session)
    items = list(session.scalars(
        select(RoutingItem).where(RoutingItem.state == ItemState.OFFERED,
                                  RoutingItem.offer_expires_at <= now)
        .order_by(RoutingItem.id).limit(limit)
        .with_for_update(skip_locked=True).execution_options(populate_existing=True)))
    agent_ids = sorted({item.agent_id for item in items if item.agent_id is not None})
    states = {agent_id: lock_agent(session, agent_id) for agent_id in agent_ids}
    for item in items:
        agent_id = item.agent_id
        release_offer(session, item, OfferOutcome.EXPIRED, now, policy, "not answered in time")
        state = states.get(agent_id) if agent_id is not None else None
        if state is not None:
            state.lapsed_offers += 1
    result = MatchResult()
    for state in states.values():
        if (state is not None and policy.lapse_limit
                and state.lapsed_offers >= policy.lapse_limit
                and state.presence == Presence.AVAILABLE):
            items.extend(session.get_one(RoutingItem, item_id) for item_id in apply_presence(
                session, state, Presence.AWAY, now, policy,
                f"missed {state.lapsed_offers} offers in a row"))
    for item in items:
        result.merge(match_item(session, item.id, now, policy))
    for agent_id in agent_ids:
        result.merge(match_agent(session, agent_id, now, policy))
    return result


def withdraw_offer(session: Session, item: RoutingItem, now: dt.datetime, reason: str,
                   policy: RoutingPolicy) -> None:
    """Withdraw a locked item's open offer (the agent is locked here, after the item)."""
    if item.state != ItemState.OFFERED or item.agent_id is None:
        return
    lock_agent(session, item.agent_id)
    release_offer(session, item, OfferOutcome.WITHDRAWN, now, policy, reason)

