"""The phone package's endpoints under ``/api/v1`` (registered by ``contactcenter.api``).

Click to call from a ticket, call records and notes during a call, the caller
card the desktop pops for an offered call, the softphone token and the agent's
forwarding number. Every endpoint checks its permission and the ticket's
visibility; a customer's lifetime value appears on the caller card only for
roles with financial access, and each such view is audited.

``OPENAPI_PATHS`` and ``OPENAPI_SCHEMAS`` are merged into ``/api/v1/openapi.json``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from contactcenter.accounts.audit import audit
from contactcenter.accounts.policy import Permission, can, can_view_ticket
from contactcenter.api.auth import api_login_required, current_user, error
from contactcenter.app import db_session, services
from contactcenter.channels.phone.calls import call_payload, find_call
from contactcenter.channels.phone.models import AgentPhone, Call
from contactcenter.customers.errors import InvalidIdentityError
from contactcenter.customers.identity import normalise_phone
from contactcenter.customers.models import Contract, Customer
from contactcenter.db import utcnow
from contactcenter.routing.engine import commit_and_settle, load_policy
from contactcenter.routing.models import RoutingItem
from contactcenter.tickets.models import Ticket

bp = Blueprint("phone_api", __name__, url_prefix="/api/v1")
HISTORY = 5


def _ticket(number: int) -> Ticket | None:
    ticket = db_session().scalar(select(Ticket).where(Ticket.number == number))
    if ticket is None or not can_view_ticket(db_session(), current_user(), ticket):
        return None
    return ticket


def _visible_call(sid: str) -> Call | None:
    call = find_call(db_session(), sid)
    if call is None or call.ticket_id is None:
        return None
    ticket = db_session().get(Ticket, call.ticket_id)
    if ticket is None or not can_view_ticket(db_session(), current_user(), ticket):
        return None
    return call


def _json_body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


@bp.post("/tickets/<int:number>/calls")
@api_login_required(Permission.TICKET_REPLY)
def click_to_call(number: int) -> Any:
    """Call the ticket's customer: the agent's softphone (or phone) rings first."""
    from contactcenter.channels.phone.outbound import CallError, place_call

    ticket = _ticket(number)
    if ticket is None:
        return error(404, "no such ticket")
    to = _json_body().get("to")
    if to is not None and (not isinstance(to, str) or len(to) > 40):
        return error(400, "to must be a phone number")
    user = current_user()
    assert user is not None
    session = db_session()
    settings = services().settings
    now = utcnow()
    try:
        call = place_call(session, ticket, user, settings, now, to)
    except CallError as exc:
        session.rollback()
        return error(502 if "Twilio" in str(exc) or "answer" in str(exc) else 400, str(exc))
    commit_and_settle(session, now, load_policy(settings))
    return jsonify(call_payload(call)), 201


@bp.get("/tickets/<int:number>/calls")
@api_login_required(Permission.TICKET_VIEW)
def list_calls(number: int) -> Any:
    """The ticket's calls, newest first."""
    ticket = _ticket(number)
    if ticket is None:
        return error(404, "no such ticket")
    calls = db_session().scalars(select(Call).where(Call.ticket_id == ticket.id)
                                 .order_by(Call.id.desc()).limit(100))
    return jsonify(calls=[call_payload(c) for c in calls])


@bp.get("/calls/<sid>")
@api_login_required(Permission.TICKET_VIEW)
def get_call(sid: str) -> Any:
    """One call record."""
    call = _visible_call(sid[:64])
    if call is None:
        return error(404, "no such call")
    return jsonify(call_payload(call))


