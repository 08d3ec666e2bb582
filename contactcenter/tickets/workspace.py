"""What the agent desktop does with tickets beyond intake and replies.

The inbox (my work, my team's queues, unassigned, saved views) sorted by the
router's priority and the nearest deadline; tags, links and merges; drafts kept
server-side; canned responses with placeholders; and the collision check that
warns an agent before sending when someone else answered meanwhile. Every
function takes the session and never commits.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from contactcenter.accounts.models import User
from contactcenter.accounts.policy import queue_ids_of, visible_ticket_filter
from contactcenter.customers.models import Customer
from contactcenter.db import utcnow
from contactcenter.events import record_event
from contactcenter.routing.models import ACTIVE_STATES, RoutingItem
from contactcenter.routing.policy import RoutingPolicy
from contactcenter.tickets.errors import InvalidTransitionError, TicketError
from contactcenter.tickets.intake import ticket_rooms, ticket_summary
from contactcenter.tickets.models import (
    OPEN_STATUSES,
    CannedResponse,
    Direction,
    Draft,
    Message,
    MessageReference,
    Priority,
    SavedView,
    Ticket,
    TicketLink,
    TicketStatus,
    TicketTag,
)

VIEWS = ("mine", "team", "unassigned", "all")
FILTER_KEYS = {"status", "channel", "priority", "sla", "tag", "customer", "q"}
TAG_RE = re.compile(r"^[\w][\w.\-]{0,63}$", re.UNICODE)
MAX_TAGS = 30
MAX_DRAFT = 100_000


class WorkspaceError(TicketError, ValueError):
    """A desk request that cannot be honoured (bad filter, tag, merge...)."""


@dataclass(frozen=True)
class InboxRow:
    """One ticket in an inbox list with what it is sorted by."""

    ticket: Ticket
    priority: int | None
    priority_reason: str
    due_at: dt.datetime | None
    item_state: str | None


def clean_filters(raw: Mapping[str, Any]) -> dict[str, str]:
    """Return the known, bounded filters of a request or saved view; raise on bad values."""
    out: dict[str, str] = {}
    for key, value in raw.items():
        if key not in FILTER_KEYS:
            raise WorkspaceError(f"unknown filter {key!r}")
        if value in (None, ""):
            continue
        if not isinstance(value, (str, int)) or len(str(value)) > 200:
            raise WorkspaceError(f"filter {key} must be a short text")
        out[key] = str(value).strip()
    if "status" in out and out["status"] not in {s.value for s in TicketStatus} | {"open_all"}:
        raise WorkspaceError("unknown status")
    if "priority" in out and out["priority"] not in {p.value for p in Priority}:
        raise WorkspaceError("unknown priority")
    if "sla" in out and out["sla"] not in ("due_soon", "overdue"):
        raise WorkspaceError("sla must be due_soon or overdue")
    if "customer" in out and not out["customer"].isdigit():
        raise WorkspaceError("customer must be a customer id")
    return out


def inbox(session: Session, user: User, view: str, filters: Mapping[str, str], *,
          now: dt.datetime | None = None, limit: int = 100) -> list[InboxRow]:
    """The tickets of one inbox view, most urgent first (router priority, then deadline)."""
    if view not in VIEWS:
        raise WorkspaceError(f"view must be one of {', '.join(VIEWS)}")
    now = now or utcnow()
    item = (select(RoutingItem.ticket_id, func.max(RoutingItem.priority).label("priority"),
                   func.min(RoutingItem.due_at).label("due_at"),
                   func.max(RoutingItem.priority_reason).label("reason"),
                   func.max(RoutingItem.state).label("state"))
            .where(RoutingItem.state.in_(ACTIVE_STATES), RoutingItem.ticket_id.is_not(None))
            .group_by(RoutingItem.ticket_id).subquery())
    query = (select(Ticket, item.c.priority, item.c.reason, item.c.due_at, item.c.state)
             .outerjoin(item, item.c.ticket_id == Ticket.id)
             .where(visible_ticket_filter(session, user),  # type: ignore[arg-type]
                    Ticket.merged_into_id.is_(None)))
    if view == "mine":
        query = query.where(Ticket.assignee_id == user.id)
    elif view == "team":
        query = query.where(Ticket.queue_id.in_(queue_ids_of(session, user) or {-1}))
    elif view == "unassigned":
        query = query.where(Ticket.assignee_id.is_(None))
    status = filters.get("status")
    if status and status != "open_all":
        query = query.where(Ticket.status == status)
    else:
        query = query.where(Ticket.status.in_(OPEN_STATUSES))
    if filters.get("channel"):
        query = query.where(Ticket.channel == filters["channel"])
    if filters.get("priority"):
        query = query.where(Ticket.priority == filters["priority"])
    if filters.get("tag"):
        query = query.where(exists().where(TicketTag.ticket_id == Ticket.id,
                                           TicketTag.tag == filters["tag"].lower()))
    if filters.get("customer"):
        query = query.where(Ticket.customer_id == int(filters["customer"]))
    if filters.get("sla") == "overdue":
        query = query.where(item.c.due_at <= now)
    elif filters.get("sla") == "due_soon":
        query = query.where(item.c.due_at <= now + dt.timedelta(hours=1))
    if filters.get("q"):
        needle = f"%{filters['q'].lower()}%"
        query = query.where(or_(func.lower(Ticket.subject).like(needle),
                                Ticket.customer.has(func.lower(Customer.name).like(needle))))
    query = query.order_by(item.c.priority.desc().nulls_last(), item.c.due_at.asc().nulls_last(),
                           Ticket.last_activity_at.desc(), Ticket.id.desc()).limit(limit)
    return [InboxRow(t, p, r or "", d, s) for t, p, r, d, s in session.execute(query)]


def set_tags(session: Session, ticket: Ticket, tags: list[str], actor_user_id: int) -> list[str]:
    """Replace a ticket's tags; returns them sorted."""
    if not isinstance(tags, list) or len(tags) > MAX_TAGS:
        raise WorkspaceError(f"tags must be a list of at most {MAX_TAGS}")
    clean: set[str] = set()
    for tag in tags:
        if not isinstance(tag, str) or not TAG_RE.match(tag.strip()):
            raise WorkspaceError("a tag is a word of letters, digits, '.', '-' or '_'")
        clean.add(tag.strip().lower())
    current = {t.tag: t for t in session.scalars(
        select(TicketTag).where(TicketTag.ticket_id == ticket.id))}
    for name, row in current.items():
        if name not in clean:
            session.delete(row)
    for name in clean - set(current):
        session.add(TicketTag(ticket_id=ticket.id, tag=name))
    session.flush()
    record_event(session, "ticket.updated",
                 {**ticket_summary(ticket), "tags": sorted(clean), "by": actor_user_id},
                 ticket_rooms(ticket))
    return sorted(clean)


