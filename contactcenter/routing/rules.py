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

The policy comes from a TOML or JSON file (``CONTACTCENTER_ROUTING_RULES_FILE``;
built-in defaults when unset; ``config/routing.toml`` is the documented sample)
plus the ``CONTACTCENTER_ROUTING_*`` settings.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from contactcenter.config import Settings
from contactcenter.routing.errors import RoutingConfigError
from contactcenter.routing.priority import PriorityWeights

RANKING_KEYS = ("sticky", "load", "idle", "level")
KINDS = ("ticket", "call", "chat")


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

    steps: tuple[RuleStep, ...] = (
        RuleStep("sticky agent", preferred=True, timeout=30),
        RuleStep("skilled agents", min_level=3, timeout=90),
        RuleStep("anyone in the queue"),
    )
    ranking: tuple[str, ...] = ("sticky", "load", "idle", "level")
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


@dataclass(frozen=True)
class RoutingPolicy:
    """Everything routing decides with: weights, queue rules and operating limits."""

    weights: PriorityWeights = field(default_factory=PriorityWeights)
    default_rules: QueueRules = field(default_factory=QueueRules)
    queues: Mapping[str, QueueRules] = field(default_factory=lambda: MappingProxyType({}))
    capacity: Mapping[str, int] = field(default_factory=lambda: MappingProxyType(
        {"call": 1, "chat": 3, "ticket": 10}))
    offer_timeouts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType(
        {"call": 20, "chat": 30, "ticket": 120}))
    wrap_up: Mapping[str, int] = field(default_factory=lambda: MappingProxyType(
        {"call": 30, "chat": 0, "ticket": 0}))
    exclusive: frozenset[tuple[str, str]] = frozenset({("call", "chat"), ("chat", "call")})
    lapse_limit: int = 3
    sticky_window: dt.timedelta = dt.timedelta(hours=72)
    presence_grace: dt.timedelta = dt.timedelta(seconds=60)
    decline_cooldown: dt.timedelta = dt.timedelta(seconds=300)

    def rules_for(self, queue_slug: str | None) -> QueueRules:
        """Return a queue's rules (the defaults when it has none of its own)."""
        if queue_slug is None:
            return self.default_rules
        return self.queues.get(queue_slug, self.default_rules)

    def offer_timeout(self, kind: str) -> int:
        """Return seconds an offer of this kind stays open (0: assign without offering)."""
        return int(self.offer_timeouts.get(kind, 60))

    def capacity_for(self, kind: str) -> int:
        """Return the default capacity for an item kind."""
        return int(self.capacity.get(kind, 1))

    def excluded_by(self, kind: str) -> frozenset[str]:
        """Return the kinds whose holding blocks offering ``kind``."""
        return frozenset(b for a, b in self.exclusive if a == kind) | frozenset(
            a for a, b in self.exclusive if b == kind)


def parse_kind_map(name: str, raw: str) -> dict[str, int]:
    """Parse ``call=20,chat=30`` into a mapping of kind to non-negative int."""
    result: dict[str, int] = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in KINDS:
            raise RoutingConfigError(f"{name}: expected kind=number with kinds {KINDS}, "
                                     f"got {part!r}")
        try:
            result[key.strip()] = max(0, int(value.strip()))
        except ValueError as exc:
            raise RoutingConfigError(f"{name}: {value!r} is not a number") from exc
    return result


def parse_exclusive(raw: str) -> frozenset[tuple[str, str]]:
    """Parse ``call:chat`` pairs: holding either kind blocks offering the other."""
    pairs: set[tuple[str, str]] = set()
    for part in raw.split(","):
        if not part.strip():
            continue
        a, sep, b = part.strip().partition(":")
        if not sep or a not in KINDS or b not in KINDS:
            raise RoutingConfigError(f"CONTACTCENTER_ROUTING_EXCLUSIVE: bad pair {part!r}")
        pairs |= {(a, b), (b, a)}
    return frozenset(pairs)


def _steps(raw: Any, where: str) -> tuple[RuleStep, ...]:
    if not isinstance(raw, list) or not raw:
        raise RoutingConfigError(f"{where}.steps must be a non-empty list")
    known = {f.name for f in fields(RuleStep)}
    steps: list[RuleStep] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or set(entry) - known:
            raise RoutingConfigError(f"{where}.steps[{index}]: unknown keys "
                                     f"{sorted(set(entry) - known) if isinstance(entry, dict) else entry}")
        step = RuleStep(**entry)
        if step.min_level is not None and step.min_level < 1:
            raise RoutingConfigError(f"{where}.steps[{index}]: min_level starts at 1")
        if step.timeout is not None and step.timeout < 0:
            raise RoutingConfigError(f"{where}.steps[{index}]: a timeout cannot be negative")
        if step.preferred and any(not s.preferred for s in steps):
            raise RoutingConfigError(f"{where}.steps[{index}]: preferred steps must come first")
        steps.append(step)
    if any(s.timeout is None for s in steps[:-1]):
        raise RoutingConfigError(f"{where}.steps: every step but the last needs a timeout")
    return tuple(steps)