@bp.post("/calls/<sid>/notes")
@api_login_required(Permission.TICKET_REPLY)
def add_note(sid: str) -> Any:
    """Log a note during (or after) a call on its ticket."""
    from contactcenter.channels.phone.outbound import CallError, add_call_note

    call = _visible_call(sid[:64])
    if call is None:
        return error(404, "no such call")
    text = _json_body().get("text")
    if not isinstance(text, str):
        return error(400, "text is required")
    user = current_user()
    assert user is not None
    session = db_session()
    try:
        note = add_call_note(session, call, user, text, utcnow())
    except CallError as exc:
        session.rollback()
        return error(400, str(exc))
    session.commit()
    return jsonify(message_id=note.id, text=note.text), 201


def _history(customer_id: int, exclude: int | None) -> list[dict[str, Any]]:
    rows = db_session().scalars(
        select(Ticket).where(Ticket.customer_id == customer_id)
        .order_by(Ticket.last_activity_at.desc()).limit(HISTORY + 1))
    return [{"number": t.number, "subject": t.subject, "status": t.status,
             "channel": t.channel, "last_activity_at": t.last_activity_at.isoformat()}
            for t in rows if t.id != exclude][:HISTORY]


@bp.get("/phone/items/<int:item_id>/caller")
@api_login_required(Permission.TICKET_REPLY)
def caller_card(item_id: int) -> Any:
    """Who is calling, for the pop-up of an offered call: name, tier, contract, history."""
    session = db_session()
    user = current_user()
    assert user is not None
    item = session.get(RoutingItem, item_id)
    if item is None or item.kind != "call" or item.agent_id != user.id and not can(
            user, Permission.TICKET_VIEW_ALL):
        return error(404, "no such call offer")
    call = session.scalar(select(Call).where(Call.routing_item_id == item.id))
    customer = session.get(Customer, item.customer_id) if item.customer_id else None
    contract = session.scalar(
        select(Contract).where(Contract.customer_id == customer.id,
                               Contract.starts_on <= utcnow().date(),
                               Contract.ends_on >= utcnow().date())
        .order_by(Contract.ends_on.desc()).limit(1)) if customer else None
    card: dict[str, Any] = {
        "item_id": item.id, "ticket_id": item.ticket_id, "priority_reason": item.priority_reason,
        "call": call_payload(call) if call else None,
        "customer": None if customer is None else {
            "id": customer.id, "name": customer.name, "language": customer.language,
            "value_tier": customer.value_tier, "masked": True, "lifetime_value": None},
        "contract": None if contract is None else {
            "level": contract.level, "ends_on": contract.ends_on.isoformat(),
            "response_minutes": contract.response_minutes},
        "history": _history(customer.id, item.ticket_id) if customer else [],
    }
    if customer is not None and can(user, Permission.FINANCIAL_VIEW):
        card["customer"].update(masked=False, lifetime_value=str(customer.lifetime_value)
                                if customer.lifetime_value is not None else None)
        audit(session, user.id, "view_financial", "customer", customer.id,
              "caller card", "phone")
        session.commit()
    ticket = session.get(Ticket, item.ticket_id) if item.ticket_id else None
    if ticket is not None:
        card["ticket"] = {"number": ticket.number, "subject": ticket.subject,
                          "status": ticket.status}
    return jsonify(card)


@bp.get("/phone/token")
@api_login_required(Permission.TICKET_REPLY)
def softphone_token() -> Any:
    """An access token for the agent's browser softphone (identity ``agent-<id>``)."""
    from contactcenter.channels.phone.tokens import TokenUnavailable
    from contactcenter.channels.phone.tokens import softphone_token as make_token

    user = current_user()
    assert user is not None
    try:
        token, identity = make_token(services().settings, user.id)
    except TokenUnavailable as exc:
        return error(503, str(exc))
    return jsonify(token=token, identity=identity, ttl=3600)


