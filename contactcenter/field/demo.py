"""Demo data for field service: two technicians and a few visits on existing tickets.

``seed_demo`` is called by the product's demo loader after customers and tickets
exist. It is idempotent (it does nothing when the demo technicians exist) and
uses the same password as the other demo users.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.accounts.models import User
from contactcenter.config import Settings
from contactcenter.db import utcnow
from contactcenter.field import links
from contactcenter.field.service import (
    assign_visit,
    check_in,
    check_out,
    create_visit,
    record_part,
    save_technician,
    schedule_visit,
)
from contactcenter.sla.models import SlaCalendar
from contactcenter.tickets.models import OPEN_STATUSES, Ticket

TECHNICIANS = (("tech1@example.com", "Tomas Technician", "router,fiber,wifi", "north,centre", "55"),
               ("tech2@example.com", "Nina Fieldworker", "router,copper,tv", "south,centre", "50"))
PROBLEMS = ("Router does not power on; replace it", "Fiber line down at the wall socket",
            "Wi-Fi drops in the back rooms; install a mesh point", "TV box shows no signal")
ADDRESSES = (("14 Birch Lane", "north"), ("3 Harbour Road", "south"),
             ("77 Market Square", "centre"), ("9 Mill Street", "north"))


def seed_demo(session: Session, settings: Settings | None = None,
              now: dt.datetime | None = None) -> list[int]:
    """Create the demo technicians and visits; return the visit ids (empty if already there)."""
    from contactcenter.accounts.service import create_user, hash_password
    from contactcenter.demo import DEMO_PASSWORD

    settings = settings or Settings()
    now = now or utcnow()
    if session.scalar(select(User.id).where(User.email == TECHNICIANS[0][0])) is not None:
        return []
    calendar = session.scalar(select(SlaCalendar).where(SlaCalendar.name == "Field service"))
    if calendar is None:
        calendar = SlaCalendar(name="Field service", timezone="UTC",
                               hours="mon-sat 08:00-18:00")
        session.add(calendar)
        session.flush()
    digest = hash_password(DEMO_PASSWORD)
    techs = []
    for email, name, skills, areas, rate in TECHNICIANS:
        user = create_user(session, email, name, None, ["technician"])
        user.password_hash = digest
        session.flush()
        save_technician(session, user.id, skills=skills, areas=areas, calendar_id=calendar.id,
                        hourly_rate=rate)
        techs.append(user)
    actor = session.scalar(select(User.id).where(User.email == "supervisor@example.com")) \
        or techs[0].id
    tickets = session.scalars(select(Ticket).where(Ticket.status.in_(OPEN_STATUSES))
                              .order_by(Ticket.id).limit(len(PROBLEMS))).all()
    ids = []
    for index, ticket in enumerate(tickets):
        address, area = ADDRESSES[index]
        visit = create_visit(session, settings, ticket, actor, {
            "address": address, "area": area, "problem": PROBLEMS[index],
            "skills": ["router"] if index % 2 == 0 else [], "duration_minutes": 60}, now)
        ids.append(visit.id)
        windows = links.candidate_windows(session, settings, visit, now)
        if index == 0 and windows:
            schedule_visit(session, visit, windows[0][0], windows[0][1], actor, "phone", now)
            assign_visit(session, visit, techs[0].id, actor, now)
        elif index == 1:
            # The finished visit happened this morning: nothing in the demo lies in the future.
            started = now - dt.timedelta(hours=2)
            assign_visit(session, visit, techs[1].id, actor, started)
            check_in(session, visit, techs[1].id, started)
            record_part(session, visit, techs[1].id, {"name": "Wall socket", "sku": "WS-1",
                                                      "quantity": 1, "unit_cost": "12.50"})
            check_out(session, settings, visit, techs[1].id,
                      {"outcome": "fixed", "notes": "Replaced the socket",
                       "signed_by": "Customer"}, started + dt.timedelta(minutes=45))
    session.flush()
    return ids
