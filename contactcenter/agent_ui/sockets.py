"""The ``/agent`` Socket.IO namespace: rooms by role, snapshot cursor, replay and resync.

On connect the signed-in user joins ``agent:<id>``, the rooms of their queues
and, for supervisors, ``supervisors``. The client calls ``resume`` with its last
cursor; the server answers with the missed events from the log, or
``resync_required`` when the cursor is too old, in which case the client reloads
its snapshot.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, request
from flask_socketio import ConnectionRefusedError, emit, join_room, leave_room, rooms
from sqlalchemy.orm import Session

from contactcenter.accounts.policy import Permission, can, can_view_ticket, queue_ids_of
from contactcenter.agent_ui.auth import session_user
from contactcenter.app import db_session, services
from contactcenter.db import utcnow
from contactcenter.events import SUPERVISORS_ROOM, replay_since, room
from contactcenter.routing.engine import (
    accept_offer,
    commit_and_settle,
    decline_offer,
    mark_connected,
    mark_disconnected,
    set_presence,
)
from contactcenter.routing.errors import RoutingError
from contactcenter.routing.models import Presence
from contactcenter.routing.policy import RoutingPolicy, load_policy

NAMESPACE = "/agent"


class Viewers:
    """Who has which ticket open and who is typing, per socket (collision detection).

    Kept in this process: the scaled deployment pins a browser to one web
    process (sticky sessions), and a viewer list is presence, not data, so a
    restart only loses who-is-looking until the desks re-announce themselves.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_ticket: dict[int, dict[str, dict[str, Any]]] = {}

    def watch(self, ticket_id: int, sid: str, user_id: int, name: str) -> list[dict[str, Any]]:
        with self._lock:
            self._by_ticket.setdefault(ticket_id, {})[sid] = {
                "user_id": user_id, "name": name, "typing": False}
            return self._list(ticket_id)

    def typing(self, ticket_id: int, sid: str, typing: bool) -> list[dict[str, Any]] | None:
        with self._lock:
            entry = self._by_ticket.get(ticket_id, {}).get(sid)
            if entry is None:
                return None
            entry["typing"] = typing
            return self._list(ticket_id)

    def leave(self, sid: str, ticket_id: int | None = None) -> list[int]:
        """Forget a socket (on one ticket or all); return the tickets whose list changed."""
        changed = []
        with self._lock:
            for tid, sockets in list(self._by_ticket.items()):
                if (ticket_id is None or tid == ticket_id) and sockets.pop(sid, None):
                    changed.append(tid)
                    if not sockets:
                        del self._by_ticket[tid]
        return changed

    def list(self, ticket_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return self._list(ticket_id)

    def _list(self, ticket_id: int) -> list[dict[str, Any]]:
        merged: dict[int, dict[str, Any]] = {}
        for entry in self._by_ticket.get(ticket_id, {}).values():
            seen = merged.setdefault(entry["user_id"], dict(entry))
            seen["typing"] = seen["typing"] or entry["typing"]
        return sorted(merged.values(), key=lambda e: e["name"])


viewers = Viewers()


def rooms_for(user: Any) -> list[str]:
    """Return the rooms a user may listen to."""
    rooms = [room("agent", user.id)]
    rooms += [room("queue", q) for q in sorted(queue_ids_of(db_session(), user))]
    if can(user, Permission.TICKET_VIEW_ALL):
        rooms.append(SUPERVISORS_ROOM)
    return rooms


def _routing_call(action: Callable[[Session, dt.datetime, RoutingPolicy], object]
                  ) -> dict[str, Any]:
    """Run one routing use case for the socket's user, commit, and answer the ack."""
    sess = db_session()
    policy = load_policy(services().settings)
    now = utcnow()
    try:
        action(sess, now, policy)
        commit_and_settle(sess, now, policy)
    except RoutingError as exc:
        sess.rollback()
        return {"error": str(exc)}
    return {"ok": True}


def init_app(app: Flask) -> None:
    """Register the namespace's handlers on the app's Socket.IO server."""
    socketio = services(app).socketio

    @socketio.on("connect", namespace=NAMESPACE)
    def on_connect(_auth: Any = None) -> None:
        # Engine.IO lets the chat widget's configured sites in; the desk itself is
        # same-origin only, whatever the cookie's SameSite rule.
        origin = request.headers.get("Origin")
        if origin and urlsplit(origin).netloc.lower() != request.host.lower():
            raise ConnectionRefusedError("origin not allowed")
        user = session_user()
        if user is not None and not can(user, Permission.TICKET_VIEW) \
                and can(user, Permission.FIELD_WORK):
            # A technician hears only their own room (visits assigned to them).
            join_room(room("agent", user.id))
            return
        if user is None or not can(user, Permission.TICKET_VIEW):
            raise ConnectionRefusedError("sign in first")
        for name in rooms_for(user):
            join_room(name)
        if can(user, Permission.TICKET_REPLY):
            sess = db_session()
            mark_connected(sess, user.id, utcnow())
            sess.commit()

    def announce(ticket_id: int) -> None:
        emit("viewers", {"ticket_id": ticket_id, "viewers": viewers.list(ticket_id)},
             to=room("ticket", ticket_id), namespace=NAMESPACE)

    @socketio.on("watch", namespace=NAMESPACE)
    def on_watch(data: Any) -> dict[str, Any]:
        """Open a ticket: join its room and tell the others who is looking."""
        from contactcenter.tickets.models import Ticket

        user = session_user()
        ticket_id = data.get("ticket_id") if isinstance(data, dict) else None
        if user is None or not isinstance(ticket_id, int) or isinstance(ticket_id, bool):
            return {"error": "ticket_id (integer) is required"}
        ticket = db_session().get(Ticket, ticket_id)
        if ticket is None or not can_view_ticket(db_session(), user, ticket):
            return {"error": "not found"}
        sid = request.sid  # type: ignore[attr-defined]
        for tid in viewers.leave(sid):
            if tid != ticket_id:
                leave_room(room("ticket", tid))
                announce(tid)
        try:
            join_room(room("ticket", ticket_id))
            # The customer's room too: an edit of the customer from any screen refreshes
            # this one.
            customer_room = room("customer", ticket.customer_id)
            for name in rooms():
                if name.startswith("customer:") and name != customer_room:
                    leave_room(name)
            join_room(customer_room)
        except (KeyError, ValueError):  # the socket dropped while this event was handled
            return {"error": "disconnected"}
        viewers.watch(ticket_id, sid, user.id, user.name)
        if not socketio.server.manager.is_connected(sid, NAMESPACE):
            # Its disconnect ran meanwhile and cleared what it knew: no ghost viewer.
            viewers.leave(sid)
            return {"error": "disconnected"}
        announce(ticket_id)
        return {"ok": True, "viewers": viewers.list(ticket_id)}

    @socketio.on("unwatch", namespace=NAMESPACE)
    def on_unwatch(data: Any) -> dict[str, Any]:
        ticket_id = data.get("ticket_id") if isinstance(data, dict) else None
        if not isinstance(ticket_id, int):
            return {"error": "ticket_id (integer) is required"}
        if viewers.leave(request.sid, ticket_id):  # type: ignore[attr-defined]
            announce(ticket_id)
        return {"ok": True}

    @socketio.on("typing", namespace=NAMESPACE)
    def on_typing(data: Any) -> dict[str, Any]:
        ticket_id = data.get("ticket_id") if isinstance(data, dict) else None
        typing = data.get("typing") if isinstance(data, dict) else None
        if not isinstance(ticket_id, int) or not isinstance(typing, bool):
            return {"error": "ticket_id (integer) and typing (boolean) are required"}
        if viewers.typing(ticket_id, request.sid, typing) is not None:  # type: ignore[attr-defined]
            announce(ticket_id)
        return {"ok": True}

    @socketio.on("disconnect", namespace=NAMESPACE)
    def on_disconnect(*_args: Any) -> None:
        for tid in viewers.leave(request.sid):  # type: ignore[attr-defined]
            announce(tid)
        user = session_user()
        if user is None or not can(user, Permission.TICKET_REPLY):
            return
        sess = db_session()
        # Offline only after the grace period: a page reload must not drop the agent.
        mark_disconnected(sess, user.id, utcnow())
        sess.commit()

    @socketio.on("presence", namespace=NAMESPACE)
    def on_presence(data: Any) -> dict[str, Any]:
        user = session_user()
        if user is None or not can(user, Permission.TICKET_REPLY):
            return {"error": "not an agent"}
        presence = data.get("presence") if isinstance(data, dict) else None
        reason = data.get("reason", "") if isinstance(data, dict) else ""
        if presence not in {p.value for p in Presence if p != Presence.WRAP_UP}:
            return {"error": "presence must be available, busy, away or offline"}
        if not isinstance(reason, str) or len(reason) > 200:
            return {"error": "reason must be a short text"}
        return _routing_call(lambda sess, now, policy: set_presence(
            sess, user.id, presence, now, policy, reason=reason))

    @socketio.on("offer", namespace=NAMESPACE)
    def on_offer(data: Any) -> dict[str, Any]:
        user = session_user()
        if user is None or not can(user, Permission.TICKET_REPLY):
            return {"error": "not an agent"}
        offer_id = data.get("offer_id") if isinstance(data, dict) else None
        answer = data.get("answer") if isinstance(data, dict) else None
        if not isinstance(offer_id, int) or isinstance(offer_id, bool) or \
                answer not in ("accept", "decline"):
            return {"error": "offer_id (integer) and answer (accept or decline) are required"}
        if answer == "accept":
            return _routing_call(lambda sess, now, policy: accept_offer(
                sess, offer_id, user.id, now, policy))
        return _routing_call(lambda sess, now, policy: decline_offer(
            sess, offer_id, user.id, now, policy))

    @socketio.on("resume", namespace=NAMESPACE)
    def on_resume(data: Any) -> dict[str, Any]:
        user = session_user()
        if user is None:
            return {"error": "signed out"}
        cursor = data.get("cursor") if isinstance(data, dict) else None
        if not isinstance(cursor, int) or isinstance(cursor, bool):
            return {"error": "cursor must be an integer"}
        result = replay_since(db_session(), cursor, rooms_for(user))
        return {"resync_required": result.resync_required,
                "last_event_id": result.last_event_id,
                "events": [e.to_json() for e in result.events]}
