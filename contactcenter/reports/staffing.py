"""Staffing for a queue: agents needed per interval, shrinkage, and forecasts from history.

``plan_staffing`` answers the two questions supervisors ask of Erlang C: how
good will service be with K agents, and how many agents does a target need
(then how many to schedule once breaks, training and absence take their
share). ``forecast_week`` turns a queue's own history into the contacts and
handle time expected per interval of the week (Monday 09:00-09:30, ...), the
average of the same interval over the last few weeks, which is what feeds the
calculator for tomorrow.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.reports.erlang import (
    ErlangInputError,
    ErlangResult,
    agents_for_service_level,
    evaluate,
    scheduled_headcount,
    traffic_intensity,
)
from contactcenter.routing.models import RoutingItem

MAX_INTERVAL_SECONDS = 7 * 86400
MAX_CONTACTS = 10_000_000
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class StaffingRequest:
    """What the calculator is asked (``agents`` or ``service_level``, not both)."""

    calls: float
    interval_seconds: int
    aht_seconds: float
    target_seconds: float
    agents: int | None = None
    service_level: float | None = None
    shrinkage: float = 0.0

    def validate(self) -> None:
        """Raise ``ErlangInputError`` for inputs outside what the model handles."""
        if not 0 < self.interval_seconds <= MAX_INTERVAL_SECONDS:
            raise ErlangInputError("interval must be between 1 second and 7 days")
        if not 0 <= self.calls <= MAX_CONTACTS:
            raise ErlangInputError(f"calls must be between 0 and {MAX_CONTACTS}")
        if not 0 < self.aht_seconds <= 86400:
            raise ErlangInputError("handle time must be between 1 second and a day")
        if not 0 <= self.target_seconds <= 86400:
            raise ErlangInputError("target answer time must be between 0 and a day")
        if (self.agents is None) == (self.service_level is None):
            raise ErlangInputError("give either agents or a target service level")
        if not 0 <= self.shrinkage < 1:
            raise ErlangInputError("shrinkage must be at least 0 and below 1")


@dataclass(frozen=True)
class StaffingPlan:
    """The calculator's answer: the Erlang C figures and the scheduled headcount."""

    request: StaffingRequest
    result: ErlangResult
    scheduled: int

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-ready form (inputs and outputs)."""
        r = self.request
        return {
            "inputs": {"calls": r.calls, "interval_seconds": r.interval_seconds,
                       "aht_seconds": r.aht_seconds, "target_seconds": r.target_seconds,
                       "agents": r.agents, "service_level": r.service_level,
                       "shrinkage": r.shrinkage},
            **self.result.to_json(),
            "agents_needed": self.result.agents,
            "scheduled_headcount": self.scheduled,
        }


def plan_staffing(request: StaffingRequest) -> StaffingPlan:
    """Evaluate a staffing level, or find the fewest agents for a service level."""
    request.validate()
    traffic = traffic_intensity(request.calls, request.interval_seconds, request.aht_seconds)
    if request.agents is not None:
        result = evaluate(traffic, request.agents, request.aht_seconds, request.target_seconds)
    else:
        assert request.service_level is not None
        result = agents_for_service_level(traffic, request.aht_seconds, request.target_seconds,
                                          request.service_level)
    return StaffingPlan(request, result, scheduled_headcount(result.agents, request.shrinkage))


@dataclass(frozen=True)
class IntervalForecast:
    """Expected contacts and handle time in one interval of the week."""

    weekday: int
    start_minute: int
    contacts: float
    aht_seconds: float | None

    @property
    def label(self) -> str:
        """Return ``Mon 09:30``."""
        hour, minute = divmod(self.start_minute, 60)
        return f"{WEEKDAYS[self.weekday]} {hour:02d}:{minute:02d}"

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return {"weekday": self.weekday, "start_minute": self.start_minute, "label": self.label,
                "contacts": round(self.contacts, 3),
                "aht_seconds": None if self.aht_seconds is None else round(self.aht_seconds, 1)}


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def forecast_week(session: Session, queue_id: int, now: dt.datetime, *, weeks: int = 4,
                  interval_minutes: int = 30, kind: str | None = None
                  ) -> list[IntervalForecast]:
    """Return the expected contacts per interval of the week from the last ``weeks`` weeks.

    Each interval's forecast is the mean over the weeks of the contacts that
    arrived in it (weeks with none count as zero), and its handle time the mean
    handle time of the contacts completed from it (None when none was). Only
    intervals that saw contacts are returned, in week order; the caller treats
    missing ones as zero. The weeks are whole weeks ending at ``now``'s day
    start, so a half-finished today never drags the figures down.
    """
    if not 1 <= weeks <= 52:
        raise ErlangInputError("weeks must be between 1 and 52")
    if interval_minutes not in (15, 30, 60):
        raise ErlangInputError("interval must be 15, 30 or 60 minutes")
    end = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - dt.timedelta(weeks=weeks)
    query = (select(RoutingItem.enqueued_at, RoutingItem.handle_seconds)
             .where(RoutingItem.queue_id == queue_id, RoutingItem.enqueued_at >= start,
                    RoutingItem.enqueued_at < end))
    if kind is not None:
        query = query.where(RoutingItem.kind == kind)
    counts: dict[tuple[int, int], int] = defaultdict(int)
    handle: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    for enqueued_at, seconds in session.execute(query.execution_options(yield_per=5000)):
        at = _aware(enqueued_at)
        minute = at.hour * 60 + at.minute
        key = (at.weekday(), minute - minute % interval_minutes)
        counts[key] += 1
        if seconds is not None:
            handle[key][0] += seconds
            handle[key][1] += 1
    return [IntervalForecast(day, minute, counts[(day, minute)] / weeks,
                             handle[(day, minute)][0] / handle[(day, minute)][1]
                             if handle[(day, minute)][1] else None)
            for day, minute in sorted(counts)]


def staff_forecast(forecasts: list[IntervalForecast], *, interval_minutes: int,
                   target_seconds: float, service_level: float, shrinkage: float,
                   default_aht_seconds: float) -> list[dict[str, Any]]:
    """Return, per forecast interval, the agents needed and the headcount to schedule."""
    rows = []
    for forecast in forecasts:
        aht = forecast.aht_seconds or default_aht_seconds
        plan = plan_staffing(StaffingRequest(
            calls=forecast.contacts, interval_seconds=interval_minutes * 60, aht_seconds=aht,
            target_seconds=target_seconds, service_level=service_level, shrinkage=shrinkage))
        rows.append({**forecast.to_json(), "agents_needed": plan.result.agents,
                     "scheduled_headcount": plan.scheduled,
                     "service_level": round(plan.result.service_level, 4),
                     "occupancy": round(plan.result.occupancy, 4)})
    return rows
