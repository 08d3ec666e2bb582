"""Decide whether an agent may take an item: the pure rules the store's queries apply.

An agent may be offered an item when they are available, serve its queue, speak
its language, have every skill it needs at the level it needs, have free
capacity for its kind (and hold nothing of a kind that excludes it), have not
refused it within the cooldown, and qualify for a step of the queue's rules the
item has reached (or are its preferred agent). ``ineligibility`` lists the
reasons an agent may not; ``is_eligible`` is its emptiness.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from contactcenter.routing.models import Presence
from contactcenter.routing.policy import RoutingPolicy
from contactcenter.routing.rules import agent_threshold


@dataclass(frozen=True)
class AgentSnapshot:
    """What routing knows of an agent at one instant."""

    user_id: int
    presence: str
    languages: frozenset[str]
    skills: Mapping[str, int]
    queue_ids: frozenset[int]
    capacity: Mapping[str, int]
    load: Mapping[str, int]
    team: str | None = None
    last_assigned_at: dt.datetime | None = None

    def free(self, kind: str) -> int:
        """Return how many more items of a kind the agent could hold."""
        return max(0, self.capacity.get(kind, 0) - self.load.get(kind, 0))

    @property
    def total_load(self) -> int:
        """Return how many items the agent holds in all."""
        return sum(self.load.values())


@dataclass(frozen=True)
class ItemSnapshot:
    """What routing knows of a waiting item at one instant."""

    item_id: int
    kind: str
    queue_id: int
    enqueued_at: dt.datetime
    rules_since: dt.datetime
    priority: int = 0
    channel: str = ""
    queue_slug: str | None = None
    queue_skill: str | None = None
    language: str | None = None
    skills: Mapping[str, int] = field(default_factory=dict)
    preferred_agent_id: int | None = None
    refused_by: frozenset[int] = frozenset()

    @property
    def order_key(self) -> tuple[int, dt.datetime, int]:
        """Return the key that sorts items best first: priority, then age, then id."""
        return (-self.priority, self.enqueued_at, self.item_id)


def has_capacity(agent: AgentSnapshot, kind: str, policy: RoutingPolicy) -> bool:
    """Whether the agent can hold one more item of a kind (capacity and exclusions)."""
    if agent.free(kind) <= 0:
        return False
    return not any(agent.load.get(other, 0) > 0 for other in policy.excluded_by(kind))


def free_kinds(agent: AgentSnapshot, policy: RoutingPolicy) -> frozenset[str]:
    """Return the kinds the agent could take one more item of."""
    return frozenset(kind for kind in agent.capacity if has_capacity(agent, kind, policy))


def qualifies_for_step(agent: AgentSnapshot, item: ItemSnapshot, policy: RoutingPolicy,
                       now: dt.datetime) -> bool:
    """Whether the item's rules have widened far enough to include the agent."""
    if item.preferred_agent_id == agent.user_id:
        return True
    rules = policy.rules_for(item.queue_slug)
    threshold = agent_threshold(rules, item.queue_skill, agent.team, agent.skills)
    if threshold is None:
        return False
    return item.rules_since + dt.timedelta(seconds=threshold) <= now


def ineligibility(agent: AgentSnapshot, item: ItemSnapshot, policy: RoutingPolicy,
                  now: dt.datetime, *, check_steps: bool = True, check_capacity: bool = True,
                  check_presence: bool = True) -> list[str]:
    """Return every reason the agent may not take the item (empty: they may)."""
    reasons: list[str] = []
    if check_presence and agent.presence != Presence.AVAILABLE:
        reasons.append(f"agent is {agent.presence}")
    if item.queue_id not in agent.queue_ids:
        reasons.append("agent does not serve the queue")
    if item.language and item.language not in agent.languages:
        reasons.append(f"agent does not speak {item.language}")
    for skill, level in sorted(item.skills.items()):
        if agent.skills.get(skill, 0) < level:
            reasons.append(f"needs {skill} level {level}")
    if check_capacity and not has_capacity(agent, item.kind, policy):
        reasons.append(f"no free {item.kind} capacity")
    if agent.user_id in item.refused_by:
        reasons.append("agent refused it recently")
    if check_steps and not qualifies_for_step(agent, item, policy, now):
        reasons.append("the queue's rules have not reached this agent yet")
    return reasons


def is_eligible(agent: AgentSnapshot, item: ItemSnapshot, policy: RoutingPolicy,
                now: dt.datetime, *, check_steps: bool = True,
                check_capacity: bool = True) -> bool:
    """Whether the agent may be given the item now."""
    return not ineligibility(agent, item, policy, now, check_steps=check_steps,
                             check_capacity=check_capacity)
