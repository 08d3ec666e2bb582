"""Match waiting items with available agents and offer (or assign) them.

Every offer goes through ``offer_best_item``: an agent, locked, is given their
own best eligible item (highest priority, then oldest, across the queues they
serve), so strict priority-then-age order within a queue holds whichever side
started the match. ``match_item`` ranks the agents who may take a new item and
lets the best of them take their best item (usually that one); ``match_agent``
fills a freed agent's capacity.

Locks: an item path may wait for agent locks; an agent path takes item locks
only with ``SKIP LOCKED``. A skipped lock sets ``contended``: the caller should
repeat the match after committing (``commit_and_settle`` does).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, select
from sqlalchemy.orm import Session

from contactcenter.db_postgres import (
    AfterCommit,
    as_loaded,
    entity_columns,
    fetch,
    query_after_commit,
)
from contactcenter.routing.eligibility import (
    AgentSnapshot,
    free_kinds,
    ineligibility,
    is_eligible,
)
from contactcenter.routing.events import record_item_event
from contactcenter.routing.models import (
    AgentState,
    ItemState,
    Presence,
    RoutingItem,
)
from contactcenter.routing.offering import change_load, make_offer
from contactcenter.routing.policy import RoutingPolicy
from contactcenter.routing.ranking import rank_agents
from contactcenter.routing.snapshot import _per_transaction, agent_snapshot, agent_snapshots
from contactcenter.routing.store import (
    ONE,
    WAITING_SQL,
    begin_write,
    candidate_agents,
    candidate_statement,
    created_here,
    item_snapshot,
    lock_agent,
    lock_item,
    pick_candidates,
    pick_statement,
    read_item,
    refused_by,
)
from contactcenter.routing.vacancy import repair_free_kinds

log = logging.getLogger(__name__)

MAX_PICK_ATTEMPTS = 8
CANDIDATES = 10


@dataclass(frozen=True)
class Decision:
    """One routing decision: an item offered (or assigned directly) to an agent."""

    action: str  # "offer" | "assign"
    item_id: int
    agent_id: int
    queue_id: int
    kind: str
    priority: int
    offer_id: int | None = None
    expires_at: dt.datetime | None = None


@dataclass
class MatchResult:
    """The decisions of a match, and whether a locked row was skipped on the way."""

    decisions: list[Decision] = field(default_factory=list)
    contended: bool = False

    def merge(self, other: MatchResult) -> MatchResult:
        """Add another result's decisions and contention to this one."""
        self.decisions.extend(other.decisions)
        self.contended = self.contended or other.contended
        return self


def touch(session: Session, items: Collection[int] = (), agents: Collection[int] = ()) -> None:
    """Remember items and agents to match again once this transaction commits."""
    touched = session.info.setdefault("routing_touched", ({}, {}))
    touched[0].update(dict.fromkeys(items))
    touched[1].update(dict.fromkeys(agents))
    if agents:
        _per_transaction(session, "routing_settled_agents").difference_update(agents)


def _settled(session: Session, agent_id: int) -> None:
    """Note that the agent, locked, was left with no free capacity (or not available).

    Nothing can give them room again without their lock, so until something else
    touches them in this transaction, matching them again after commit is useless:
    ``take_touched`` leaves them out.
    """
    _per_transaction(session, "routing_settled_agents").add(agent_id)


def take_touched(session: Session) -> tuple[list[int], list[int]]:
    """Return and forget the items and agents touched in this session.

    Agents this transaction left full (or unavailable) under their lock are left
    out: after commit there is nothing to match them with.
    """
    items, agents = session.info.pop("routing_touched", ({}, {}))
    unplaced = session.info.pop("routing_unplaced", {})
    # What matching in this transaction learned of items it could not place, for
    # ``settle`` to match them again after commit with a single candidate query.
    session.info.setdefault("routing_settling", {}).update(
        {i: unplaced[i] for i in items if i in unplaced})
    settled = _per_transaction(session, "routing_settled_agents")
    return list(items), [a for a in agents if a not in settled]


def forget_unplaced(session: Session, item_id: int) -> None:
    """Drop what matching remembered of an item it could not place (its queue changed).

    ``settle`` and ``match_item`` re-match such an item from that snapshot; a
    transfer changes its queue, skills, language or preferred agent, so the next
    match must read the item again.
    """
    session.info.get("routing_unplaced", {}).pop(item_id, None)
    session.info.get("routing_settling", {}).pop(item_id, None)


def _mismatch(session: Session, what: str) -> None:
    # The SQL filters and the pure policy disagree: never offer, and say so loudly.
    log.warning("routing SQL/policy mismatch: %s", what)
    session.info.setdefault("routing_mismatches", []).append(what)


