"""Chat test world: settings with a signing secret, a chat queue, an available agent, clients."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from contactcenter.accounts.models import User
from contactcenter.channels.chat.ratelimit import reset_memory_limiters
from contactcenter.config import Settings
from contactcenter.db import utcnow
from contactcenter.routing import engine
from contactcenter.routing.policy import load_policy
from contactcenter.tickets.models import Queue
from tests.factories import make_queue, make_user

SECRET = "site-identity-secret-for-tests"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url="sqlite://",
                    secret_key="test-secret-key-not-for-production", testing=True,
                    chat_identity_secret=SECRET, chat_messages_per_minute=20,
                    routing_offer_timeouts="call=20,chat=0,ticket=120",
                    chat_allowed_origins="https://shop.example.test")


@pytest.fixture(autouse=True)
def fresh_limits() -> Iterator[None]:
    reset_memory_limiters()
    yield
    reset_memory_limiters()


@dataclass
class ChatWorld:
    queue: Queue
    agent: User
    agent_email: str


def make_world(session: Any, settings: Settings, available: bool = True) -> ChatWorld:
    queue = make_queue(session, settings.chat_queue)
    email = f"agent-{uuid.uuid4().hex[:6]}@example.test"
    agent = make_user(session, "agent", email=email, queues=(queue,))
    session.commit()
    if available:
        now, policy = utcnow(), load_policy(settings)
        engine.ensure_agent(session, agent.id, now, policy)
        engine.set_presence(session, agent.id, "available", now, policy)
        session.commit()
    return ChatWorld(queue, agent, email)


@pytest.fixture
def world(session: Any, settings: Settings) -> ChatWorld:
    return make_world(session, settings)


@dataclass
class Visitor:
    """A real python-socketio client on /visitor, recording what it receives."""

    sio: Any
    events: list[dict[str, Any]] = field(default_factory=list)
    typing: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, event: str, data: Any = None, timeout: float = 10) -> Any:
        return self.sio.call(event, data if data is not None else {}, namespace="/visitor",
                             timeout=timeout)

    def wait_for(self, predicate: Any, timeout: float = 5) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                for e in self.events:
                    if predicate(e):
                        return e
            time.sleep(0.02)
        raise AssertionError(f"no matching event in {self.events}")

    def close(self) -> None:
        eio_ws = getattr(self.sio.eio, "ws", None)
        if eio_ws is not None:
            close = eio_ws.close
            eio_ws.close = lambda *a, **k: close(timeout=0.1)
        self.sio.disconnect()


def connect_visitor(url: str, *, origin: str | None = None, auth: dict[str, Any] | None = None
                    ) -> Visitor:
    import socketio

    # websocket-client sends its own Origin header: set it there, not in the headers.
    sio = socketio.Client(reconnection=False,
                          websocket_extra_options={"origin": origin or url})
    visitor = Visitor(sio)

    def on_event(data: Any) -> None:
        with visitor.lock:
            visitor.events.append(data)

    def on_typing(data: Any) -> None:
        with visitor.lock:
            visitor.typing.append(data)

    sio.on("chat_event", on_event, namespace="/visitor")
    sio.on("typing", on_typing, namespace="/visitor")
    sio.connect(url, namespaces=["/visitor"], transports=["websocket"], wait_timeout=5,
                auth=auth or {})
    return visitor


def session_cookie(app: Any, user: User) -> str:
    """Return a signed session cookie of a signed-in user (as the login page would set)."""
    from contactcenter.accounts.service import session_fingerprint

    client = app.test_client()
    with client.session_transaction() as sess:
        sess["user_id"] = user.id
        sess["auth_version"] = session_fingerprint(user)
    cookie = client.get_cookie("session")
    assert cookie is not None
    return f"session={cookie.value}"


def connect_agent(url: str, app: Any, user: User) -> Any:
    import socketio

    sio = socketio.Client(reconnection=False, websocket_extra_options={"origin": url})
    sio.received = []  # type: ignore[attr-defined]
    sio.on("event", lambda d: sio.received.append(d), namespace="/agent")  # type: ignore[attr-defined]
    sio.on("chat_typing", lambda d: sio.received.append({"type": "typing", "payload": d}),  # type: ignore[attr-defined]
           namespace="/agent")
    sio.connect(url, namespaces=["/agent"], transports=["websocket"], wait_timeout=5,
                headers={"Cookie": session_cookie(app, user)})
    return sio
