"""The life of an offer: accepted, declined, or withdrawn when its time runs out.

A declined or lapsed item waits again and is routed at once to someone else
(the refusing agent is passed over for the cooldown); an agent who lets
``lapse_limit`` offers in a row lapse is set away, as they are evidently not at
their desk.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from sqlalchemy import bindparam, exists, inspect, literal, null, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from contactcenter.db import UTCDateTime, utcnow
from contactcenter.db_postgres import fetch
from contactcenter.routing.errors import InvalidStateError, OfferNotFoundError
from contactcenter.routing.events import record_item_event
from contactcenter.routing.matching import (
    MatchResult,
    announce_assigned,
    assignment_values,
    mark_assigned,
    match_agent,
    match_item,
)
from contactcenter.routing.models import (
    ItemState,
    Offer,
    OfferOutcome,
    Presence,
    RoutingItem,
)
from contactcenter.routing.policy import RoutingPolicy
from contactcenter.routing.presence import apply_presence, release_offer
from contactcenter.routing.store import begin_write, lock_agent, lock_item, lock_offer


def _pending(session: Session, offer_id: int, agent_id: int) -> tuple[Offer, RoutingItem]:
    offer = session.get(Offer, offer_id, populate_existing=True)
    if offer is None or offer.agent_id != agent_id:
        raise OfferNotFoundError(f"no offer {offer_id} for agent {agent_id}")
    item = lock_item(session, offer.item_id)
    session.refresh(offer)
    _check_open(offer, item, offer_id, agent_id)
    assert item is not None
    return offer, item


def _check_open(offer: Offer, item: RoutingItem | None, offer_id: int, agent_id: int) -> None:
    if (item is None or offer.outcome != OfferOutcome.PENDING
            or item.state != ItemState.OFFERED or item.agent_id != agent_id):
        raise InvalidStateError(f"offer {offer_id} is {offer.outcome}, no longer open")


@functools.lru_cache(maxsize=4)
def _accept_statement(answered: bool) -> Any:
    """PostgreSQL: end the offer as accepted and make the item the agent's, one statement.

    Binds ``accept_offer``, ``accept_item``, ``accept_agent``, ``accept_at``,
    ``accept_stamp`` and, when the item is answered now (``answered``),
    ``accept_wait``. Returns the item's id (no row: the offer was not written).
    """
    offers: Any = Offer.__table__
    items: Any = RoutingItem.__table__
    ended = (update(offers).where(offers.c.id == bindparam("accept_offer"))
             .values(outcome=literal(OfferOutcome.ACCEPTED.value),
                     ended_at=bindparam("accept_at", type_=UTCDateTime()))
             .returning(offers.c.id).cte("accepted_offer"))
    values: dict[str, Any] = {"state": literal(ItemState.ASSIGNED.value),
                              "agent_id": bindparam("accept_agent"), "offer_expires_at": null(),
                              "updated_at": bindparam("accept_stamp", type_=UTCDateTime())}
    if answered:
        values.update(answered_at=bindparam("accept_at", type_=UTCDateTime()),
                      wait_seconds=bindparam("accept_wait"))
    return (update(items).where(items.c.id == bindparam("accept_item"),
                                exists(select(ended.c.id)))
            .values(values).returning(items.c.id))


def _accept_in_one(session: Session, offer: Offer, item: RoutingItem, agent_id: int,
                   now: dt.datetime) -> None:
    """Write an accept on PostgreSQL with one statement; the objects get the values as loaded."""
    if inspect(item).modified or inspect(offer).modified:
        session.flush()
    values = assignment_values(item, agent_id, now)
    values["updated_at"] = utcnow()
    params = {"accept_offer": offer.id, "accept_item": item.id, "accept_agent": agent_id,
              "accept_at": now, "accept_stamp": values["updated_at"],
              "accept_wait": values.get("wait_seconds")}
    if not fetch(session, _accept_statement("answered_at" in values), params):
        raise InvalidStateError(f"offer {offer.id} could not be accepted")
    for key, value in values.items():
        set_committed_value(item, key, value)
    set_committed_value(offer, "outcome", OfferOutcome.ACCEPTED.value)
    set_committed_value(offer, "ended_at", now)


def accept_offer(session: Session, offer_id: int, agent_id: int, now: dt.datetime,
                 policy: RoutingPolicy) -> RoutingItem:
    """Accept an open offer: the item becomes the agent's (and its ticket theirs).

    On PostgreSQL one statement locks the item, the offer and the agent, and one
    more writes the offer and the item.
    """
    del policy
    begin_write(session)
    locked = (lock_offer(session, offer_id)
              if session.get_bind().dialect.name == "postgresql" else None)
    if locked is None:
        offer, item = _pending(session, offer_id, agent_id)
        state = lock_agent(session, agent_id)
    else:
        item, offer, state = locked
        if offer.agent_id != agent_id:
            raise OfferNotFoundError(f"no offer {offer_id} for agent {agent_id}")
        _check_open(offer, item, offer_id, agent_id)
    if offer.expires_at is not None and now >= offer.expires_at:
        raise InvalidStateError(f"offer {offer_id} expired at {offer.expires_at.isoformat()}")
    if state is not None and state.lapsed_offers:
        state.lapsed_offers = 0
    record_item_event(session, "offer.accepted", item, {"offer_id": offer.id})
    if locked is None:
        offer.outcome = OfferOutcome.ACCEPTED
        offer.ended_at = now
        mark_assigned(session, item, agent_id, now, agent_id)
        session.flush()
    else:
        _accept_in_one(session, offer, item, agent_id, now)
        announce_assigned(session, item, agent_id, agent_id)
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

