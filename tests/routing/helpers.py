"""Builders and the invariant checker shared by the routing tests."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contactcenter.accounts.models import AgentSkill, User
from contactcenter.routing import engine
from contactcenter.routing.eligibility import free_kinds, ineligibility
from contactcenter.routing.models import (
    HELD_STATES,
    AgentCapacity,
    AgentState,
    ItemState,
    Offer,
    OfferOutcome,
    RoutingItem,
)
from contactcenter.routing.policy import RoutingPolicy
from contactcenter.routing.snapshot import agent_snapshot, agent_snapshots
from contactcenter.routing.store import item_snapshot
from contactcenter.tickets.models import Queue, QueueMember

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
_seq = itertools.count(1)


def make_queue(session: Session, slug: str | None = None, *, skill: str | None = None,
               language: str | None = None) -> Queue:
    """Create a queue."""
    slug = slug or f"rq-{next(_seq)}"
    queue = Queue(slug=slug, name=slug.title(), skill=skill, language=language)
    session.add(queue)
    session.flush()
    return queue


def make_agent(session: Session, policy: RoutingPolicy, *queues: Queue,
               skills: dict[str, int] | None = None, languages: str = "en",
               presence: str | None = "available", now: dt.datetime = T0,
               capacity: dict[str, int] | None = None, team: str | None = None) -> User:
    """Create an agent (no password hashing: fast), a member of the queues given."""
    n = next(_seq)
    user = User(email=f"agent{n}@example.test", name=f"Agent {n}", languages=languages)
    user.skills = [AgentSkill(skill=s, level=lvl) for s, lvl in (skills or {}).items()]
    session.add(user)
    session.flush()
    for queue in queues:
        session.add(QueueMember(queue_id=queue.id, user_id=user.id))
    engine.ensure_agent(session, user.id, now, policy)
    for kind, maximum in (capacity or {}).items():
        engine.set_capacity(session, user.id, kind, maximum, now, policy)
    if team is not None:
        engine.set_team(session, user.id, team, now, policy)
    if presence is not None:
        engine.set_presence(session, user.id, presence, now, policy)
    session.flush()
    return user


def held(session: Session, agent_id: int) -> list[RoutingItem]:
    """Return the items an agent holds (offered or assigned)."""
    return list(session.scalars(select(RoutingItem).where(
        RoutingItem.agent_id == agent_id, RoutingItem.state.in_(HELD_STATES))
        .order_by(RoutingItem.id)))


def pending_offer(session: Session, item_id: int) -> Offer | None:
    """Return the item's open offer."""
    return session.scalars(select(Offer).where(Offer.item_id == item_id,
                                               Offer.outcome == OfferOutcome.PENDING)).first()


