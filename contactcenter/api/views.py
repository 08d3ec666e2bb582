"""The REST API's endpoints: thin parsing around the capability services."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, jsonify, request
from sqlalchemy import func, select

from contactcenter.accounts.policy import (
    Permission,
    can,
    can_view_ticket,
    visible_ticket_filter,
)
from contactcenter.api.auth import api_login_required, current_user, error
from contactcenter.api.openapi import openapi_spec
from contactcenter.app import db_session, services
from contactcenter.channels.base import ChannelError
from contactcenter.customers.serialize import serialize_customer_brief
from contactcenter.tickets.errors import InvalidTransitionError, TicketNotFoundError
from contactcenter.tickets.intake import process_raw, store_raw
from contactcenter.tickets.models import RawInbound, RawState, Ticket, TicketStatus
from contactcenter.tickets.serialize import (
    serialize_message,
    serialize_ticket,
    serialize_ticket_brief,
)
from contactcenter.tickets.service import add_reply, assign_ticket, change_status, get_ticket

bp = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_LIMIT = 200
MAX_QUERY = 200


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}")
    return value


def _json_body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


@bp.errorhandler(ValueError)
def bad_request(exc: ValueError) -> Any:
    return error(400, str(exc))


@bp.errorhandler(404)
def not_found_handler(_exc: Exception) -> Any:
    return error(404, "not found")


@bp.errorhandler(405)
def method_not_allowed(_exc: Exception) -> Any:
    return error(405, "method not allowed")


@bp.errorhandler(413)
def too_large(_exc: Exception) -> Any:
    return error(413, "request body too large")


@bp.get("/openapi.json")
def openapi() -> Any:
    return jsonify(openapi_spec())


@bp.get("/me")
@api_login_required(Permission.TICKET_VIEW)
def me() -> Any:
    user = current_user()
    assert user is not None
    return jsonify(id=user.id, email=user.email, name=user.name,
                   roles=sorted(user.role_names))


def _visible_ticket(number: int) -> Ticket | None:
    session = db_session()
    try:
        ticket = get_ticket(session, number)
    except TicketNotFoundError:
        return None
    # Another role's (or agent's) ticket is indistinguishable from a missing one.
    return ticket if can_view_ticket(session, current_user(), ticket) else None


@bp.get("/tickets")
@api_login_required(Permission.TICKET_VIEW)
def list_tickets() -> Any:
    session = db_session()
    user = current_user()
    assert user is not None
    limit = _int_arg("limit", 50, 1, MAX_LIMIT)
    offset = _int_arg("offset", 0, 0, 1_000_000)
    query = select(Ticket).where(visible_ticket_filter(session, user))  # type: ignore[arg-type]
    status = request.args.get("status")
    if status:
        if status not in {s.value for s in TicketStatus}:
            raise ValueError(f"unknown status {status!r}")
        query = query.where(Ticket.status == status)
    customer_id = request.args.get("customer_id")
    if customer_id:
        query = query.where(Ticket.customer_id == int(customer_id))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(Ticket.last_activity_at.desc(), Ticket.id.desc())
                           .limit(limit).offset(offset))
    return jsonify(total=total, items=[serialize_ticket_brief(t) for t in rows])


@bp.get("/tickets/<int:number>")
@api_login_required(Permission.TICKET_VIEW)
def show_ticket(number: int) -> Any:
    ticket = _visible_ticket(number)
    if ticket is None:
        return error(404, "not found")
    return jsonify(serialize_ticket(db_session(), ticket))


@bp.patch("/tickets/<int:number>")
@api_login_required(Permission.TICKET_REPLY)
def update_ticket(number: int) -> Any:
    ticket = _visible_ticket(number)
    if ticket is None:
        return error(404, "not found")
    data = _json_body()
    user = current_user()
    assert user is not None
    session = db_session()
    unknown = set(data) - {"status", "assignee_id"}
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    if "assignee_id" in data:
        from contactcenter.accounts.errors import PermissionDeniedError
        from contactcenter.accounts.policy import check_assignee

        try:
            assignee = check_assignee(session, user, data["assignee_id"])
        except PermissionDeniedError:
            return error(403, "permission denied")
        assign_ticket(session, ticket, assignee, user.id)
    if "status" in data:
        if data["status"] not in {s.value for s in TicketStatus}:
            raise ValueError("unknown status")
        try:
            change_status(session, ticket, data["status"], user.id)
        except InvalidTransitionError as exc:
            return error(409, str(exc))
    session.commit()
    return jsonify(serialize_ticket_brief(ticket))


@bp.get("/tickets/<int:number>/messages")
@api_login_required(Permission.TICKET_VIEW)
def ticket_messages(number: int) -> Any:
    ticket = _visible_ticket(number)
    if ticket is None:
        return error(404, "not found")
    return jsonify(items=serialize_ticket(db_session(), ticket)["messages"])


@bp.post("/tickets/<int:number>/messages")
@api_login_required(Permission.TICKET_REPLY)
def reply(number: int) -> Any:
    ticket = _visible_ticket(number)
    if ticket is None:
        return error(404, "not found")
    data = _json_body()
    text, html = data.get("text", ""), data.get("html", "")
    internal = data.get("internal", False)
    if not isinstance(text, str) or not isinstance(html, str) or not isinstance(internal, bool):
        raise ValueError("text and html must be strings, internal a boolean")
    if len(text) > 100_000 or len(html) > 500_000:
        raise ValueError("the reply is too long")
    user = current_user()
    assert user is not None
    session = db_session()
    try:
        message = add_reply(session, ticket, user.id, text, html, internal=internal)
    except InvalidTransitionError as exc:
        return error(409, str(exc))
    session.commit()
    if not internal:
        services().jobs.enqueue("outbox.deliver", message.id, key=f"deliver:{message.id}")
    return jsonify(serialize_message(message)), 201


@bp.get("/search")
@api_login_required(Permission.TICKET_VIEW)
def search() -> Any:
    q = (request.args.get("q") or "").strip()
    if not q or len(q) > MAX_QUERY:
        raise ValueError(f"q is required (1 to {MAX_QUERY} characters)")
    session = db_session()
    user = current_user()
    assert user is not None
    tickets: list[Ticket] = []
    number = re.fullmatch(r"#?(\d{1,12})", q)
    if number:
        found = _visible_ticket(int(number.group(1)))
        if found is not None:
            tickets.append(found)
    customers = customer_matches(q) if can(user, Permission.CUSTOMER_VIEW) else []
    if customers:
        tickets += list(session.scalars(
            select(Ticket).where(Ticket.customer_id.in_([c.id for c in customers]),
                                 visible_ticket_filter(session, user))  # type: ignore[arg-type]
            .order_by(Ticket.last_activity_at.desc()).limit(50)))
    like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    tickets += list(session.scalars(
        select(Ticket).where(func.lower(Ticket.subject).like(like.lower(), escape="\\"),
                             visible_ticket_filter(session, user))  # type: ignore[arg-type]
        .order_by(Ticket.last_activity_at.desc()).limit(50)))
    unique = list({t.id: t for t in tickets}.values())[:50]
    return jsonify(tickets=[serialize_ticket_brief(t) for t in unique],
                   customers=[serialize_customer_brief(c) for c in customers])


@bp.post("/contacts")
@api_login_required(Permission.IMPORT)
def post_contact() -> Any:
    """Take a contact from an integrator: store it raw first, then run intake."""
    body = request.get_data()
    svc = services()
    try:
        contact = svc.registry.get("api").to_inbound(body, inbox_id=None, raw_id=None)
    except ChannelError as exc:
        raise ValueError(str(exc)) from exc
    session = db_session()
    raw, _new = store_raw(session, "api", contact.external_id, body,
                          content_type="application/json")
    result = process_raw(session, raw.id, svc.registry, svc.settings)
    if result is None:
        return jsonify(status="failed", raw_id=raw.id), 202
    return jsonify({**result.to_json(), "raw_id": raw.id}), (
        201 if result.status == "created" else 200)


@bp.get("/raw")
@api_login_required(Permission.RAW_REPLAY)
def list_raw() -> Any:
    state = request.args.get("state", RawState.FAILED)
    if state not in {s.value for s in RawState}:
        raise ValueError("unknown state")
    limit = _int_arg("limit", 50, 1, MAX_LIMIT)
    rows = db_session().scalars(select(RawInbound).where(RawInbound.state == state)
                                .order_by(RawInbound.id.desc()).limit(limit))
    return jsonify(items=[{"id": r.id, "channel": r.channel, "external_id": r.external_id,
                           "state": r.state, "error": r.error, "attempts": r.attempts,
                           "received_at": r.received_at.isoformat(), "size": len(r.payload)}
                          for r in rows])


@bp.post("/raw/<int:raw_id>/replay")
@api_login_required(Permission.RAW_REPLAY)
def replay_raw(raw_id: int) -> Any:
    session = db_session()
    if session.get(RawInbound, raw_id) is None:
        return error(404, "not found")
    svc = services()
    result = process_raw(session, raw_id, svc.registry, svc.settings)
    if result is None:
        raw = session.get(RawInbound, raw_id)
        return jsonify(status="failed", error=raw.error if raw else ""), 200
    return jsonify(result.to_json())


@bp.get("/attachments/<int:attachment_id>")
@api_login_required(Permission.TICKET_VIEW)
def download_attachment(attachment_id: int) -> Any:
    """Send an attachment as a download (never rendered inline from our origin)."""
    from flask import send_file

    from contactcenter.tickets.attachments import attachment_path, safe_filename
    from contactcenter.tickets.models import Attachment

    session = db_session()
    attachment = session.get(Attachment, attachment_id)
    if attachment is None:
        return error(404, "not found")
    ticket = attachment.message.ticket
    if not can_view_ticket(session, current_user(), ticket):
        return error(404, "not found")
    path = attachment_path(services().settings.data_dir, attachment.sha256)
    if not path.is_file():
        return error(404, "not found")
    # The type is ours, never the sender's label (an "image/png" may be HTML); the name
    # is sanitised again (rows may predate a rule) and sent as RFC 6266 filename*.
    name = safe_filename(attachment.filename, f"attachment-{attachment.id}")
    response = send_file(path, mimetype="application/octet-stream", as_attachment=True,
                         download_name=name, max_age=0)
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/attachments/<int:attachment_id>/preview")
@api_login_required(Permission.TICKET_VIEW)
def attachment_preview(attachment_id: int) -> Any:
    """Send an attachment's thumbnail, authorised exactly as its download (ATT-3).

    The PNG was re-encoded by our preview job (``tickets.previews``), never the
    sender's bytes, so it may be shown inline in an ``<img>``; it still carries
    nosniff and a sandbox CSP.
    """
    from flask import send_file

    from contactcenter.tickets.attachments import attachment_path
    from contactcenter.tickets.models import Attachment

    session = db_session()
    attachment = session.get(Attachment, attachment_id)
    if attachment is None:
        return error(404, "not found")
    if not can_view_ticket(session, current_user(), attachment.message.ticket):
        return error(404, "not found")
    if attachment.preview_state != "ready" or not attachment.preview_sha256:
        return error(404, "not found")
    path = attachment_path(services().settings.data_dir, attachment.preview_sha256)
    if not path.is_file():
        return error(404, "not found")
    response = send_file(path, mimetype="image/png", max_age=0)
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "private, no-store"
    return response


# The customer endpoints register on the same blueprint (kept apart for size).
from contactcenter.api.customers import customer_matches  # noqa: E402
