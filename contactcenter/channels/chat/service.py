"""Chat use cases: availability, starting a chat, messages both ways, read receipts, history.

A live chat is a ticket (its messages are the conversation, written by intake
for the visitor and here for agents) plus a routing item of kind ``chat`` that
holds one of the agent's chat slots until the chat ends. Every function takes
the ``Session``; the ones that write record their events and leave the commit
to the caller, except ``start_chat`` and ``post_visitor_message``, which go
through intake and commit (the commit is what the widget's acknowledgement
waits for).
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contactcenter.accounts.models import User
from contactcenter.channels.base import ChannelRegistry
from contactcenter.channels.chat.adapter import CHANNEL, MAX_TEXT, encode_frame, frame_to_contact
from contactcenter.channels.chat.errors import ChatClosedError, ChatError, ChatNotFoundError
from contactcenter.channels.chat.hours import is_open, parse_hours
from contactcenter.channels.chat.models import LIVE_STATES, ChatSession, ChatState
from contactcenter.channels.chat.relay import visitor_room
from contactcenter.config import Settings
from contactcenter.db import utcnow
from contactcenter.events import record_event, room
from contactcenter.routing.models import AgentState, Presence
from contactcenter.tickets.intake import IntakeResult, ingest_payload
from contactcenter.tickets.models import (
    Attachment,
    Direction,
    Message,
    Queue,
    QueueMember,
    Ticket,
)

MAX_PRECHAT = {"name": 200, "email": 320, "topic": 100}


@dataclass(frozen=True)
class Visitor:
    """Who is on the socket: our visitor id, the site's proven user id, where they are."""

    visitor_id: str
    address: str = ""
    user_agent: str = ""
    page_url: str = ""
    page_title: str = ""
    verified_user_id: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Availability:
    """Whether a live chat can start now, and why not."""

    open: bool
    reason: str  # open | closed_hours | no_agents | no_queue
    queue_id: int | None = None


@dataclass
class Upload:
    """A file a visitor sends, already checked (name and sniffed type)."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)


def prechat_fields(settings: Settings) -> list[dict[str, Any]]:
    """Return the pre-chat fields the widget asks for: name, type, required, options."""
    fields = []
    for raw in settings.chat_prechat_fields.split(","):
        name = raw.strip().rstrip("*")
        if name not in MAX_PRECHAT:
            continue
        item: dict[str, Any] = {"name": name, "required": raw.strip().endswith("*"),
                                "type": "email" if name == "email" else "text"}
        if name == "topic":
            item["type"] = "select"
            item["options"] = [t.strip() for t in settings.chat_topics.split(",") if t.strip()]
        fields.append(item)
    return fields


def chat_queue(session: Session, settings: Settings) -> Queue | None:
    """Return the queue live chats go to."""
    return session.scalar(select(Queue).where(Queue.slug == settings.chat_queue))


def chat_availability(session: Session, settings: Settings, now: dt.datetime) -> Availability:
    """Tell whether chat is open: within hours, with a queue and an agent at work in it."""
    if not is_open(parse_hours(settings.chat_hours), settings.chat_timezone, now):
        return Availability(False, "closed_hours")
    queue = chat_queue(session, settings)
    if queue is None:
        return Availability(False, "no_queue")
    staffed = session.scalar(
        select(func.count()).select_from(AgentState)
        .join(QueueMember, QueueMember.user_id == AgentState.user_id)
        .where(QueueMember.queue_id == queue.id,
               AgentState.presence.in_((Presence.AVAILABLE, Presence.BUSY, Presence.WRAP_UP))))
    if not staffed:
        return Availability(False, "no_agents", queue.id)
    return Availability(True, "open", queue.id)


def find_live_chat(session: Session, visitor_id: str) -> ChatSession | None:
    """Return the visitor's live chat, if any (one at a time)."""
    return session.scalar(select(ChatSession).where(
        ChatSession.visitor_id == visitor_id, ChatSession.state.in_(LIVE_STATES)
    ).order_by(ChatSession.id.desc()).limit(1))


def get_visitor_chat(session: Session, visitor_id: str, public_id: object) -> ChatSession:
    """Return a chat of this visitor by its public id, or raise (another's chat is 'not found')."""
    if not isinstance(public_id, str) or len(public_id) > 32:
        raise ChatNotFoundError("no such chat")
    chat = session.scalar(select(ChatSession).where(ChatSession.public_id == public_id))
    if chat is None or chat.visitor_id != visitor_id:
        raise ChatNotFoundError("no such chat")
    return chat