@bp.put("/phone/me")
@api_login_required(Permission.TICKET_REPLY)
def set_forwarding() -> Any:
    """Set (or clear, with null) the number calls are bridged to instead of the softphone."""
    user = current_user()
    assert user is not None
    number = _json_body().get("forward_number")
    if number is not None:
        if not isinstance(number, str) or len(number) > 40:
            return error(400, "forward_number must be a phone number or null")
        try:
            number = normalise_phone(number, services().settings.phone_region)
        except InvalidIdentityError as exc:
            return error(400, str(exc))
    session = db_session()
    row = session.get(AgentPhone, user.id) or AgentPhone(user_id=user.id)
    row.forward_number = number
    session.add(row)
    session.commit()
    return jsonify(forward_number=number)


def _o(summary: str, ok: dict[str, Any], *, params: list[dict[str, Any]] | None = None,
       body: dict[str, Any] | None = None, status: str = "200") -> dict[str, Any]:
    err = {"description": "Error", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}}
    op: dict[str, Any] = {"summary": summary, "tags": ["phone"],
                          "responses": {status: {"description": "OK", "content": {
                              "application/json": {"schema": ok}}},
                              "400": err, "401": err, "403": err, "404": err}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _p(name: str, kind: str = "integer") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}


_CALL = {"$ref": "#/components/schemas/Call"}
_NULL_STR = {"type": ["string", "null"]}
_NULL_INT = {"type": ["integer", "null"]}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "Call": {"type": "object", "properties": {
        "call_id": {"type": "integer"}, "sid": {"type": "string"},
        "direction": {"enum": ["inbound", "outbound"]}, "from": {"type": "string"},
        "to": {"type": "string"}, "customer_id": _NULL_INT, "ticket_id": _NULL_INT,
        "message_id": _NULL_INT, "queue_id": _NULL_INT, "item_id": _NULL_INT,
        "agent_id": _NULL_INT, "status": {"type": "string"},
        "phase": {"enum": ["ivr", "queued", "bridging", "connected", "voicemail", "ended"]},
        "outcome": {"type": ["string", "null"], "enum": [
            "answered", "abandoned", "missed", "voicemail", "busy", "failed", None]},
        "ivr_choices": {"type": "string"}, "fast_track": {"type": "boolean"},
        "started_at": _NULL_STR, "answered_at": _NULL_STR, "ended_at": _NULL_STR,
        "wait_seconds": _NULL_INT, "talk_seconds": _NULL_INT, "duration_seconds": _NULL_INT,
        "recording_url": _NULL_STR, "transcription": {"type": "string"},
        "voicemail_message_id": _NULL_INT}},
}

OPENAPI_PATHS: dict[str, Any] = {
    "/tickets/{number}/calls": {
        "post": _o("Call the ticket's customer (click to call; the agent's phone rings first)",
                   _CALL, params=[_p("number")], status="201",
                   body={"type": "object", "properties": {"to": {"type": "string"}}}),
        "get": _o("The ticket's call records", {"type": "object", "properties": {
            "calls": {"type": "array", "items": _CALL}}}, params=[_p("number")])},
    "/calls/{sid}": {"get": _o("One call record", _CALL, params=[_p("sid", "string")])},
    "/calls/{sid}/notes": {"post": _o(
        "Log a note during a call (an internal note on its ticket)",
        {"type": "object", "properties": {"message_id": {"type": "integer"},
                                          "text": {"type": "string"}}},
        params=[_p("sid", "string")], status="201",
        body={"type": "object", "required": ["text"],
              "properties": {"text": {"type": "string", "maxLength": 10000}}})},
    "/phone/items/{item_id}/caller": {"get": _o(
        "The caller card of an offered call: name, tier, contract, recent tickets",
        {"type": "object"}, params=[_p("item_id")])},
    "/phone/token": {"get": _o("An access token for the browser softphone", {
        "type": "object", "properties": {"token": {"type": "string"},
                                         "identity": {"type": "string"},
                                         "ttl": {"type": "integer"}}})},
    "/phone/me": {"put": _o("Set the agent's forwarding number (null: the softphone)", {
        "type": "object", "properties": {"forward_number": _NULL_STR}},
        body={"type": "object", "properties": {"forward_number": _NULL_STR}})},
}
