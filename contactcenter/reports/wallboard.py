"""The wallboard's live figures per queue and kind, and the agents' states.

A snapshot carries both the figures and the raw material the browser needs to
keep them current from events alone (the Zulip pattern: snapshot plus events
equals a fresh snapshot): per tile the items waiting (id and arrival time),
the items answered today (so a re-assignment is not counted twice) and the
outcomes of the last 15 minutes (time and wait); per agent their presence,
since when, and the items they hold. The page applies ``item.*``, ``offer.*``
and ``agent.presence_changed`` events to that material and refetches a
snapshot only when the socket asks for a resync or the day rolls over.

The counts come from ``contactcenter.routing.stats.queue_stats`` (waiting,
offered, agents by presence, slots) and the windows from
``contactcenter.reports.queries.service_levels``, the report's own
definition, so the wallboard and a report over the same window agree.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.accounts.models import User
from contactcenter.config import Settings
from contactcenter.reports.queries import ReportFilter, outcome_figures, service_levels
from contactcenter.routing.models import (
    AgentCapacity,
    AgentState,
    ItemState,
    Presence,
    RoutingItem,
)
from contactcenter.routing.policy import RoutingPolicy
from contactcenter.routing.stats import queue_stats

RECENT = dt.timedelta(minutes=15)
MAX_WAITING_LISTED = 2000


@dataclass(frozen=True)
class Thresholds:
    """When tiles turn amber and red (from the ``CONTACTCENTER_REPORTS_*`` settings)."""

    sl_goal_percent: int = 80
    sl_goals: tuple[tuple[str, int], ...] = ()
    sl_red_margin_percent: int = 10
    wait_amber_seconds: int = 60
    wait_red_seconds: int = 180
    abandon_amber_percent: int = 5
    abandon_red_percent: int = 10

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        """Read the thresholds; per-queue goals come as ``slug=percent`` pairs."""
        goals: list[tuple[str, int]] = []
        for part in settings.reports_service_level_targets.split(","):
            slug, sep, value = part.strip().partition("=")
            if sep and slug.strip() and value.strip().isdigit():
                goals.append((slug.strip(), min(100, int(value))))
        return cls(min(100, settings.reports_service_level_percent), tuple(goals),
                   settings.reports_sl_red_margin_percent, settings.reports_wait_amber_seconds,
                   settings.reports_wait_red_seconds, settings.reports_abandon_amber_percent,
                   settings.reports_abandon_red_percent)

    def goal_for(self, slug: str) -> int:
        """Return a queue's service level goal in percent."""
        return dict(self.sl_goals).get(slug, self.sl_goal_percent)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-ready form the page colours tiles with."""
        return {"sl_red_margin_percent": self.sl_red_margin_percent,
                "wait_amber_seconds": self.wait_amber_seconds,
                "wait_red_seconds": self.wait_red_seconds,
                "abandon_amber_percent": self.abandon_amber_percent,
                "abandon_red_percent": self.abandon_red_percent}


def level_of_service(service_level: float | None, goal_percent: int, t: Thresholds) -> str:
    """Return ``ok``, ``amber`` or ``red`` for a service level against its goal."""
    if service_level is None:
        return "ok"
    percent = service_level * 100
    if percent < goal_percent - t.sl_red_margin_percent:
        return "red"
    return "amber" if percent < goal_percent else "ok"


def level_of_wait(seconds: int, t: Thresholds) -> str:
    """Return ``ok``, ``amber`` or ``red`` for the longest wait."""
    if seconds >= t.wait_red_seconds:
        return "red"
    return "amber" if seconds >= t.wait_amber_seconds else "ok"


def level_of_abandonment(abandonment: float | None, t: Thresholds) -> str:
    """Return ``ok``, ``amber`` or ``red`` for the abandonment rate."""
    if abandonment is None:
        return "ok"
    percent = abandonment * 100
    if percent >= t.abandon_red_percent:
        return "red"
    return "amber" if percent >= t.abandon_amber_percent else "ok"


def agent_state_of(presence: str, load: int) -> str:
    """Return the wallboard state: available, on_contact, wrap_up, away or offline."""
    if presence == Presence.OFFLINE:
        return "offline"
    if presence == Presence.AWAY:
        return "away"
    if presence == Presence.WRAP_UP:
        return "wrap_up"
    if presence == Presence.BUSY or load > 0:
        return "on_contact"
    return "available"


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def snapshot(session: Session, now: dt.datetime, policy: RoutingPolicy,
             thresholds: Thresholds) -> dict[str, Any]:
    """Return the wallboard: tiles per queue and kind, and every agent's state."""
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    end = now + dt.timedelta(microseconds=1)
    stats = queue_stats(session, now, policy, day_start=day_start)
    today = {(r["queue_id"], r["kind"]): r for r in service_levels(
        session, ReportFilter(day_start, end), policy)}
    recent = {(r["queue_id"], r["kind"]): r for r in service_levels(
        session, ReportFilter(now - RECENT, end), policy)}
    lower = min(day_start, now - RECENT)

    waiting: dict[tuple[int, str], list[list[Any]]] = defaultdict(list)
    for item_id, q, kind, enqueued_at in session.execute(
            select(RoutingItem.id, RoutingItem.queue_id, RoutingItem.kind,
                   RoutingItem.enqueued_at)
            .where(RoutingItem.state.in_((ItemState.WAITING, ItemState.OFFERED)))
            .order_by(RoutingItem.enqueued_at, RoutingItem.id).limit(MAX_WAITING_LISTED)):
        waiting[(q, kind)].append([item_id, enqueued_at.isoformat()])
    answered_ids: dict[tuple[int, str], list[int]] = defaultdict(list)
    outcomes: dict[tuple[int, str], list[list[Any]]] = defaultdict(list)
    for item_id, q, kind, answered_at, abandoned_at, wait in session.execute(
            select(RoutingItem.id, RoutingItem.queue_id, RoutingItem.kind,
                   RoutingItem.answered_at, RoutingItem.abandoned_at, RoutingItem.wait_seconds)
            .where((RoutingItem.answered_at >= lower) | (RoutingItem.abandoned_at >= lower))):
        if answered_at is not None and answered_at >= day_start:
            answered_ids[(q, kind)].append(item_id)
        if answered_at is not None and answered_at >= now - RECENT:
            outcomes[(q, kind)].append([answered_at.isoformat(), wait])
        if abandoned_at is not None and abandoned_at >= now - RECENT:
            outcomes[(q, kind)].append([abandoned_at.isoformat(), None])

    tiles = []
    for entry in stats:
        key = (entry.queue_id, entry.kind)
        day = today.get(key) or outcome_figures(0, 0, 0, 0)
        last = recent.get(key) or outcome_figures(0, 0, 0, 0)
        items = waiting.get(key, [])
        count = entry.waiting + entry.offered
        shown = bool(count or day["answered"] or day["abandoned"])
        longest = (max(0, int((now - dt.datetime.fromisoformat(items[0][1])).total_seconds()))
                   if items else 0)
        goal = thresholds.goal_for(entry.queue_slug)
        tiles.append({
            "queue_id": entry.queue_id, "queue": entry.queue_slug, "kind": entry.kind,
            "active": shown, "target_seconds": entry.target_seconds, "sl_goal_percent": goal,
            "waiting_now": count, "longest_wait_seconds": longest,
            "last_15_min": {k: last[k] for k in ("answered", "within_target", "abandoned",
                                                 "service_level", "abandonment",
                                                 "asa_seconds")},
            "today": {k: day[k] for k in ("answered", "within_target", "abandoned",
                                          "service_level", "abandonment", "asa_seconds")},
            "today_wait_total": round((day["asa_seconds"] or 0) * day["answered"]),
            "agents": entry.agents, "free_slots": entry.free_slots,
            "staffed_slots": entry.staffed_slots,
            "levels": {"wait": level_of_wait(longest, thresholds),
                       "sl_15": level_of_service(last["service_level"], goal, thresholds),
                       "sl_today": level_of_service(day["service_level"], goal, thresholds),
                       "abandonment": level_of_abandonment(day["abandonment"], thresholds)},
            "waiting": items, "answered_ids": answered_ids.get(key, []),
            "recent": sorted(outcomes.get(key, []), key=lambda o: o[0]),
        })
    return {"now": now.isoformat(), "day_start": day_start.isoformat(),
            "thresholds": thresholds.to_json(), "tiles": tiles,
            "agents": list_agents(session, now)}


