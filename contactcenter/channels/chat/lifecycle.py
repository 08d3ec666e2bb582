"""A chat's life after it starts: an agent joins, transfers, ends; inactivity; transcripts.

An agent joins when routing gives them the chat's item: ``mark_assigned``
assigns the ticket, and ``on_ticket_assigned`` (an in-transaction assign hook)
turns the chat active and tells the visitor who joined. Ending a chat completes
the routing item (or abandons it when no agent ever joined) and solves the
ticket when an agent handled it; a chat nobody joined stays an open ticket that
is answered later.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from contactcenter import hooks
from contactcenter.accounts.models import User
from contactcenter.channels.chat.errors import ChatClosedError, ChatError
from contactcenter.channels.chat.models import LIVE_STATES, ChatSession, ChatState
from contactcenter.channels.chat.service import chat_rooms, chat_summary, post_system_notice
from contactcenter.config import Settings
from contactcenter.db import utcnow
from contactcenter.events import record_event
from contactcenter.routing.policy import RoutingPolicy
from contactcenter.tickets.models import Direction, Message, Ticket, TicketStatus

END_REASONS = ("visitor", "agent", "inactive", "unanswered", "system")


def on_ticket_assigned(ctx: hooks.AssignContext) -> None:
    """Turn a chat active when its ticket is given to an agent (or waiting when taken back)."""
    ticket = ctx.ticket
    if ticket.channel != "chat":
        return
    session = ctx.session
    chat = session.scalar(select(ChatSession).where(
        ChatSession.ticket_id == ticket.id, ChatSession.state.in_(LIVE_STATES)))
    if chat is None:
        return
    if ticket.assignee_id is None:
        if chat.state == ChatState.ACTIVE:
            chat.state = ChatState.WAITING
            previous = chat.agent_id
            chat.agent_id = None
            record_event(session, "chat.transferred",
                         {**chat_summary(chat), "from_agent_id": previous,
                          "visitor": {"chat_id": chat.public_id, "state": chat.state}},
                         chat_rooms(chat) + ([f"agent:{previous}"] if previous else []))
        return
    agent = session.get(User, ticket.assignee_id)
    previous = chat.agent_id
    chat.agent_id = ticket.assignee_id
    chat.state = ChatState.ACTIVE
    chat.accepted_at = chat.accepted_at or ctx.now
    chat.last_activity_at = ctx.now
    name = (agent.name.split(" ")[0] if agent is not None and agent.name else "An agent")
    record_event(session, "chat.agent_joined",
                 {**chat_summary(chat), "previous_agent_id": previous,
                  "visitor": {"chat_id": chat.public_id, "state": chat.state,
                              "agent": name}},
                 chat_rooms(chat))


def register_hooks() -> None:
    """Register the chat's in-transaction hooks (idempotent): assignment and agents' replies."""
    from contactcenter.channels.chat.service import on_chat_reply

    hooks.on_assign(on_ticket_assigned)
    hooks.on_reply(on_chat_reply)


def end_chat(session: Session, chat: ChatSession, reason: str, now: dt.datetime,
             policy: RoutingPolicy, actor_user_id: int | None = None) -> None:
    """End a live chat (no commit): the routing item completes, the ticket is solved if answered."""
    from contactcenter.routing.engine import abandon_item, complete_item
    from contactcenter.tickets.service import change_status

    if reason not in END_REASONS:
        raise ChatError(f"unknown reason {reason!r}")
    if not chat.is_live:
        raise ChatClosedError("this chat has ended")
    answered = chat.agent_id is not None
    agent_id = chat.agent_id
    chat.state = ChatState.ENDED
    chat.ended_at = now
    chat.ended_reason = reason
    chat.last_activity_at = now
    if chat.routing_item_id is not None:
        if answered:
            complete_item(session, chat.routing_item_id, now, policy)
        else:
            abandon_item(session, chat.routing_item_id, now, policy)
    ticket = session.get(Ticket, chat.ticket_id) if chat.ticket_id is not None else None
    if ticket is not None and answered and ticket.status in (
            TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING):
        change_status(session, ticket, TicketStatus.SOLVED, actor_user_id, now, policy=policy)
    rooms = chat_rooms(chat)
    if agent_id is not None and f"agent:{agent_id}" not in rooms:
        rooms.append(f"agent:{agent_id}")
    record_event(session, "chat.ended",
                 {**chat_summary(chat), "reason": reason, "by": actor_user_id,
                  "visitor": {"chat_id": chat.public_id, "state": chat.state,
                              "reason": reason}},
                 rooms)


def transfer_chat(session: Session, chat: ChatSession, actor: User, now: dt.datetime,
                  policy: RoutingPolicy, *, to_agent_id: int | None = None,
                  to_queue_id: int | None = None) -> None:
    """Hand a live chat to another agent or queue (no commit; raises NotEligibleError)."""
    from contactcenter.routing.engine import transfer_item

    if not chat.is_live or chat.routing_item_id is None:
        raise ChatClosedError("this chat has ended")
    post_system_notice(session, chat, "You are being transferred to a colleague.", now)
    transfer_item(session, chat.routing_item_id, now, policy, to_agent_id=to_agent_id,
                  to_queue_id=to_queue_id, actor_id=actor.id)


def close_inactive_chats(session: Session, settings: Settings, now: dt.datetime,
                         policy: RoutingPolicy, limit: int = 200) -> dict[str, int]:
    """Warn, then end, chats quiet for too long; end chats nobody answered in time. Commits."""
    counts = {"warned": 0, "ended": 0, "unanswered": 0}
    idle = dt.timedelta(minutes=settings.chat_inactivity_minutes)
    warn = idle - dt.timedelta(minutes=settings.chat_inactivity_warning_minutes)
    waiting = dt.timedelta(minutes=settings.chat_waiting_minutes)
    if settings.chat_inactivity_minutes > 0:
        ids = list(session.scalars(select(ChatSession.id).where(
            ChatSession.state == ChatState.ACTIVE, ChatSession.last_activity_at <= now - warn,
        ).order_by(ChatSession.last_activity_at).limit(limit)))
        for chat_id in ids:
            chat = session.get(ChatSession, chat_id, with_for_update=True, populate_existing=True)
            if chat is None or chat.state != ChatState.ACTIVE:
                continue
            if chat.last_activity_at <= now - idle:
                post_system_notice(session, chat, "This chat was closed after a period of "
                                   "inactivity.", now)
                end_chat(session, chat, "inactive", now, policy)
                counts["ended"] += 1
            elif chat.warned_at is None and warn > dt.timedelta(0):
                chat.warned_at = now
                minutes = settings.chat_inactivity_warning_minutes
                post_system_notice(session, chat, f"This chat will close in {minutes} minutes "
                                   "unless a message is sent.", now)
                counts["warned"] += 1
            session.commit()
    if settings.chat_waiting_minutes > 0:
        ids = list(session.scalars(select(ChatSession.id).where(
            ChatSession.state == ChatState.WAITING,
            or_(ChatSession.accepted_at.is_(None), ChatSession.accepted_at <= now - waiting),
            ChatSession.last_activity_at <= now - waiting,
        ).order_by(ChatSession.id).limit(limit)))
        for chat_id in ids:
            chat = session.get(ChatSession, chat_id, with_for_update=True, populate_existing=True)
            if chat is None or chat.state != ChatState.WAITING:
                continue
            post_system_notice(session, chat, "No agent could take your chat in time. Your "
                               "message is kept and we will answer you by e-mail.", now)
            end_chat(session, chat, "unanswered", now, policy)
            counts["unanswered"] += 1
            session.commit()
    return counts


def transcript_text(session: Session, chat: ChatSession) -> str:
    """Return the conversation as plain text, one block per message."""
    from contactcenter.channels.chat.service import chat_history

    lines = [f"Chat transcript ({chat.started_at:%Y-%m-%d %H:%M} UTC)", ""]
    for item in chat_history(session, chat, limit=2000):
        who = {"visitor": chat.name or "You", "agent": item["author"] or "Agent"}.get(
            item["from"], "Notice")
        lines.append(f"[{item['at'][11:16]}] {who}: {item['text']}")
        for att in item["attachments"]:
            lines.append(f"    (file: {att['name']})")
    return "\n".join(lines) + "\n"


def send_transcript(session: Session, settings: Settings, chat: ChatSession, email: str,
                    now: dt.datetime | None = None) -> tuple[Message | None, str | None]:
    """Store the transcript e-mail for a chat (once per chat, within the mail caps; no commit).

    The address is the one the visitor typed; it is used for this mail only and
    never becomes an identity of the customer (an unverified claim).
    """
    from contactcenter.channels.forms.automail import store_automatic_email
    from contactcenter.customers.errors import InvalidIdentityError
    from contactcenter.customers.identity import normalise_email

    now = now or utcnow()
    try:
        address = normalise_email(email if isinstance(email, str) else "")
    except InvalidIdentityError as exc:
        raise ChatError("Enter a valid e-mail address.") from exc
    if chat.ticket_id is None:
        raise ChatError("nothing to send yet")
    if chat.transcript_sent_at is not None:
        raise ChatError("the transcript was already sent")
    ticket = session.get(Ticket, chat.ticket_id)
    assert ticket is not None
    chat.transcript_sent_at = now
    return store_automatic_email(session, ticket, address, "Your chat transcript",
                                 transcript_text(session, chat), "chat_transcript", settings, now)


def agent_chat_view(session: Session, chat: ChatSession) -> dict[str, Any]:
    """Return what the agent's chat panel shows: the visitor, their page, identity and history."""
    from contactcenter.channels.chat.service import chat_history

    ticket = session.get(Ticket, chat.ticket_id) if chat.ticket_id is not None else None
    earlier: list[dict[str, Any]] = []
    if chat.customer_id is not None:
        for row in session.execute(
                select(Ticket.number, Ticket.subject, Ticket.channel, Ticket.status,
                       Ticket.created_at)
                .where(Ticket.customer_id == chat.customer_id,
                       Ticket.id != (chat.ticket_id or 0))
                .order_by(Ticket.id.desc()).limit(10)):
            earlier.append({"number": row[0], "subject": row[1], "channel": row[2],
                            "status": row[3], "created_at": row[4].isoformat()})
    notes = session.scalar(select(Message.id).where(
        Message.ticket_id == (chat.ticket_id or 0), Message.direction == Direction.NOTE).limit(1))
    return {
        "chat_id": chat.public_id, "state": chat.state, "agent_id": chat.agent_id,
        "visitor": {"name": chat.name, "email": chat.email, "topic": chat.topic,
                    "identified": chat.identified, "page_url": chat.page_url,
                    "page_title": chat.page_title, "user_agent": chat.user_agent},
        "ticket": {"id": ticket.id, "number": ticket.number, "subject": ticket.subject,
                   "customer_id": ticket.customer_id} if ticket else None,
        "history": earlier, "has_notes": notes is not None,
        "messages": chat_history(session, chat),
        "visitor_read_id": chat.visitor_read_id, "started_at": chat.started_at.isoformat(),
    }
