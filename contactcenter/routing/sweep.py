"""Repair and re-match: the periodic routing pass and the after-commit settle.

``route`` does what time alone changes: offers run out, wrap-ups end, lost
sockets pass their grace, priorities move up an age step or SLA band, and rule
steps widen, so waiting items meet agents they could not have before. It then
matches from the smaller side: the free agents, or the waiting items.

``commit_and_settle`` commits and, on PostgreSQL, matches again what the
transaction touched. Two concurrent transactions (an arrival, and an agent
freeing up) can each miss the other's uncommitted row; whichever settles last
sees both, so no item is left waiting beside a free eligible agent.
"""

from __future__ import annotations

import datetime as dt
import random
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.routing.matching import MatchResult, match_agent, match_item, take_touched
from contactcenter.routing.models import ItemState, RoutingItem
from contactcenter.routing.offers import expire_offers
from contactcenter.routing.presence import end_wrap_ups, expire_disconnected
from contactcenter.routing.rules import RoutingPolicy
from contactcenter.routing.store import begin_write, free_agent_ids
from contactcenter.routing.work import rescore


def rescore_items(session: Session, now: dt.datetime, policy: RoutingPolicy,
                  limit: int = 1000) -> int:
    """Recompute the priority of waiting items whose score has changed by now."""
    begin_write(session)
    items = list(session.scalars(
        select(RoutingItem).where(RoutingItem.state == ItemState.WAITING,
                                  RoutingItem.rescore_at <= now)
        .order_by(RoutingItem.rescore_at, RoutingItem.id).limit(limit)
        .with_for_update(skip_locked=True).execution_options(populate_existing=True)))
    for item in items:
        rescore(item, policy, now)
    session.flush()
    return len(items)


def route(session: Session, now: dt.datetime, policy: RoutingPolicy,
          limit: int | None = None) -> MatchResult:
    """Apply what time changed, then match waiting items with free agents.

    ``limit`` caps how many agents (or items) are matched in this call; call it
    again (after committing) until it returns no decisions.
    """
    begin_write(session)
    result = expire_offers(session, now, policy)
    result.merge(end_wrap_ups(session, now, policy))
    result.merge(expire_disconnected(session, now, policy))
    rescore_items(session, now, policy)
    agents = free_agent_ids(session, limit)
    if not agents:
        return result
    waiting = session.execute(
        select(RoutingItem.id, RoutingItem.priority, RoutingItem.enqueued_at)
        .where(RoutingItem.state == ItemState.WAITING).limit(len(agents) + 1)).all()
    if len(waiting) <= len(agents):
        for item_id, _priority, _at in sorted(waiting, key=lambda r: (-r[1], r[2], r[0])):
            result.merge(match_item(session, item_id, now, policy))
    else:
        for agent_id in agents:
            result.merge(match_agent(session, agent_id, now, policy))
    return result


def settle(session: Session, items: list[int], agents: list[int], now: dt.datetime,
           policy: RoutingPolicy, attempts: int = 8) -> MatchResult:
    """Match the given items and agents again, committing, until no lock is contended."""
    result = MatchResult()
    contended = False
    for attempt in range(attempts):
        if not items and not agents:
            break
        round_ = MatchResult()
        for item_id in items:
            round_.merge(match_item(session, item_id, now, policy))
        for agent_id in agents:
            round_.merge(match_agent(session, agent_id, now, policy))
        more_items, more_agents = take_touched(session)
        session.commit()
        result.decisions.extend(round_.decisions)
        contended = round_.contended
        if not contended:
            items, agents = more_items, more_agents
            if session.get_bind().dialect.name == "sqlite":
                break
            continue
        items, agents = list(dict.fromkeys(items + more_items)), list(
            dict.fromkeys(agents + more_agents))
        time.sleep(random.uniform(0.001, 0.004) * (attempt + 1))
    result.contended = contended
    return result


def commit_and_settle(session: Session, now: dt.datetime, policy: RoutingPolicy,
                      attempts: int = 8) -> MatchResult:
    """Commit the session, then re-match what it touched (see the module docstring).

    On SQLite routing transactions are serial and nothing can be missed, so only
    contended matches (none there) are repeated.
    """
    items, agents = take_touched(session)
    session.commit()
    if session.get_bind().dialect.name == "sqlite":
        return MatchResult()
    return settle(session, items, agents, now, policy, attempts)
