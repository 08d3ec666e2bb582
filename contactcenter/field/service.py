"""Field-service use cases on a session: create, schedule, assign, work and close visits.

Nothing here commits: the caller (a view, the CLI, a job) commits, so a visit
is never stored without its events and its note on the ticket. Each step of a
visit's life is written on the ticket as an internal note, so the ticket
timeline and the customer's history on every channel show the visit.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from contactcenter.config import Settings
from contactcenter.customers.models import Contract, Customer
from contactcenter.db import utcnow
from contactcenter.events import SUPERVISORS_ROOM, record_event, room
from contactcenter.field.models import (
    OPEN_STATES,
    Confirmation,
    CustomerSite,
    Outcome,
    Technician,
    Visit,
    VisitPart,
    VisitPhoto,
    VisitState,
)
from contactcenter.field.planning import onsite_due, onsite_minutes_for, parse_commitments
from contactcenter.tickets.errors import InvalidTransitionError
from contactcenter.tickets.models import Ticket, TicketStatus
from contactcenter.tickets.service import add_reply, change_status

PRIORITIES = ("low", "normal", "high", "urgent")
MAX_TEXT = 4000


class FieldError(ValueError):
    """A field-service request that cannot be done (bad input or wrong state)."""


def _text(value: Any, name: str, limit: int, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise FieldError(f"{name} must be text")
    text = str(value).strip()
    if len(text) > limit:
        raise FieldError(f"{name} is longer than {limit} characters")
    if required and not text:
        raise FieldError(f"{name} is required")
    return text


def clean_list(value: Any, name: str) -> str:
    """Return a comma-joined list of short lowercase words from a list or a comma text."""
    if value is None or value == "":
        return ""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or len(items) > 20:
        raise FieldError(f"{name} must be a list of at most 20 items")
    cleaned = []
    for item in items:
        if not isinstance(item, str) or len(item.strip()) > 64:
            raise FieldError(f"each of {name} must be a short text")
        word = item.strip().lower()
        if word and word not in cleaned:
            cleaned.append(word)
    return ",".join(cleaned)


def get_visit(session: Session, visit_id: int) -> Visit:
    """Return a visit or raise ``FieldError``."""
    visit = session.get(Visit, visit_id)
    if visit is None:
        raise FieldError("no such visit")
    return visit


def site_of(session: Session, customer_id: int) -> CustomerSite | None:
    """Return the customer's stored site address, if any."""
    return session.get(CustomerSite, customer_id)


def active_contract(session: Session, customer: Customer, today: dt.date) -> Contract | None:
    """Return the customer's (or their organisation's) contract in force today, newest first."""
    owner = Contract.customer_id == customer.id
    if customer.organisation_id is not None:
        owner = or_(owner, Contract.organisation_id == customer.organisation_id)
    return session.scalar(select(Contract).where(
        owner, Contract.starts_on <= today, Contract.ends_on >= today)
        .order_by(Contract.starts_on.desc(), Contract.id.desc()).limit(1))


def note(session: Session, visit: Visit, actor_id: int | None, text: str,
         now: dt.datetime) -> None:
    """Write a visit's step on its ticket as an internal note (the ticket's timeline)."""
    ticket = session.get(Ticket, visit.ticket_id)
    author = actor_id or visit.created_by_id
    if ticket is None:
        return
    add_reply(session, ticket, author, f"[Visit #{visit.id}] {text}",  # type: ignore[arg-type]
              internal=True, now=now)


def visit_rooms(visit: Visit, *extra: int | None) -> list[str]:
    """The rooms that hear about a visit: supervisors, its technician, its ticket."""
    rooms = [SUPERVISORS_ROOM, room("ticket", visit.ticket_id)]
    for user_id in (visit.technician_id, *extra):
        if user_id is not None and room("agent", user_id) not in rooms:
            rooms.append(room("agent", user_id))
    return rooms


def summary(visit: Visit) -> dict[str, Any]:
    """Return the small, non-financial payload events carry."""
    return {"visit_id": visit.id, "ticket_id": visit.ticket_id, "state": visit.state,
            "technician_id": visit.technician_id, "area": visit.area,
            "priority": visit.priority,
            "window_start": visit.window_start.isoformat() if visit.window_start else None,
            "due_at": visit.due_at.isoformat() if visit.due_at else None}


