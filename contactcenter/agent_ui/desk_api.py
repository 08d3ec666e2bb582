"""The desktop's JSON endpoints under ``/desk/api`` (signed-in session, CSRF header on writes).

Thin: each view parses, checks the role and the ticket's visibility, calls
``contactcenter.tickets.workspace`` or the ticket service, commits and answers.
Customer data goes through ``serialize_customer`` so that financial fields are
masked by role and unmasked views are audited, exactly as in the REST API.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from contactcenter.accounts.errors import PermissionDeniedError
from contactcenter.accounts.models import User
from contactcenter.accounts.policy import Permission, can, can_view_ticket, check_assignee
from contactcenter.agent_ui import assist as assist_panels
from contactcenter.api.auth import current_user, error
from contactcenter.app import db_session, services
from contactcenter.customers.serialize import serialize_customer
from contactcenter.db import utcnow
from contactcenter.routing.models import Offer, OfferOutcome, RoutingItem
from contactcenter.routing.policy import load_policy
from contactcenter.tickets import workspace as ws
from contactcenter.tickets.errors import InvalidTransitionError, TicketNotFoundError
from contactcenter.tickets.models import (
    Direction,
    Message,
    Queue,
    SavedView,
    Ticket,
    TicketStatus,
)
from contactcenter.tickets.serialize import serialize_message, serialize_ticket_brief
from contactcenter.tickets.service import add_reply, assign_ticket, change_status, get_ticket

bp = Blueprint("desk_api", __name__, url_prefix="/desk/api")

F = TypeVar("F", bound=Callable[..., Any])
LOCALES = ("en", "ru")
REPLY_CHANNELS = ("email", "sms", "whatsapp", "chat", "api", "form", "voice")


def agent_required(permission: Permission = Permission.TICKET_VIEW) -> Callable[[F], F]:
    """401 without a session (or without the CSRF header on a write), 403 without the role."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                return error(401, "sign in first")
            if not can(user, permission):
                return error(403, "permission denied")
            try:
                return view(user, *args, **kwargs)
            except InvalidTransitionError as exc:
                db_session().rollback()
                return error(409, str(exc))
            except (ws.WorkspaceError, ValueError) as exc:
                db_session().rollback()
                return error(400, str(exc))

        return wrapper  # type: ignore[return-value]

    return decorate


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValueError("a JSON object body is required")
    return data


def _ticket(user: User, number: int) -> Ticket | None:
    sess = db_session()
    try:
        ticket = get_ticket(sess, number)
    except TicketNotFoundError:
        return None
    return ticket if can_view_ticket(sess, user, ticket) else None


def _row(row: ws.InboxRow) -> dict[str, Any]:
    t = row.ticket
    return {**serialize_ticket_brief(t), "customer_name": t.customer.name,
            "tier": t.customer.value_tier, "routing_priority": row.priority,
            "priority_reason": row.priority_reason,
            "due_at": row.due_at.isoformat() if row.due_at else None,
            "item_state": row.item_state}


@bp.get("/inbox")
@agent_required()
def inbox(user: User) -> Any:
    view = request.args.get("view", "mine")
    filters: dict[str, Any] = {k: v for k, v in request.args.items() if k not in ("view", "saved")}
    saved = request.args.get("saved")
    sess = db_session()
    if saved:
        row = sess.get(SavedView, int(saved)) if saved.isdigit() else None
        if row is None or row.user_id != user.id:
            return error(404, "no such saved view")
        stored = dict(row.filters)
        view = stored.pop("view", "all")
        filters = {**stored, **filters}
    rows = ws.inbox(sess, user, view, ws.clean_filters(filters))
    return jsonify(view=view, items=[_row(r) for r in rows])


@bp.get("/views")
@agent_required()
def list_views(user: User) -> Any:
    rows = db_session().scalars(select(SavedView).where(SavedView.user_id == user.id)
                                .order_by(SavedView.name))
    return jsonify(items=[{"id": v.id, "name": v.name, "filters": v.filters} for v in rows])


@bp.post("/views")
@agent_required()
def create_view(user: User) -> Any:
    data = _body()
    sess = db_session()
    filters = data.get("filters") or {}
    if not isinstance(filters, dict):
        raise ValueError("filters must be an object")
    row = ws.save_view(sess, user.id, str(data.get("name", "")), filters,
                       str(data.get("view", "all")))
    sess.commit()
    return jsonify(id=row.id, name=row.name, filters=row.filters), 201


@bp.delete("/views/<int:view_id>")
@agent_required()
def delete_view(user: User, view_id: int) -> Any:
    sess = db_session()
    row = sess.get(SavedView, view_id)
    if row is None or row.user_id != user.id:
        return error(404, "no such saved view")
    sess.delete(row)
    sess.commit()
    return "", 204


