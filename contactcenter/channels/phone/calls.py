"""Call records: the story of a call on its ticket, kept current as callbacks arrive.

Every call has a ``Call`` row (keyed by CallSid) and one message on the
customer's ticket whose text is the call's record: direction, numbers, menu
choices, wait and talk time, outcome, agent, recording and transcription. The
text is re-rendered from the row whenever the row changes, so a callback
arriving late or twice leaves the same record.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.accounts.models import User
from contactcenter.channels.phone.callstate import Outcome, Phase, is_final, outcome_of
from contactcenter.channels.phone.models import Call
from contactcenter.config import Settings
from contactcenter.events import record_event, room
from contactcenter.routing.engine import abandon_item, complete_item, load_policy
from contactcenter.routing.models import ItemState, RoutingItem
from contactcenter.tickets.models import Message, Queue, Ticket

OUTCOME_TEXT = {Outcome.ANSWERED: "answered", Outcome.ABANDONED: "abandoned in queue",
                Outcome.MISSED: "missed", Outcome.VOICEMAIL: "voicemail",
                Outcome.BUSY: "busy", Outcome.FAILED: "failed"}


def find_call(session: Session, sid: str) -> Call | None:
    """Return the call with a CallSid, or None."""
    if not sid:
        return None
    return session.scalar(select(Call).where(Call.sid == sid[:64]))


def duration_text(seconds: int | None) -> str:
    """Return ``1 min 5 s`` style text for a duration."""
    if seconds is None:
        return "-"
    minutes, rest = divmod(max(0, seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def call_summary(call: Call, *, agent_name: str = "", queue_name: str = "") -> str:
    """Render a call's record as the text of its ticket message."""
    if call.direction == "inbound":
        lines = [f"Inbound call from {call.from_number or 'an unknown number'} "
                 f"to {call.to_number}"]
    else:
        lines = [f"Outbound call to {call.to_number} from {call.from_number}"]
    if call.ivr_choices:
        lines.append(f"Menu: {call.ivr_choices}")
    if call.fast_track:
        lines.append("Fast-tracked (valued customer)")
    if queue_name:
        waited = f", waited {duration_text(call.wait_seconds)}" \
            if call.wait_seconds is not None else ""
        lines.append(f"Queue: {queue_name}{waited}")
    if agent_name:
        talked = f", talked {duration_text(call.talk_seconds)}" \
            if call.talk_seconds is not None else ""
        lines.append(f"Agent: {agent_name}{talked}")
    if call.outcome:
        lines.append(f"Outcome: {OUTCOME_TEXT.get(Outcome(call.outcome), call.outcome)}")
    else:
        lines.append(f"Status: {call.phase} ({call.status})")
    if call.duration_seconds is not None:
        lines.append(f"Duration: {duration_text(call.duration_seconds)}")
    if call.recording_url:
        lines.append(f"Recording: {call.recording_url}")
    if call.transcription:
        lines.append(f"Transcription: {call.transcription}")
    return "\n".join(lines)


def voicemail_text(call: Call) -> str:
    """Render the voicemail message: who, how long, the recording link and the transcription."""
    lines = [f"Voicemail from {call.from_number or 'an unknown number'} "
             f"({duration_text(call.recording_seconds)})"]
    if call.recording_url:
        lines.append(f"Recording: {call.recording_url}")
    lines.append(f"Transcription: {call.transcription}" if call.transcription
                 else "Transcription: pending")
    return "\n".join(lines)


def call_payload(call: Call) -> dict[str, Any]:
    """Return the JSON form of a call (events and the API)."""
    def iso(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {"call_id": call.id, "sid": call.sid, "direction": call.direction,
            "from": call.from_number, "to": call.to_number, "customer_id": call.customer_id,
            "ticket_id": call.ticket_id, "message_id": call.message_id,
            "queue_id": call.queue_id, "item_id": call.routing_item_id,
            "agent_id": call.agent_id, "status": call.status, "phase": call.phase,
            "outcome": call.outcome, "ivr_choices": call.ivr_choices,
            "fast_track": call.fast_track, "started_at": iso(call.started_at),
            "answered_at": iso(call.answered_at), "ended_at": iso(call.ended_at),
            "wait_seconds": call.wait_seconds, "talk_seconds": call.talk_seconds,
            "duration_seconds": call.duration_seconds, "recording_url": call.recording_url,
            "transcription": call.transcription,
            "voicemail_message_id": call.voicemail_message_id}


def refresh_record(session: Session, call: Call) -> None:
    """Re-render the call's messages from the row and tell the ticket's watchers."""
    agent = session.get(User, call.agent_id) if call.agent_id is not None else None
    queue = session.get(Queue, call.queue_id) if call.queue_id is not None else None
    if call.message_id is not None:
        message = session.get(Message, call.message_id)
        if message is not None:
            message.text = call_summary(call, agent_name=agent.name if agent else "",
                                        queue_name=queue.name if queue else "")
    if call.voicemail_message_id is not None:
        voicemail = session.get(Message, call.voicemail_message_id)
        if voicemail is not None:
            voicemail.text = voicemail_text(call)
    session.flush()
    rooms = [room("ticket", call.ticket_id)] if call.ticket_id is not None else []
    if call.agent_id is not None:
        rooms.append(room("agent", call.agent_id))
    if call.queue_id is not None:
        rooms.append(room("queue", call.queue_id))
    record_event(session, "call.ended" if call.phase == Phase.ENDED else "call.updated",
                 call_payload(call), rooms)


def seconds_between(start: dt.datetime | None, end: dt.datetime | None) -> int | None:
    """Return whole seconds from start to end, or None when either is missing."""
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds()))


def finish_item(session: Session, call: Call, settings: Settings, now: dt.datetime) -> None:
    """Complete the call's routing item (wrap-up starts) or, never answered, abandon it."""
    if call.routing_item_id is None:
        return
    item = session.get(RoutingItem, call.routing_item_id)
    if item is None:
        return
    policy = load_policy(settings)
    if item.state == ItemState.ASSIGNED:
        complete_item(session, item.id, now, policy, wrap_up=True)
    elif item.state in (ItemState.WAITING, ItemState.OFFERED):
        abandon_item(session, item.id, now, policy)


def end_call(session: Session, call: Call, settings: Settings, now: dt.datetime,
             status: str, duration: int | None) -> None:
    """Apply a final status: the outcome, the durations, the routing item; never twice."""
    if call.phase == Phase.ENDED:
        return
    call.status = status if is_final(status) else call.status
    call.ended_at = now
    if duration is not None:
        call.duration_seconds = duration
    if call.queued_at is not None and call.wait_seconds is None:
        call.wait_seconds = seconds_between(call.queued_at, call.answered_at or now)
    if call.answered_at is not None and call.talk_seconds is None:
        call.talk_seconds = seconds_between(call.answered_at, now)
    if call.outcome is None:
        call.outcome = outcome_of(call.direction, status, call.phase,
                                  call.answered_at is not None,
                                  call.voicemail_message_id is not None
                                  or call.phase == Phase.VOICEMAIL).value
    call.phase = Phase.ENDED
    finish_item(session, call, settings, now)
    refresh_record(session, call)


def ticket_of(session: Session, call: Call) -> Ticket | None:
    """Return the call's ticket, if any."""
    return session.get(Ticket, call.ticket_id) if call.ticket_id is not None else None
