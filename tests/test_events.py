"""The event log: cursors, replay after reconnect, trimming, publication after commit, JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contactcenter.config import Settings
from contactcenter.customers.service import merge_customers
from contactcenter.events import (
    EVENT_TYPES,
    SUPERVISORS_ROOM,
    EventLog,
    RecordingPublisher,
    last_event_id,
    record_event,
    replay_since,
    room,
    to_envelope,
    trim_event_log,
)
from contactcenter.tickets.intake import ingest_inbound
from contactcenter.tickets.models import Ticket
from contactcenter.tickets.service import add_reply, assign_ticket, change_status
from tests.factories import make_contact, make_customer, make_queue, make_user

T1, T2 = room("ticket", 1), room("ticket", 2)
Q1 = room("queue", 1)


def log(session: Session, n: int, rooms: list[str] | None = None) -> list[int]:
    rows = [record_event(session, "ticket.updated", {"i": i}, rooms or [T1]) for i in range(n)]
    session.commit()  # the commit's flush assigns the ids (cursors)
    return [row.id for row in rows]


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(EventLog)) or 0


# --- ids and rooms ---------------------------------------------------------------------

def test_ids_increase(session: Session) -> None:
    first = log(session, 3)
    second = log(session, 2)
    ids = first + second
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert last_event_id(session) == ids[-1]


def test_ids_keep_increasing_after_trimming(session: Session) -> None:
    before = log(session, 5)
    trim_event_log(session, 2)
    session.commit()
    after = log(session, 1)
    assert after[0] > before[-1]


def test_ids_keep_increasing_after_trimming_everything(session: Session) -> None:
    # A cursor must never be handed out twice: clients would skip the new events.
    before = log(session, 3)
    trim_event_log(session, 0)
    session.commit()
    after = log(session, 1)
    assert after[0] > before[-1]


def test_empty_log(session: Session) -> None:
    assert last_event_id(session) == 0
    replay = replay_since(session, 0, [T1])
    assert (replay.resync_required, replay.events, replay.last_event_id) == (False, [], 0)


def test_every_event_also_goes_to_supervisors_once(session: Session) -> None:
    row = record_event(session, "ticket.updated", {}, [T1, Q1, T1, SUPERVISORS_ROOM])
    session.flush()
    assert to_envelope(row).rooms == (T1, Q1, SUPERVISORS_ROOM)


def test_unknown_event_type_is_refused(session: Session, events: RecordingPublisher) -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        record_event(session, "ticket.exploded", {}, [T1])
    session.commit()
    assert count(session) == 0
    assert events.published == []


# --- replay --------------------------------------------------------------------------

def test_replay_returns_only_the_rooms_events_after_the_cursor(session: Session) -> None:
    rows = [record_event(session, "ticket.updated", {"n": "a"}, [T1]),
            record_event(session, "ticket.updated", {"n": "b"}, [T2]),
            record_event(session, "ticket.updated", {"n": "c"}, [T1, Q1]),
            record_event(session, "ticket.updated", {"n": "d"}, [Q1])]
    session.commit()
    a, b, c, d = (row.id for row in rows)

    assert [e.id for e in replay_since(session, 0, [T1]).events] == [a, c]
    assert [e.id for e in replay_since(session, a, [T1]).events] == [c]
    assert [e.id for e in replay_since(session, a, [T1, Q1]).events] == [c, d]
    assert [e.id for e in replay_since(session, b, [T2]).events] == []
    assert [e.id for e in replay_since(session, 0, ["agent:99"]).events] == []
    assert [e.id for e in replay_since(session, 0, [SUPERVISORS_ROOM]).events] == [a, b, c, d]
    replay = replay_since(session, d, [T1])
    assert (replay.resync_required, replay.events, replay.last_event_id) == (False, [], d)
    assert replay_since(session, a, [T1]).events[0].payload == {"n": "c"}


def test_cursor_in_the_future_requires_resync(session: Session) -> None:
    ids = log(session, 2)
    replay = replay_since(session, ids[-1] + 1, [T1])
    assert replay.resync_required and replay.events == []
    assert replay.last_event_id == ids[-1]
    assert replay_since(session, -1, [T1]).resync_required


def test_cursor_older_than_the_trimmed_log_requires_resync(session: Session) -> None:
    ids = log(session, 6)
    assert trim_event_log(session, 3) == 3
    session.commit()
    oldest = ids[3]
    # The events right after these cursors are gone.
    for cursor in (0, ids[0], ids[1]):
        replay = replay_since(session, cursor, [T1])
        assert replay.resync_required, cursor
        assert replay.events == []
        assert replay.last_event_id == ids[-1]
    # A cursor right before the oldest kept event missed nothing.
    edge = replay_since(session, oldest - 1, [T1])
    assert not edge.resync_required
    assert [e.id for e in edge.events] == ids[3:]


def test_too_many_waiting_events_require_resync(session: Session) -> None:
    ids = log(session, 5)
    assert not replay_since(session, ids[0], [T1], limit=4).resync_required
    assert len(replay_since(session, ids[0], [T1], limit=4).events) == 4
    over = replay_since(session, 0, [T1], limit=4)
    assert over.resync_required and over.events == []
    assert over.last_event_id == ids[-1]


def test_limit_counts_events_of_other_rooms_too(session: Session) -> None:
    log(session, 5, rooms=[T2])
    mine = log(session, 1, rooms=[T1])
    replay = replay_since(session, 0, [T1], limit=3)
    assert replay.resync_required
    assert [e.id for e in replay_since(session, 0, [T1], limit=6).events] == mine


# --- trimming ------------------------------------------------------------------------

@pytest.mark.parametrize(("total", "keep", "removed"), [(10, 4, 6), (3, 10, 0), (5, 5, 0),
                                                        (5, 1, 4)])
def test_trim_keeps_the_newest(session: Session, total: int, keep: int, removed: int) -> None:
    ids = log(session, total)
    assert trim_event_log(session, keep) == removed
    session.commit()
    assert list(session.scalars(select(EventLog.id).order_by(EventLog.id))) == ids[removed:]


# --- publication after commit --------------------------------------------------------

def test_events_are_published_after_commit_in_order(session: Session,
                                                     events: RecordingPublisher) -> None:
    rows = [record_event(session, t, {}, [T1]) for t in ("ticket.created", "message.created")]
    assert events.published == []
    session.commit()
    ids = [row.id for row in rows]
    assert [(e.id, e.type) for e in events.published] == list(
        zip(ids, ["ticket.created", "message.created"], strict=True))
    session.commit()  # an empty commit publishes nothing again
    assert len(events.published) == 2


def test_rolled_back_events_are_never_published(session: Session,
                                                events: RecordingPublisher) -> None:
    record_event(session, "ticket.created", {}, [T1])
    session.rollback()
    assert events.published == []
    assert count(session) == 0
    record_event(session, "ticket.updated", {}, [T1])
    session.commit()
    assert [e.type for e in events.published] == ["ticket.updated"]


def test_releasing_a_savepoint_publishes_nothing(session: Session,
                                                 events: RecordingPublisher) -> None:
    record_event(session, "ticket.created", {}, [T1])
    with session.begin_nested():
        record_event(session, "ticket.updated", {}, [T1])
    assert events.published == []  # the outer transaction may still roll back
    session.rollback()
    assert events.published == []
    assert count(session) == 0


def test_events_survive_a_rolled_back_savepoint(session: Session,
                                                events: RecordingPublisher) -> None:
    record_event(session, "ticket.created", {}, [T1])
    savepoint = session.begin_nested()
    savepoint.rollback()
    session.commit()
    assert [e.type for e in events.published] == ["ticket.created"]


# --- the JSON contract ---------------------------------------------------------------

def produce_every_kind_of_event(session: Session, settings: Settings) -> None:
    queue = make_queue(session)
    agent = make_user(session, "agent", queues=(queue,))
    session.commit()
    first = ingest_inbound(session, make_contact(sender="anna@example.com"), settings=settings)
    ticket = session.get(Ticket, first.ticket_id)
    assert ticket is not None
    assign_ticket(session, ticket, agent.id, agent.id)
    add_reply(session, ticket, agent.id, "Try turning it off and on.", "<p>Try <b>it</b></p>")
    change_status(session, ticket, "solved", agent.id)
    session.commit()
    ingest_inbound(session, make_contact(sender="anna@example.com"), settings=settings)
    other = make_customer(session, email="boris@example.com")
    session.commit()
    survivor_id = ticket.customer_id
    merge_customers(session, survivor_id, other.id, agent.id)
    session.commit()


def test_every_envelope_round_trips_through_json(session: Session, settings: Settings,
                                                 events: RecordingPublisher) -> None:
    produce_every_kind_of_event(session, settings)
    published = events.published
    assert {e.type for e in published} >= {
        "customer.created", "ticket.created", "message.created", "ticket.assigned",
        "ticket.status_changed", "customer.merged"}
    assert {e.type for e in published} <= EVENT_TYPES
    for envelope in published:
        data = envelope.to_json()
        text = json.dumps(data)  # no default=: only plain JSON types are allowed
        assert json.loads(text) == data
        assert set(data) == {"id", "type", "rooms", "payload", "at"}
        assert isinstance(data["id"], int) and isinstance(data["at"], str)
        assert SUPERVISORS_ROOM in data["rooms"]

    # What a reconnecting client replays from the log equals what was published live.
    replayed = replay_since(session, 0, [SUPERVISORS_ROOM]).events
    assert [json.loads(json.dumps(e.to_json())) for e in replayed] == [
        json.loads(json.dumps(e.to_json())) for e in published]


def test_ticket_events_carry_the_ticket_summary(session: Session, settings: Settings,
                                                events: RecordingPublisher) -> None:
    produce_every_kind_of_event(session, settings)
    summary_keys = {"ticket_id", "number", "subject", "status", "priority", "channel",
                    "customer_id", "queue_id", "assignee_id"}
    message_keys = {"ticket_id", "number", "message_id", "direction", "channel", "customer_id"}
    for envelope in events.published:
        payload: dict[str, Any] = envelope.payload
        if envelope.type.startswith("ticket."):
            assert summary_keys <= set(payload), envelope.type
            assert room("ticket", payload["ticket_id"]) in envelope.rooms
        if envelope.type == "message.created":
            assert set(payload) == message_keys
        if envelope.type == "ticket.assigned":
            assert room("agent", payload["assignee_id"]) in envelope.rooms
