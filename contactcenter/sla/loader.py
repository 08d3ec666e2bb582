"""Load business calendars and SLA policies from a JSON document (``config/sla.example.json``).

Calendars and policies are matched by name: loading the same file twice
changes nothing, and a changed file updates them in place. Every value is
validated before anything is written (``SlaConfigError`` names the problem).

Shape::

    {"calendars": [{"name": "Office Moscow", "timezone": "Europe/Moscow",
                    "hours": "mon-fri 09:00-18:00", "holiday_country": "RU",
                    "closed_days": ["2026-12-31"], "special_hours": {"2026-12-30": "09:00-15:00"}}],
     "policies": [{"name": "Gold", "position": 10, "calendar": "Office Moscow",
                   "pause_on_hold": true, "warn_percent": 80,
                   "match": {"channel": "email", "queue": "support", "tier": "A",
                             "organisation": "ORG-EXTERNAL-ID", "contract_level": "Gold"},
                   "targets": {"first_response": {"urgent": 15, "*": 60},
                               "next_response": 120, "resolution": 1440}}]}
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from contactcenter.customers.models import Organisation
from contactcenter.sla.calendar import CalendarError, build_calendar
from contactcenter.sla.models import (
    ClockKind,
    SlaCalendar,
    SlaCalendarException,
    SlaPolicy,
    SlaTarget,
)
from contactcenter.sla.policy import PRIORITY_ORDER
from contactcenter.tickets.models import Queue

MAX_ITEMS = 500
MAX_MINUTES = 525_600
MATCH_KEYS = {"channel", "queue", "tier", "organisation", "contract_level"}


class SlaConfigError(ValueError):
    """A calendar or policy definition that does not validate."""


def _text(obj: dict[str, Any], key: str, limit: int, *, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise SlaConfigError(f"{key} is required")
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise SlaConfigError(f"{key} must be text of at most {limit} characters")
    return value.strip()


def _day(text: Any) -> dt.date:
    try:
        return dt.date.fromisoformat(str(text))
    except ValueError as exc:
        raise SlaConfigError(f"{text!r} is not a date (YYYY-MM-DD)") from exc


def load_calendar(session: Session, spec: dict[str, Any]) -> SlaCalendar:
    """Create or update one calendar with its closed days and special hours."""
    name = _text(spec, "name", 100, required=True)
    timezone = _text(spec, "timezone", 64) or "UTC"
    hours = _text(spec, "hours", 1000) or "24x7"
    country = _text(spec, "holiday_country", 8)
    subdivision = _text(spec, "holiday_subdivision", 16)
    closed = [_day(d) for d in spec.get("closed_days") or []][:MAX_ITEMS]
    special_raw = spec.get("special_hours") or {}
    if not isinstance(special_raw, dict):
        raise SlaConfigError("special_hours must map dates to hours")
    special = {_day(k): str(v) for k, v in list(special_raw.items())[:MAX_ITEMS]}
    try:
        build_calendar(timezone, hours, holiday_country=country,
                       holiday_subdivision=subdivision, closed_days=set(closed),
                       special_hours=special)
    except CalendarError as exc:
        raise SlaConfigError(f"calendar {name!r}: {exc}") from exc
    row = session.scalar(select(SlaCalendar).where(SlaCalendar.name == name))
    if row is None:
        row = SlaCalendar(name=name)
        session.add(row)
    row.timezone, row.hours = timezone, hours
    row.holiday_country, row.holiday_subdivision = country, subdivision
    session.flush()
    session.execute(delete(SlaCalendarException).where(
        SlaCalendarException.calendar_id == row.id))
    for day in closed:
        session.add(SlaCalendarException(calendar_id=row.id, day=day, hours="",
                                         note="closed"))
    for day, text in special.items():
        if day not in closed:
            session.add(SlaCalendarException(calendar_id=row.id, day=day, hours=text,
                                             note="special hours"))
    session.info.pop("sla_calendars", None)
    return row


def _minutes(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_MINUTES:
        raise SlaConfigError(f"{what} must be a whole number of minutes from 1 to {MAX_MINUTES}")
    return value


def _targets(spec: Any, name: str) -> list[tuple[str, str | None, int]]:
    if not isinstance(spec, dict) or not spec:
        raise SlaConfigError(f"policy {name!r} needs targets")
    out = []
    for kind, value in spec.items():
        if kind not in {k.value for k in ClockKind}:
            raise SlaConfigError(f"policy {name!r}: unknown target {kind!r}")
        per = value if isinstance(value, dict) else {"*": value}
        for priority, minutes in per.items():
            if priority != "*" and priority not in PRIORITY_ORDER:
                raise SlaConfigError(f"policy {name!r}: unknown priority {priority!r}")
            out.append((kind, None if priority == "*" else priority,
                        _minutes(minutes, f"{name} {kind}")))
    return out


def load_policy(session: Session, spec: dict[str, Any]) -> SlaPolicy:
    """Create or update one policy and replace its targets."""
    name = _text(spec, "name", 100, required=True)
    assert name is not None
    match = spec.get("match") or {}
    if not isinstance(match, dict) or set(match) - MATCH_KEYS:
        raise SlaConfigError(f"policy {name!r}: match keys are {sorted(MATCH_KEYS)}")
    calendar_name = _text(spec, "calendar", 100)
    calendar_id = None
    if calendar_name:
        calendar_id = session.scalar(select(SlaCalendar.id).where(
            SlaCalendar.name == calendar_name))
        if calendar_id is None:
            raise SlaConfigError(f"policy {name!r}: no calendar {calendar_name!r}")
    queue_id = None
    if match.get("queue"):
        queue_id = session.scalar(select(Queue.id).where(Queue.slug == str(match["queue"])))
        if queue_id is None:
            raise SlaConfigError(f"policy {name!r}: no queue {match['queue']!r}")
    organisation_id = None
    if match.get("organisation"):
        organisation_id = session.scalar(select(Organisation.id).where(
            Organisation.external_id == str(match["organisation"])))
        if organisation_id is None:
            raise SlaConfigError(f"policy {name!r}: no organisation {match['organisation']!r}")
    position = spec.get("position", 100)
    warn = spec.get("warn_percent", 80)
    if not isinstance(position, int) or not 0 <= position <= 100_000:
        raise SlaConfigError(f"policy {name!r}: position must be 0..100000")
    if not isinstance(warn, int) or not 0 <= warn <= 100:
        raise SlaConfigError(f"policy {name!r}: warn_percent must be 0..100 (0: no warning)")
    targets = _targets(spec.get("targets"), name)
    row = session.scalar(select(SlaPolicy).where(SlaPolicy.name == name))
    if row is None:
        row = SlaPolicy(name=name)
        session.add(row)
    row.description = (_text(spec, "description", 500) or "")
    row.position, row.warn_percent = position, warn
    row.active = bool(spec.get("active", True))
    row.pause_on_hold = bool(spec.get("pause_on_hold", True))
    row.calendar_id = calendar_id
    row.match_channel = _text(match, "channel", 16)
    row.match_queue_id = queue_id
    row.match_tier = _text(match, "tier", 8)
    row.match_organisation_id = organisation_id
    row.match_contract_level = _text(match, "contract_level", 50)
    session.flush()
    session.execute(delete(SlaTarget).where(SlaTarget.policy_id == row.id))
    for kind, priority, minutes in targets:
        session.add(SlaTarget(policy_id=row.id, kind=kind, priority=priority, minutes=minutes))
    session.flush()
    return row


def load_config(session: Session, data: Any) -> dict[str, int]:
    """Load calendars, then policies, from a parsed JSON document (the caller commits)."""
    if not isinstance(data, dict):
        raise SlaConfigError("the document must be a JSON object")
    calendars = data.get("calendars") or []
    policies = data.get("policies") or []
    if not isinstance(calendars, list) or not isinstance(policies, list) \
            or len(calendars) > MAX_ITEMS or len(policies) > MAX_ITEMS:
        raise SlaConfigError(f"calendars and policies must be lists of at most {MAX_ITEMS}")
    for spec in calendars:
        if not isinstance(spec, dict):
            raise SlaConfigError("each calendar must be an object")
        load_calendar(session, spec)
    for spec in policies:
        if not isinstance(spec, dict):
            raise SlaConfigError("each policy must be an object")
        load_policy(session, spec)
    return {"calendars": len(calendars), "policies": len(policies)}
