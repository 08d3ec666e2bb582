"""Compute an item's priority from customer value, contract, SLA urgency, channel and age.

``priority_score`` is pure: the same inputs, weights and clock give the same
score, the same explanation ("VIP tier A, contract Gold, SLA due in 12 min") and
the same ``changes_at``, the next instant at which the score would change (an
age step or an SLA band boundary). The store keeps the score on the item and
rescores it only then, so ordering by the stored score is exact between
rescorings without recomputing anything per decision.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType


def _frozen(mapping: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class PriorityWeights:
    """The points each factor is worth; read from the routing rules file.

    :param tiers: points per customer value tier (``A`` the most valuable).
    :param tier_labels: how a tier reads in the explanation (``VIP tier A``).
    :param lifetime_value_step: currency per step of lifetime value points.
    :param lifetime_value_points: points per step, capped at ``lifetime_value_cap``.
    :param contracts: points per contract level (lower-case); unknown levels get
        ``contract_default``.
    :param response_points: extra points for the fastest response commitment,
        falling linearly to 0 at ``response_horizon_minutes``; a commitment also
        sets a deadline ``enqueued_at + response_minutes`` when it is sooner.
    :param sla_bands: ``(minutes_left, points)``: the points of the tightest band
        whose ``minutes_left`` the time to the deadline is at or under (0 is overdue).
    :param channels: points per channel, falling back to the item kind
        (``call``, ``chat``, ``ticket``).
    :param age_step_minutes: the age points grow by ``age_points`` every this
        many minutes waited, up to ``age_cap``.
    :param manual: points per manual priority (``urgent``, ``high``, ``normal``, ``low``).
    """

    tiers: Mapping[str, int] = field(default_factory=lambda: _frozen(
        {"A": 400, "B": 200, "C": 50}))
    tier_labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType(
        {"A": "VIP tier A"}))
    lifetime_value_step: int = 10_000
    lifetime_value_points: int = 10
    lifetime_value_cap: int = 100
    contracts: Mapping[str, int] = field(default_factory=lambda: _frozen(
        {"platinum": 400, "gold": 300, "silver": 150, "bronze": 60}))
    contract_default: int = 100
    response_points: int = 150
    response_horizon_minutes: int = 1440
    sla_bands: tuple[tuple[int, int], ...] = (
        (0, 700), (5, 550), (15, 400), (30, 250), (60, 120), (240, 40))
    channels: Mapping[str, int] = field(default_factory=lambda: _frozen(
        {"call": 600, "voice": 600, "chat": 350, "sms": 80, "ticket": 0}))
    age_step_minutes: int = 5
    age_points: int = 10
    age_cap: int = 300
    manual: Mapping[str, int] = field(default_factory=lambda: _frozen(
        {"urgent": 600, "high": 250, "normal": 0, "low": -100}))


@dataclass(frozen=True)
class PriorityInputs:
    """What an item's priority depends on."""

    kind: str
    channel: str
    enqueued_at: dt.datetime
    value_tier: str | None = None
    lifetime_value: Decimal | float | int | None = None
    contract_level: str | None = None
    response_minutes: int | None = None
    due_at: dt.datetime | None = None
    manual_priority: str = "normal"


@dataclass(frozen=True)
class PriorityScore:
    """An item's priority now, why, and when it next changes."""

    score: int
    reason: str
    components: tuple[tuple[str, int], ...]
    changes_at: dt.datetime | None


