"""Record domain events in the transaction; publish them only after it commits.

``record_event`` appends an ``EventLog`` row (whose id is the clients' cursor)
and remembers the envelope on the session. The database's ``after_commit``
hook hands the remembered envelopes to the publisher, so nothing is ever
published for work that rolled back. Clients that reconnect send their cursor
and get the missed events replayed from the log, or ``resync_required`` when the
cursor is older than what the log retains.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from sqlalchemy import JSON, Insert, String, Table, delete, event, func, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from contactcenter.db import Base, utcnow
from contactcenter.db_postgres import insert_with_commit

log = logging.getLogger(__name__)

EVENT_TYPES = frozenset(
    {
        "ticket.created",
        "ticket.updated",
        "ticket.status_changed",
        "ticket.assigned",
        "message.created",
        "message.delivery_changed",
        "customer.created",
        "customer.merged",
        "customer.unmerged",
        "customer.updated",
        "raw.failed",
        "item.queued",
        "item.assigned",
        "item.transferred",
        "item.completed",
        "item.abandoned",
        "offer.made",
        "offer.accepted",
        "offer.declined",
        "offer.expired",
        "offer.withdrawn",
        "agent.presence_changed",
        "autoreply.paused",
        "note.mentioned",
        # sla
        "sla.warning",
        "sla.breached",
        "sla.escalated",
        "contract.expiring",
        "contract.expired",
        "contract.allowance_low",
        # knowledge
        "kb.article_saved",
        "kb.article_published",
        "kb.article_unpublished",
        "kb.article_used",
        "kb.resolution_recorded",
        "kb.suggestions_ready",
        # sales
        "sales.offer_outcome",
        "sales.values_recomputed",
        "sales.rules_mined",
        # phone
        "call.updated",
        "call.ended",
        "media.fetched",
        # chat and forms
        "chat.started",
        "chat.message",
        "chat.agent_joined",
        "chat.read",
        "chat.transferred",
        "chat.ended",
        "chat.warning",
        "form.submitted",
        # reports
        "csat.answered",
        # field
        "field.visit_created",
        "field.visit_assigned",
        "field.visit_updated",
        "field.visit_warning",
        "field.visit_breached",
        "field.slot_confirmed",
        "field.survey_answered",
    }
)


class EventLog(Base):
    """One published domain event; its autoincrement id is the clients' cursor."""

    __tablename__ = "event_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    rooms: Mapped[str] = mapped_column(String(1000))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class Envelope:
    """What a client receives: the cursor id, the type, the rooms and the payload."""

    id: int
    type: str
    rooms: tuple[str, ...]
    payload: dict[str, Any]
    at: str

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-ready form sent to clients."""
        return {"id": self.id, "type": self.type, "rooms": list(self.rooms),
                "payload": self.payload, "at": self.at}


def room(kind: str, ident: int | str) -> str:
    """Name a Socket.IO room: ``agent:7``, ``queue:2``, ``ticket:41``, ``customer:9``."""
    return f"{kind}:{ident}"


SUPERVISORS_ROOM = "supervisors"


def record_event(
    session: Session, type_: str, payload: dict[str, Any], rooms: Iterable[str]
) -> EventLog:
    """Append an event to the log in the session's transaction."""
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_!r}")
    room_list = tuple(dict.fromkeys([*rooms, SUPERVISORS_ROOM]))
    row = EventLog(type=type_, rooms=" ".join(room_list), payload=payload, created_at=utcnow())
    # Never added to the session: the transaction's rows are written at its commit
    # (``_write_pending_events``), which sets their ids (the cursors) for the after-commit
    # hook that publishes them. A rolled-back savepoint drops its rows from
    # ``pending_events``; they were never written.
    if not session.in_transaction():
        session.begin()  # as ``session.add`` would: a rollback then drops the rows again
    session.info.setdefault("pending_events", []).append(row)
    return row


