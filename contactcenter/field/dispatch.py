"""Gather dispatch facts with indexed queries and rank technicians (``planning``).

``suggest`` runs three queries whatever the number of technicians: the active
technicians holding every required skill (``field_technician_skills`` by skill,
grouped), their areas, and their visits that day (``ix_field_visits_technician_window``).
Calendars are read once per transaction (``calendar_of`` caches them).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contactcenter.accounts.models import User
from contactcenter.db import utcnow
from contactcenter.field.models import (
    OPEN_STATES,
    Technician,
    TechnicianArea,
    TechnicianSkill,
    Visit,
    VisitState,
)
from contactcenter.field.planning import Suggestion, TechnicianFacts, VisitFacts, rank_technicians
from contactcenter.sla.calendar import (
    Calendar,
    business_minutes_between,
    is_open,
    open_intervals,
)

LOOKAHEAD_DAYS = 8


def day_bounds(instant: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """Return the UTC day around an instant."""
    start = instant.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + dt.timedelta(days=1)


def candidate_query(skills: list[str]) -> Any:
    """Return the select of active technicians holding every skill (the benchmark baseline)."""
    query = select(Technician.user_id, User.name, Technician.calendar_id,
                   Technician.max_visits_per_day).join(User, User.id == Technician.user_id) \
        .where(Technician.active.is_(True), User.is_active.is_(True))
    if skills:
        holders = select(TechnicianSkill.user_id).where(TechnicianSkill.skill.in_(skills)) \
            .group_by(TechnicianSkill.user_id) \
            .having(func.count(TechnicianSkill.skill) == len(skills))
        query = query.where(Technician.user_id.in_(holders))
    return query


def technician_facts(session: Session, skills: list[str], since: dt.datetime,
                     window: tuple[dt.datetime, dt.datetime] | None = None,
                     exclude_visit: int | None = None) -> list[TechnicianFacts]:
    """Return the facts of every technician who could take a visit needing ``skills``.

    With a window, the day is the window's; without one, each technician's next
    working day from ``since`` (a Friday-evening visit is judged on Monday's load).
    """
    from contactcenter.sla.service import calendar_of

    rows = session.execute(candidate_query(skills)).all()
    if not rows:
        return []
    # Technicians share a handful of calendars: work each one's day out once, then
    # read only the visits of those days.
    first_day = day_bounds(window[0] if window else since)
    per_calendar: dict[int | None, tuple[tuple[dt.datetime, dt.datetime], float, bool]] = {}
    for calendar_id in {r.calendar_id for r in rows}:
        calendar = calendar_of(session, calendar_id)
        day = first_day if window else _next_working_day(calendar, since)
        working = business_minutes_between(calendar, day[0] if window else max(day[0], since),
                                           day[1])
        per_calendar[calendar_id] = (day, working,
                                     window is None or is_open(calendar, window[0]))
    horizon = (min(d[0][0] for d in per_calendar.values()),
               max(d[0][1] for d in per_calendar.values()))
    skill_map: dict[int, set[str]] = defaultdict(set)
    area_map: dict[int, set[str]] = defaultdict(set)
    booked: dict[int, list[tuple[dt.datetime, dt.datetime]]] = defaultdict(list)
    # The candidates again as a subquery, not as hundreds of bound ids.
    chosen = select(candidate_query(skills).subquery().c.user_id)
    for uid, skill in session.execute(select(TechnicianSkill.user_id, TechnicianSkill.skill)
                                      .where(TechnicianSkill.user_id.in_(chosen))):
        skill_map[uid].add(skill)
    for uid, area in session.execute(select(TechnicianArea.user_id, TechnicianArea.area)
                                     .where(TechnicianArea.user_id.in_(chosen))):
        area_map[uid].add(area)
    visits = select(Visit.technician_id, Visit.window_start, Visit.window_end,
                    Visit.duration_minutes).where(
        Visit.technician_id.in_(chosen), Visit.window_start >= horizon[0],
        Visit.window_start < horizon[1], Visit.state.in_(OPEN_STATES))
    if exclude_visit is not None:
        visits = visits.where(Visit.id != exclude_visit)
    for tech_id, begin, end, minutes in session.execute(visits):
        if tech_id is not None and begin is not None:
            booked[tech_id].append((begin, end or begin + dt.timedelta(minutes=minutes)))
    facts = []
    for r in rows:
        day, working, open_in_window = per_calendar[r.calendar_id]
        that_day = tuple(sorted(b for b in booked[r.user_id] if day[0] <= b[0] < day[1]))
        facts.append(TechnicianFacts(r.user_id, r.name, frozenset(skill_map[r.user_id]),
                                     frozenset(area_map[r.user_id]), working, that_day,
                                     r.max_visits_per_day, open_in_window))
    return facts


def _next_working_day(calendar: Calendar, since: dt.datetime
                      ) -> tuple[dt.datetime, dt.datetime]:
    """Return the UTC day of the calendar's next working time at or after ``since``."""
    if calendar.always_open:
        return day_bounds(since)
    for opens, closes in open_intervals(calendar, since):
        if closes > since:
            day = day_bounds(max(opens, since))
            if day[0] - day_bounds(since)[0] > dt.timedelta(days=LOOKAHEAD_DAYS - 1):
                break
            return day
    return day_bounds(since)


def suggest(session: Session, visit: Visit, now: dt.datetime | None = None, limit: int = 5
            ) -> list[Suggestion]:
    """Return the best technicians for a visit on its window's day (else today)."""
    now = now or utcnow()
    window = (visit.window_start, visit.window_end) if visit.window_start and visit.window_end \
        else None
    facts = technician_facts(session, visit.skill_list, now, window, exclude_visit=visit.id)
    return rank_technicians(VisitFacts(frozenset(visit.skill_list), visit.area,
                                       visit.duration_minutes, window), facts, limit)


def board(session: Session, day: dt.datetime) -> dict[str, Any]:
    """Return the dispatch board of a day: unassigned visits and each technician's visits."""
    from contactcenter.field.serialize import visit_card

    start, end = day_bounds(day)
    pending = session.scalars(select(Visit).where(Visit.state == VisitState.PENDING)
                              .order_by(Visit.due_at.is_(None), Visit.due_at, Visit.id)
                              .limit(200)).all()
    techs = session.execute(select(Technician.user_id, User.name, Technician.home_area)
                            .join(User, User.id == Technician.user_id)
                            .where(Technician.active.is_(True)).order_by(User.name)
                            .limit(500)).all()
    visits = session.scalars(select(Visit).where(
        Visit.technician_id.is_not(None), Visit.state != VisitState.CANCELLED,
        ((Visit.window_start >= start) & (Visit.window_start < end))
        | (Visit.window_start.is_(None) & Visit.state.in_(OPEN_STATES)))
        .order_by(Visit.window_start, Visit.id)).all()
    by_tech: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for v in visits:
        by_tech[v.technician_id or 0].append(visit_card(v))
    return {"day": start.date().isoformat(),
            "unassigned": [visit_card(v) for v in pending],
            "technicians": [{"id": t.user_id, "name": t.name, "home_area": t.home_area,
                             "visits": by_tech.get(t.user_id, [])} for t in techs]}