def _minutes_text(minutes: float) -> str:
    whole = max(1, math.ceil(minutes))
    if whole < 120:
        return f"{whole} min"
    hours, rest = divmod(whole, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def effective_due(inputs: PriorityInputs) -> dt.datetime | None:
    """Return the sooner of the SLA deadline and the contract's response commitment."""
    candidates = [d for d in (inputs.due_at,) if d is not None]
    if inputs.response_minutes is not None and inputs.response_minutes > 0:
        candidates.append(inputs.enqueued_at + dt.timedelta(minutes=inputs.response_minutes))
    return min(candidates) if candidates else None


def sla_points(due: dt.datetime, now: dt.datetime, weights: PriorityWeights
               ) -> tuple[int, str, dt.datetime | None]:
    """Return the SLA urgency points, their explanation and when they next change."""
    left = (due - now).total_seconds()
    bands = sorted(weights.sla_bands)
    for index, (minutes, points) in enumerate(bands):
        if left <= minutes * 60:
            if left <= 0:
                text = f"SLA overdue by {_minutes_text(-left / 60)}" if left < 0 else "SLA due now"
            else:
                text = f"SLA due in {_minutes_text(left / 60)}"
            if index == 0:
                return points, text, None
            return points, text, due - dt.timedelta(minutes=bands[index - 1][0])
    widest = bands[-1][0] if bands else None
    change = due - dt.timedelta(minutes=widest) if widest is not None else None
    return 0, f"SLA due in {_minutes_text(left / 60)}", change


def age_points(enqueued_at: dt.datetime, now: dt.datetime, weights: PriorityWeights
               ) -> tuple[int, dt.datetime | None]:
    """Return the points for time waited and when they next grow (None once capped)."""
    step = dt.timedelta(minutes=max(weights.age_step_minutes, 1))
    waited = max(now - enqueued_at, dt.timedelta(0))
    steps = int(waited / step)
    points = min(steps * weights.age_points, weights.age_cap)
    if weights.age_points <= 0 or points >= weights.age_cap:
        return points, None
    return points, enqueued_at + step * (steps + 1)


def lifetime_value_points(value: Decimal | float | None, weights: PriorityWeights) -> int:
    """Return the points for a customer's lifetime value (stepped and capped)."""
    if value is None or value <= 0 or weights.lifetime_value_step <= 0:
        return 0
    steps = int(Decimal(str(value)) // weights.lifetime_value_step)
    return min(steps * weights.lifetime_value_points, weights.lifetime_value_cap)


def priority_score(inputs: PriorityInputs, weights: PriorityWeights,
                   now: dt.datetime) -> PriorityScore:
    """Return an item's priority at ``now``: the score, its explanation and next change."""
    parts: list[tuple[str, int]] = []
    changes: list[dt.datetime] = []
    tier = (inputs.value_tier or "").strip().upper()
    if tier and weights.tiers.get(tier, 0):
        parts.append((weights.tier_labels.get(tier, f"tier {tier}"), weights.tiers[tier]))
    ltv = lifetime_value_points(inputs.lifetime_value, weights)
    if ltv:
        parts.append((f"lifetime value {int(inputs.lifetime_value or 0):,}", ltv))
    if inputs.contract_level:
        level = inputs.contract_level.strip()
        points = weights.contracts.get(level.lower(), weights.contract_default)
        label = f"contract {level.title()}"
        if inputs.response_minutes:
            horizon = max(weights.response_horizon_minutes, 1)
            share = max(0.0, 1 - inputs.response_minutes / horizon)
            points += int(weights.response_points * share)
            label += f" ({_minutes_text(inputs.response_minutes)} response)"
        parts.append((label, points))
    due = effective_due(inputs)
    if due is not None:
        points, text, change = sla_points(due, now, weights)
        if points:
            parts.append((text, points))
        if change is not None:
            changes.append(change)
    channel = weights.channels.get(inputs.channel, weights.channels.get(inputs.kind, 0))
    if channel:
        parts.append((inputs.channel if inputs.channel != inputs.kind else inputs.kind, channel))
    age, change = age_points(inputs.enqueued_at, now, weights)
    if age:
        waited = (now - inputs.enqueued_at).total_seconds() / 60
        parts.append((f"waiting {_minutes_text(waited)}", age))
    if change is not None:
        changes.append(change)
    manual = weights.manual.get(inputs.manual_priority, 0)
    if manual:
        parts.append((f"{inputs.manual_priority} priority", manual))
    score = sum(points for _label, points in parts)
    shown = [label for label, points in parts if points > 0]
    reason = ", ".join(shown) if shown else "standard"
    later = [c for c in changes if c > now]
    return PriorityScore(score, reason[:300], tuple(parts), min(later) if later else None)
