"""Socket.IO for chat: the ``/visitor`` namespace for widgets, chat events on ``/agent``.

Visitors are authenticated by our signed visitor token (``auth.token``), never
by cookies, and only from allowed origins (``CONTACTCENTER_CHAT_ALLOWED_ORIGINS``
and our own). Every event re-checks that the chat named is the visitor's own.
Each handler parses, rate-limits, calls the chat service and answers the
acknowledgement; nothing here decides business rules.

Widget protocol (all calls answer ``{"error": text}`` on failure)::

    connect(auth={token?, user_id?, user_hash?, page_url?, page_title?, language?})
    hello()                           -> {token, visitor, identified, available, reason,
                                          prechat, chat: {chat_id, state, agent, position,
                                          messages} | null}
    suggest({text})                   -> {articles: [{id, title, url}]}
    start({prechat, text, client_id}) -> {chat_id, message_id, duplicate, position}
    message({chat_id, client_id, text}) -> {message_id, duplicate}
    typing({chat_id, typing}); read({chat_id, message_id}) -> {ok}
    resume({chat_id, after})          -> {state, agent, position, messages}
    end({chat_id}); transcript({chat_id, email}) -> {ok}
    offline({name, email, text, client_id}) -> {ticket}
    server -> client: "chat_event" {type, payload}, "typing" {chat_id, typing}
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, request
from flask_socketio import ConnectionRefusedError, disconnect, join_room

from contactcenter.channels.chat import service
from contactcenter.channels.chat.errors import ChatError
from contactcenter.channels.chat.identity import (
    new_visitor_token,
    verified_user_id,
    visitor_from_token,
)
from contactcenter.channels.chat.lifecycle import end_chat, register_hooks, send_transcript
from contactcenter.channels.chat.ratelimit import rate_limiter
from contactcenter.channels.chat.relay import NAMESPACE, hook_database, set_relay, visitor_room
from contactcenter.channels.chat.suggest import suggest_articles
from contactcenter.config import Settings
from contactcenter.db import utcnow

log = logging.getLogger(__name__)

FLOOD_DISCONNECT = 3  # refused messages past the limit before the socket is closed


@dataclass(frozen=True)
class Connection:
    """What one visitor socket proved at connect."""

    visitor: service.Visitor
    token: str


_connections: dict[str, Connection] = {}
_refused: dict[str, int] = {}
_lock = threading.Lock()


def origin_of(url: str) -> str:
    """Return ``scheme://host[:port]`` of a URL, lowercased ('' if it has none)."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def allowed_origins(settings: Settings) -> set[str]:
    """Return the configured widget origins plus our public URL's ("*" is ignored)."""
    origins = {origin_of(o) for o in settings.chat_allowed_origins.split(",") if o.strip()}
    origins.add(origin_of(settings.public_url))
    origins.discard("")
    return origins


def is_allowed_origin(settings: Settings, origin: str | None, environ: dict[str, Any]) -> bool:
    """Whether a socket from this Origin may connect: same origin, or an allowed site."""
    if not origin:
        return False
    origin = origin.lower()
    own = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}".lower()
    return origin == own or origin in allowed_origins(settings)


def client_address(environ: dict[str, Any], settings: Settings) -> str:
    """Return the client's IP: the peer, or the proxy's X-Forwarded-For when it is trusted."""
    peer = str(environ.get("REMOTE_ADDR") or "")
    trusted = {p.strip() for p in settings.forms_trusted_proxies.split(",") if p.strip()}
    forwarded = str(environ.get("HTTP_X_FORWARDED_FOR") or "")
    if peer in trusted and forwarded:
        return forwarded.split(",")[-1].strip()[:64]
    return peer[:64]


def _text(data: Any, key: str, limit: int) -> str:
    value = data.get(key) if isinstance(data, dict) else None
    return value[:limit] if isinstance(value, str) else ""