def tags_of(session: Session, ticket_id: int) -> list[str]:
    """A ticket's tags, sorted."""
    return sorted(session.scalars(select(TicketTag.tag).where(TicketTag.ticket_id == ticket_id)))


def set_priority(session: Session, ticket: Ticket, priority: str, actor_user_id: int,
                 now: dt.datetime | None = None, *, policy: RoutingPolicy | None = None) -> None:
    """Change a ticket's manual priority and rescore its routing item."""
    if priority not in {p.value for p in Priority}:
        raise WorkspaceError("unknown priority")
    if ticket.priority == priority:
        return
    now = now or utcnow()
    ticket.priority = priority
    session.flush()
    record_event(session, "ticket.updated",
                 {**ticket_summary(ticket), "priority": priority, "by": actor_user_id},
                 ticket_rooms(ticket))
    from contactcenter.routing.engine import default_policy, enqueue_ticket

    enqueue_ticket(session, ticket, now, policy or default_policy())


def move_to_queue(session: Session, ticket: Ticket, queue_id: int, actor_user_id: int,
                  now: dt.datetime | None = None, *, policy: RoutingPolicy | None = None
                  ) -> None:
    """Move a ticket to another queue (its waiting routing item follows)."""
    from contactcenter.tickets.models import Queue

    if session.get(Queue, queue_id) is None:
        raise WorkspaceError("no such queue")
    if ticket.queue_id == queue_id:
        return
    now = now or utcnow()
    previous = ticket.queue_id
    ticket.queue_id = queue_id
    session.flush()
    record_event(session, "ticket.updated",
                 {**ticket_summary(ticket), "queue_id": queue_id, "previous_queue_id": previous,
                  "by": actor_user_id}, ticket_rooms(ticket))
    from contactcenter.routing.engine import default_policy, enqueue_ticket

    enqueue_ticket(session, ticket, now, policy or default_policy())


def link_tickets(session: Session, ticket: Ticket, other: Ticket, actor_user_id: int) -> None:
    """Mark two tickets as related (both directions)."""
    if ticket.id == other.id:
        raise WorkspaceError("a ticket cannot be linked to itself")
    for a, b in ((ticket.id, other.id), (other.id, ticket.id)):
        if session.scalar(select(TicketLink.id).where(
                TicketLink.ticket_id == a, TicketLink.other_id == b,
                TicketLink.kind == "related")) is None:
            session.add(TicketLink(ticket_id=a, other_id=b, kind="related",
                                   actor_user_id=actor_user_id))
    session.flush()
    record_event(session, "ticket.updated",
                 {**ticket_summary(ticket), "linked": other.number, "by": actor_user_id},
                 ticket_rooms(ticket) + ticket_rooms(other))


