"""Live queue statistics, per queue and item kind, from indexed aggregate queries.

For each queue and kind: items waiting, offered and being handled, the longest
wait, the estimated wait of a new arrival, agents by presence, and over the last
15 minutes and since the start of the day the items answered, the service level
(share answered within the queue's target, of those answered or abandoned) and
abandonment. Each figure is one grouped query over an index
(``ix_routing_items_pick``, ``..._answered``, ``..._abandoned``), never a scan
of history.

The estimated wait is ``(waiting - free slots + 1) x average handle time /
staffed slots`` (0 while free slots outnumber the waiting), with the day's
average handle time, or ``DEFAULT_HANDLE_SECONDS`` before there is one.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from contactcenter.routing.models import (
    ACTIVE_STATES,
    AgentCapacity,
    AgentState,
    ItemKind,
    ItemState,
    Presence,
    RoutingItem,
)
from contactcenter.routing.policy import RoutingPolicy
from contactcenter.tickets.models import Queue, QueueMember

DEFAULT_HANDLE_SECONDS = {"call": 300, "chat": 600, "ticket": 900}
STAFFED = (Presence.AVAILABLE, Presence.BUSY, Presence.WRAP_UP)


@dataclass
class WindowStats:
    """Outcomes over a window: answered, answered within target, abandoned."""

    answered: int = 0
    within_target: int = 0
    abandoned: int = 0

    @property
    def service_level(self) -> float | None:
        """Share answered within target of those answered or abandoned (None: no data)."""
        total = self.answered + self.abandoned
        return round(self.within_target / total, 4) if total else None

    @property
    def abandonment(self) -> float | None:
        """Share abandoned of those answered or abandoned (None: no data)."""
        total = self.answered + self.abandoned
        return round(self.abandoned / total, 4) if total else None

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return {"answered": self.answered, "within_target": self.within_target,
                "abandoned": self.abandoned, "service_level": self.service_level,
                "abandonment": self.abandonment}


@dataclass
class QueueStats:
    """One queue's figures for one item kind."""

    queue_id: int
    queue_slug: str
    kind: str
    target_seconds: int
    waiting: int = 0
    offered: int = 0
    assigned: int = 0
    longest_wait_seconds: int = 0
    estimated_wait_seconds: int | None = 0
    average_handle_seconds: int | None = None
    free_slots: int = 0
    staffed_slots: int = 0
    agents: dict[str, int] = field(default_factory=dict)
    last_15_min: WindowStats = field(default_factory=WindowStats)
    today: WindowStats = field(default_factory=WindowStats)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return {"queue_id": self.queue_id, "queue": self.queue_slug, "kind": self.kind,
                "target_seconds": self.target_seconds, "waiting": self.waiting,
                "offered": self.offered, "assigned": self.assigned,
                "longest_wait_seconds": self.longest_wait_seconds,
                "estimated_wait_seconds": self.estimated_wait_seconds,
                "average_handle_seconds": self.average_handle_seconds,
                "free_slots": self.free_slots, "staffed_slots": self.staffed_slots,
                "agents": self.agents, "last_15_min": self.last_15_min.to_json(),
                "today": self.today.to_json()}


def estimated_wait(waiting_ahead: int, free_slots: int, staffed_slots: int,
                   handle_seconds: float) -> int | None:
    """Return the expected wait in seconds of the next item (None: nobody to answer)."""
    if waiting_ahead < free_slots:
        return 0
    if staffed_slots <= 0:
        return None
    return math.ceil((waiting_ahead - free_slots + 1) * handle_seconds / staffed_slots)


def _target_case(queues: list[tuple[int, str]], policy: RoutingPolicy) -> Any:
    whens = [(and_(RoutingItem.queue_id == queue_id, RoutingItem.kind == kind.value),
              policy.rules_for(slug).target_for(kind.value))
             for queue_id, slug in queues for kind in ItemKind]
    return case(*whens, else_=60)


