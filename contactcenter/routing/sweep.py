"""Repair and re-match: the periodic routing pass and the after-commit settle.

Time alone changes routing: offers run out, wrap-ups end, lost sockets pass
their grace, priorities move up an age step or SLA band, and rule steps widen,
so waiting items meet agents they could not have before. ``route`` applies all
of it and matches, in the caller's transaction (tests, SQLite, small jobs);
``run_sweep`` does the same in many short transactions, one per agent or item
changed, which is what the periodic job runs on PostgreSQL: a transaction never
holds one agent's lock while waiting for another's.

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

from contactcenter.db_postgres import AfterCommit
from contactcenter.routing.arrival import rescore
from contactcenter.routing.durability import offers_only, relax_commit
from contactcenter.routing.matching import (
    MatchResult,
    forget_settling,
    is_unplaceable,
    match_agent,
    match_item,
    read_after_commit,
    take_touched,
)
from contactcenter.routing.models import ItemState, Presence, RoutingItem
from contactcenter.routing.offers import expire_offers
from contactcenter.routing.policy import RoutingPolicy
from contactcenter.routing.presence import (
    disconnected_ids,
    end_wrap_ups,
    expire_disconnected,
    set_presence,
    wrap_up_over_ids,
)
from contactcenter.routing.store import begin_write, free_agent_ids


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


def matching_work(session: Session, limit: int | None = None
                  ) -> tuple[list[int], list[int]]:
    """Return what to match: the waiting items or the free agents, whichever are fewer.

    Matching every free agent, or every waiting item, leaves no eligible pair
    apart; the smaller side is the cheaper way there.
    """
    agents = free_agent_ids(session, limit)
    if not agents:
        return [], []
    waiting = session.execute(
        select(RoutingItem.id, RoutingItem.priority, RoutingItem.enqueued_at)
        .where(RoutingItem.state == ItemState.WAITING).limit(len(agents) + 1)).all()
    if len(waiting) <= len(agents):
        return [row[0] for row in sorted(waiting, key=lambda r: (-r[1], r[2], r[0]))], []
    return [], agents


def route(session: Session, now: dt.datetime, policy: RoutingPolicy,
          limit: int | None = None) -> MatchResult:
    """Apply what time changed, then match waiting items with free agents (one transaction).

    ``limit`` caps how many agents (or items) are matched in this call.
    """
    begin_write(session)
    result = expire_offers(session, now, policy)
    result.merge(end_wrap_ups(session, now, policy))
    result.merge(expire_disconnected(session, now, policy))
    rescore_items(session, now, policy)
    items, agents = matching_work(session, limit)
    for item_id in items:
        result.merge(match_item(session, item_id, now, policy))
    for agent_id in agents:
        result.merge(match_agent(session, agent_id, now, policy))
    return result


def run_sweep(session: Session, now: dt.datetime, policy: RoutingPolicy,
              batch: int = 200) -> MatchResult:
    """Do what ``route`` does in short committed transactions (the periodic job).

    Commits as it goes; each agent whose presence changes, and each match, is its
    own transaction, so concurrent sweeps and requests cannot deadlock on agents.
    """
    result = MatchResult()
    result.merge(expire_offers(session, now, policy, limit=batch))
    if all(d.action == "offer" for d in result.decisions):
        # Withdrawing lapsed offers (and setting away who keeps missing them) is
        # re-derivable: lost in a crash, the next sweep finds them lapsed again.
        relax_commit(session, policy)
    result.merge(commit_and_settle(session, now, policy))
    changes = ([(a, Presence.AVAILABLE, "wrap-up over") for a in wrap_up_over_ids(
        session, now, batch)] + [(a, Presence.OFFLINE, "desktop disconnected")
                                 for a in disconnected_ids(session, now, policy, batch)])
    for agent_id, presence, reason in changes:
        result.merge(set_presence(session, agent_id, presence, now, policy, reason))
        result.merge(commit_and_settle(session, now, policy))
    while rescore_items(session, now, policy, batch) == batch:
        session.commit()
    session.commit()
    items, agents = matching_work(session, batch)
    result.merge(settle(session, items, agents, now, policy))
    return result


def _commit_match(session: Session, found: MatchResult, policy: RoutingPolicy) -> None:
    """Commit a transaction that only matched: asynchronously if it only made offers."""
    if offers_only(d.action for d in found.decisions):
        relax_commit(session, policy)
    session.commit()


def settle(session: Session, items: list[int], agents: list[int], now: dt.datetime,
           policy: RoutingPolicy, attempts: int = 8,
           read: dict[int, AfterCommit] | None = None) -> MatchResult:
    """Match the given items and agents again, one committed transaction each.

    What a match skips because another transaction holds the row is tried again
    (with a short pause) until nothing is contended or ``attempts`` run out; the
    periodic sweep catches anything left then. ``read`` holds, per item, the
    candidate query already read after the commit (``commit_and_settle``).
    """
    result = MatchResult()
    for attempt in range(attempts):
        if not items and not agents:
            break
        contended_items: list[int] = []
        contended_agents: list[int] = []
        for item_id in items:
            rechecked = read.pop(item_id, None) if read else None
            if rechecked is not None and rechecked.rows is not None:
                if not rechecked.rows:
                    forget_settling(session, item_id)  # nobody free for it after the commit
                    continue
            elif is_unplaceable(session, item_id, now, policy):
                continue
            found = match_item(session, item_id, now, policy)
            take_touched(session)
            _commit_match(session, found, policy)
            result.decisions.extend(found.decisions)
            if found.contended:
                contended_items.append(item_id)
        for agent_id in agents:
            found = match_agent(session, agent_id, now, policy)
            take_touched(session)
            _commit_match(session, found, policy)
            result.decisions.extend(found.decisions)
            if found.contended:
                contended_agents.append(agent_id)
        items, agents = contended_items, contended_agents
        if items or agents:
            time.sleep(random.uniform(0.001, 0.004) * (attempt + 1))
    result.contended = bool(items or agents)
    return result


def commit_and_settle(session: Session, now: dt.datetime, policy: RoutingPolicy,
                      attempts: int = 8) -> MatchResult:
    """Commit the session, then re-match what it touched (see the module docstring).

    On SQLite routing transactions are serial and nothing can be missed: it only
    commits.
    """
    items, agents = take_touched(session)
    read = read_after_commit(session, items, now, policy)
    session.commit()
    if session.get_bind().dialect.name == "sqlite":
        # Nothing settles here, so nothing is kept for settling either.
        session.info.pop("routing_settling", None)
        return MatchResult()
    return settle(session, items, agents, now, policy, attempts, read)
