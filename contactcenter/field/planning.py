"""Pure field-service decisions: commitments, offered windows, technician ranking.

Nothing here touches the database or the clock: the store gathers facts with
indexed queries and passes them in, so every rule is unit-tested with plain data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from contactcenter.sla.calendar import Calendar, add_business_minutes, open_intervals

MAX_SLOT_DAYS = 21
SLOTS_PER_DAY = 3


def parse_commitments(text: str) -> dict[str, int]:
    """Read ``"Premium=480,Standard=960"`` into ``{"premium": 480, "standard": 960}``.

    Levels are matched case-insensitively; malformed or negative entries raise
    ``ValueError`` so a bad setting is caught at startup, not on the first visit.
    """
    result: dict[str, int] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        level, sep, minutes = part.partition("=")
        if not sep or not level.strip() or not minutes.strip().isdigit():
            raise ValueError(f"bad on-site commitment {part!r} (want level=minutes)")
        result[level.strip().lower()] = int(minutes)
    return result


def onsite_minutes_for(level: str | None, commitments: dict[str, int], default: int,
                       own: int | None = None) -> int | None:
    """Return the on-site commitment in business minutes (None: none).

    A contract's ``own`` commitment wins; else its level's in ``commitments``; else
    ``default``.
    """
    if own:
        return own
    if level and level.lower() in commitments:
        return commitments[level.lower()]
    return default or None


def onsite_due(calendar: Calendar, start: dt.datetime, minutes: int | None) -> dt.datetime | None:
    """Return when a technician must be on site: ``minutes`` business minutes after ``start``."""
    if minutes is None:
        return None
    return add_business_minutes(calendar, start, minutes)


def _round_up(instant: dt.datetime, step_minutes: int = 30) -> dt.datetime:
    instant = instant.replace(second=0, microsecond=0)
    extra = instant.minute % step_minutes
    return instant + dt.timedelta(minutes=(step_minutes - extra) % step_minutes)


def offer_windows(calendar: Calendar, after: dt.datetime, slot_minutes: int, count: int,
                  busy: Sequence[tuple[dt.datetime, dt.datetime]] = (),
                  per_day: int = SLOTS_PER_DAY) -> list[tuple[dt.datetime, dt.datetime]]:
    """Return up to ``count`` windows of ``slot_minutes`` inside working time after ``after``.

    Windows start on the half hour, never overlap a ``busy`` interval, and at most
    ``per_day`` fall on one local day so the customer gets a choice of days.
    A 24x7 calendar offers 08:00-20:00 UTC: nobody wants a technician at 3 am.
    """
    if slot_minutes <= 0 or count <= 0:
        return []
    length = dt.timedelta(minutes=slot_minutes)
    start = _round_up(after)
    horizon = start + dt.timedelta(days=MAX_SLOT_DAYS)
    result: list[tuple[dt.datetime, dt.datetime]] = []
    per: dict[dt.date, int] = {}
    for opens, closes in _working(calendar, start, horizon):
        cursor = _round_up(max(opens, start))
        while cursor + length <= closes and len(result) < count:
            end = cursor + length
            day = cursor.astimezone(calendar.zone).date()
            if per.get(day, 0) >= per_day:
                break
            if not any(b_start < end and cursor < b_end for b_start, b_end in busy):
                result.append((cursor, end))
                per[day] = per.get(day, 0) + 1
            cursor = end
        if len(result) >= count:
            break
    return result


def _working(calendar: Calendar, start: dt.datetime, horizon: dt.datetime
             ) -> Iterable[tuple[dt.datetime, dt.datetime]]:
    if calendar.always_open:
        day = start.date()
        while True:
            opens = dt.datetime(day.year, day.month, day.day, 8, tzinfo=dt.UTC)
            if opens > horizon:
                return
            yield opens, opens + dt.timedelta(hours=12)
            day += dt.timedelta(days=1)
    for opens, closes in open_intervals(calendar, start):
        if opens > horizon:
            return
        yield opens, closes


@dataclass(frozen=True)
class VisitFacts:
    """What a suggestion needs to know about a visit."""

    skills: frozenset[str]
    area: str
    duration_minutes: int
    window: tuple[dt.datetime, dt.datetime] | None = None


@dataclass(frozen=True)
class TechnicianFacts:
    """What a suggestion needs to know about one candidate technician on the day."""

    user_id: int
    name: str
    skills: frozenset[str]
    areas: frozenset[str]
    working_minutes: float
    booked: tuple[tuple[dt.datetime, dt.datetime], ...] = ()
    max_visits: int = 6
    open_in_window: bool = True


@dataclass(frozen=True)
class Suggestion:
    """A ranked candidate with the reasons a dispatcher reads."""

    user_id: int
    name: str
    score: float
    free_minutes: int
    load: int
    in_area: bool
    reasons: tuple[str, ...] = field(default=())


def _booked_minutes(booked: Sequence[tuple[dt.datetime, dt.datetime]]) -> float:
    return sum((end - start).total_seconds() / 60 for start, end in booked)


def rank_technicians(visit: VisitFacts, candidates: Iterable[TechnicianFacts],
                     limit: int = 5) -> list[Suggestion]:
    """Rank technicians for a visit: skills required, then area, free time and load.

    A technician missing a required skill, already at their daily maximum, without
    the visit's duration free, off shift in the visit's window, or booked over the
    window is left out. Among the rest, being in the visit's area matters most
    (travel), then free time, then fewer visits already that day; ties go to the
    lower user id so the same facts always give the same answer.
    """
    ranked: list[Suggestion] = []
    for tech in candidates:
        if not visit.skills <= tech.skills:
            continue
        load = len(tech.booked)
        if load >= tech.max_visits:
            continue
        free = tech.working_minutes - _booked_minutes(tech.booked)
        if free < visit.duration_minutes:
            continue
        if visit.window is not None:
            w_start, w_end = visit.window
            if not tech.open_in_window:
                continue
            if any(b_start < w_end and w_start < b_end for b_start, b_end in tech.booked):
                continue
        in_area = bool(visit.area) and visit.area in tech.areas
        score = (50.0 if in_area else 0.0) + min(free, 480) / 24 - 8 * load
        reasons = ["has the skills" if visit.skills else "no special skills needed",
                   "covers the area" if in_area else "outside their areas",
                   f"{int(free)} min free", f"{load} visit{'s' if load != 1 else ''} that day"]
        ranked.append(Suggestion(tech.user_id, tech.name, round(score, 2), int(free), load,
                                 in_area, tuple(reasons)))
    ranked.sort(key=lambda s: (-s.score, s.user_id))
    return ranked[:limit]


def travel_and_work(travel_started_at: dt.datetime | None, checked_in_at: dt.datetime,
                    checked_out_at: dt.datetime) -> tuple[int | None, int]:
    """Return (travel minutes, work minutes) from the technician's taps."""
    travel = None
    if travel_started_at is not None and travel_started_at <= checked_in_at:
        travel = round((checked_in_at - travel_started_at).total_seconds() / 60)
    work = max(0, round((checked_out_at - checked_in_at).total_seconds() / 60))
    return travel, work