@bp.get("/tickets/<int:number>/workspace")
@agent_required()
def workspace(user: User, number: int) -> Any:
    ticket = _ticket(user, number)
    if ticket is None:
        return error(404, "not found")
    sess = db_session()
    from contactcenter.tickets.service import list_messages

    messages = [serialize_message(m) for m in list_messages(sess, ticket)]
    authors = {u.id: u.name for u in sess.scalars(select(User).where(
        User.id.in_({m["author_user_id"] for m in messages if m["author_user_id"]})))}
    for m in messages:
        m["author_name"] = authors.get(m["author_user_id"])
    draft = ws.get_draft(sess, user.id, ticket.id)
    customer = serialize_customer(sess, ticket.customer, user, channel="desk")
    data = {
        "ticket": {**serialize_ticket_brief(ticket), "tags": ws.tags_of(sess, ticket.id),
                   "merged_into_id": ticket.merged_into_id,
                   "links": [{"kind": k, "number": t.number, "subject": t.subject,
                              "status": t.status} for k, t in ws.linked_tickets(sess, ticket.id)]},
        "messages": messages,
        "customer": customer,
        "history": ws.customer_history(sess, ticket.customer_id, user,
                                       exclude_ticket_id=ticket.id),
        "draft": {"text": draft.text, "internal": draft.internal} if draft else None,
        "queues": [{"id": q.id, "slug": q.slug, "name": q.name}
                   for q in sess.scalars(select(Queue).order_by(Queue.name))],
        "can_assign": can(user, Permission.TICKET_ASSIGN),
        "can_merge_customers": can(user, Permission.CUSTOMER_MERGE),
        "can_edit_customers": can(user, Permission.CUSTOMER_EDIT),
        "me": {"id": user.id, "name": user.name},
    }
    sess.commit()  # the audit record of an unmasked customer view
    return jsonify(data)


@bp.get("/tickets/<int:number>/assist")
@agent_required()
def assist(user: User, number: int) -> Any:
    ticket = _ticket(user, number)
    if ticket is None:
        return error(404, "not found")
    sess = db_session()
    data = assist_panels.assist(sess, ticket, user, services().settings)
    sess.commit()  # impressions and audit records the panels wrote
    return jsonify(data)


@bp.patch("/tickets/<int:number>")
@agent_required(Permission.TICKET_REPLY)
def update(user: User, number: int) -> Any:
    ticket = _ticket(user, number)
    if ticket is None:
        return error(404, "not found")
    data = _body()
    unknown = set(data) - {"status", "priority", "tags", "queue_id", "assignee_id"}
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    sess = db_session()
    now = utcnow()
    policy = load_policy(services().settings)
    if "tags" in data:
        ws.set_tags(sess, ticket, data["tags"], user.id)
    if "priority" in data:
        ws.set_priority(sess, ticket, str(data["priority"]), user.id, now, policy=policy)
    if "queue_id" in data:
        if not isinstance(data["queue_id"], int) or isinstance(data["queue_id"], bool):
            raise ValueError("queue_id must be an integer")
        ws.move_to_queue(sess, ticket, data["queue_id"], user.id, now, policy=policy)
    if "assignee_id" in data:
        try:
            assignee = check_assignee(sess, user, data["assignee_id"])
        except PermissionDeniedError:
            return error(403, "permission denied")
        assign_ticket(sess, ticket, assignee, user.id, now)
    if "status" in data:
        if data["status"] not in {s.value for s in TicketStatus}:
            raise ValueError("unknown status")
        change_status(sess, ticket, data["status"], user.id, now, policy=policy)
    sess.commit()
    return jsonify({**serialize_ticket_brief(ticket), "tags": ws.tags_of(sess, ticket.id)})


@bp.post("/tickets/<int:number>/reply")
@agent_required(Permission.TICKET_REPLY)
def reply(user: User, number: int) -> Any:
    """Send a reply or note; 409 with the other replies when someone answered meanwhile."""
    ticket = _ticket(user, number)
    if ticket is None:
        return error(404, "not found")
    data = _body()
    text = data.get("text", "")
    internal = data.get("internal", False)
    seen = data.get("last_seen_message_id", 0)
    force = data.get("force", False)
    channel = data.get("channel") or None
    if channel is not None and channel not in REPLY_CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(REPLY_CHANNELS)}")
    if not isinstance(text, str) or not isinstance(internal, bool) or \
            not isinstance(seen, int) or not isinstance(force, bool):
        raise ValueError("text (string), internal and force (booleans), "
                         "last_seen_message_id (integer) expected")
    if len(text) > 100_000:
        raise ValueError("the reply is too long")
    sess = db_session()
    if not internal and not force:
        others = ws.replies_since(sess, ticket.id, seen, user.id)
        if others:
            response = jsonify(error="someone else replied meanwhile", collision=True,
                               replies=[serialize_message(m) for m in others])
            response.status_code = 409
            return response
    message = add_reply(sess, ticket, user.id, text, internal=internal,
                        policy=load_policy(services().settings), channel=channel,
                        live=ticket.channel == "chat" and channel in (None, "chat"))
    ws.save_draft(sess, user.id, ticket.id, "", False)
    if internal:
        ws.notify_mentions(sess, ticket, message, user)
    sess.commit()
    if not internal:
        services().jobs.enqueue("outbox.deliver", message.id, key=f"deliver:{message.id}")
    return jsonify(serialize_message(message)), 201


