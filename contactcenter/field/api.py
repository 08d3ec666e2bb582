"""The field package's endpoints under ``/api/v1`` (registered by ``contactcenter.api``).

``OPENAPI_PATHS`` and ``OPENAPI_SCHEMAS`` are merged into ``/api/v1/openapi.json``.

- Agents, on tickets they may see: list and create a ticket's visits, offer
  windows (email, SMS, phone), fix the agreed window, cancel.
- Dispatchers (``field.dispatch``): the board, suggestions, assignment,
  technicians' profiles, and the report (costs with ``financial.view``, audited).
- Technicians (``field.work``): their own visits only (404 for any other), with
  check-in, parts, photos and check-out. They never get costs or other tickets.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, jsonify, request, send_file
from sqlalchemy import select

from contactcenter.accounts.audit import audit
from contactcenter.accounts.models import User
from contactcenter.accounts.policy import Permission, can, can_view_ticket
from contactcenter.api.auth import api_login_required, current_user, error
from contactcenter.app import db_session, services
from contactcenter.db import utcnow
from contactcenter.field import links
from contactcenter.field import service as field
from contactcenter.field.dispatch import board, day_bounds, suggest
from contactcenter.field.models import Technician, TechnicianArea, TechnicianSkill, Visit
from contactcenter.field.report import field_report
from contactcenter.field.serialize import dispatcher_view, technician_view, visit_card
from contactcenter.tickets.errors import TicketNotFoundError
from contactcenter.tickets.models import Ticket
from contactcenter.tickets.service import get_ticket

bp = Blueprint("field_api", __name__, url_prefix="/api/v1")

OPENAPI_PATHS: dict[str, Any] = {}
OPENAPI_SCHEMAS: dict[str, Any] = {
    "FieldVisit": {"type": "object", "properties": {
        "id": {"type": "integer"}, "ticket_id": {"type": "integer"},
        "state": {"enum": ["pending", "assigned", "in_progress", "completed", "cancelled"]},
        "address": {"type": "string"}, "area": {"type": "string"},
        "problem": {"type": "string"}, "skills": {"type": "array", "items": {"type": "string"}},
        "priority": {"type": "string"}, "window_start": {"type": ["string", "null"]},
        "window_end": {"type": ["string", "null"]}, "due_at": {"type": ["string", "null"]},
        "technician_id": {"type": ["integer", "null"]}, "outcome": {"type": ["string", "null"]}}},
}
MAX_PHOTO_REQUEST = 20 * 1024 * 1024


def _describe(method: str, path: str, summary: str, *, body: bool = False,
              query: tuple[str, ...] = ()) -> None:
    params = [{"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}
              for name in re.findall(r"{([a-z_]+)}", path)]
    params += [{"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
               for name in query]
    op: dict[str, Any] = {"summary": summary, "responses": {
        "200": {"description": "OK", "content": {"application/json": {"schema": {
            "type": "object"}}}},
        **{code: {"description": text, "content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/Error"}}}} for code, text in (
            ("400", "Bad input"), ("401", "No or invalid token"),
            ("403", "Missing permission"), ("404", "Not found, or not visible to the caller"))}}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
            "type": "object"}}}}
    OPENAPI_PATHS.setdefault(path, {})[method] = op


@bp.errorhandler(field.FieldError)
def bad_request(exc: field.FieldError) -> Any:
    return error(400, str(exc))


def _user() -> User:
    user = current_user()
    assert user is not None
    return user


def _json() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise field.FieldError("a JSON object is required")
    return data


def _ticket(number: int) -> Ticket | None:
    session = db_session()
    try:
        ticket = get_ticket(session, number)
    except TicketNotFoundError:
        return None
    return ticket if can_view_ticket(session, _user(), ticket) else None


def _agent_visit(visit_id: int) -> Visit | None:
    """A visit the caller may manage: dispatchers all, agents those of tickets they see."""
    session = db_session()
    visit = session.get(Visit, visit_id)
    if visit is None:
        return None
    user = _user()
    if can(user, Permission.FIELD_DISPATCH):
        return visit
    ticket = session.get(Ticket, visit.ticket_id)
    if ticket is None or not can(user, Permission.TICKET_REPLY) \
            or not can_view_ticket(session, user, ticket):
        return None
    return visit


def _own_visit(visit_id: int) -> Visit | None:
    visit = db_session().get(Visit, visit_id)
    return visit if visit is not None and visit.technician_id == _user().id else None


def _instant(raw: Any, name: str) -> dt.datetime:
    if not isinstance(raw, str) or len(raw) > 40:
        raise field.FieldError(f"{name} must be an ISO 8601 instant")
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise field.FieldError(f"{name} must be an ISO 8601 instant") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _day() -> dt.datetime:
    raw = request.args.get("day")
    if not raw:
        return utcnow()
    try:
        day = dt.date.fromisoformat(raw[:10])
    except ValueError:
        raise field.FieldError("day must be YYYY-MM-DD") from None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _commit(result: Any) -> Any:
    db_session().commit()
    return result


# --- agents ------------------------------------------------------------------------------

_describe("get", "/tickets/{number}/visits", "A ticket's visits")


@bp.get("/tickets/<int:number>/visits")
@api_login_required(Permission.TICKET_VIEW)
def ticket_visits(number: int) -> Any:
    ticket = _ticket(number)
    if ticket is None:
        return error(404, "not found")
    session = db_session()
    return jsonify(items=[visit_card(v) for v in field.visits_of_ticket(session, ticket.id)])


_describe("post", "/tickets/{number}/visits",
          "Create a visit (address, area, problem, skills, parts_needed, priority, "
          "duration_minutes)", body=True)


@bp.post("/tickets/<int:number>/visits")
@api_login_required(Permission.TICKET_REPLY)
def create_visit(number: int) -> Any:
    ticket = _ticket(number)
    if ticket is None:
        return error(404, "not found")
    session = db_session()
    visit = field.create_visit(session, services().settings, ticket, _user().id, _json())
    session.commit()
    return jsonify(visit_card(visit)), 201


_describe("get", "/field/visits/{visit_id}", "One visit (costs with the financial permission)")


@bp.get("/field/visits/<int:visit_id>")
@api_login_required(Permission.TICKET_VIEW)
def show_visit(visit_id: int) -> Any:
    visit = _agent_visit(visit_id)
    if visit is None:
        return error(404, "not found")
    session = db_session()
    financial = can(_user(), Permission.FINANCIAL_VIEW)
    data = dispatcher_view(session, visit, financial=financial)
    if financial:
        audit(session, _user().id, "view_financial", "field_visit", visit.id, channel="api")
        session.commit()
    return jsonify(data)


_describe("post", "/field/visits/{visit_id}/offer",
          "Offer time windows to the customer by email, sms or phone", body=True)


@bp.post("/field/visits/<int:visit_id>/offer")
@api_login_required(Permission.TICKET_VIEW)
def offer(visit_id: int) -> Any:
    visit = _agent_visit(visit_id)
    if visit is None:
        return error(404, "not found")
    offer_row, link = links.offer_slots(db_session(), services().settings, visit,
                                        str(_json().get("channel", "")), _user().id)
    slots = links.slots_of(db_session(), offer_row)
    return _commit(jsonify(offer_id=offer_row.id, link=link, slots=[
        {"id": s.id, "start": s.starts_at.isoformat(), "end": s.ends_at.isoformat()}
        for s in slots]))


_describe("post", "/field/visits/{visit_id}/schedule",
          "Fix the window the customer agreed to (start, end)", body=True)


@bp.post("/field/visits/<int:visit_id>/schedule")
@api_login_required(Permission.TICKET_VIEW)
def schedule(visit_id: int) -> Any:
    visit = _agent_visit(visit_id)
    if visit is None:
        return error(404, "not found")
    data = _json()
    field.schedule_visit(db_session(), visit, _instant(data.get("start"), "start"),
                         _instant(data.get("end"), "end"), _user().id, "agent")
    return _commit(jsonify(visit_card(visit)))


_describe("post", "/field/visits/{visit_id}/cancel", "Cancel a visit not yet started")


@bp.post("/field/visits/<int:visit_id>/cancel")
@api_login_required(Permission.TICKET_VIEW)
def cancel(visit_id: int) -> Any:
    visit = _agent_visit(visit_id)
    if visit is None:
        return error(404, "not found")
    field.cancel_visit(db_session(), visit, _user().id)
    return _commit(jsonify(visit_card(visit)))


# --- dispatch ----------------------------------------------------------------------------

_describe("get", "/field/board", "The dispatch board of a day", query=("day",))


@bp.get("/field/board")
@api_login_required(Permission.FIELD_DISPATCH)
def dispatch_board() -> Any:
    return jsonify(board(db_session(), _day()))


_describe("get", "/field/visits/{visit_id}/suggestions", "Ranked technicians for a visit")


@bp.get("/field/visits/<int:visit_id>/suggestions")
@api_login_required(Permission.FIELD_DISPATCH)
def suggestions(visit_id: int) -> Any:
    visit = db_session().get(Visit, visit_id)
    if visit is None:
        return error(404, "not found")
    return jsonify(items=[{"technician_id": s.user_id, "name": s.name, "score": s.score,
                           "free_minutes": s.free_minutes, "load": s.load,
                           "in_area": s.in_area, "reasons": list(s.reasons)}
                          for s in suggest(db_session(), visit)])


_describe("post", "/field/visits/{visit_id}/assign",
          "Assign a visit to a technician (technician_id, or null to unassign)", body=True)


@bp.post("/field/visits/<int:visit_id>/assign")
@api_login_required(Permission.FIELD_DISPATCH)
def assign(visit_id: int) -> Any:
    visit = db_session().get(Visit, visit_id)
    if visit is None:
        return error(404, "not found")
    tech_id = _json().get("technician_id")
    if tech_id is not None and (not isinstance(tech_id, int) or isinstance(tech_id, bool)):
        raise field.FieldError("technician_id must be an integer or null")
    field.assign_visit(db_session(), visit, tech_id, _user().id)
    return _commit(jsonify(visit_card(visit)))


_describe("get", "/field/technicians", "Technicians with skills and areas")


@bp.get("/field/technicians")
@api_login_required(Permission.FIELD_DISPATCH)
def technicians() -> Any:
    session = db_session()
    skills: dict[int, list[str]] = {}
    areas: dict[int, list[str]] = {}
    for uid, skill in session.execute(select(TechnicianSkill.user_id, TechnicianSkill.skill)):
        skills.setdefault(uid, []).append(skill)
    for uid, area in session.execute(select(TechnicianArea.user_id, TechnicianArea.area)):
        areas.setdefault(uid, []).append(area)
    rows = session.execute(select(Technician, User.name).join(User, User.id == Technician.user_id)
                           .order_by(User.name).limit(2000)).all()
    return jsonify(items=[{"id": t.user_id, "name": name, "active": t.active,
                           "calendar_id": t.calendar_id, "home_area": t.home_area,
                           "max_visits_per_day": t.max_visits_per_day,
                           "skills": sorted(skills.get(t.user_id, [])),
                           "areas": sorted(areas.get(t.user_id, []))} for t, name in rows])


_describe("put", "/field/technicians/{user_id}",
          "Save a technician's skills, areas, calendar_id, hourly_rate, max_visits_per_day",
          body=True)


@bp.put("/field/technicians/<int:user_id>")
@api_login_required(Permission.FIELD_DISPATCH)
def save_technician(user_id: int) -> Any:
    session = db_session()
    user = session.get(User, user_id)
    if user is None or "technician" not in user.role_names:
        return error(404, "not found")
    data = _json()
    limit = data.get("max_visits_per_day", 6)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 30:
        raise field.FieldError("max_visits_per_day must be from 1 to 30")
    calendar_id = data.get("calendar_id")
    if calendar_id is not None and not isinstance(calendar_id, int):
        raise field.FieldError("calendar_id must be an integer or null")
    try:
        rate = float(data.get("hourly_rate", 0) or 0)
    except (TypeError, ValueError):
        raise field.FieldError("hourly_rate must be a number") from None
    if not 0 <= rate <= 10000:
        raise field.FieldError("hourly_rate must be from 0 to 10000")
    field.save_technician(session, user_id, skills=data.get("skills", ""),
                          areas=data.get("areas", ""), calendar_id=calendar_id,
                          hourly_rate=str(rate), max_visits_per_day=limit)
    return _commit(jsonify(ok=True))


_describe("get", "/field/report",
          "First-time fix, ticket-to-visit time, on-time arrival, satisfaction; costs with "
          "the financial permission", query=("days",))


@bp.get("/field/report")
@api_login_required(Permission.FIELD_DISPATCH)
def report() -> Any:
    raw = request.args.get("days", "30")
    if not raw.isdigit() or not 1 <= int(raw) <= 366:
        raise field.FieldError("days must be from 1 to 366")
    now = utcnow()
    session = db_session()
    with_costs = can(_user(), Permission.FINANCIAL_VIEW)
    data = field_report(session, now - dt.timedelta(days=int(raw)), now, with_costs=with_costs)
    if with_costs:
        audit(session, _user().id, "view_financial", "field_report", raw, channel="api")
        session.commit()
    return jsonify(data)


# --- technicians -------------------------------------------------------------------------

_describe("get", "/field/my/visits", "The technician's visits of a day", query=("day",))


@bp.get("/field/my/visits")
@api_login_required(Permission.FIELD_WORK)
def my_visits() -> Any:
    start, end = day_bounds(_day())
    visits = field.day_of(db_session(), _user().id, start, end)
    return jsonify(day=start.date().isoformat(), items=[
        technician_view(db_session(), v, with_history=False) for v in visits])


_describe("get", "/field/my/visits/{visit_id}",
          "One of the technician's visits with the ticket's history and articles")


@bp.get("/field/my/visits/<int:visit_id>")
@api_login_required(Permission.FIELD_WORK)
def my_visit(visit_id: int) -> Any:
    visit = _own_visit(visit_id)
    if visit is None:
        return error(404, "not found")
    return jsonify(technician_view(db_session(), visit, articles=_articles(visit)))


def _articles(visit: Visit) -> list[dict[str, Any]]:
    from contactcenter.knowledge.suggestions import suggest_text

    try:
        hits = suggest_text(visit.problem, settings=services().settings, limit=3)
    except Exception:  # noqa: BLE001 - the index may not exist yet; the visit still opens
        return []
    return [{"id": h.id, "title": h.title, "snippet": h.snippet} for h in hits]


def _step(visit_id: int, action: Callable[[Visit], Any]) -> Any:
    visit = _own_visit(visit_id)
    if visit is None:
        return error(404, "not found")
    action(visit)
    db_session().commit()
    return jsonify(technician_view(db_session(), visit, with_history=False))


_describe("post", "/field/my/visits/{visit_id}/travel", "Set off to the visit")


@bp.post("/field/my/visits/<int:visit_id>/travel")
@api_login_required(Permission.FIELD_WORK)
def travel(visit_id: int) -> Any:
    return _step(visit_id, lambda v: field.start_travel(db_session(), v, _user().id))


_describe("post", "/field/my/visits/{visit_id}/check-in", "Check in on site")


@bp.post("/field/my/visits/<int:visit_id>/check-in")
@api_login_required(Permission.FIELD_WORK)
def check_in(visit_id: int) -> Any:
    return _step(visit_id, lambda v: field.check_in(db_session(), v, _user().id))


_describe("post", "/field/my/visits/{visit_id}/parts",
          "Record a part used (name, sku, quantity, unit_cost)", body=True)


@bp.post("/field/my/visits/<int:visit_id>/parts")
@api_login_required(Permission.FIELD_WORK)
def parts(visit_id: int) -> Any:
    data = _json()
    return _step(visit_id, lambda v: field.record_part(db_session(), v, _user().id, data))


_describe("post", "/field/my/visits/{visit_id}/photos",
          "Upload a photo (multipart field photo; JPEG, PNG or WebP, size-limited)")


@bp.post("/field/my/visits/<int:visit_id>/photos")
@api_login_required(Permission.FIELD_WORK)
def photos(visit_id: int) -> Any:
    settings = services().settings
    if (request.content_length or 0) > settings.field_photo_max_bytes + 64 * 1024:
        return error(413, "the photo is too large")
    upload = request.files.get("photo")
    if upload is None:
        raise field.FieldError("a photo file is required (field photo)")
    data = upload.stream.read(settings.field_photo_max_bytes + 1)
    return _step(visit_id, lambda v: field.record_photo(
        db_session(), settings, v, _user().id, upload.filename or "photo", data))


_describe("post", "/field/my/visits/{visit_id}/check-out",
          "Check out with outcome (fixed, another_visit, customer_absent), notes, signed_by",
          body=True)


@bp.post("/field/my/visits/<int:visit_id>/check-out")
@api_login_required(Permission.FIELD_WORK)
def check_out(visit_id: int) -> Any:
    data = _json()
    return _step(visit_id, lambda v: field.check_out(db_session(), services().settings, v,
                                                     _user().id, data))


_describe("get", "/field/visits/{visit_id}/photos/{photo_id}",
          "A visit's photo (its technician, dispatchers, agents who see the ticket)")


@bp.get("/field/visits/<int:visit_id>/photos/<int:photo_id>")
def photo(visit_id: int, photo_id: int) -> Any:
    from contactcenter.field.models import VisitPhoto
    from contactcenter.tickets.attachments import attachment_path

    user = current_user()
    if user is None:
        return error(401, "authentication required")
    session = db_session()
    row = session.get(VisitPhoto, photo_id)
    visit = session.get(Visit, visit_id)
    allowed = visit is not None and (visit.technician_id == user.id and can(
        user, Permission.FIELD_WORK) or (can(user, Permission.TICKET_VIEW)
                                         and _agent_visit(visit_id) is not None))
    if row is None or not allowed or row.visit_id != visit_id:
        return error(404, "not found")
    path = attachment_path(services().settings.data_dir, row.sha256)
    if not path.is_file():
        return error(404, "not found")
    response = send_file(path, mimetype=row.content_type, download_name=row.filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'"
    return response
