"""The dispatch board (supervisors) and the technician's mobile page.

Templates under ``templates/field/``, scripts under ``static/field/``. Besides
the two working pages: the agent's form to create a visit from a ticket and
offer windows, and the two public pages a customer reaches by signed link
(confirm or pick a window; the post-visit survey).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from sqlalchemy import select

from contactcenter.accounts.policy import Permission, can, can_view_ticket
from contactcenter.agent_ui.auth import page_login_required, session_user
from contactcenter.app import db_session, services
from contactcenter.db import utcnow
from contactcenter.events import last_event_id
from contactcenter.field import links
from contactcenter.field import service as field
from contactcenter.field.models import OfferedSlot, SlotOffer, Visit
from contactcenter.tickets.errors import TicketNotFoundError
from contactcenter.tickets.service import get_ticket

bp = Blueprint("field_ui", __name__)


@bp.get("/field/dispatch")
@page_login_required(Permission.FIELD_DISPATCH)
def dispatch() -> Any:
    user = session_user()
    return render_template("field/dispatch.html", user=user, cursor=last_event_id(db_session()),
                           financial=can(user, Permission.FINANCIAL_VIEW))


@bp.get("/field/my")
@page_login_required(Permission.FIELD_WORK)
def my_day() -> Any:
    return render_template("field/my.html", user=session_user(),
                           cursor=last_event_id(db_session()))


def _me() -> int:
    user = session_user()
    assert user is not None  # the page decorators signed them in
    return user.id


def _ticket_for_agent(number: Any) -> Any:
    try:
        ticket = get_ticket(db_session(), int(number))
    except (TicketNotFoundError, TypeError, ValueError):
        abort(404)
    if not can_view_ticket(db_session(), session_user(), ticket):
        abort(404)
    return ticket


@bp.route("/field/new", methods=["GET", "POST"])
@page_login_required(Permission.TICKET_REPLY)
def new_visit() -> Any:
    ticket = _ticket_for_agent(request.values.get("ticket"))
    session = db_session()
    site = field.site_of(session, ticket.customer_id)
    message = None
    if request.method == "POST":
        form = request.form
        try:
            duration = int(form.get("duration_minutes", "60") or 60)
        except ValueError:
            duration = -1
        try:
            visit = field.create_visit(session, services().settings, ticket, _me(), {
                "address": form.get("address", "")[:600], "area": form.get("area", "")[:80],
                "problem": form.get("problem", "")[:5000],
                "skills": form.get("skills", "")[:600],
                "parts_needed": form.get("parts_needed", "")[:600],
                "priority": form.get("priority", "normal")[:16], "duration_minutes": duration})
        except field.FieldError as exc:
            session.rollback()
            message = str(exc)
        else:
            session.commit()
            return redirect(url_for("field_ui.visit_page", visit_id=visit.id))
    return render_template("field/new.html", ticket=ticket, site=site, message=message,
                           visits=field.visits_of_ticket(session, ticket.id),
                           form=request.form), (400 if message else 200)


@bp.route("/field/visits/<int:visit_id>", methods=["GET", "POST"])
@page_login_required(Permission.TICKET_VIEW)
def visit_page(visit_id: int) -> Any:
    session = db_session()
    visit = session.get(Visit, visit_id)
    if visit is None:
        abort(404)
    ticket = _ticket_for_agent(_number_of(visit))
    message = link = None
    if request.method == "POST":
        if not can(session_user(), Permission.TICKET_REPLY):
            abort(403)
        try:
            if request.form.get("slot"):
                _take_slot_by_phone(visit, request.form.get("slot", ""))
            else:
                _offer, link = links.offer_slots(session, services().settings, visit,
                                                 request.form.get("channel", "")[:8], _me())
        except field.FieldError as exc:
            session.rollback()
            message = str(exc)
        else:
            session.commit()
    offer = session.scalar(select(SlotOffer).where(SlotOffer.visit_id == visit.id)
                           .order_by(SlotOffer.id.desc()).limit(1))
    open_slots = links.slots_of(session, offer) if offer is not None and \
        offer.answered_at is None and visit.state in ("pending", "assigned") else []
    return render_template("field/visit.html", visit=visit, ticket=ticket, message=message,
                           link=link, open_slots=open_slots)


def _take_slot_by_phone(visit: Visit, slot_id: str) -> None:
    """Record the window the customer chose on the phone from the latest offer."""
    session = db_session()
    slot = session.get(OfferedSlot, int(slot_id)) if slot_id.isdigit() else None
    offer = session.get(SlotOffer, slot.offer_id) if slot is not None else None
    if slot is None or offer is None or offer.visit_id != visit.id or offer.answered_at:
        raise field.FieldError("that time is no longer on offer")
    offer.answered_at, offer.chosen_slot_id = utcnow(), slot.id
    field.schedule_visit(session, visit, slot.starts_at, slot.ends_at, _me(), "phone")


def _number_of(visit: Visit) -> int:
    from contactcenter.tickets.models import Ticket

    ticket = db_session().get(Ticket, visit.ticket_id)
    if ticket is None:
        abort(404)
    return ticket.number


@bp.route("/field/slots/<token>", methods=["GET", "POST"])
def slots(token: str) -> Any:
    session = db_session()
    settings = services().settings
    offer = links.find_offer(session, settings, token)
    if offer is None:
        return render_template("field/slots.html", state="invalid"), 404
    visit = session.get(Visit, offer.visit_id)
    message = None
    state = "answered" if offer.answered_at else (
        "expired" if utcnow() > offer.expires_at else "open")
    if request.method == "POST" and state == "open":
        try:
            if request.form.get("other"):
                links.ask_other_time(session, offer, request.form.get("wish", "")[:400])
            else:
                links.answer_offer(session, settings, offer, request.form.get("slot"))
        except field.FieldError as exc:
            session.rollback()
            message = str(exc)
        else:
            session.commit()
            state = "asked" if request.form.get("other") else "thanks"
    return render_template("field/slots.html", state=state, visit=visit, message=message,
                           slots=links.slots_of(session, offer))


@bp.route("/field/survey/<token>", methods=["GET", "POST"])
def survey(token: str) -> Any:
    session = db_session()
    found = links.find_survey(session, services().settings, token)
    if found is None:
        return render_template("field/survey.html", state="invalid"), 404
    state = "answered" if found.answered_at else (
        "expired" if utcnow() > found.expires_at else "open")
    message = None
    if request.method == "POST" and state == "open":
        try:
            links.answer_survey(session, found, request.form.get("score"),
                                request.form.get("on_time"), request.form.get("comment", ""))
        except field.FieldError as exc:
            session.rollback()
            message = str(exc)
        else:
            session.commit()
            state = "thanks"
    return render_template("field/survey.html", state=state, message=message)
