"""The whole routing policy: weights, queue rules and operating limits, from configuration.

The policy comes from a TOML or JSON rules file (``CONTACTCENTER_ROUTING_RULES_FILE``;
built-in defaults when unset; ``config/routing.toml`` is the documented sample) plus
the ``CONTACTCENTER_ROUTING_*`` settings. ``fifo_policy`` is the first-come,
first-served, round-robin baseline that benchmarks compare with.
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
from contactcenter.routing.rules import RANKING_KEYS, QueueRules, RuleStep

KINDS = ("ticket", "call", "chat")


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
    # PostgreSQL: commit transactions that only make offers without waiting for the
    # WAL flush (``[durability] async_offers`` in the rules file; see durability.py).
    async_offers: bool = False

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
    unknown = set(data) - {"weights", "default", "queues", "durability"}
    if unknown:
        raise RoutingConfigError(f"routing rules: unknown sections {sorted(unknown)}")
    default = _queue_rules(data.get("default", {}), QueueRules(), "default")
    queues = {str(slug): _queue_rules(rules, default, f"queues.{slug}")
              for slug, rules in data.get("queues", {}).items()}
    base = RoutingPolicy()
    durability = data.get("durability", {})
    if not isinstance(durability, Mapping) or set(durability) - {"async_offers"}:
        raise RoutingConfigError("durability: only async_offers = true|false is known")
    async_offers = durability.get("async_offers", base.async_offers)
    if not isinstance(async_offers, bool):
        raise RoutingConfigError("durability.async_offers must be true or false")
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
        async_offers=async_offers,
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


def fifo_policy(settings: Settings | None = None) -> RoutingPolicy:
    """Return the baseline benchmarks compare with: first come, first served, round robin.

    Every weight is zero (so items go strictly oldest first), every queue has one
    step (anyone in it) and agents are ranked by longest idle only. Capacities,
    offer timeouts and the other settings stay as configured.
    """
    base = load_policy(settings or Settings())
    zero = PriorityWeights(
        tiers=MappingProxyType({}), lifetime_value_points=0, contracts=MappingProxyType({}),
        contract_default=0, response_points=0, sla_bands=(), channels=MappingProxyType({}),
        age_points=0, manual=MappingProxyType({}))
    rules = QueueRules(steps=(RuleStep("anyone"),), ranking=("idle",),
                       targets=base.default_rules.targets)
    return RoutingPolicy(
        weights=zero, default_rules=rules, queues=MappingProxyType({
            slug: QueueRules(steps=rules.steps, ranking=rules.ranking, targets=q.targets)
            for slug, q in base.queues.items()}),
        capacity=base.capacity, offer_timeouts=base.offer_timeouts, wrap_up=base.wrap_up,
        exclusive=base.exclusive, lapse_limit=base.lapse_limit, sticky_window=dt.timedelta(0),
        presence_grace=base.presence_grace, decline_cooldown=base.decline_cooldown,
        async_offers=base.async_offers)
