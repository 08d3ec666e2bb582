"""The chat package's endpoints under ``/api/v1`` (registered by ``contactcenter.api``).

- ``GET /tickets/<number>/chat``: the live (or last) chat of a ticket: the visitor as
  they described themselves (never trusted unless ``identified``), their page, the
  agent, the clocks, the place in line while waiting and the conversation as the
  widget shows it. Whoever may view the ticket; anyone else gets 404.
- ``GET /chats``: live chats (``state=waiting|active|live``, default ``live``):
  an agent's own, or every one for supervisors (``TICKET_VIEW_ALL``).

``OPENAPI_PATHS`` and ``OPENAPI_SCHEMAS`` are merged into ``/api/v1/openapi.json``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from contactcenter.accounts.policy import Permission, can, can_view_ticket
from contactcenter.api.auth import api_login_required, current_user, error
from contactcenter.app import db_session
from contactcenter.channels.chat.models import LIVE_STATES, ChatSession, ChatState
from contactcenter.tickets.errors import TicketNotFoundError
from contactcenter.tickets.models import Ticket
from contactcenter.tickets.service import get_ticket

bp = Blueprint("chat_api", __name__, url_prefix="/api/v1")

MAX_CHATS = 200
STATES = {"waiting": (ChatState.WAITING,), "active": (ChatState.ACTIVE,), "live": LIVE_STATES}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def chat_json(session: Any, chat: ChatSession, *, messages: bool) -> dict[str, Any]:
    """Return a chat as the API shows it (visitor-typed fields raw, for text rendering)."""
    from contactcenter.channels.chat.service import chat_history, queue_position

    ticket = session.get(Ticket, chat.ticket_id) if chat.ticket_id is not None else None
    data: dict[str, Any] = {
        "chat_id": chat.public_id, "state": chat.state,
        "ticket": ticket.number if ticket is not None else None,
        "customer_id": chat.customer_id, "agent_id": chat.agent_id,
        "visitor": {"name": chat.name, "email": chat.email, "topic": chat.topic,
                    "identified": chat.identified, "page_url": chat.page_url,
                    "page_title": chat.page_title, "language": chat.language},
        "started_at": _iso(chat.started_at), "accepted_at": _iso(chat.accepted_at),
        "ended_at": _iso(chat.ended_at), "ended_reason": chat.ended_reason or None,
        "last_activity_at": _iso(chat.last_activity_at),
        "position": queue_position(session, chat),
        "visitor_read_id": chat.visitor_read_id, "agent_read_id": chat.agent_read_id,
    }
    if messages:
        data["messages"] = chat_history(session, chat)
    return data


@bp.get("/tickets/<int:number>/chat")
@api_login_required(Permission.TICKET_VIEW)
def ticket_chat(number: int) -> Any:
    """The ticket's latest chat with its conversation."""
    session = db_session()
    try:
        ticket = get_ticket(session, number)
    except TicketNotFoundError:
        return error(404, "not found")
    if not can_view_ticket(session, current_user(), ticket):
        return error(404, "not found")
    chat = session.scalar(select(ChatSession).where(ChatSession.ticket_id == ticket.id)
                          .order_by(ChatSession.id.desc()).limit(1))
    if chat is None:
        return error(404, "this ticket has no chat")
    return jsonify(chat_json(session, chat, messages=True))


@bp.get("/chats")
@api_login_required(Permission.TICKET_VIEW)
def list_chats() -> Any:
    """Live chats: the caller's own, or all for supervisors; oldest first."""
    state = request.args.get("state", "live")
    if state not in STATES:
        return error(400, "state must be waiting, active or live")
    user = current_user()
    assert user is not None
    query = select(ChatSession).where(ChatSession.state.in_(STATES[state]))
    if not can(user, Permission.TICKET_VIEW_ALL):
        query = query.where(ChatSession.agent_id == user.id)
    session = db_session()
    chats = session.scalars(query.order_by(ChatSession.id).limit(MAX_CHATS)).all()
    return jsonify(items=[chat_json(session, c, messages=False) for c in chats])


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": "OK", "content": {"application/json": {"schema": schema}}}


_ERRORS = {code: {"description": text} for code, text in (
    ("400", "Bad input"), ("401", "No or invalid token"), ("403", "Missing permission"),
    ("404", "Not found, or not visible to the caller"))}
_NULL_TIME = {"type": ["string", "null"], "format": "date-time"}

OPENAPI_PATHS: dict[str, Any] = {
    "/tickets/{number}/chat": {"get": {
        "summary": "The ticket's latest live chat: visitor, page, agent, place in line and "
                   "the conversation",
        "parameters": [{"name": "number", "in": "path", "required": True,
                        "schema": {"type": "integer"}}],
        "responses": {"200": _ok(_ref("ChatSessionWithMessages")), **_ERRORS}}},
    "/chats": {"get": {
        "summary": "Live chats: the caller's own, or every one for supervisors",
        "parameters": [{"name": "state", "in": "query", "required": False,
                        "schema": {"enum": sorted(STATES)}}],
        "responses": {"200": _ok({"type": "object", "properties": {
            "items": {"type": "array", "items": _ref("ChatSession")}}}), **_ERRORS}}},
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "ChatMessage": {"type": "object", "properties": {
        "message_id": {"type": "integer"}, "client_id": {"type": ["string", "null"]},
        "from": {"enum": ["visitor", "agent", "system"]}, "author": {"type": "string"},
        "text": {"type": "string", "description": "As typed: render as text only"},
        "at": {"type": "string", "format": "date-time"},
        "attachments": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "type": {"type": "string"}}}}}},
    "ChatSession": {"type": "object", "properties": {
        "chat_id": {"type": "string"}, "state": {"enum": ["waiting", "active", "ended"]},
        "ticket": {"type": ["integer", "null"]}, "customer_id": {"type": ["integer", "null"]},
        "agent_id": {"type": ["integer", "null"]},
        "visitor": {"type": "object", "description": "What the visitor typed (unverified "
                    "unless identified: the site signed the user id)", "properties": {
                        "name": {"type": "string"}, "email": {"type": "string"},
                        "topic": {"type": "string"}, "identified": {"type": "boolean"},
                        "page_url": {"type": "string"}, "page_title": {"type": "string"},
                        "language": {"type": ["string", "null"]}}},
        "started_at": _NULL_TIME, "accepted_at": _NULL_TIME, "ended_at": _NULL_TIME,
        "ended_reason": {"type": ["string", "null"]}, "last_activity_at": _NULL_TIME,
        "position": {"type": ["integer", "null"], "description": "Place in line (waiting)"},
        "visitor_read_id": {"type": "integer"}, "agent_read_id": {"type": "integer"}}},
    "ChatSessionWithMessages": {"allOf": [_ref("ChatSession"), {"type": "object", "properties": {
        "messages": {"type": "array", "items": _ref("ChatMessage")}}}]},
}