def create_visit(session: Session, settings: Settings, ticket: Ticket, actor_id: int,
                 data: dict[str, Any], now: dt.datetime | None = None, *,
                 follow_up_of_id: int | None = None) -> Visit:
    """Create a visit for a ticket, its on-site deadline from the customer's contract.

    The address defaults to the customer's site; an edited address is kept as
    the site for the next visit. The deadline is the contract's on-site commitment
    (its own, else its level's) in business minutes on its calendar, from now.
    """
    from contactcenter.sla.service import calendar_of

    now = now or utcnow()
    customer = session.get(Customer, ticket.customer_id)
    assert customer is not None
    site = site_of(session, customer.id)
    address = _text(data.get("address"), "address", 500) or (site.address if site else "")
    if not address:
        raise FieldError("address is required (the customer has no site address yet)")
    area = clean_list(data.get("area"), "area") or (site.area if site else "")
    if "," in area:
        raise FieldError("area must be one area")
    priority = data.get("priority") or "normal"
    if not isinstance(priority, str) or priority not in PRIORITIES:
        raise FieldError(f"priority must be one of {', '.join(PRIORITIES)}")
    duration = data.get("duration_minutes", 60)
    if not isinstance(duration, int) or isinstance(duration, bool) or not 15 <= duration <= 720:
        raise FieldError("duration_minutes must be a whole number from 15 to 720")
    if site is None:
        session.add(CustomerSite(customer_id=customer.id, address=address, area=area))
    elif data.get("address") or data.get("area"):
        site.address, site.area = address, area
    contract = active_contract(session, customer, now.date())
    minutes = onsite_minutes_for(contract.level if contract else None,
                                 parse_commitments(settings.field_onsite_commitments),
                                 settings.field_default_onsite_minutes,
                                 contract.onsite_minutes if contract else None)
    calendar = calendar_of(session, contract.calendar_id if contract else None)
    visit = Visit(ticket_id=ticket.id, customer_id=customer.id,
                  contract_id=contract.id if contract else None, created_by_id=actor_id,
                  address=address, area=area,
                  problem=_text(data.get("problem"), "problem", MAX_TEXT, required=True),
                  skills=clean_list(data.get("skills"), "skills"),
                  parts_needed=_text(data.get("parts_needed"), "parts_needed", 500),
                  priority=priority, duration_minutes=duration, state=VisitState.PENDING,
                  onsite_minutes=minutes, due_at=onsite_due(calendar, now, minutes),
                  follow_up_of_id=follow_up_of_id,
                  created_at=now, updated_at=now)
    session.add(visit)
    session.flush()
    due = f", on site by {visit.due_at:%Y-%m-%d %H:%M} UTC" if visit.due_at else ""
    note(session, visit, actor_id, f"Visit created: {visit.problem[:200]} at {address}{due}.",
         now)
    record_event(session, "field.visit_created", summary(visit), visit_rooms(visit))
    return visit


def schedule_visit(session: Session, visit: Visit, start: dt.datetime, end: dt.datetime,
                   actor_id: int | None, via: str, now: dt.datetime | None = None) -> Visit:
    """Fix the visit's window as agreed with the customer (by phone, or their link)."""
    now = now or utcnow()
    if visit.state not in (VisitState.PENDING, VisitState.ASSIGNED):
        raise FieldError("only a visit not yet started can be rescheduled")
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise FieldError("the window needs a timezone-aware start before its end")
    if end - start > dt.timedelta(hours=12):
        raise FieldError("a window is at most 12 hours")
    visit.window_start, visit.window_end = start, end
    visit.confirmation = Confirmation.CONFIRMED
    visit.confirmed_at, visit.confirmed_via = now, via[:16]
    visit.updated_at = now
    session.flush()
    note(session, visit, actor_id,
         f"Customer confirmed {start:%Y-%m-%d %H:%M}-{end:%H:%M} UTC ({via}).", now)
    record_event(session, "field.slot_confirmed", summary(visit), visit_rooms(visit))
    return visit


def assign_visit(session: Session, visit: Visit, technician_id: int | None, actor_id: int,
                 now: dt.datetime | None = None) -> Visit:
    """Give a visit to a technician (None: back to unassigned); they hear it live."""
    from contactcenter.accounts.models import User

    now = now or utcnow()
    if visit.state not in (VisitState.PENDING, VisitState.ASSIGNED):
        raise FieldError("a started or finished visit cannot be reassigned")
    name = "nobody"
    if technician_id is not None:
        tech = session.get(Technician, technician_id)
        user = session.get(User, technician_id)
        if tech is None or user is None or not tech.active or not user.is_active:
            raise FieldError("no such active technician")
        name = user.name
    previous = visit.technician_id
    visit.technician_id = technician_id
    visit.assigned_at = now if technician_id else None
    visit.state = VisitState.ASSIGNED if technician_id else VisitState.PENDING
    visit.updated_at = now
    session.flush()
    note(session, visit, actor_id, f"Assigned to {name}.", now)
    record_event(session, "field.visit_assigned", {**summary(visit), "previous": previous},
                 visit_rooms(visit, previous))
    return visit