def _clean(value: object, limit: int) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def validate_prechat(settings: Settings, data: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Return the pre-chat values kept and the errors by field (pure but for settings)."""
    from contactcenter.customers.errors import InvalidIdentityError
    from contactcenter.customers.identity import normalise_email

    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for spec in prechat_fields(settings):
        name = spec["name"]
        value = _clean(data.get(name), MAX_PRECHAT[name])
        if not value:
            if spec["required"]:
                errors[name] = "This field is required."
            continue
        if name == "email":
            try:
                value = normalise_email(value)
            except InvalidIdentityError:
                errors[name] = "Enter a valid e-mail address."
                continue
        if name == "topic" and spec.get("options") and value not in spec["options"]:
            errors[name] = "Choose one of the topics."
            continue
        values[name] = value
    return values, errors


def _frame(chat: ChatSession, client_id: str, text: str, uploads: list[Upload],
           ticket: Ticket | None, subject: str = "") -> dict[str, Any]:
    identity = ({"kind": "external", "address": chat.external_user_id}
                if chat.identified and chat.external_user_id
                else {"kind": "chat", "address": chat.visitor_id})
    frame: dict[str, Any] = {"chat": chat.public_id, "visitor": chat.visitor_id,
                             "client_id": client_id, "text": text, "name": chat.name,
                             "identity": identity, "language": chat.language,
                             "subject": subject}
    if ticket is not None:
        frame["ticket_number"] = ticket.number
        frame["reply_token"] = ticket.reply_token
    else:
        frame["new"] = True
    if uploads:
        frame["attachments"] = [{"filename": u.filename, "content_type": u.content_type,
                                 "data": base64.b64encode(u.data).decode()} for u in uploads]
    return frame


def visitor_message_view(message: Message, client_id: str | None = None) -> dict[str, Any]:
    """Return a message as the widget shows it (text only: the widget never renders HTML)."""
    if message.direction == Direction.INBOUND:
        who = "visitor"
    elif message.author_user_id is None:
        who = "system"
    else:
        who = "agent"
    author = _author_name(message) if who == "agent" else ""
    cid = client_id
    if cid is None and message.external_id and "/" in message.external_id:
        cid = message.external_id.split("/", 1)[1]
    return {"message_id": message.id, "client_id": cid if who == "visitor" else None,
            "from": who, "author": author, "text": message.text,
            "at": message.created_at.isoformat(),
            "attachments": [{"name": a.filename, "type": a.content_type}
                            for a in message.attachments]}


def _author_name(message: Message) -> str:
    from sqlalchemy.orm import object_session

    session = object_session(message)
    if session is None or message.author_user_id is None:
        return ""
    user = session.get(User, message.author_user_id)
    return user.name.split(" ")[0] if user is not None and user.name else "Agent"


def chat_rooms(chat: ChatSession, *, visitor: bool = True) -> list[str]:
    """Return the rooms a chat's events go to: the visitor, the agent and the ticket."""
    rooms = [visitor_room(chat.visitor_id)] if visitor else []
    if chat.agent_id is not None:
        rooms.append(room("agent", chat.agent_id))
    if chat.ticket_id is not None:
        rooms.append(room("ticket", chat.ticket_id))
    return rooms


def chat_summary(chat: ChatSession) -> dict[str, Any]:
    """Return what agents' events say about a chat."""
    return {"chat_id": chat.public_id, "ticket_id": chat.ticket_id, "state": chat.state,
            "agent_id": chat.agent_id, "customer_id": chat.customer_id,
            "routing_item_id": chat.routing_item_id}


def _record_message(session: Session, chat: ChatSession, message: Message,
                    client_id: str | None, *, visitor: bool) -> None:
    view = visitor_message_view(message, client_id)
    record_event(session, "chat.message",
                 {**chat_summary(chat), "message_id": message.id, "from": view["from"],
                  "visitor": {"chat_id": chat.public_id, **view}},
                 chat_rooms(chat, visitor=visitor))


def start_chat(session: Session, settings: Settings, registry: ChannelRegistry,
               visitor: Visitor, prechat: dict[str, Any], text: str, client_id: str,
               uploads: list[Upload] | None = None, now: dt.datetime | None = None
               ) -> tuple[ChatSession, IntakeResult | None]:
    """Start a live chat with its first message: a ticket, a routing item, the event.

    A visitor with a live chat already gets that chat back (the first message is
    then an ordinary message of it). Raises ``ChatError`` with field errors for
    invalid pre-chat values and when chat is not available.
    """
    now = now or utcnow()
    existing = find_live_chat(session, visitor.visitor_id)
    if existing is not None:
        return existing, post_visitor_message(session, settings, registry, existing, client_id,
                                              text, uploads, now)
    values, errors = validate_prechat(settings, prechat)
    if errors:
        raise ChatError("; ".join(f"{k}: {v}" for k, v in errors.items()))
    availability = chat_availability(session, settings, now)
    if not availability.open or availability.queue_id is None:
        raise ChatError(f"chat is not available ({availability.reason})")
    _check_text(text, uploads)
    chat = ChatSession(
        public_id=secrets.token_urlsafe(12), visitor_id=visitor.visitor_id,
        state=ChatState.WAITING, identified=visitor.verified_user_id is not None,
        external_user_id=visitor.verified_user_id, name=values.get("name", ""),
        email=values.get("email", ""), topic=values.get("topic", ""),
        page_url=visitor.page_url[:2000], page_title=visitor.page_title[:300],
        user_agent=visitor.user_agent[:500], address=visitor.address[:64],
        language=visitor.language, started_at=now, last_activity_at=now,
        last_visitor_at=now, created_at=now, updated_at=now)
    session.add(chat)
    session.commit()
    subject = text.strip().split("\n", 1)[0][:200]
    if chat.topic:
        subject = f"{chat.topic}: {subject}"
    queue_id = availability.queue_id
    chat_id = chat.id
    try:
        result = _ingest(session, settings, registry, chat, client_id, text, uploads or [],
                         None, now, subject=subject, queue_id=queue_id)
    except Exception:
        result = None
        raise
    finally:
        if result is None or result.ticket_id is None:
            # The first message was not taken (its raw payload is kept for a replay): a
            # chat with no ticket and no routing item must not stay "waiting" for ever.
            session.rollback()
            orphan = session.get(ChatSession, chat_id)
            if orphan is not None and orphan.ticket_id is None:
                orphan.state, orphan.ended_reason, orphan.ended_at = (
                    ChatState.ENDED, "system", now)
                session.commit()
    return chat, result


def _check_text(text: str, uploads: list[Upload] | None) -> None:
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise ChatError(f"a message is at most {MAX_TEXT} characters")
    if not text.strip() and not uploads:
        raise ChatError("a message needs text or a file")


def _ingest(session: Session, settings: Settings, registry: ChannelRegistry,
            chat: ChatSession, client_id: str, text: str, uploads: list[Upload],
            ticket: Ticket | None, now: dt.datetime, *, subject: str = "",
            queue_id: int | None = None) -> IntakeResult | None:
    frame = _frame(chat, client_id, text, uploads, ticket, subject)
    payload = encode_frame(frame)
    contact = frame_to_contact(frame)
    chat_id = chat.id

    def after_apply(sess: Session, result: IntakeResult, _contact: Any, _payload: bytes) -> None:
        if result.status not in ("created", "appended") or result.written is None:
            return
        written_ticket, message, customer = result.written
        live = sess.get(ChatSession, chat_id)
        assert live is not None
        live.last_visitor_at = now
        live.last_activity_at = now
        live.warned_at = None
        if live.ticket_id is None:
            _open_routing(sess, settings, live, written_ticket, customer.id, queue_id, now)
        _record_message(sess, live, message, client_id, visitor=True)

    result, _raw_id = ingest_payload(session, CHANNEL, contact.external_id, payload, registry,
                                     settings, content_type="application/json", contact=contact,
                                     after_apply=after_apply)
    return result


def _open_routing(session: Session, settings: Settings, chat: ChatSession, ticket: Ticket,
                  customer_id: int, queue_id: int | None, now: dt.datetime) -> None:
    """Tie a new chat to its ticket and put it in front of the router as a live chat."""
    from contactcenter.routing.engine import enqueue_item, load_policy

    chat.ticket_id = ticket.id
    chat.customer_id = customer_id
    if queue_id is None:
        return
    ticket.queue_id = queue_id
    session.flush()
    enqueued = enqueue_item(session, kind="chat", channel=CHANNEL, queue_id=queue_id, now=now,
                            policy=load_policy(settings), customer_id=customer_id,
                            ticket_id=ticket.id, language=chat.language,
                            external_ref=f"chat:{chat.public_id}")
    chat.routing_item_id = enqueued.item.id
    record_event(session, "chat.started",
                 {**chat_summary(chat), "queue_id": queue_id, "topic": chat.topic,
                  "visitor": {"chat_id": chat.public_id, "state": chat.state}},
                 [*chat_rooms(chat), room("queue", queue_id)])


def post_visitor_message(session: Session, settings: Settings, registry: ChannelRegistry,
                         chat: ChatSession, client_id: str, text: str,
                         uploads: list[Upload] | None = None, now: dt.datetime | None = None
                         ) -> IntakeResult | None:
    """Add a visitor's message to their live chat through intake (a resend is a duplicate)."""
    now = now or utcnow()
    if not chat.is_live:
        raise ChatClosedError("this chat has ended")
    _check_text(text, uploads)
    ticket = session.get(Ticket, chat.ticket_id) if chat.ticket_id is not None else None
    return _ingest(session, settings, registry, chat, client_id, text, uploads or [], ticket,
                   now)


def post_agent_message(session: Session, chat: ChatSession, agent: User, text: str,
                       now: dt.datetime | None = None) -> Message:
    """Store an agent's message in a live chat, pending delivery to the widget (no commit).

    A live reply (``tickets.service.add_reply(..., live=True)``): the ticket stays
    open and the chat's routing item keeps the agent's chat slot, since a chat is
    answered many times before it ends. The outbox delivers it through the chat
    adapter's ``send`` (enqueue ``outbox.deliver`` after the commit).
    """
    from contactcenter.channels.chat.lifecycle import register_hooks
    from contactcenter.tickets.service import add_reply

    now = now or utcnow()
    if not chat.is_live:
        raise ChatClosedError("this chat has ended")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        raise ChatError(f"a message needs 1 to {MAX_TEXT} characters")
    ticket = session.get(Ticket, chat.ticket_id) if chat.ticket_id is not None else None
    if ticket is None:
        raise ChatError("the chat has no ticket yet")
    register_hooks()  # the reply hook below (idempotent; also done at app start)
    try:
        return add_reply(session, ticket, agent.id, text, now=now, live=True, channel=CHANNEL)
    except ValueError as exc:  # InvalidTransitionError included
        raise ChatError(str(exc)) from exc


def on_chat_reply(ctx: Any) -> None:
    """Point an agent's chat reply at the live chat's widget and tell the chat about it.

    Runs inside ``add_reply`` (a reply hook), so a reply from the chat panel and
    one from the desk's reply form behave alike: the outbox delivers to the
    visitor's room (whatever identity intake filed the sender under: a verified
    site user is the customer's ``external`` identity, not a socket room), the
    inactivity clock restarts and the agents' panels get a ``chat.message`` event.
    """
    message = ctx.message
    if ctx.internal or message.channel != CHANNEL or message.direction != Direction.OUTBOUND:
        return
    chat = ctx.session.scalar(select(ChatSession).where(
        ChatSession.ticket_id == ctx.ticket.id, ChatSession.state.in_(LIVE_STATES))
        .order_by(ChatSession.id.desc()).limit(1))
    if chat is None:
        return
    message.recipient = chat.visitor_id
    chat.last_agent_at = ctx.now
    chat.last_activity_at = ctx.now
    chat.warned_at = None
    # Agents hear of it through the log; the visitor through the outbox (the adapter).
    _record_message(ctx.session, chat, message, None, visitor=False)


def post_system_notice(session: Session, chat: ChatSession, text: str, now: dt.datetime) -> None:
    """Tell both sides something (timeouts, transfers) as an event, not a ticket message."""
    record_event(session, "chat.warning",
                 {**chat_summary(chat), "text": text,
                  "visitor": {"chat_id": chat.public_id, "from": "system", "text": text,
                              "at": now.isoformat()}},
                 chat_rooms(chat))


def mark_read(session: Session, chat: ChatSession, side: str, message_id: object) -> bool:
    """Record that one side read up to a message (monotonic); return whether it moved."""
    if not isinstance(message_id, int) or isinstance(message_id, bool) or message_id <= 0:
        raise ChatError("message_id must be a positive integer")
    current = chat.visitor_read_id if side == "visitor" else chat.agent_read_id
    if message_id <= current:
        return False
    if side == "visitor":
        chat.visitor_read_id = message_id
    else:
        chat.agent_read_id = message_id
    record_event(session, "chat.read",
                 {**chat_summary(chat), "side": side, "message_id": message_id,
                  "visitor": {"chat_id": chat.public_id, "side": side,
                              "message_id": message_id}},
                 chat_rooms(chat))
    return True


def chat_history(session: Session, chat: ChatSession, after_id: int = 0, limit: int = 200
                 ) -> list[dict[str, Any]]:
    """Return the conversation as the widget shows it (no internal notes), oldest first."""
    if chat.ticket_id is None:
        return []
    rows = session.scalars(
        select(Message).where(Message.ticket_id == chat.ticket_id, Message.id > after_id,
                              Message.direction != Direction.NOTE,
                              Message.created_at >= chat.started_at - dt.timedelta(seconds=5),
                              Message.channel == CHANNEL)
        .order_by(Message.id).limit(limit)).all()
    return [visitor_message_view(m) for m in rows]


def attachments_of(session: Session, message_ids: list[int]) -> list[Attachment]:
    """Return the attachments of messages (for the agent panel's download links)."""
    if not message_ids:
        return []
    return list(session.scalars(select(Attachment).where(Attachment.message_id.in_(message_ids))))


def queue_position(session: Session, chat: ChatSession) -> int | None:
    """Return a waiting chat's place in line (1: next), or None once an agent has it."""
    from contactcenter.routing.stats import item_position

    if chat.state != ChatState.WAITING or chat.routing_item_id is None:
        return None
    return item_position(session, chat.routing_item_id)