def mark_assigned(session: Session, item: RoutingItem, agent_id: int, now: dt.datetime,
                  actor_id: int | None) -> None:
    """Make the item the agent's (state, answer time, the ticket's assignee) and announce it."""
    for key, value in assignment_values(item, agent_id, now).items():
        setattr(item, key, value)
    announce_assigned(session, item, agent_id, actor_id)


def assignment_values(item: RoutingItem, agent_id: int, now: dt.datetime) -> dict[str, Any]:
    """The item's columns that change when it becomes the agent's."""
    values: dict[str, Any] = {"state": ItemState.ASSIGNED.value, "agent_id": agent_id,
                              "offer_expires_at": None}
    if item.answered_at is None:
        values["answered_at"] = now
        values["wait_seconds"] = max(0, int((now - item.enqueued_at).total_seconds()))
    return values


def announce_assigned(session: Session, item: RoutingItem, agent_id: int,
                      actor_id: int | None) -> None:
    """What follows an item becoming the agent's: its ticket is theirs, and the event."""
    if item.ticket_id is not None:
        from contactcenter.tickets.models import Ticket
        from contactcenter.tickets.service import assign_ticket

        ticket = session.get(Ticket, item.ticket_id)
        if ticket is not None and ticket.assignee_id != agent_id:
            assign_ticket(session, ticket, agent_id, actor_id)
    record_item_event(session, "item.assigned", item, {"by": actor_id})


def give(session: Session, item: RoutingItem, state: AgentState, policy: RoutingPolicy,
         now: dt.datetime, *, direct: bool = False, actor_id: int | None = None) -> Decision:
    """Offer a locked waiting item to a locked agent (or assign it: ``direct`` or no timeout).

    A callable in ``session.info["routing_audit"]`` is called first with
    ``(session, item, state, now, direct)``: tests use it to check every decision
    against the pure policy at the instant it is made.
    """
    audit = session.info.get("routing_audit")
    if audit is not None:
        audit(session, item, state, now, direct)
    timeout = policy.offer_timeout(item.kind)
    if direct or timeout <= 0:
        change_load(session, state.user_id, item.kind, +1, policy, assigned_at=now)
        mark_assigned(session, item, state.user_id, now, actor_id)
        return Decision("assign", item.id, state.user_id, item.queue_id, item.kind,
                        item.priority)
    expires = now + dt.timedelta(seconds=timeout)
    offer_id = make_offer(session, item, state.user_id, now, expires, policy)
    record_item_event(session, "offer.made", item, {"offer_id": offer_id})
    return Decision("offer", item.id, state.user_id, item.queue_id, item.kind, item.priority,
                    offer_id, expires)


@functools.lru_cache(maxsize=1024)
def _locking_pick(shape: Select[Any]) -> Select[Any]:
    """The pick statement's best row, joined to its item row locked with SKIP LOCKED.

    The join keeps the pick's queue and kind, so that PostgreSQL re-checks them
    (and ``waiting``) on the newest version of a row updated meanwhile.
    """
    picks = shape.subquery()
    best = (select(picks.c.id, picks.c.queue_id, picks.c.kind)
            .order_by(picks.c.priority.desc(), picks.c.enqueued_at, picks.c.id)
            .limit(ONE).subquery())
    items: Any = RoutingItem.__table__
    return (select(*entity_columns(RoutingItem), best.c.queue_id, best.c.kind)
            .join_from(items, best, and_(items.c.id == best.c.id,
                                         items.c.queue_id == best.c.queue_id,
                                         items.c.kind == best.c.kind))
            .where(items.c.state == WAITING_SQL)
            .with_for_update(skip_locked=True, of=items))