def _write_pending_events(session: Session) -> None:
    """Before the outermost commit: insert the transaction's event rows in one go.

    One prepared statement for all of them (an executemany) instead of a flush of the
    unit of work per row. Their ids, in order: PostgreSQL returns them sorted by parameter
    order; SQLite numbers new rows max(rowid) + 1, one after another, and no other writer
    can insert before this transaction commits, so they are the last ``n`` ids.

    On PostgreSQL (psycopg) a few rows are not sent now but with the COMMIT, in the same
    pipeline (``insert_with_commit``): one INSERT ... RETURNING per row, whose ids are set
    once the commit succeeded and before the after-commit hook publishes them.
    """
    if session.in_nested_transaction():
        return
    rows = [r for r in session.info.get("pending_events", ()) if r.id is None]
    if not rows:
        return
    table = cast(Table, EventLog.__table__)
    params = [{"type": r.type, "rooms": r.rooms, "payload": r.payload,
               "created_at": r.created_at} for r in rows]

    def set_ids(ids: Sequence[int]) -> None:
        if len(ids) != len(rows):
            raise RuntimeError(f"event log insert returned {len(ids)} ids for {len(rows)} rows")
        for row, id_ in zip(rows, ids, strict=True):
            row.id = id_

    if insert_with_commit(session, _insert_returning_id(), params, set_ids):
        return
    ids: Sequence[int]
    if len(rows) == 1 or session.get_bind(clause=table).dialect.name != "sqlite":
        ids = session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True),
                              params).scalars().all()
    else:
        session.execute(insert(table), params)
        last = session.scalar(select(func.max(table.c.id))) or 0
        ids = range(last - len(rows) + 1, last + 1)
    set_ids(ids)


event.listen(Session, "before_commit", _write_pending_events)


@functools.cache
def _insert_returning_id() -> Insert:
    table = cast(Table, EventLog.__table__)
    return insert(table).returning(table.c.id)


def to_envelope(row: EventLog) -> Envelope:
    """Turn a log row into the envelope clients see."""
    return Envelope(
        id=row.id,
        type=row.type,
        rooms=tuple(row.rooms.split()),
        payload=row.payload,
        at=row.created_at.isoformat(),
    )


class EventPublisher(Protocol):
    """Push envelopes to whoever listens (Socket.IO rooms, a test recorder)."""

    def publish(self, envelopes: Sequence[Envelope]) -> None: ...


@dataclass
class RecordingPublisher:
    """Keep published envelopes in memory (tests, and the CLI when no server runs)."""

    published: list[Envelope] = field(default_factory=list)

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        self.published.extend(envelopes)


class SocketIOPublisher:
    """Emit each envelope as an ``event`` to each of its rooms.

    Works with the app's ``SocketIO`` object, or with a write-only
    ``SocketIO(message_queue=...)`` in a worker process.
    """

    def __init__(self, socketio: Any) -> None:
        self.socketio = socketio

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        for envelope in envelopes:
            data = envelope.to_json()
            # One emit to all rooms at once: a client in several rooms gets it once.
            self.socketio.emit("event", data, to=list(envelope.rooms), namespace="/agent")


class FanoutPublisher:
    """Publish to several publishers; one failing does not stop the others."""

    def __init__(self, *publishers: EventPublisher) -> None:
        self.publishers = list(publishers)

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        for publisher in self.publishers:
            try:
                publisher.publish(envelopes)
            except Exception:  # a socket hiccup must never undo a commit
                log.exception("event publisher %r failed; clients resync from the log", publisher)


def publish_pending(publisher: EventPublisher, rows: Sequence[EventLog]) -> None:
    """Publish the event rows a just-committed transaction recorded (the after-commit hook)."""
    if rows:
        publisher.publish([to_envelope(r) for r in rows])


@dataclass(frozen=True)
class Replay:
    """The answer to a client's cursor: the events it missed, or a resync order."""

    resync_required: bool
    events: list[Envelope]
    last_event_id: int


def last_event_id(session: Session) -> int:
    """Return the newest cursor (0 on an empty log)."""
    return session.scalar(select(func.coalesce(func.max(EventLog.id), 0))) or 0


def replay_since(session: Session, cursor: int, rooms: Iterable[str], limit: int = 1000) -> Replay:
    """Return the events after ``cursor`` for the given rooms, or ask for a resync.

    A resync is required when events after the cursor were already trimmed from
    the log, or when more than ``limit`` are waiting (a snapshot is cheaper).
    """
    wanted = set(rooms)
    newest = last_event_id(session)
    if cursor > newest or cursor < 0:
        return Replay(True, [], newest)
    oldest = session.scalar(select(func.min(EventLog.id)))
    if cursor < newest and oldest is not None and cursor < oldest - 1:
        return Replay(True, [], newest)
    rows = session.scalars(
        select(EventLog).where(EventLog.id > cursor).order_by(EventLog.id).limit(limit + 1)
    ).all()
    if len(rows) > limit:
        return Replay(True, [], newest)
    events = [to_envelope(r) for r in rows if wanted.intersection(r.rooms.split())]
    return Replay(False, events, newest)


def trim_event_log(session: Session, keep: int) -> int:
    """Delete all but the newest ``keep`` events; return how many went.

    The newest row always stays: SQLite numbers a new row ``max(id) + 1``, so an
    emptied log would hand out cursors clients have already seen.
    """
    keep = max(keep, 1)
    newest = last_event_id(session)
    result = session.execute(delete(EventLog).where(EventLog.id <= newest - keep))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