def queue_stats(session: Session, now: dt.datetime, policy: RoutingPolicy, *,
                queue_id: int | None = None, day_start: dt.datetime | None = None
                ) -> list[QueueStats]:
    """Return live figures per queue and kind (one queue's with ``queue_id``)."""
    query = select(Queue.id, Queue.slug).order_by(Queue.id)
    if queue_id is not None:
        query = query.where(Queue.id == queue_id)
    queues = session.execute(query).all()
    if not queues:
        return []
    ids = [q for q, _slug in queues]
    stats = {(q, kind.value): QueueStats(q, slug, kind.value,
                                         policy.rules_for(slug).target_for(kind.value))
             for q, slug in queues for kind in ItemKind}
    day_start = day_start or now.replace(hour=0, minute=0, second=0, microsecond=0)
    recent = now - dt.timedelta(minutes=15)

    for q, kind, state, count, oldest in session.execute(
            select(RoutingItem.queue_id, RoutingItem.kind, RoutingItem.state, func.count(),
                   func.min(RoutingItem.enqueued_at))
            .where(RoutingItem.queue_id.in_(ids), RoutingItem.state.in_(ACTIVE_STATES))
            .group_by(RoutingItem.queue_id, RoutingItem.kind, RoutingItem.state)):
        entry = stats.get((q, kind))
        if entry is None:
            continue
        setattr(entry, str(state), int(count))
        if state == ItemState.WAITING and oldest is not None:
            if oldest.tzinfo is None:  # aggregates skip the column type on SQLite
                oldest = dt.datetime.fromisoformat(str(oldest)).replace(tzinfo=dt.UTC)
            entry.longest_wait_seconds = max(0, int((now - oldest).total_seconds()))

    members: dict[int, dict[str, int]] = defaultdict(dict)
    for q, presence, count in session.execute(
            select(QueueMember.queue_id, AgentState.presence, func.count())
            .join(AgentState, AgentState.user_id == QueueMember.user_id)
            .where(QueueMember.queue_id.in_(ids))
            .group_by(QueueMember.queue_id, AgentState.presence)):
        members[q][presence] = int(count)
    for q, kind, staffed, free in session.execute(
            select(QueueMember.queue_id, AgentCapacity.kind, func.sum(AgentCapacity.maximum),
                   func.sum(case((AgentState.presence == Presence.AVAILABLE,
                                  AgentCapacity.maximum - AgentCapacity.load), else_=0)))
            .join(AgentState, AgentState.user_id == QueueMember.user_id)
            .join(AgentCapacity, AgentCapacity.user_id == QueueMember.user_id)
            .where(QueueMember.queue_id.in_(ids), AgentState.presence.in_(STAFFED))
            .group_by(QueueMember.queue_id, AgentCapacity.kind)):
        entry = stats.get((q, kind))
        if entry is not None:
            entry.staffed_slots, entry.free_slots = int(staffed or 0), max(0, int(free or 0))

    target = _target_case(list(queues), policy)
    for q, kind, answered, answered_recent, within, within_recent, handle in session.execute(
            select(RoutingItem.queue_id, RoutingItem.kind, func.count(),
                   func.sum(case((RoutingItem.answered_at >= recent, 1), else_=0)),
                   func.sum(case((RoutingItem.wait_seconds <= target, 1), else_=0)),
                   func.sum(case((and_(RoutingItem.answered_at >= recent,
                                       RoutingItem.wait_seconds <= target), 1), else_=0)),
                   func.avg(RoutingItem.handle_seconds))
            .where(RoutingItem.queue_id.in_(ids), RoutingItem.answered_at >= day_start,
                   RoutingItem.answered_at <= now)
            .group_by(RoutingItem.queue_id, RoutingItem.kind)):
        entry = stats.get((q, kind))
        if entry is None:
            continue
        entry.today.answered, entry.today.within_target = int(answered), int(within or 0)
        entry.last_15_min.answered = int(answered_recent or 0)
        entry.last_15_min.within_target = int(within_recent or 0)
        entry.average_handle_seconds = round(float(handle)) if handle is not None else None

    for q, kind, abandoned, abandoned_recent in session.execute(
            select(RoutingItem.queue_id, RoutingItem.kind, func.count(),
                   func.sum(case((RoutingItem.abandoned_at >= recent, 1), else_=0)))
            .where(RoutingItem.queue_id.in_(ids), RoutingItem.abandoned_at >= day_start,
                   RoutingItem.abandoned_at <= now)
            .group_by(RoutingItem.queue_id, RoutingItem.kind)):
        entry = stats.get((q, kind))
        if entry is not None:
            entry.today.abandoned = int(abandoned)
            entry.last_15_min.abandoned = int(abandoned_recent or 0)

    for (q, kind), entry in stats.items():
        entry.agents = {p.value: members[q].get(p.value, 0) for p in Presence}
        handle = entry.average_handle_seconds or DEFAULT_HANDLE_SECONDS.get(kind, 600)
        entry.estimated_wait_seconds = estimated_wait(entry.waiting, entry.free_slots,
                                                      entry.staffed_slots, handle)
    return list(stats.values())


def item_position(session: Session, item_id: int) -> int | None:
    """Return a waiting item's place in its queue's line of its kind (1: next), else None.

    One range count over the pick index: the items of the same queue and kind
    that come before it (higher priority, or equal and older).
    """
    item = session.get(RoutingItem, item_id)
    if item is None or item.state != ItemState.WAITING:
        return None
    ahead = session.scalar(select(func.count()).select_from(RoutingItem).where(
        RoutingItem.queue_id == item.queue_id, RoutingItem.state == ItemState.WAITING,
        RoutingItem.kind == item.kind,
        or_(RoutingItem.priority > item.priority,
            and_(RoutingItem.priority == item.priority,
                 or_(RoutingItem.enqueued_at < item.enqueued_at,
                     and_(RoutingItem.enqueued_at == item.enqueued_at,
                          RoutingItem.id < item.id))))))
    return int(ahead or 0) + 1


def item_estimated_wait(session: Session, item_id: int, now: dt.datetime,
                        policy: RoutingPolicy) -> int | None:
    """Return a waiting item's expected remaining wait in seconds (None: unknown)."""
    position = item_position(session, item_id)
    item = session.get(RoutingItem, item_id)
    if position is None or item is None:
        return None
    for entry in queue_stats(session, now, policy, queue_id=item.queue_id):
        if entry.kind == item.kind:
            handle = entry.average_handle_seconds or DEFAULT_HANDLE_SECONDS.get(item.kind, 600)
            return estimated_wait(position - 1, entry.free_slots, entry.staffed_slots, handle)
    return None
