"""Write what a decision changes: an agent's load, and an offer with its item.

``change_load`` moves one load of a locked agent (with their free kinds);
``make_offer`` writes a whole offer. On PostgreSQL each is one statement
(data-modifying CTEs, see ``vacancy.shift_ctes``); SQLite runs the plain
statements and the ORM flush.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from sqlalchemy import Integer, bindparam, insert, inspect, literal, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from contactcenter.db import UTCDateTime, utcnow
from contactcenter.db_postgres import fetch
from contactcenter.routing.eligibility import AgentSnapshot
from contactcenter.routing.models import AgentState, ItemState, Offer, OfferOutcome, RoutingItem
from contactcenter.routing.policy import RoutingPolicy
from contactcenter.routing.snapshot import _per_transaction
from contactcenter.routing.vacancy import note_flag, shift_ctes, shift_load


def change_load(session: Session, agent_id: int, kind: str, delta: int,
                policy: RoutingPolicy, *, assigned_at: dt.datetime | None = None,
                snapshot_of: AgentState | None = None) -> AgentSnapshot | None:
    """Change an agent's load of a kind and their free kinds (their state row must be locked).

    ``assigned_at`` records the change as the agent's latest assignment in the
    same statement that rewrites their free kinds. Loaded capacity objects are
    not touched: routing reads loads through snapshots, never through them. With
    ``snapshot_of`` (the agent's locked state row) returns their snapshot after
    the change (on PostgreSQL from the same statement).
    """
    agent = shift_load(session, agent_id, kind, delta, policy, assigned_at=assigned_at,
                       snapshot_of=snapshot_of)
    if delta < 0:
        _per_transaction(session, "routing_settled_agents").discard(agent_id)
    return agent


@functools.lru_cache(maxsize=64)
def _offer_statement(exclusive: frozenset[tuple[str, str]]) -> Any:
    """PostgreSQL: a whole offer in one statement (data-modifying CTEs).

    The agent's load rises with their flag and last assignment rewritten
    (``vacancy.shift_ctes``); only then is the offer inserted and the item
    marked offered. Binds the ``shift_ctes`` values and ``offer_item``,
    ``offer_made``, ``offer_expires``, ``offer_count`` and ``offer_stamp``;
    returns the offer's id and the new flag (no row: the agent had no room).
    """
    offers: Any = Offer.__table__
    items: Any = RoutingItem.__table__
    _capacities, flag = shift_ctes(True, exclusive, True)
    made = (insert(offers).from_select(
        ["item_id", "agent_id", "made_at", "expires_at", "outcome", "reason"],
        select(bindparam("offer_item", type_=Integer), flag.c.user_id,
               bindparam("offer_made", type_=UTCDateTime()),
               bindparam("offer_expires", type_=UTCDateTime()),
               literal(OfferOutcome.PENDING.value), literal("")))
            .returning(offers.c.id, offers.c.item_id).cte("made_offer"))
    return (update(items).where(items.c.id == made.c.item_id)
            .values(state=ItemState.OFFERED.value, agent_id=bindparam("shift_agent"),
                    offered_at=bindparam("offer_made"),
                    offer_expires_at=bindparam("offer_expires"),
                    offer_count=bindparam("offer_count"), updated_at=bindparam("offer_stamp"))
            .returning(made.c.id, select(flag.c.free_kinds).scalar_subquery()))


def make_offer(session: Session, item: RoutingItem, agent_id: int, now: dt.datetime,
               expires: dt.datetime, policy: RoutingPolicy) -> int:
    """Offer a locked waiting item to a locked agent: their load, the offer row, the item.

    On PostgreSQL one statement writes them all and the item and agent objects
    are given the written values as committed ones (no flush, no refresh);
    elsewhere ``change_load`` and an ORM flush write them. Returns the offer's
    id; raises ``RuntimeError`` when the agent has no room for the item's kind.
    """
    if session.get_bind().dialect.name != "postgresql":
        change_load(session, agent_id, item.kind, +1, policy, assigned_at=now)
        item.state = ItemState.OFFERED
        item.agent_id = agent_id
        item.offered_at = now
        item.offer_expires_at = expires
        item.offer_count += 1
        offer = Offer(item_id=item.id, agent_id=agent_id, made_at=now, expires_at=expires)
        session.add(offer)
        session.flush()
        return offer.id
    if inspect(item).modified:
        session.flush()  # the item's own pending changes are written first, as before
    values = {"state": ItemState.OFFERED.value, "agent_id": agent_id, "offered_at": now,
              "offer_expires_at": expires, "offer_count": item.offer_count + 1,
              "updated_at": utcnow()}
    params = {"shift_agent": agent_id, "load_kind": item.kind, "load_delta": 1,
              "assigned_at": now, "stamped_at": values["updated_at"],
              "offer_item": item.id, "offer_made": now, "offer_expires": expires,
              "offer_count": values["offer_count"], "offer_stamp": values["updated_at"]}
    rows = fetch(session, _offer_statement(policy.exclusive), params)
    if not rows:
        raise RuntimeError(f"load of agent {agent_id} for {item.kind} cannot change by 1")
    row = rows[0]
    note_flag(session, agent_id, row[1], params)
    for key, value in values.items():
        set_committed_value(item, key, value)
    offer_id: int = row[0]
    return offer_id