def lock_best_item(session: Session, agent: AgentSnapshot, policy: RoutingPolicy,
                   now: dt.datetime) -> tuple[RoutingItem | None, bool]:
    """Find and lock the agent's best eligible waiting item; say if a lock was skipped.

    The locked row is checked to be still waiting in the same queue and kind; the
    other conditions of the pick cannot change under the agent's lock (a refusal
    by this agent needs it) and the item's (skills and language change only with a
    transfer). On SQLite, where nothing runs in between, the pure policy checks the
    pick as well, so that tests catch any drift between the SQL and the policy.
    """
    serial = session.get_bind().dialect.name == "sqlite"
    exclude: set[int] = set()
    contended = False
    for _attempt in range(MAX_PICK_ATTEMPTS):
        if not serial:
            # One round trip: pick the best and lock it (SKIP LOCKED). Only when that
            # finds nothing does the plain pick below tell "none" from "locked".
            pick = pick_statement(session, agent, policy, now, exclude)
            if pick is None:
                return None, contended
            found = fetch(session, _locking_pick(pick[0]), pick[1])
            if found:
                item, = as_loaded(session, (RoutingItem,), found[0])
                queue_id, kind = found[0][-2:]
                exclude.add(item.id)
                if (item.state != ItemState.WAITING or item.queue_id != queue_id
                        or item.kind != kind):
                    continue
                return item, contended
        rows = pick_candidates(session, agent, policy, now, exclude)
        if not rows:
            return None, contended
        item_id, _priority, _enqueued, queue_id, kind = rows[0]
        exclude.add(item_id)
        item = lock_item(session, item_id, skip_locked=True)
        if item is None:
            contended = True
            continue
        if item.state != ItemState.WAITING or item.queue_id != queue_id or item.kind != kind:
            continue
        if serial:
            reasons = ineligibility(agent, item_snapshot(session, item, policy, now), policy, now)
            if reasons:
                _mismatch(session, f"item {item.id} picked for agent {agent.user_id}: {reasons}")
                continue
        return item, contended
    return None, True


def offer_best_item(session: Session, state: AgentState, agent: AgentSnapshot,
                    policy: RoutingPolicy, now: dt.datetime
                    ) -> tuple[Decision | None, AgentSnapshot, bool]:
    """Give a locked agent their best item; return the decision, updated snapshot, contention."""
    item, contended = lock_best_item(session, agent, policy, now)
    if item is None:
        return None, agent, contended
    decision = give(session, item, state, policy, now)
    load = {**agent.load, item.kind: agent.load.get(item.kind, 0) + 1}
    return decision, dataclasses.replace(agent, load=load, last_assigned_at=now), contended


def match_agent(session: Session, agent_id: int, now: dt.datetime, policy: RoutingPolicy,
                *, limit: int | None = None, agent: AgentSnapshot | None = None) -> MatchResult:
    """Offer an available agent their best items until their capacity (or ``limit``) is used.

    ``agent`` is their snapshot when the caller, holding their lock, has just read it.
    """
    begin_write(session)
    result = MatchResult()
    state = lock_agent(session, agent_id)
    if state is None:
        return result
    if state.presence != Presence.AVAILABLE:
        _settled(session, agent_id)
        return result
    if agent is None or agent.user_id != agent_id:
        agent = agent_snapshot(session, state)
    repair_free_kinds(session, state, agent, policy)
    while free_kinds(agent, policy) and (limit is None or len(result.decisions) < limit):
        decision, agent, contended = offer_best_item(session, state, agent, policy, now)
        result.contended = result.contended or contended
        if decision is None:
            break
        result.decisions.append(decision)
    if not free_kinds(agent, policy):
        _settled(session, agent_id)
    return result


def _may_place(session: Session, item_id: int, policy: RoutingPolicy, now: dt.datetime
               ) -> bool:
    """Whether, by committed state, the item waits and some free agent may take it.

    Read without locks: most items matched again after a commit (an arrival in a
    backlog) find nobody free, and then the item is not locked at all, so the
    transaction writes nothing and its commit costs no WAL flush. An agent who
    frees up meanwhile matches their own best work after their commit.
    """
    snapshot = session.info.get("routing_settling", {}).pop(item_id, None)
    if snapshot is None:
        item = read_item(session, item_id)
        if item is None or item.state != ItemState.WAITING:
            return False
        snapshot = item_snapshot(session, item, policy, now, with_refusals=False)
    order = policy.rules_for(snapshot.queue_slug).ranking
    return bool(candidate_agents(session, snapshot, policy, now, order, 1))


def is_unplaceable(session: Session, item_id: int, now: dt.datetime, policy: RoutingPolicy
                   ) -> bool:
    """Whether an item this session could not place still finds nobody free (PostgreSQL).

    For ``settle`` after a commit: the candidate query ``match_item`` would run
    first, read in autocommit mode, so a backlog arrival's re-match costs that
    one statement and no BEGIN or COMMIT. False (match as usual) when the item
    is not one this session remembered unplaced, when a transaction is open, on
    SQLite, or when some agent may take it; True forgets the item's snapshot, as
    ``match_item`` would have.
    """
    settling = session.info.get("routing_settling", {})
    snapshot = settling.get(item_id)
    if (snapshot is None or session.in_transaction()
            or session.get_bind().dialect.name != "postgresql"):
        return False
    session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    try:
        order = policy.rules_for(snapshot.queue_slug).ranking
        free = candidate_agents(session, snapshot, policy, now, order, 1)
    finally:
        session.commit()  # nothing to commit: ends the session's use of the connection
    if free:
        return False
    settling.pop(item_id, None)
    return True