def _queue_rules(raw: Mapping[str, Any], base: QueueRules, where: str) -> QueueRules:
    unknown = set(raw) - {"steps", "ranking", "targets"}
    if unknown:
        raise RoutingConfigError(f"{where}: unknown keys {sorted(unknown)}")
    ranking = tuple(raw.get("ranking", base.ranking))
    if set(ranking) - set(RANKING_KEYS):
        raise RoutingConfigError(f"{where}.ranking: use only {RANKING_KEYS}")
    targets = {**base.targets, **{k: int(v) for k, v in raw.get("targets", {}).items()}}
    steps = _steps(raw["steps"], where) if "steps" in raw else base.steps
    return QueueRules(steps, ranking, MappingProxyType(targets))


def _weights(raw: Mapping[str, Any]) -> PriorityWeights:
    known = {f.name: f for f in fields(PriorityWeights)}
    defaults = PriorityWeights()
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise RoutingConfigError(f"weights: unknown key {key!r}")
        current = getattr(defaults, key)
        if isinstance(current, Mapping):
            values[key] = MappingProxyType({str(k): v for k, v in value.items()})
        elif key == "sla_bands":
            values[key] = tuple((int(m), int(p)) for m, p in value)
        else:
            values[key] = int(value)
    return PriorityWeights(**values)


def parse_policy(data: Mapping[str, Any], settings: Settings | None = None) -> RoutingPolicy:
    """Build a policy from a parsed rules file and the routing settings."""
    settings = settings or Settings()
    unknown = set(data) - {"weights", "default", "queues"}
    if unknown:
        raise RoutingConfigError(f"routing rules: unknown sections {sorted(unknown)}")
    default = _queue_rules(data.get("default", {}), QueueRules(), "default")
    queues = {str(slug): _queue_rules(rules, default, f"queues.{slug}")
              for slug, rules in data.get("queues", {}).items()}
    base = RoutingPolicy()
    return RoutingPolicy(
        weights=_weights(data.get("weights", {})),
        default_rules=default,
        queues=MappingProxyType(queues),
        capacity=MappingProxyType({**base.capacity, **parse_kind_map(
            "CONTACTCENTER_ROUTING_CAPACITY", settings.routing_capacity)}),
        offer_timeouts=MappingProxyType({**base.offer_timeouts, **parse_kind_map(
            "CONTACTCENTER_ROUTING_OFFER_TIMEOUTS", settings.routing_offer_timeouts)}),
        wrap_up=MappingProxyType({**base.wrap_up, **parse_kind_map(
            "CONTACTCENTER_ROUTING_WRAP_UP_SECONDS", settings.routing_wrap_up_seconds)}),
        exclusive=parse_exclusive(settings.routing_exclusive),
        lapse_limit=settings.routing_lapse_limit,
        sticky_window=dt.timedelta(hours=settings.routing_sticky_hours),
        presence_grace=dt.timedelta(seconds=settings.routing_presence_grace_seconds),
        decline_cooldown=dt.timedelta(seconds=settings.routing_decline_cooldown_seconds),
    )


def read_rules_file(path: Path) -> dict[str, Any]:
    """Read a TOML or JSON rules file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RoutingConfigError(f"cannot read routing rules {path}: {exc}") from exc
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise RoutingConfigError(f"routing rules {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise RoutingConfigError(f"routing rules {path}: expected a table at the top")
    return data


_cache: dict[tuple[Any, ...], RoutingPolicy] = {}


def load_policy(settings: Settings) -> RoutingPolicy:
    """Return the policy of these settings (the rules file re-read when it changes)."""
    path = Path(settings.routing_rules_file).expanduser() if settings.routing_rules_file else None
    mtime = path.stat().st_mtime_ns if path is not None and path.exists() else None
    key = (settings.routing_rules_file, mtime, settings.routing_capacity,
           settings.routing_offer_timeouts, settings.routing_wrap_up_seconds,
           settings.routing_exclusive, settings.routing_lapse_limit,
           settings.routing_sticky_hours, settings.routing_presence_grace_seconds,
           settings.routing_decline_cooldown_seconds)
    policy = _cache.get(key)
    if policy is None:
        data = read_rules_file(path) if path is not None else {}
        policy = parse_policy(data, settings)
        _cache.clear()
        _cache[key] = policy
    return policy


def default_policy() -> RoutingPolicy:
    """Return the built-in policy (the default settings and no rules file)."""
    return load_policy(Settings())
