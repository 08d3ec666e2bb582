"""Reach visitors' widgets: emit to ``/visitor`` rooms from any process.

In a web process the app's Socket.IO server is the relay (``set_relay`` at
start). Elsewhere (an RQ worker) a write-only Socket.IO on the Redis message
queue reaches the web processes' visitors. Chat events recorded in the event
log with a ``visitor:<id>`` room are emitted to that room after the commit by
``VisitorPublisher``, with the payload the chat service wrote for visitors.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Sequence
from typing import Any

from contactcenter.config import Settings
from contactcenter.events import EventLog

log = logging.getLogger(__name__)

NAMESPACE = "/visitor"
VISITOR_PREFIX = "visitor:"


def visitor_room(visitor_id: str) -> str:
    """Name the room every socket of one visitor joins."""
    return f"{VISITOR_PREFIX}{visitor_id}"


class Relay:
    """Emit events to visitor rooms through a Socket.IO server or its message queue."""

    def __init__(self, socketio: Any) -> None:
        self.socketio = socketio

    def emit(self, event: str, data: Any, room: str) -> None:
        """Emit one event to a room of the visitor namespace."""
        self.socketio.emit(event, data, to=room, namespace=NAMESPACE)


_relay: Relay | None = None
_queue_relays: dict[str, Relay] = {}
_lock = threading.Lock()


def set_relay(socketio: Any) -> Relay:
    """Make the app's Socket.IO server this process's relay."""
    global _relay
    _relay = Relay(socketio)
    return _relay


def find_relay(settings: Settings) -> Relay | None:
    """Return this process's relay: the app's server, else Redis, else None."""
    if _relay is not None:
        return _relay
    if not settings.redis_url:
        return None
    with _lock:
        relay = _queue_relays.get(settings.redis_url)
        if relay is None:
            from flask_socketio import SocketIO

            relay = Relay(SocketIO(message_queue=settings.redis_url))
            _queue_relays[settings.redis_url] = relay
        return relay


def publish_to_visitors(relay: Relay, rows: Sequence[EventLog]) -> None:
    """Emit the committed chat events that name a visitor room to that room."""
    for row in rows:
        if not row.type.startswith("chat."):
            continue
        rooms = [r for r in row.rooms.split() if r.startswith(VISITOR_PREFIX)]
        if not rooms:
            continue
        visitor = row.payload.get("visitor") if isinstance(row.payload, dict) else None
        if not isinstance(visitor, dict):
            continue
        data = {"id": row.id, "type": row.type, "payload": visitor}
        for name in rooms:
            try:
                relay.emit("chat_event", data, name)
            except Exception:  # a socket hiccup must never undo a commit
                log.exception("could not emit %s to %s", row.type, name)


_hooked: weakref.WeakSet[Any] = weakref.WeakSet()


def hook_database(db: Any, settings: Settings) -> None:
    """Publish chat events to visitors after every commit of this database (once per db)."""
    with _lock:
        if db in _hooked:
            return
        _hooked.add(db)

    def after_commit(rows: list[Any]) -> None:
        relay = find_relay(settings)
        if relay is not None:
            publish_to_visitors(relay, rows)

    db.on_commit(after_commit)