@bp.put("/tickets/<int:number>/draft")
@agent_required(Permission.TICKET_REPLY)
def draft(user: User, number: int) -> Any:
    ticket = _ticket(user, number)
    if ticket is None:
        return error(404, "not found")
    data = _body()
    sess = db_session()
    row = ws.save_draft(sess, user.id, ticket.id, data.get("text", ""),
                        bool(data.get("internal", False)))
    sess.commit()
    return jsonify(saved=row is not None,
                   updated_at=row.updated_at.isoformat() if row else None)


@bp.post("/tickets/<int:number>/merge")
@agent_required(Permission.TICKET_REPLY)
def merge(user: User, number: int) -> Any:
    source = _ticket(user, number)
    into = _body().get("into")
    if not isinstance(into, int) or isinstance(into, bool):
        raise ValueError("into must be a ticket number")
    target = _ticket(user, into)
    if source is None or target is None:
        return error(404, "not found")
    sess = db_session()
    ws.merge_tickets(sess, source, target, user.id)
    sess.commit()
    return jsonify(serialize_ticket_brief(target))


@bp.post("/tickets/<int:number>/links")
@agent_required(Permission.TICKET_REPLY)
def link(user: User, number: int) -> Any:
    ticket = _ticket(user, number)
    other_number = _body().get("number")
    if not isinstance(other_number, int) or isinstance(other_number, bool):
        raise ValueError("number must be a ticket number")
    other = _ticket(user, other_number)
    if ticket is None or other is None:
        return error(404, "not found")
    sess = db_session()
    ws.link_tickets(sess, ticket, other, user.id)
    sess.commit()
    return jsonify(links=[{"kind": k, "number": t.number} for k, t in
                          ws.linked_tickets(sess, ticket.id)]), 201


@bp.get("/tickets/<int:number>/canned")
@agent_required()
def canned(user: User, number: int) -> Any:
    ticket = _ticket(user, number)
    if ticket is None:
        return error(404, "not found")
    rows = ws.canned_responses(db_session(), ticket.customer.language)
    return jsonify(items=[{"id": c.id, "title": c.title, "shortcut": c.shortcut,
                           "text": ws.render_canned(c.body, ticket=ticket, agent=user)}
                          for c in rows])


@bp.get("/items/<int:item_id>/card")
@agent_required()
def offer_card(user: User, item_id: int) -> Any:
    """What the screen pop shows: only to the agent the item is offered or assigned to."""
    sess = db_session()
    item = sess.get(RoutingItem, item_id)
    if item is None:
        return error(404, "not found")
    offer = sess.scalar(select(Offer).where(Offer.item_id == item.id, Offer.agent_id == user.id)
                        .order_by(Offer.id.desc()).limit(1))
    if (offer is None or offer.outcome not in (OfferOutcome.PENDING, OfferOutcome.ACCEPTED)) \
            and item.agent_id != user.id:
        return error(404, "not found")
    ticket = sess.get(Ticket, item.ticket_id) if item.ticket_id else None
    customer = ticket.customer if ticket else None
    contract = None
    if ticket is not None:
        panel = assist_panels.sla_panel(sess, ticket)
        entitlement = panel["data"].get("entitlement") if panel["ok"] else None
        if isinstance(entitlement, dict):
            entitlement = entitlement.get("text")
        if entitlement:
            contract = str(entitlement)
    if contract is None and item.customer_id is not None:
        contract = assist_panels.contract_line(sess, item.customer_id, dt.date.today())
    # The screen pop tells the caller's story before the accept: who is calling (the
    # address the contact came from) and their other tickets, as the agent may see them.
    sender = sess.scalar(select(Message.sender).where(
        Message.ticket_id == ticket.id, Message.direction == Direction.INBOUND)
        .order_by(Message.id.desc()).limit(1)) if ticket else None
    history = ws.customer_history(sess, customer.id, user, exclude_ticket_id=ticket.id,
                                  limit=5) if customer and ticket else []
    return jsonify(
        item_id=item.id, offer_id=offer.id if offer else None, kind=item.kind,
        channel=item.channel, state=item.state, priority=item.priority,
        reason=item.priority_reason, tier=item.value_tier, contract=contract,
        expires_at=offer.expires_at.isoformat() if offer and offer.expires_at else None,
        ticket={"number": ticket.number, "subject": ticket.subject} if ticket else None,
        customer={"id": customer.id, "name": customer.name} if customer else None,
        sender=sender, history=history)


@bp.put("/me/locale")
@agent_required()
def set_locale(user: User) -> Any:
    locale = _body().get("locale")
    if locale not in LOCALES:
        raise ValueError(f"locale must be one of {', '.join(LOCALES)}")
    sess = db_session()
    sess.get(User, user.id).locale = locale  # type: ignore[union-attr]
    sess.commit()
    return jsonify(locale=locale)