def _own(visit: Visit, technician_id: int, *states: VisitState) -> None:
    if visit.technician_id != technician_id:
        raise FieldError("no such visit")
    if states and visit.state not in states:
        raise FieldError(f"the visit is {visit.state}")


def _updated(session: Session, visit: Visit) -> None:
    session.flush()
    record_event(session, "field.visit_updated", summary(visit), visit_rooms(visit))


def start_travel(session: Session, visit: Visit, technician_id: int,
                 now: dt.datetime | None = None) -> Visit:
    """Record that the technician set off (travel time runs until check-in)."""
    _own(visit, technician_id, VisitState.ASSIGNED)
    visit.travel_started_at = now or utcnow()
    _updated(session, visit)
    return visit


def check_in(session: Session, visit: Visit, technician_id: int,
             now: dt.datetime | None = None) -> Visit:
    """Record arrival on site; arriving after the deadline breaches it now."""
    now = now or utcnow()
    _own(visit, technician_id, VisitState.ASSIGNED)
    visit.state = VisitState.IN_PROGRESS
    visit.checked_in_at = now
    if visit.travel_started_at is not None:
        visit.travel_minutes = max(0, round((now - visit.travel_started_at).total_seconds() / 60))
    late = visit.due_at is not None and now > visit.due_at
    note(session, visit, technician_id,
         f"Technician checked in at {now:%H:%M} UTC{' (after the on-site deadline)' if late else ''}.",
         now)
    _updated(session, visit)
    return visit


def record_part(session: Session, visit: Visit, technician_id: int, data: dict[str, Any]
                ) -> VisitPart:
    """Add a part used on the visit (name, SKU, quantity, unit cost) and update its cost."""
    _own(visit, technician_id, VisitState.IN_PROGRESS)
    name = _text(data.get("name"), "name", 200, required=True)
    quantity = data.get("quantity", 1)
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= 1000:
        raise FieldError("quantity must be a whole number from 1 to 1000")
    try:
        cost = Decimal(str(data.get("unit_cost", "0") or "0"))
    except InvalidOperation:
        raise FieldError("unit_cost must be a number") from None
    if not cost.is_finite() or not Decimal(0) <= cost <= Decimal(100000):
        raise FieldError("unit_cost must be between 0 and 100000")
    part = VisitPart(visit_id=visit.id, name=name, sku=_text(data.get("sku"), "sku", 64),
                     quantity=quantity, unit_cost=cost.quantize(Decimal("0.01")))
    session.add(part)
    visit.parts_cost = (visit.parts_cost or Decimal(0)) + part.unit_cost * quantity
    _updated(session, visit)
    return part


def record_photo(session: Session, settings: Settings, visit: Visit, technician_id: int,
                 filename: str, data: bytes) -> VisitPhoto:
    """Store a photo after checking its size and its type by magic bytes."""
    from contactcenter.channels.chat.uploads import UploadError, check_upload
    from contactcenter.tickets.attachments import store_bytes

    _own(visit, technician_id, VisitState.IN_PROGRESS)
    allowed = [t.strip() for t in settings.field_photo_types.split(",") if t.strip()]
    try:
        name, content_type = check_upload(filename, data, allowed, settings.field_photo_max_bytes)
    except UploadError as exc:
        raise FieldError(str(exc)) from None
    digest = store_bytes(settings.data_dir, data)
    photo = VisitPhoto(visit_id=visit.id, sha256=digest, filename=name[:200],
                       content_type=content_type, size=len(data))
    session.add(photo)
    _updated(session, visit)
    return photo


def check_out(session: Session, settings: Settings, visit: Visit, technician_id: int,
              data: dict[str, Any], now: dt.datetime | None = None) -> Visit:
    """Close the visit with its outcome, notes and the customer's sign-off.

    Work and travel time and labour cost are computed here. ``another_visit``
    reopens the ticket and creates the follow-up visit (same place, problem and
    skills, unassigned); a satisfaction survey follows unless nobody was home.
    """
    from contactcenter.field.links import create_survey

    now = now or utcnow()
    _own(visit, technician_id, VisitState.IN_PROGRESS)
    outcome = data.get("outcome")
    if not isinstance(outcome, str) or outcome not in {o.value for o in Outcome}:
        raise FieldError("outcome must be fixed, another_visit or customer_absent")
    visit.notes = _text(data.get("notes"), "notes", MAX_TEXT)
    visit.signed_by = _text(data.get("signed_by"), "signed_by", 200)
    assert visit.checked_in_at is not None
    travel = data.get("travel_minutes")
    if travel is not None:
        if not isinstance(travel, int) or isinstance(travel, bool) or not 0 <= travel <= 1440:
            raise FieldError("travel_minutes must be a whole number from 0 to 1440")
        visit.travel_minutes = travel
    visit.checked_out_at = now
    visit.work_minutes = max(0, round((now - visit.checked_in_at).total_seconds() / 60))
    visit.outcome = outcome
    visit.state = VisitState.COMPLETED
    tech = session.get(Technician, technician_id)
    rate = tech.hourly_rate if tech else Decimal(0)
    hours = Decimal(visit.work_minutes + (visit.travel_minutes or 0)) / Decimal(60)
    visit.labour_cost = (rate * hours).quantize(Decimal("0.01"))
    words = {"fixed": "fixed", "another_visit": "needs another visit",
             "customer_absent": "customer absent"}[outcome]
    signed = f" Signed by {visit.signed_by}." if visit.signed_by else ""
    note(session, visit, technician_id,
         f"Technician checked out at {now:%H:%M} UTC: {words}. {visit.work_minutes} min on site."
         f"{signed}{(' Notes: ' + visit.notes) if visit.notes else ''}", now)
    _updated(session, visit)
    if outcome != Outcome.CUSTOMER_ABSENT:
        create_survey(session, settings, visit, now)
    if outcome != Outcome.FIXED:
        follow_up(session, settings, visit, technician_id, now)
    return visit