def list_agents(session: Session, now: dt.datetime) -> list[dict[str, Any]]:
    """Return every agent with presence, wallboard state, time in state, load and capacity."""
    capacity: dict[int, dict[str, list[int]]] = defaultdict(dict)
    for user_id, kind, maximum, load in session.execute(
            select(AgentCapacity.user_id, AgentCapacity.kind, AgentCapacity.maximum,
                   AgentCapacity.load)):
        capacity[user_id][kind] = [int(load), int(maximum)]
    held: dict[int, list[list[Any]]] = defaultdict(list)
    for item_id, agent_id, answered_at in session.execute(
            select(RoutingItem.id, RoutingItem.agent_id, RoutingItem.answered_at)
            .where(RoutingItem.state == ItemState.ASSIGNED)):
        if agent_id is not None:
            held[agent_id].append([item_id, _iso(answered_at)])
    agents = []
    for user_id, name, email, presence, since, team_id in session.execute(
            select(AgentState.user_id, User.name, User.email, AgentState.presence,
                   AgentState.presence_since, AgentState.team_id)
            .join(User, User.id == AgentState.user_id).order_by(User.name, User.id)):
        items = held.get(user_id, [])
        load = sum(v[0] for v in capacity[user_id].values())
        state = agent_state_of(presence, max(load, len(items)))
        state_since = since
        if state == "on_contact" and presence == Presence.AVAILABLE and items:
            starts = [dt.datetime.fromisoformat(a) for _i, a in items if a]
            state_since = max(since, min(starts)) if starts else since
        agents.append({"id": user_id, "name": name or email, "presence": presence,
                       "state": state, "since": state_since.isoformat(),
                       "seconds_in_state": max(0, int((now - state_since).total_seconds())),
                       "team_id": team_id, "capacity": capacity[user_id],
                       "held": items})
    return agents