def read_after_commit(session: Session, items: list[int], now: dt.datetime,
                      policy: RoutingPolicy) -> dict[int, AfterCommit]:
    """Queue, with the coming commit, the re-check ``is_unplaceable`` would make after it.

    For the items this transaction could not place (PostgreSQL): their candidate query
    travels in the pipeline that commits, just after the COMMIT (``query_after_commit``),
    so the re-check costs no round trip. Returns the queued reads by item.
    """
    settling = session.info.get("routing_settling", {})
    read: dict[int, AfterCommit] = {}
    if not settling or session.get_bind().dialect.name != "postgresql":
        return read
    for item_id in items:
        snapshot = settling.get(item_id)
        if snapshot is None:
            continue
        order = policy.rules_for(snapshot.queue_slug).ranking
        queued = query_after_commit(session, *candidate_statement(
            session, snapshot, policy, now, order, 1))
        if queued is not None:
            read[item_id] = queued
    return read


def forget_settling(session: Session, item_id: int) -> None:
    """Drop the snapshot kept for re-checking an item after commit (it found nobody)."""
    session.info.get("routing_settling", {}).pop(item_id, None)


def match_item(session: Session, item_id: int, now: dt.datetime, policy: RoutingPolicy,
               *, first_candidates: list[int] | None = None) -> MatchResult:
    """Place a waiting item with the best agent who may take it.

    Each agent tried takes their own best item, which is this one unless an
    older or more urgent one of theirs is waiting; then the next agent is tried.
    ``first_candidates`` is what the first candidate query would return, read
    by the caller in this transaction with ``candidate_statement`` for the same
    item (an arrival reads it in the statement that inserts the item).
    """
    begin_write(session)
    result = MatchResult()
    item = created_here(session, item_id)
    if item is None:
        if not _may_place(session, item_id, policy, now):
            return result
        item = lock_item(session, item_id, skip_locked=True, with_skills=True)
        if item is None:
            exists = session.scalar(select(RoutingItem.id).where(RoutingItem.id == item_id))
            result.contended = exists is not None
            return result
    if item.state != ItemState.WAITING:
        return result
    # The refusals are read only once there is a candidate: the SQL filters them
    # already, and in a backlog most arrivals find no free agent at all.
    snapshot = item_snapshot(session, item, policy, now, with_refusals=False)
    with_refusals = False
    order = policy.rules_for(snapshot.queue_slug).ranking
    serial = session.get_bind().dialect.name == "sqlite"
    tried: set[int] = set()
    while item.state == ItemState.WAITING:
        if first_candidates is not None and not tried:
            ids = first_candidates
        else:
            ids = candidate_agents(session, snapshot, policy, now, order, CANDIDATES, tried)
        if not ids:
            if not tried:
                # Nobody free for it: remember what the item is, so that matching it
                # again after commit (``settle``) is one candidate query. The item
                # only changes queue, skills or rules clock with a transfer, which
                # re-matches it; a stale "waiting" is re-checked under the lock.
                session.info.setdefault("routing_unplaced", {})[item.id] = snapshot
            break
        if not with_refusals:
            snapshot = dataclasses.replace(snapshot, refused_by=refused_by(
                session, item.id, policy, now))
            with_refusals = True
        tried.update(ids)
        states = list(session.scalars(select(AgentState).where(AgentState.user_id.in_(ids))))
        found = agent_snapshots(session, states)
        eligible = []
        for agent_id in ids:
            agent = found.get(agent_id)
            if agent is not None and is_eligible(agent, snapshot, policy, now):
                eligible.append(agent)
            elif agent is not None and serial:
                # Unlocked reads: on PostgreSQL the agent may have changed in between.
                _mismatch(session, f"agent {agent_id} listed for item {item.id}: "
                          f"{ineligibility(agent, snapshot, policy, now)}")
        for candidate in rank_agents(eligible, snapshot, order,
                                     policy.excluded_by(snapshot.kind)):
            state = lock_agent(session, candidate.user_id, skip_locked=True)
            if state is None:
                result.contended = True
                continue
            agent = agent_snapshot(session, state)
            while item.state == ItemState.WAITING and is_eligible(agent, snapshot, policy, now):
                decision, agent, contended = offer_best_item(session, state, agent, policy, now)
                result.contended = result.contended or contended
                if decision is None:
                    _mismatch(session, f"agent {agent.user_id} eligible for item {item.id} "
                              "but picked nothing")
                    break
                result.decisions.append(decision)
            if item.state != ItemState.WAITING:
                break
    return result
