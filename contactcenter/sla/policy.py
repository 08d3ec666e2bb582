"""Choose the SLA policy of a ticket and its targets: pure functions of plain data.

A contract whose response commitment names a policy wins; otherwise policies are
tried in position order and the first whose every set condition matches the
ticket applies. The reason says which conditions matched, so the agent and the
report can see why a ticket runs on the clock it does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PRIORITY_ORDER = ("low", "normal", "high", "urgent")


@dataclass(frozen=True)
class TicketFacts:
    """What policy conditions look at."""

    channel: str
    queue_id: int | None
    value_tier: str | None
    organisation_id: int | None
    contract_id: int | None = None
    contract_level: str | None = None
    contract_policy_id: int | None = None
    contract_name: str = ""


@dataclass(frozen=True)
class PolicyRule:
    """A policy's identity and conditions (None: any value matches)."""

    id: int
    name: str
    position: int = 100
    channel: str | None = None
    queue_id: int | None = None
    value_tier: str | None = None
    organisation_id: int | None = None
    contract_level: str | None = None


@dataclass(frozen=True)
class PolicyChoice:
    """The policy that applies (None when none does) and why."""

    policy_id: int | None
    name: str
    reason: str


def _conditions(rule: PolicyRule) -> list[tuple[str, object, str]]:
    return [(label, value, attr) for label, value, attr in (
        ("channel", rule.channel, "channel"), ("queue", rule.queue_id, "queue_id"),
        ("tier", rule.value_tier, "value_tier"),
        ("organisation", rule.organisation_id, "organisation_id"),
        ("contract level", rule.contract_level, "contract_level")) if value is not None]


def matches(rule: PolicyRule, facts: TicketFacts) -> bool:
    """Whether every condition the rule sets holds for the ticket."""
    for _label, value, attr in _conditions(rule):
        actual = getattr(facts, attr)
        if isinstance(value, str) and isinstance(actual, str):
            if value.casefold() != actual.casefold():
                return False
        elif value != actual:
            return False
    return True


def choose_policy(rules: Iterable[PolicyRule], facts: TicketFacts) -> PolicyChoice:
    """Return the policy for a ticket: the contract's commitment, else the first match."""
    ordered = sorted(rules, key=lambda r: (r.position, r.id))
    if facts.contract_policy_id is not None:
        for rule in ordered:
            if rule.id == facts.contract_policy_id:
                return PolicyChoice(rule.id, rule.name,
                                    f"contract {facts.contract_name} commits to {rule.name}")
    for rule in ordered:
        if matches(rule, facts):
            conds = _conditions(rule)
            why = (", ".join(f"{label} = {value}" for label, value, _ in conds)
                   if conds else "no conditions (default)")
            return PolicyChoice(rule.id, rule.name,
                                f"{rule.name} (position {rule.position}): {why}")
    return PolicyChoice(None, "", "no policy matched")


@dataclass(frozen=True)
class Target:
    """A target row: business minutes of a kind, for one priority or any (None)."""

    kind: str
    priority: str | None
    minutes: int


def target_minutes(targets: Sequence[Target], kind: str, priority: str) -> int | None:
    """Return the minutes for a kind at a priority: the exact priority's, else the any-priority one."""
    exact = [t.minutes for t in targets if t.kind == kind and t.priority == priority]
    if exact:
        return exact[0]
    general = [t.minutes for t in targets if t.kind == kind and t.priority is None]
    return general[0] if general else None


def raised_priority(priority: str, to: str | None = None) -> str:
    """Return a priority one step up (or at least ``to``), never lowering it."""
    current = PRIORITY_ORDER.index(priority) if priority in PRIORITY_ORDER else 1
    wanted = PRIORITY_ORDER.index(to) if to in PRIORITY_ORDER else min(current + 1, 3)
    return PRIORITY_ORDER[max(current, wanted)]