def follow_up(session: Session, settings: Settings, visit: Visit, actor_id: int,
              now: dt.datetime) -> Visit:
    """Reopen the ticket and create the next visit for the same problem."""
    ticket = session.get(Ticket, visit.ticket_id)
    assert ticket is not None
    if ticket.status in (TicketStatus.PENDING, TicketStatus.ON_HOLD, TicketStatus.SOLVED):
        try:
            change_status(session, ticket, TicketStatus.OPEN, actor_id, now)
        except InvalidTransitionError:
            pass
    return create_visit(session, settings, ticket, visit.created_by_id or actor_id, {
        "address": visit.address, "area": visit.area, "problem": visit.problem,
        "skills": visit.skills, "parts_needed": visit.parts_needed,
        "priority": visit.priority, "duration_minutes": visit.duration_minutes},
        now, follow_up_of_id=visit.id)


def cancel_visit(session: Session, visit: Visit, actor_id: int,
                 now: dt.datetime | None = None) -> Visit:
    """Cancel a visit not yet started."""
    now = now or utcnow()
    if visit.state not in (VisitState.PENDING, VisitState.ASSIGNED):
        raise FieldError("only a visit not yet started can be cancelled")
    previous = visit.technician_id
    visit.state = VisitState.CANCELLED
    note(session, visit, actor_id, "Visit cancelled.", now)
    session.flush()
    record_event(session, "field.visit_updated", summary(visit), visit_rooms(visit, previous))
    return visit


def visits_of_ticket(session: Session, ticket_id: int) -> list[Visit]:
    """Return a ticket's visits, oldest first."""
    return list(session.scalars(select(Visit).where(Visit.ticket_id == ticket_id)
                                .order_by(Visit.id)))


def day_of(session: Session, technician_id: int, day_start: dt.datetime,
           day_end: dt.datetime) -> list[Visit]:
    """Return a technician's visits in a period (and their open ones without a window)."""
    return list(session.scalars(select(Visit).where(
        Visit.technician_id == technician_id,
        or_(Visit.window_start.is_(None) & Visit.state.in_(OPEN_STATES),
            (Visit.window_start >= day_start) & (Visit.window_start < day_end)))
        .order_by(Visit.window_start.is_(None), Visit.window_start, Visit.id)))


def save_technician(session: Session, user_id: int, *, skills: Any = "", areas: Any = "",
                    calendar_id: int | None = None, hourly_rate: Any = "0",
                    max_visits_per_day: int = 6, home_area: str = "") -> Technician:
    """Create or update a technician's profile, skills and service areas."""
    from contactcenter.field.models import TechnicianArea, TechnicianSkill

    tech = session.get(Technician, user_id)
    if tech is None:
        tech = Technician(user_id=user_id)
        session.add(tech)
    tech.calendar_id = calendar_id
    tech.hourly_rate = Decimal(str(hourly_rate))
    tech.max_visits_per_day = max_visits_per_day
    area_list = clean_list(areas, "areas")
    tech.home_area = home_area or (area_list.split(",")[0] if area_list else "")
    session.flush()
    session.execute(delete(TechnicianSkill).where(TechnicianSkill.user_id == user_id))
    session.execute(delete(TechnicianArea).where(TechnicianArea.user_id == user_id))
    for skill in filter(None, clean_list(skills, "skills").split(",")):
        session.add(TechnicianSkill(user_id=user_id, skill=skill))
    for area in filter(None, area_list.split(",")):
        session.add(TechnicianArea(user_id=user_id, area=area))
    session.flush()
    return tech
