"""The ``/agent`` Socket.IO namespace: rooms by role, snapshot cursor, replay and resync.

On connect the signed-in user joins ``agent:<id>``, the rooms of their queues
and, for supervisors, ``supervisors``. The client calls ``resume`` with its last
cursor; the server answers with the missed events from the log, or
``resync_required`` when the cursor is too old, in which case the client reloads
its snapshot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask_socketio import ConnectionRefusedError, join_room
from sqlalchemy.orm import Session

from contactcenter.accounts.policy import Permission, can, queue_ids_of
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
        user = session_user()
        if user is None or not can(user, Permission.TICKET_VIEW):
            raise ConnectionRefusedError("sign in first")
        for name in rooms_for(user):
            join_room(name)
        if can(user, Permission.TICKET_REPLY):
            sess = db_session()
            mark_connected(sess, user.id, utcnow())
            sess.commit()

    @socketio.on("disconnect", namespace=NAMESPACE)
    def on_disconnect(*_args: Any) -> None:
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