def linked_tickets(session: Session, ticket_id: int) -> list[tuple[str, Ticket]]:
    """The tickets linked to one, with the kind of link."""
    rows = session.execute(select(TicketLink.kind, Ticket).join(
        Ticket, Ticket.id == TicketLink.other_id).where(TicketLink.ticket_id == ticket_id)
        .order_by(TicketLink.id))
    return [(kind, t) for kind, t in rows]


def merge_tickets(session: Session, source: Ticket, target: Ticket, actor_user_id: int,
                  now: dt.datetime | None = None) -> Ticket:
    """Merge ``source`` into ``target``: its messages move, it is closed and points at the target.

    Both must belong to the same customer (merge the customers first otherwise).
    The thread references move too, so that replies to the old ticket's mail
    land on the target.
    """
    now = now or utcnow()
    if source.id == target.id:
        raise WorkspaceError("a ticket cannot be merged into itself")
    if source.customer_id != target.customer_id:
        raise WorkspaceError("only tickets of the same customer can be merged")
    if target.merged_into_id is not None or target.status == TicketStatus.CLOSED:
        raise InvalidTransitionError("the target ticket is closed or merged")
    if source.merged_into_id is not None:
        raise InvalidTransitionError("this ticket is already merged")
    moved = session.execute(Message.__table__.update().where(
        Message.ticket_id == source.id).values(ticket_id=target.id)).rowcount
    session.execute(MessageReference.__table__.update().where(
        MessageReference.ticket_id == source.id).values(ticket_id=target.id))
    for tag in tags_of(session, source.id):
        if tag not in tags_of(session, target.id):
            session.add(TicketTag(ticket_id=target.id, tag=tag))
    session.add(TicketLink(ticket_id=source.id, other_id=target.id, kind="merged",
                           actor_user_id=actor_user_id, created_at=now))
    session.add(Message(ticket_id=source.id, direction=Direction.NOTE, channel=source.channel,
                        author_user_id=actor_user_id, text=f"Merged into #{target.number}.",
                        received_at=now, created_at=now, updated_at=now))
    source.merged_into_id = target.id
    from contactcenter.tickets.service import change_status

    if source.status != TicketStatus.CLOSED:
        if source.status != TicketStatus.SOLVED:
            change_status(session, source, TicketStatus.SOLVED, actor_user_id, now)
        change_status(session, source, TicketStatus.CLOSED, actor_user_id, now)
    target.last_activity_at = now
    session.flush()
    record_event(session, "ticket.updated",
                 {**ticket_summary(target), "merged_from": source.number, "moved": moved,
                  "by": actor_user_id}, ticket_rooms(target) + ticket_rooms(source))
    return target


def save_draft(session: Session, user_id: int, ticket_id: int, text: str, internal: bool,
               now: dt.datetime | None = None) -> Draft | None:
    """Keep (or with empty text, drop) an agent's draft reply."""
    if not isinstance(text, str) or len(text) > MAX_DRAFT:
        raise WorkspaceError("a draft is text of at most 100,000 characters")
    draft = session.scalar(select(Draft).where(Draft.user_id == user_id,
                                               Draft.ticket_id == ticket_id))
    if not text.strip():
        if draft is not None:
            session.delete(draft)
        return None
    if draft is None:
        draft = Draft(user_id=user_id, ticket_id=ticket_id)
        session.add(draft)
    draft.text = text
    draft.internal = bool(internal)
    draft.updated_at = now or utcnow()
    session.flush()
    return draft


def get_draft(session: Session, user_id: int, ticket_id: int) -> Draft | None:
    """An agent's saved draft on a ticket."""
    return session.scalar(select(Draft).where(Draft.user_id == user_id,
                                              Draft.ticket_id == ticket_id))


def replies_since(session: Session, ticket_id: int, after_message_id: int,
                  user_id: int) -> list[Message]:
    """Outbound replies by other agents after the message the agent last saw (collision)."""
    return list(session.scalars(select(Message).where(
        Message.ticket_id == ticket_id, Message.id > after_message_id,
        Message.direction == Direction.OUTBOUND,
        or_(Message.author_user_id.is_(None), Message.author_user_id != user_id))
        .order_by(Message.id)))


MENTION = re.compile(r"(?<![\w.])@([\w][\w.\-]{0,63})", re.UNICODE)


