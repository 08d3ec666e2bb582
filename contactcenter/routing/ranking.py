"""Order eligible agents best first for one item.

The order is a list of criteria from the queue's rules (``sticky``, ``blocking``,
``load``, ``idle``, ``level``): the item's preferred agent first; ``blocking`` puts
first the agents whom the item shuts out of nothing new (for a kind that excludes
others, e.g. a chat excluding calls: agents already holding a chat), so that
exclusive work gathers on agents already committed to it and the others stay free
for the kinds it would shut them out of; then the least busy (share
of the item kind's capacity in use, then total items held), then the longest idle
(oldest last assignment; never assigned counts as idlest), then the highest
skill level on the item's skills. The agent id breaks any remaining tie, so the
ranking is a total order and deterministic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any

from contactcenter.routing.eligibility import AgentSnapshot, ItemSnapshot

_NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


def _level(agent: AgentSnapshot, item: ItemSnapshot) -> int:
    skills = list(item.skills) or ([item.queue_skill] if item.queue_skill else [])
    return sum(agent.skills.get(skill, 0) for skill in skills)


def rank_key(agent: AgentSnapshot, item: ItemSnapshot, order: Sequence[str],
             excludes: frozenset[str] = frozenset()) -> tuple[Any, ...]:
    """Return the sort key of an agent for an item (smaller is better).

    ``excludes`` are the kinds that holding the item's kind shuts out (the
    policy's ``excluded_by``); without any, ``blocking`` ranks everyone alike.
    """
    key: list[Any] = []
    for criterion in order:
        if criterion == "sticky":
            key.append(0 if item.preferred_agent_id == agent.user_id else 1)
        elif criterion == "blocking":
            key.append(0 if not excludes or agent.load.get(item.kind, 0) > 0 else 1)
        elif criterion == "load":
            maximum = agent.capacity.get(item.kind, 0)
            share = Fraction(agent.load.get(item.kind, 0), maximum) if maximum else Fraction(1)
            key.extend((share, agent.total_load))
        elif criterion == "idle":
            key.append(agent.last_assigned_at or _NEVER)
        elif criterion == "level":
            key.append(-_level(agent, item))
        else:
            raise ValueError(f"unknown ranking criterion {criterion!r}")
    key.append(agent.user_id)
    return tuple(key)


def rank_agents(agents: Iterable[AgentSnapshot], item: ItemSnapshot,
                order: Sequence[str] = ("sticky", "load", "idle", "level"),
                excludes: frozenset[str] = frozenset()) -> list[AgentSnapshot]:
    """Return the agents best first for the item (all assumed eligible)."""
    return sorted(agents, key=lambda agent: rank_key(agent, item, order, excludes))