def check_invariants(session: Session, policy: RoutingPolicy, now: dt.datetime,
                     *, stranded: bool = True) -> list[str]:
    """Return every violated invariant of the stored routing state (empty: all hold).

    Capacity counters equal what agents hold and never exceed the maximum; no
    kind excluded by another is held with it; each offered item has exactly one
    open offer, to the agent holding it, and nothing else has one; waiting items
    belong to no agent; and (``stranded``) no waiting item has an agent who
    could take it right now.
    """
    problems: list[str] = []
    counts = {(a, k): int(n) for a, k, n in session.execute(
        select(RoutingItem.agent_id, RoutingItem.kind, func.count())
        .where(RoutingItem.state.in_(HELD_STATES))
        .group_by(RoutingItem.agent_id, RoutingItem.kind))}
    for cap in session.scalars(select(AgentCapacity).execution_options(populate_existing=True)):
        actual = counts.pop((cap.user_id, cap.kind), 0)
        if cap.load != actual:
            problems.append(f"agent {cap.user_id} {cap.kind}: load {cap.load} != held {actual}")
        if actual > cap.maximum:
            problems.append(f"agent {cap.user_id} over {cap.kind} capacity: "
                            f"{actual} > {cap.maximum}")
    if counts:
        problems.append(f"items held without a capacity row: {counts}")
    states = list(session.scalars(select(AgentState).execution_options(populate_existing=True)))
    agents = agent_snapshots(session, states)
    for agent in agents.values():
        for a, b in policy.exclusive:
            if agent.load.get(a, 0) and agent.load.get(b, 0):
                problems.append(f"agent {agent.user_id} holds {a} and {b} together")
    pending = {item_id: int(n) for item_id, n in session.execute(
        select(Offer.item_id, func.count()).where(Offer.outcome == OfferOutcome.PENDING)
        .group_by(Offer.item_id))}
    items = list(session.scalars(select(RoutingItem).where(
        RoutingItem.state.in_((ItemState.WAITING, *HELD_STATES)))
        .execution_options(populate_existing=True)))
    for item in items:
        open_offers = pending.pop(item.id, 0)
        if item.state == ItemState.OFFERED:
            offer = pending_offer(session, item.id)
            if open_offers != 1 or offer is None or offer.agent_id != item.agent_id:
                problems.append(f"offered item {item.id} has {open_offers} open offers")
        elif open_offers:
            problems.append(f"{item.state} item {item.id} has {open_offers} open offers")
        if item.state in HELD_STATES and item.agent_id is None:
            problems.append(f"{item.state} item {item.id} has no agent")
        if item.state == ItemState.WAITING and item.agent_id is not None:
            problems.append(f"waiting item {item.id} held by agent {item.agent_id}")
    if pending:
        problems.append(f"open offers on finished items: {pending}")
    idle = [a for a in agents.values() if a.presence == "available" and free_kinds(a, policy)]
    if stranded and idle:
        for item in items:
            if item.state != ItemState.WAITING or not any(item.kind in free_kinds(a, policy)
                                                           for a in idle):
                continue
            snap = item_snapshot(session, item, policy, now)
            for agent in idle:
                if not ineligibility(agent, snap, policy, now):
                    problems.append(f"item {item.id} waits beside free eligible agent "
                                    f"{agent.user_id}")
    return problems


class DecisionAudit:
    """Check every decision at the instant it is made (installed as ``routing_audit``).

    Automatic offers must go to an eligible agent, and no waiting item of the
    same queue that comes first (priority, then age) may be one that agent could
    take instead. Manual assignments and transfers skip the rules' steps only.
    """

    def __init__(self, policy: RoutingPolicy, check_order: bool = True) -> None:
        self.policy = policy
        self.check_order = check_order
        self.problems: list[str] = []
        self.decisions = 0

    def install(self, session: Session) -> None:
        """Audit the session's decisions."""
        session.info["routing_audit"] = self

    def __call__(self, session: Session, item: RoutingItem, state: AgentState,
                 now: dt.datetime, direct: bool) -> None:
        self.decisions += 1
        agent = agent_snapshot(session, state)
        snap = item_snapshot(session, item, self.policy, now, with_refusals=not direct)
        reasons = ineligibility(agent, snap, self.policy, now, check_steps=not direct)
        if reasons:
            self.problems.append(f"item {item.id} given to agent {agent.user_id}: {reasons}")
        if direct or not self.check_order:
            return
        for other in session.scalars(select(RoutingItem).where(
                RoutingItem.queue_id == item.queue_id, RoutingItem.state == ItemState.WAITING,
                RoutingItem.id != item.id)):
            other_snap = item_snapshot(session, other, self.policy, now)
            if other_snap.order_key < snap.order_key and not ineligibility(
                    agent, other_snap, self.policy, now):
                self.problems.append(
                    f"agent {agent.user_id} got item {item.id} (priority {item.priority}) "
                    f"before item {other.id} (priority {other.priority}) of the same queue")


def ids(rows: Iterable[Any]) -> list[int]:
    """Return the ids of rows."""
    return [row.id for row in rows]