def init_app(app: Flask) -> None:
    """Register the visitor namespace and the agents' chat events on the app's Socket.IO."""
    from contactcenter.app import services

    svc = services(app)
    settings, socketio = svc.settings, svc.socketio
    register_hooks()
    set_relay(socketio)
    hook_database(svc.db, settings)
    # The widget runs on other sites: engine.io must let their origins through, while
    # every other origin keeps the same-origin rule (the /agent namespace relies on it).
    socketio.server.eio.cors_allowed_origins = (
        lambda origin, environ: is_allowed_origin(settings, origin, environ))

    from contactcenter.channels.chat.agent_sockets import register_agent_events

    register_agent_events(app)

    def limiter() -> Any:
        return rate_limiter(settings.redis_url)

    def current() -> Connection | None:
        with _lock:
            return _connections.get(request.sid)  # type: ignore[attr-defined]

    def db() -> Any:
        from contactcenter.app import db_session

        return db_session()

    def finish(sess: Any) -> None:
        sess.commit()

    def deliver(message_id: int | None) -> None:
        if message_id is None:
            return
        try:
            svc.jobs.enqueue("outbox.deliver", message_id, key=f"deliver:{message_id}")
        except Exception:  # the outbox sweep delivers it later
            log.exception("could not enqueue delivery of %s", message_id)

    @socketio.on_error(NAMESPACE)
    def on_error(exc: BaseException) -> dict[str, Any] | bool:
        # Without this an unexpected error (a database busy past its timeout) sends no
        # acknowledgement, and the widget waits for its own time-out before resending.
        log.exception("visitor socket event failed: %s", exc)
        try:
            db().rollback()
        except Exception:  # noqa: BLE001 - the answer below matters more
            log.exception("rollback after a failed visitor event")
        if getattr(request, "event", {}).get("message") == "connect":
            return False  # refuse the socket; the client retries
        return {"error": "temporary_error", "retry": True}

    @socketio.on("connect", namespace=NAMESPACE)
    def on_connect(auth: Any = None) -> None:
        environ = request.environ
        if not is_allowed_origin(settings, environ.get("HTTP_ORIGIN"), environ):
            raise ConnectionRefusedError("origin not allowed")
        address = client_address(environ, settings)
        verdict = limiter().hit(f"chat-conn:{address}", settings.chat_connections_per_address,
                                60)
        if not verdict.allowed:
            raise ConnectionRefusedError("too many connections")
        auth = auth if isinstance(auth, dict) else {}
        visitor_id = visitor_from_token(settings.secret_key, auth.get("token"))
        token = auth.get("token") if visitor_id else None
        if visitor_id is None:
            visitor_id, token = new_visitor_token(settings.secret_key)
        uid = verified_user_id(settings.chat_identity_secret, auth.get("user_id"),
                               auth.get("user_hash"))
        language = _text(auth, "language", 8) or None
        visitor = service.Visitor(
            visitor_id=visitor_id, address=address,
            user_agent=str(environ.get("HTTP_USER_AGENT", ""))[:500],
            page_url=_text(auth, "page_url", 2000), page_title=_text(auth, "page_title", 300),
            verified_user_id=uid, language=language)
        with _lock:
            _connections[request.sid] = Connection(visitor, str(token))  # type: ignore[attr-defined]
        join_room(visitor_room(visitor_id))

    @socketio.on("disconnect", namespace=NAMESPACE)
    def on_disconnect(*_args: Any) -> None:
        with _lock:
            _connections.pop(request.sid, None)  # type: ignore[attr-defined]
            _refused.pop(request.sid, None)  # type: ignore[attr-defined]

    def live_view(sess: Any, chat: Any, after: int = 0) -> dict[str, Any]:
        from contactcenter.accounts.models import User

        agent = sess.get(User, chat.agent_id) if chat.agent_id else None
        return {"chat_id": chat.public_id, "state": chat.state,
                "agent": (agent.name.split(" ")[0] if agent and agent.name else None),
                "position": service.queue_position(sess, chat),
                "visitor_read_id": chat.visitor_read_id, "agent_read_id": chat.agent_read_id,
                "messages": service.chat_history(sess, chat, after_id=after)}

    @socketio.on("hello", namespace=NAMESPACE)
    def on_hello(data: Any = None) -> dict[str, Any]:
        conn = current()
        if conn is None:
            return {"error": "not connected"}
        sess = db()
        availability = service.chat_availability(sess, settings, utcnow())
        chat = service.find_live_chat(sess, conn.visitor.visitor_id)
        return {"token": conn.token, "visitor": conn.visitor.visitor_id,
                "identified": conn.visitor.verified_user_id is not None,
                "available": availability.open, "reason": availability.reason,
                "prechat": service.prechat_fields(settings),
                "chat": live_view(sess, chat) if chat is not None else None}

    @socketio.on("suggest", namespace=NAMESPACE)
    def on_suggest(data: Any) -> dict[str, Any]:
        conn = current()
        if conn is None:
            return {"error": "not connected"}
        verdict = limiter().hit(f"chat-suggest:{conn.visitor.visitor_id}", 60, 60)
        if not verdict.allowed:
            return {"articles": []}
        return {"articles": suggest_articles(settings, _text(data, "text", 2000),
                                             conn.visitor.language)}

    def flood_check(conn: Connection) -> dict[str, Any] | None:
        sid = request.sid  # type: ignore[attr-defined]
        for key, limit in ((f"chat-msg:{conn.visitor.visitor_id}",
                            settings.chat_messages_per_minute),
                           (f"chat-addr:{conn.visitor.address}",
                            settings.chat_address_messages_per_minute)):
            verdict = limiter().hit(key, limit, 60)
            if not verdict.allowed:
                with _lock:
                    _refused[sid] = _refused.get(sid, 0) + 1
                    strikes = _refused[sid]
                if strikes > max(FLOOD_DISCONNECT, limit):
                    disconnect()
                return {"error": "rate_limited", "retry_after": verdict.retry_after}
        return None

    def client_id_of(data: Any) -> str | None:
        value = data.get("client_id") if isinstance(data, dict) else None
        if isinstance(value, str) and 0 < len(value) <= 64 and value.isprintable():
            return value
        return None

    @socketio.on("start", namespace=NAMESPACE)
    def on_start(data: Any) -> dict[str, Any]:
        conn = current()
        if conn is None or not isinstance(data, dict):
            return {"error": "bad request"}
        refused = flood_check(conn)
        if refused:
            return refused
        client_id = client_id_of(data)
        if client_id is None:
            return {"error": "client_id is required"}
        prechat = data.get("prechat") if isinstance(data.get("prechat"), dict) else {}
        values, errors = service.validate_prechat(settings, prechat)
        if errors:
            return {"error": "invalid", "fields": errors}
        sess = db()
        visitor = replace(conn.visitor, page_url=_text(data, "page_url", 2000)
                          or conn.visitor.page_url)
        try:
            chat, result = service.start_chat(sess, settings, svc.registry, visitor, prechat,
                                              _text(data, "text", 5001), client_id)
        except ChatError as exc:
            sess.rollback()
            return {"error": str(exc)}
        if result is None:
            return {"error": "your message could not be stored; please try again"}
        sess.expire_all()
        return {"chat_id": chat.public_id, "message_id": result.message_id,
                "duplicate": result.status == "duplicate",
                "position": service.queue_position(sess, chat)}

    @socketio.on("message", namespace=NAMESPACE)
    def on_message(data: Any) -> dict[str, Any]:
        conn = current()
        if conn is None or not isinstance(data, dict):
            return {"error": "bad request"}
        refused = flood_check(conn)
        if refused:
            return refused
        client_id = client_id_of(data)
        if client_id is None:
            return {"error": "client_id is required"}
        sess = db()
        try:
            chat = service.get_visitor_chat(sess, conn.visitor.visitor_id, data.get("chat_id"))
            result = service.post_visitor_message(sess, settings, svc.registry, chat, client_id,
                                                  _text(data, "text", 5001))
        except ChatError as exc:
            sess.rollback()
            return {"error": str(exc)}
        if result is None:
            return {"error": "your message could not be stored; please try again"}
        return {"message_id": result.message_id, "duplicate": result.status == "duplicate"}

    @socketio.on("typing", namespace=NAMESPACE)
    def on_typing(data: Any) -> dict[str, Any]:
        conn = current()
        if conn is None or not isinstance(data, dict):
            return {"error": "bad request"}
        sess = db()
        try:
            chat = service.get_visitor_chat(sess, conn.visitor.visitor_id, data.get("chat_id"))
        except ChatError as exc:
            return {"error": str(exc)}
        if chat.agent_id is not None and chat.is_live:
            socketio.emit("chat_typing", {"chat_id": chat.public_id,
                                          "typing": bool(data.get("typing")),
                                          "text": _text(data, "preview", 200)},
                          to=f"agent:{chat.agent_id}", namespace="/agent")
        return {"ok": True}

    @socketio.on("read", namespace=NAMESPACE)
    def on_read(data: Any) -> dict[str, Any]:
        conn = current()
        if conn is None or not isinstance(data, dict):
            return {"error": "bad request"}
        sess = db()
        try:
            chat = service.get_visitor_chat(sess, conn.visitor.visitor_id, data.get("chat_id"))
            service.mark_read(sess, chat, "visitor", data.get("message_id"))
            finish(sess)
        except ChatError as exc:
            sess.rollback()
            return {"error": str(exc)}
        return {"ok": True}

    @socketio.on("resume", namespace=NAMESPACE)
    def on_resume(data: Any) -> dict[str, Any]:
        conn = current()
        if conn is None or not isinstance(data, dict):
            return {"error": "bad request"}
        after = data.get("after")
        after = after if isinstance(after, int) and not isinstance(after, bool) else 0
        sess = db()
        try:
            chat = service.get_visitor_chat(sess, conn.visitor.visitor_id, data.get("chat_id"))
        except ChatError as exc:
            return {"error": str(exc)}
        return live_view(sess, chat, after)

    @socketio.on("end", namespace=NAMESPACE)
    def on_end(data: Any) -> dict[str, Any]:
        from contactcenter.routing.engine import commit_and_settle, load_policy

        conn = current()
        if conn is None or not isinstance(data, dict):
            return {"error": "bad request"}
        sess = db()
        now = utcnow()
        policy = load_policy(settings)
        try:
            chat = service.get_visitor_chat(sess, conn.visitor.visitor_id, data.get("chat_id"))
            end_chat(sess, chat, "visitor", now, policy)
            commit_and_settle(sess, now, policy)
        except ChatError as exc:
            sess.rollback()
            return {"error": str(exc)}
        return {"ok": True}

    @socketio.on("transcript", namespace=NAMESPACE)
    def on_transcript(data: Any) -> dict[str, Any]:
        conn = current()
        if conn is None or not isinstance(data, dict):
            return {"error": "bad request"}
        sess = db()
        try:
            chat = service.get_visitor_chat(sess, conn.visitor.visitor_id, data.get("chat_id"))
            message, reason = send_transcript(sess, settings, chat, _text(data, "email", 320))
            message_id = message.id if message is not None else None
            finish(sess)
        except ChatError as exc:
            sess.rollback()
            return {"error": str(exc)}
        deliver(message_id)
        return {"ok": message_id is not None, "withheld": reason}

    @socketio.on("offline", namespace=NAMESPACE)
    def on_offline(data: Any) -> dict[str, Any]:
        from contactcenter.channels.forms.service import FormRefused, submit_offline_message

        conn = current()
        if conn is None or not isinstance(data, dict):
            return {"error": "bad request"}
        verdict = limiter().hit(f"form-addr:{conn.visitor.address}",
                                settings.forms_posts_per_hour, 3600)
        if not verdict.allowed:
            return {"error": "rate_limited", "retry_after": verdict.retry_after}
        client_id = client_id_of(data)
        if client_id is None:
            return {"error": "client_id is required"}
        sess = db()
        try:
            outcome = submit_offline_message(
                sess, settings, svc.registry, client_id,
                {k: _text(data, k, 5001) for k in ("name", "email", "text")},
                page_url=conn.visitor.page_url)
        except FormRefused as exc:
            return {"error": "invalid", "fields": exc.errors}
        for message_id in outcome.deliver:
            deliver(message_id)
        return {"ticket": outcome.ticket_number, "duplicate": outcome.duplicate}

