"""Chat events agents send on the ``/agent`` namespace (the desktop's socket).

Registered next to the desktop's own handlers; each checks the signed-in user
and that the chat is theirs (supervisors may act on any), on every event.

    chat_open({chat_id} or {ticket_id})  -> the panel's view (visitor, page, history)
    chat_send({chat_id, text})           -> {message_id}
    chat_typing({chat_id, typing})       -> {ok}   (the visitor sees "typing...")
    chat_read({chat_id, message_id})     -> {ok}
    chat_end({chat_id})                  -> {ok}
    chat_transfer({chat_id, agent_id | queue_id}) -> {ok}
    chat_suggest({text})                 -> {articles}  (knowledge inserts)
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from sqlalchemy import select

from contactcenter.accounts.policy import Permission, can, can_view_ticket
from contactcenter.channels.chat import service
from contactcenter.channels.chat.errors import ChatError, ChatNotFoundError
from contactcenter.channels.chat.lifecycle import agent_chat_view, end_chat, transfer_chat
from contactcenter.channels.chat.models import ChatSession
from contactcenter.channels.chat.relay import visitor_room
from contactcenter.channels.chat.suggest import suggest_articles
from contactcenter.db import utcnow

log = logging.getLogger(__name__)

AGENT_NAMESPACE = "/agent"


def register_agent_events(app: Flask) -> None:
    """Register the chat events on the agents' namespace."""
    from contactcenter.agent_ui.auth import session_user
    from contactcenter.app import db_session, services

    svc = services(app)
    settings, socketio = svc.settings, svc.socketio

    def chat_for(data: Any, *, acting: bool = True) -> tuple[Any, ChatSession]:
        user = session_user()
        if user is None or not can(user, Permission.TICKET_REPLY):
            raise ChatError("not an agent")
        public_id = data.get("chat_id") if isinstance(data, dict) else None
        ticket_id = data.get("ticket_id") if isinstance(data, dict) else None
        sess = db_session()
        if isinstance(ticket_id, int) and not isinstance(ticket_id, bool) and not public_id:
            chat = sess.scalar(select(ChatSession).where(ChatSession.ticket_id == ticket_id)
                               .order_by(ChatSession.id.desc()).limit(1))
        elif isinstance(public_id, str) and len(public_id) <= 32:
            chat = sess.scalar(select(ChatSession).where(ChatSession.public_id == public_id))
        else:
            raise ChatNotFoundError("no such chat")
        if chat is None:
            raise ChatNotFoundError("no such chat")
        supervisor = can(user, Permission.TICKET_VIEW_ALL)
        if acting and chat.agent_id != user.id and not supervisor:
            raise ChatNotFoundError("this chat is not yours")
        if not acting and chat.agent_id != user.id and not supervisor:
            from contactcenter.tickets.models import Ticket

            ticket = sess.get(Ticket, chat.ticket_id) if chat.ticket_id else None
            if ticket is None or not can_view_ticket(sess, user, ticket):
                raise ChatNotFoundError("no such chat")
        return user, chat

    def answer(action: Any) -> dict[str, Any]:
        try:
            return action()  # type: ignore[no-any-return]
        except ChatError as exc:
            db_session().rollback()
            return {"error": str(exc)}

    @socketio.on("chat_open", namespace=AGENT_NAMESPACE)
    def on_open(data: Any) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            _user, chat = chat_for(data, acting=False)
            return agent_chat_view(db_session(), chat)
        return answer(run)

    @socketio.on("chat_send", namespace=AGENT_NAMESPACE)
    def on_send(data: Any) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            user, chat = chat_for(data)
            text = data.get("text") if isinstance(data, dict) else None
            sess = db_session()
            message = service.post_agent_message(sess, chat, user, text if isinstance(text, str)
                                                 else "")
            sess.commit()
            try:
                svc.jobs.enqueue("outbox.deliver", message.id, key=f"deliver:{message.id}")
            except Exception:  # the outbox sweep delivers it
                log.exception("could not enqueue delivery of chat message %s", message.id)
            return {"message_id": message.id}
        return answer(run)

    @socketio.on("chat_typing", namespace=AGENT_NAMESPACE)
    def on_typing(data: Any) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            _user, chat = chat_for(data)
            if chat.is_live:
                from contactcenter.channels.chat.relay import NAMESPACE

                socketio.emit("typing", {"chat_id": chat.public_id,
                                         "typing": bool(data.get("typing"))},
                              to=visitor_room(chat.visitor_id), namespace=NAMESPACE)
            return {"ok": True}
        return answer(run)

    @socketio.on("chat_read", namespace=AGENT_NAMESPACE)
    def on_read(data: Any) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            _user, chat = chat_for(data)
            service.mark_read(db_session(), chat, "agent", data.get("message_id"))
            db_session().commit()
            return {"ok": True}
        return answer(run)

    @socketio.on("chat_end", namespace=AGENT_NAMESPACE)
    def on_end(data: Any) -> dict[str, Any]:
        from contactcenter.routing.engine import commit_and_settle, load_policy

        def run() -> dict[str, Any]:
            user, chat = chat_for(data)
            now, policy = utcnow(), load_policy(settings)
            end_chat(db_session(), chat, "agent", now, policy, actor_user_id=user.id)
            commit_and_settle(db_session(), now, policy)
            return {"ok": True}
        return answer(run)

    @socketio.on("chat_transfer", namespace=AGENT_NAMESPACE)
    def on_transfer(data: Any) -> dict[str, Any]:
        from contactcenter.routing.engine import commit_and_settle, load_policy
        from contactcenter.routing.errors import RoutingError

        def run() -> dict[str, Any]:
            user, chat = chat_for(data)
            agent_id, queue_id = data.get("agent_id"), data.get("queue_id")
            ok = [isinstance(v, int) and not isinstance(v, bool) for v in (agent_id, queue_id)]
            if not any(ok):
                raise ChatError("agent_id or queue_id (integer) is required")
            now, policy = utcnow(), load_policy(settings)
            try:
                transfer_chat(db_session(), chat, user, now, policy,
                              to_agent_id=agent_id if ok[0] else None,
                              to_queue_id=queue_id if ok[1] else None)
                commit_and_settle(db_session(), now, policy)
            except RoutingError as exc:
                raise ChatError(str(exc)) from exc
            return {"ok": True}
        return answer(run)

    @socketio.on("chat_suggest", namespace=AGENT_NAMESPACE)
    def on_suggest(data: Any) -> dict[str, Any]:
        user = session_user()
        if user is None or not can(user, Permission.TICKET_VIEW):
            return {"error": "sign in first"}
        text = data.get("text") if isinstance(data, dict) else ""
        return {"articles": suggest_articles(settings, text if isinstance(text, str) else "")}
