"""JSON shapes of visits: a card for boards, and the technician's view (nothing financial).

The technician's view is built field by field from what the visit needs: the
customer's name and phone, the address, the ticket's messages as text, parts
and photos. No costs, contract values, balances or purchases are ever in it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from contactcenter.customers.models import Customer, IdentityKind
from contactcenter.field.models import Visit, VisitPart, VisitPhoto
from contactcenter.tickets.models import Message, Ticket


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def visit_card(visit: Visit) -> dict[str, Any]:
    """Return the short form of a visit for boards and lists."""
    return {"id": visit.id, "ticket_id": visit.ticket_id, "state": visit.state,
            "address": visit.address, "area": visit.area, "problem": visit.problem[:300],
            "skills": visit.skill_list, "priority": visit.priority,
            "duration_minutes": visit.duration_minutes,
            "window_start": _iso(visit.window_start), "window_end": _iso(visit.window_end),
            "confirmation": visit.confirmation, "due_at": _iso(visit.due_at),
            "breached": visit.breached_at is not None, "warned": visit.warned_at is not None,
            "technician_id": visit.technician_id, "outcome": visit.outcome,
            "checked_in_at": _iso(visit.checked_in_at),
            "checked_out_at": _iso(visit.checked_out_at)}


def parts_of(session: Session, visit: Visit) -> list[VisitPart]:
    """Return the parts used on a visit."""
    return list(session.scalars(select(VisitPart).where(VisitPart.visit_id == visit.id)
                                .order_by(VisitPart.id)))


def photos_of(session: Session, visit: Visit) -> list[VisitPhoto]:
    """Return the photos of a visit."""
    return list(session.scalars(select(VisitPhoto).where(VisitPhoto.visit_id == visit.id)
                                .order_by(VisitPhoto.id)))


def technician_view(session: Session, visit: Visit, *, with_history: bool = True,
                    articles: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Return everything a technician needs for one of their visits, and nothing more."""
    customer = session.get(Customer, visit.customer_id)
    ticket = session.get(Ticket, visit.ticket_id)
    assert customer is not None and ticket is not None
    data = visit_card(visit)
    data.update({
        "ticket": {"number": ticket.number, "subject": ticket.subject},
        "customer": {"name": customer.name,
                     "phone": customer.address_of(IdentityKind.PHONE) or ""},
        "parts_needed": visit.parts_needed, "notes": visit.notes, "signed_by": visit.signed_by,
        "travel_minutes": visit.travel_minutes, "work_minutes": visit.work_minutes,
        "travel_started_at": _iso(visit.travel_started_at),
        "parts": [{"id": p.id, "name": p.name, "sku": p.sku, "quantity": p.quantity}
                  for p in parts_of(session, visit)],
        "photos": [{"id": p.id, "filename": p.filename, "content_type": p.content_type,
                    "size": p.size} for p in photos_of(session, visit)],
    })
    if with_history:
        # The customer's messages and our replies, and the visit notes; never the agents'
        # other internal notes, which may discuss billing or other customers.
        messages = session.scalars(ticket.messages.select().where(
            or_(Message.direction != "note", Message.text.startswith("[Visit #")))
            .order_by(Message.id.desc()).limit(50))
        data["history"] = [{"direction": m.direction, "channel": m.channel,
                            "at": _iso(m.created_at), "text": (m.text or "")[:2000]}
                           for m in reversed(list(messages))]
        data["articles"] = articles or []
    return data


def dispatcher_view(session: Session, visit: Visit, *, financial: bool) -> dict[str, Any]:
    """Return a visit for agents and dispatchers; costs only with the financial permission."""
    data = technician_view(session, visit, with_history=False)
    data.update({"contract_id": visit.contract_id, "onsite_minutes": visit.onsite_minutes,
                 "follow_up_of_id": visit.follow_up_of_id,
                 "confirmed_via": visit.confirmed_via})
    if financial:
        data["cost"] = {"labour": str(visit.labour_cost or 0), "parts": str(visit.parts_cost),
                        "total": str(visit.total_cost),
                        "parts_detail": [{"name": p.name, "quantity": p.quantity,
                                          "unit_cost": str(p.unit_cost)}
                                         for p in parts_of(session, visit)]}
    return data