def mentioned_users(session: Session, text: str) -> list[User]:
    """Users named in a note as ``@local-part`` of their email or ``@FirstLast`` (no spaces)."""
    handles = {h.lower().rstrip(".") for h in MENTION.findall(text)}
    if not handles:
        return []
    found = []
    for user in session.scalars(select(User).where(User.is_active.is_(True))):
        keys = {user.email.split("@", 1)[0].lower(), user.name.replace(" ", "").lower()}
        if keys & handles:
            found.append(user)
    return found


def notify_mentions(session: Session, ticket: Ticket, message: Message, author: User) -> list[int]:
    """Tell each user mentioned in an internal note who may see the ticket; return their ids."""
    from contactcenter.accounts.policy import can_view_ticket

    told = []
    for user in mentioned_users(session, message.text):
        if user.id == author.id or not can_view_ticket(session, user, ticket):
            continue
        record_event(session, "note.mentioned",
                     {"ticket_id": ticket.id, "number": ticket.number, "subject": ticket.subject,
                      "message_id": message.id, "by": author.id, "by_name": author.name,
                      "user_id": user.id}, [f"agent:{user.id}"])
        told.append(user.id)
    return told


PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\.([a-z_]+)\s*\}\}")


def render_canned(body: str, *, ticket: Ticket, agent: User) -> str:
    """Fill ``{{customer.name}}``, ``{{ticket.number}}``, ``{{agent.name}}`` and friends.

    Unknown placeholders are left as written so that the agent sees them.
    """
    customer = ticket.customer
    values = {
        ("customer", "name"): customer.name or "",
        ("customer", "first_name"): (customer.name or "").split(" ")[0],
        ("ticket", "number"): str(ticket.number),
        ("ticket", "subject"): ticket.subject,
        ("agent", "name"): agent.name,
        ("agent", "first_name"): agent.name.split(" ")[0],
    }

    def fill(match: re.Match[str]) -> str:
        return values.get((match.group(1), match.group(2)), match.group(0))

    return PLACEHOLDER.sub(fill, body)


def canned_responses(session: Session, language: str | None = None) -> list[CannedResponse]:
    """Canned responses, the customer's language first."""
    rows = list(session.scalars(select(CannedResponse).order_by(CannedResponse.title)))
    if language:
        rows.sort(key=lambda c: (c.language not in (None, language), c.title))
    return rows


def save_view(session: Session, user_id: int, name: str, filters: Mapping[str, Any],
              view: str) -> SavedView:
    """Create or replace one of an agent's saved views."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise WorkspaceError("a saved view needs a name of at most 100 characters")
    if view not in VIEWS:
        raise WorkspaceError(f"view must be one of {', '.join(VIEWS)}")
    clean = clean_filters(filters)
    row = session.scalar(select(SavedView).where(SavedView.user_id == user_id,
                                                 SavedView.name == name))
    if row is None:
        if session.scalar(select(func.count()).where(SavedView.user_id == user_id)) >= 50:
            raise WorkspaceError("at most 50 saved views")
        row = SavedView(user_id=user_id, name=name)
        session.add(row)
    row.filters = {"view": view, **clean}
    session.flush()
    return row


def customer_history(session: Session, customer_id: int, user: User, *,
                     exclude_ticket_id: int | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Every earlier ticket of a customer the user may see, newest first, with its channels."""
    query = (select(Ticket).where(Ticket.customer_id == customer_id,
                                  visible_ticket_filter(session, user))  # type: ignore[arg-type]
             .order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit))
    if exclude_ticket_id is not None:
        query = query.where(Ticket.id != exclude_ticket_id)
    tickets = list(session.scalars(query))
    channels: dict[int, set[str]] = {}
    if tickets:
        for tid, channel in session.execute(
                select(Message.ticket_id, Message.channel).where(
                    Message.ticket_id.in_([t.id for t in tickets])).distinct()):
            channels.setdefault(tid, set()).add(channel)
    return [{"number": t.number, "subject": t.subject, "status": t.status,
             "channel": t.channel, "channels": sorted(channels.get(t.id, {t.channel})),
             "created_at": t.created_at.isoformat(),
             "solved_at": t.solved_at.isoformat() if t.solved_at else None,
             "merged_into_id": t.merged_into_id} for t in tickets]


__all__ = [
    "InboxRow", "WorkspaceError", "canned_responses", "clean_filters", "customer_history",
    "get_draft", "inbox", "link_tickets", "linked_tickets", "merge_tickets", "move_to_queue",
    "render_canned", "replies_since", "save_draft", "save_view", "set_priority", "set_tags",
    "tags_of",
]
