"""Routing rules and the whole routing policy, read from configuration.

Each queue has TaskRouter-style ordered steps ("preferred agent for 30 s, then
skilled agents, then anyone after 2 min"): a step names which agents qualify and
how long it lasts before the next, wider step. Steps widen cumulatively: at step
``k`` an agent who qualifies for any step up to ``k`` may take the item. Leading
``preferred`` steps apply only to items that have a preferred (sticky) agent; for
the others the item's rule clock starts that much earlier, so they skip them.

Because widening depends only on time, each agent has, per queue, an age
threshold (``agent_threshold``): the item's rule clock must be that old. The
store turns that into one indexed comparison per queue.

``policy`` reads the rules from configuration.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

RANKING_KEYS = ("sticky", "blocking", "load", "idle", "level")


@dataclass(frozen=True)
class RuleStep:
    """One step of a queue's rules: who qualifies, and for how long before widening.

    ``preferred`` steps target only the item's preferred agent. Otherwise an agent
    qualifies when their level on ``skill`` (default: the queue's skill) is at
    least ``min_level`` and, if ``team`` is set, they are in that team.
    ``timeout`` is how many seconds the step lasts (None: the last step).
    """

    name: str = "anyone"
    preferred: bool = False
    skill: str | None = None
    min_level: int | None = None
    team: str | None = None
    timeout: int | None = None


@dataclass(frozen=True)
class QueueRules:
    """A queue's steps, agent ranking order and service-level targets per kind."""

    # The default serves the customer first: the sticky agent when free, else anyone
    # qualified in the queue, longest idle first, except that exclusive work (a chat,
    # which shuts its agent out of calls) goes first to agents already holding some,
    # keeping the others free for the calls that outrank it. Narrower steps (e.g. "tier-2 skilled
    # agents for 90 s") belong in the rules file, where a center chooses to trade wait
    # for expertise; simulate_day shows what they cost.
    steps: tuple[RuleStep, ...] = (
        RuleStep("sticky agent", preferred=True, timeout=10),
        RuleStep("anyone in the queue"),
    )
    ranking: tuple[str, ...] = ("sticky", "blocking", "idle", "load", "level")
    targets: Mapping[str, int] = field(default_factory=lambda: MappingProxyType(
        {"call": 20, "chat": 60, "ticket": 4 * 3600}))

    def target_for(self, kind: str) -> int:
        """Return the service-level target in seconds for an item kind."""
        return int(self.targets.get(kind, 60))


def step_starts(rules: QueueRules) -> tuple[int, ...]:
    """Return the second (on the item's rule clock) at which each step starts."""
    starts: list[int] = []
    at = 0
    for step in rules.steps:
        starts.append(at)
        at += step.timeout or 0
    return tuple(starts)


def preferred_lead(rules: QueueRules) -> int:
    """Return how long the leading preferred steps last, in seconds."""
    total = 0
    for step in rules.steps:
        if not step.preferred:
            break
        total += step.timeout or 0
    return total


def rules_clock(rules: QueueRules, enqueued_at: dt.datetime, has_preferred: bool) -> dt.datetime:
    """Return when an item's rule clock starts: earlier by the preferred steps it skips."""
    if has_preferred:
        return enqueued_at
    return enqueued_at - dt.timedelta(seconds=preferred_lead(rules))


def active_step(rules: QueueRules, rules_since: dt.datetime, now: dt.datetime) -> int:
    """Return the index of the step an item is in at ``now``."""
    elapsed = (now - rules_since).total_seconds()
    current = 0
    for index, start in enumerate(step_starts(rules)):
        if elapsed >= start:
            current = index
    return current


def next_widening(rules: QueueRules, rules_since: dt.datetime, now: dt.datetime
                  ) -> dt.datetime | None:
    """Return when the item next moves to a wider step (None on the last)."""
    for start in step_starts(rules):
        at = rules_since + dt.timedelta(seconds=start)
        if at > now:
            return at
    return None


def qualifies(step: RuleStep, queue_skill: str | None, team: str | None,
              levels: Mapping[str, int]) -> bool:
    """Whether an agent (team, skill levels) qualifies for a non-preferred step."""
    if step.preferred:
        return False
    if step.team is not None and step.team != team:
        return False
    skill = step.skill or queue_skill
    if step.min_level is not None and skill is not None:
        return levels.get(skill, 0) >= step.min_level
    return True


def agent_threshold(rules: QueueRules, queue_skill: str | None, team: str | None,
                    levels: Mapping[str, int]) -> int | None:
    """Return how old (seconds on the rule clock) an item must be for this agent to take it.

    None means the agent qualifies for no step of the queue (only as a preferred agent).
    """
    if not rules.steps:
        return 0
    for step, start in zip(rules.steps, step_starts(rules), strict=True):
        if qualifies(step, queue_skill, team, levels):
            return start
    return None
