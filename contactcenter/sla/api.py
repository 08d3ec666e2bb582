"""The sla package's endpoints under ``/api/v1`` (registered by ``contactcenter.api``).

``OPENAPI_PATHS`` and ``OPENAPI_SCHEMAS`` are merged into ``/api/v1/openapi.json``.

- ``GET /tickets/<number>/sla``: the ticket's clocks and the customer's entitlement
  (whoever may view the ticket; anyone else gets 404).
- ``GET /sla/report``: attainment grouped by queue, channel, agent, policy, contract
  or kind (supervisors).
- ``GET /sla/policies``, ``GET /sla/calendars``: the configuration (supervisors).
- ``GET /sla/contracts/expiring``: contracts ending within N days; their value is
  shown only with the financial permission, and each such view is audited.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from contactcenter.accounts.audit import audit
from contactcenter.accounts.policy import Permission, can, can_view_ticket
from contactcenter.api.auth import api_login_required, current_user, error
from contactcenter.app import db_session
from contactcenter.customers.models import Contract
from contactcenter.db import utcnow
from contactcenter.sla.models import SlaCalendar, SlaCalendarException, SlaPolicy, SlaTarget
from contactcenter.sla.report import GROUPS, attainment
from contactcenter.sla.service import entitlement_of, ticket_clocks
from contactcenter.tickets.errors import TicketNotFoundError
from contactcenter.tickets.service import get_ticket

bp = Blueprint("sla_api", __name__, url_prefix="/api/v1")

MAX_REPORT_DAYS = 366


@bp.errorhandler(ValueError)
def bad_request(exc: ValueError) -> Any:
    return error(400, str(exc))


def _instant(name: str, default: dt.datetime) -> dt.datetime:
    raw = request.args.get(name)
    if not raw:
        return default
    if len(raw) > 40:
        raise ValueError(f"{name} is too long")
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{name} must be an ISO 8601 date or instant") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _int(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise ValueError(f"{name} must be an integer from {lo} to {hi}")
    return int(raw)


@bp.get("/tickets/<int:number>/sla")
@api_login_required(Permission.TICKET_VIEW)
def ticket_sla(number: int) -> Any:
    session = db_session()
    try:
        ticket = get_ticket(session, number)
    except TicketNotFoundError:
        return error(404, "not found")
    if not can_view_ticket(session, current_user(), ticket):
        return error(404, "not found")
    from contactcenter.sla.models import TicketSla

    sla = session.get(TicketSla, ticket.id)
    return jsonify(number=ticket.number, policy=sla.policy_name if sla else None,
                   reason=sla.reason if sla else None, clocks=ticket_clocks(session, ticket),
                   entitlement=entitlement_of(session, ticket))


@bp.get("/sla/report")
@api_login_required(Permission.SUPERVISE)
def report() -> Any:
    group_by = request.args.get("group_by", "queue")
    if group_by not in GROUPS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPS)}")
    now = utcnow()
    until = _instant("until", now)
    since = _instant("since", until - dt.timedelta(days=30))
    if since >= until or until - since > dt.timedelta(days=MAX_REPORT_DAYS):
        raise ValueError(f"since must be before until, at most {MAX_REPORT_DAYS} days apart")
    kind = request.args.get("kind") or None
    rows = attainment(db_session(), group_by, since, until, kind)
    return jsonify(group_by=group_by, since=since.isoformat(), until=until.isoformat(),
                   kind=kind, rows=rows)


@bp.get("/sla/policies")
@api_login_required(Permission.SUPERVISE)
def policies() -> Any:
    session = db_session()
    calendars = {c.id: c.name for c in session.scalars(select(SlaCalendar))}
    targets: dict[int, list[dict[str, Any]]] = {}
    for t in session.scalars(select(SlaTarget).order_by(SlaTarget.kind, SlaTarget.priority)):
        targets.setdefault(t.policy_id, []).append(
            {"kind": t.kind, "priority": t.priority, "minutes": t.minutes})
    items = [{"id": p.id, "name": p.name, "position": p.position, "active": p.active,
              "calendar": calendars.get(p.calendar_id) if p.calendar_id else "24x7",
              "pause_on_hold": p.pause_on_hold, "warn_percent": p.warn_percent,
              "match": {k: v for k, v in (
                  ("channel", p.match_channel), ("queue_id", p.match_queue_id),
                  ("tier", p.match_tier), ("organisation_id", p.match_organisation_id),
                  ("contract_level", p.match_contract_level)) if v is not None},
              "targets": targets.get(p.id, [])}
             for p in session.scalars(select(SlaPolicy).order_by(SlaPolicy.position,
                                                                  SlaPolicy.id))]
    return jsonify(items=items)


@bp.get("/sla/calendars")
@api_login_required(Permission.SUPERVISE)
def calendars() -> Any:
    session = db_session()
    exceptions: dict[int, list[dict[str, str]]] = {}
    for e in session.scalars(select(SlaCalendarException).order_by(SlaCalendarException.day)):
        exceptions.setdefault(e.calendar_id, []).append(
            {"day": e.day.isoformat(), "hours": e.hours or "closed"})
    return jsonify(items=[{"id": c.id, "name": c.name, "timezone": c.timezone,
                           "hours": c.hours, "holiday_country": c.holiday_country,
                           "holiday_subdivision": c.holiday_subdivision,
                           "exceptions": exceptions.get(c.id, [])}
                          for c in session.scalars(select(SlaCalendar).order_by(SlaCalendar.name))])


def expiring_contracts(session: Any, days: int, today: dt.date, unmasked: bool
                       ) -> list[dict[str, Any]]:
    """Return contracts ending within ``days`` (value only when ``unmasked``)."""
    rows = session.scalars(select(Contract).where(
        Contract.ends_on >= today, Contract.ends_on <= today + dt.timedelta(days=days))
        .order_by(Contract.ends_on, Contract.id).limit(500))
    return [{"id": c.id, "external_id": c.external_id, "level": c.level,
             "customer_id": c.customer_id, "organisation_id": c.organisation_id,
             "ends_on": c.ends_on.isoformat(), "days_left": (c.ends_on - today).days,
             "renewal_state": c.renewal_state, "allowance_kind": c.allowance_kind,
             "allowance_amount": str(c.allowance_amount) if c.allowance_amount else None,
             "allowance_used": str(c.allowance_used),
             "value": (str(c.value) if c.value is not None else None) if unmasked else None,
             "currency": c.currency, "masked": not unmasked} for c in rows]


@bp.get("/sla/contracts/expiring")
@api_login_required(Permission.SUPERVISE)
def contracts_expiring() -> Any:
    session = db_session()
    user = current_user()
    assert user is not None
    days = _int("days", 30, 0, 3650)
    unmasked = can(user, Permission.FINANCIAL_VIEW)
    items = expiring_contracts(session, days, utcnow().date(), unmasked)
    if unmasked and items:
        audit(session, user.id, "view_financial", "contracts", "expiring",
              f"{len(items)} contracts ending within {days} days", channel="api")
        session.commit()
    return jsonify(days=days, items=items)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": "OK", "content": {"application/json": {"schema": schema}}}


_ERRORS = {code: {"description": text, "content": {"application/json": {
    "schema": _ref("Error")}}} for code, text in (
    ("400", "Bad input"), ("401", "No or invalid token"), ("403", "Missing permission"),
    ("404", "Not found, or not visible to the caller"))}


def _get(summary: str, schema: dict[str, Any], params: list[dict[str, Any]]) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {"200": _ok(schema), **_ERRORS}}
    if params:
        op["parameters"] = params
    return {"get": op}


def _q(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


_NULL_TIME = {"type": ["string", "null"], "format": "date-time"}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "SlaClock": {"type": "object", "properties": {
        "kind": {"enum": ["first_response", "next_response", "resolution"]},
        "cycle": {"type": "integer"}, "state": {"enum": ["running", "paused", "met"]},
        "target_minutes": {"type": "integer"}, "started_at": {"type": "string"},
        "due_at": _NULL_TIME, "warn_at": _NULL_TIME, "met_at": _NULL_TIME,
        "breached": {"type": "boolean"}, "breached_at": _NULL_TIME,
        "paused": {"type": "boolean"}, "business_minutes_used": {"type": "number"},
        "business_minutes_left": {"type": "number"}, "policy": {"type": "string"},
        "reason": {"type": "string"}}},
    "Entitlement": {"type": "object", "properties": {
        "state": {"enum": ["none", "covered", "expired", "exhausted", "pending"]},
        "text": {"type": "string"}, "contract": {"type": ["object", "null"]},
        "at_intake": {"type": ["object", "null"]}}},
    "TicketSla": {"type": "object", "properties": {
        "number": {"type": "integer"}, "policy": {"type": ["string", "null"]},
        "reason": {"type": ["string", "null"]},
        "clocks": {"type": "array", "items": _ref("SlaClock")},
        "entitlement": _ref("Entitlement")}},
    "SlaAttainmentRow": {"type": "object", "properties": {
        "key": {}, "label": {"type": "string"}, "total": {"type": "integer"},
        "met": {"type": "integer"}, "breached": {"type": "integer"},
        "open": {"type": "integer"}, "attainment_percent": {"type": ["number", "null"]},
        "avg_business_minutes": {"type": ["number", "null"]}}},
}

OPENAPI_PATHS: dict[str, Any] = {
    "/tickets/{number}/sla": _get(
        "A ticket's SLA clocks and the customer's contract entitlement", _ref("TicketSla"),
        [{"name": "number", "in": "path", "required": True, "schema": {"type": "integer"}}]),
    "/sla/report": _get(
        "SLA attainment grouped by queue, channel, agent, policy, contract or kind",
        {"type": "object", "properties": {
            "group_by": {"type": "string"}, "since": {"type": "string"},
            "until": {"type": "string"}, "kind": {"type": ["string", "null"]},
            "rows": {"type": "array", "items": _ref("SlaAttainmentRow")}}},
        [_q("group_by", {"enum": list(GROUPS)}), _q("since", {"type": "string"}),
         _q("until", {"type": "string"}),
         _q("kind", {"enum": ["first_response", "next_response", "resolution"]})]),
    "/sla/policies": _get("SLA policies with their conditions and targets",
                          {"type": "object", "properties": {"items": {"type": "array"}}}, []),
    "/sla/calendars": _get("Business calendars with their closed days and special hours",
                           {"type": "object", "properties": {"items": {"type": "array"}}}, []),
    "/sla/contracts/expiring": _get(
        "Contracts ending within N days (value masked without the financial permission)",
        {"type": "object", "properties": {"days": {"type": "integer"},
                                          "items": {"type": "array"}}},
        [_q("days", {"type": "integer", "minimum": 0, "maximum": 3650})]),
}
