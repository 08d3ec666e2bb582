"""The ``/agent`` Socket.IO namespace: rooms by role, snapshot cursor, replay and resync.

On connect the signed-in user joins ``agent:<id>``, the rooms of their queues
and, for supervisors, ``supervisors``. The client calls ``resume`` with its last
cursor; the server answers with the missed events from the log, or
``resync_required`` when the cursor is too old, in which case the client reloads
its snapshot.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_socketio import ConnectionRefusedError, join_room

from contactcenter.accounts.policy import Permission, can, queue_ids_of
from contactcenter.agent_ui.auth import session_user
from contactcenter.app import db_session, services
from contactcenter.events import SUPERVISORS_ROOM, replay_since, room

NAMESPACE = "/agent"


def rooms_for(user: Any) -> list[str]:
    """Return the rooms a user may listen to."""
    rooms = [room("agent", user.id)]
    rooms += [room("queue", q) for q in sorted(queue_ids_of(db_session(), user))]
    if can(user, Permission.TICKET_VIEW_ALL):
        rooms.append(SUPERVISORS_ROOM)
    return rooms


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
