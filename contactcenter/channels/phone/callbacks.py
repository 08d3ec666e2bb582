"""Status, recording and transcription callbacks of calls.

Callbacks may come twice or out of order: a status applies only when it moves
the call forward (``callstate.next_status``), the first final status decides
the outcome, and a recording or transcription is keyed by its own sid, so a
repeat changes nothing. A leg we dialled (the agent's softphone, or the
customer in a click-to-call) reports with ``ParentCallSid``: its answer is
when the call is connected.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from contactcenter.channels.base import Identity, InboundContact, ThreadHints
from contactcenter.channels.phone.calls import end_call, find_call, refresh_record, ticket_of
from contactcenter.channels.phone.callstate import Phase, is_final, next_status
from contactcenter.channels.phone.models import Call
from contactcenter.channels.phone.webhooks import Webhook
from contactcenter.config import Settings
from contactcenter.tickets.intake import apply_contact

MAX_TRANSCRIPTION = 5000


def _leg_answered(session: Session, call: Call, now: dt.datetime) -> None:
    if call.phase in (Phase.ENDED, Phase.CONNECTED):
        return
    call.phase = Phase.CONNECTED
    if call.answered_at is None:
        call.answered_at = now
    if call.queued_at is not None and call.wait_seconds is None:
        call.wait_seconds = max(0, int((now - call.queued_at).total_seconds()))
    refresh_record(session, call)


def call_status(session: Session, hook: Webhook, settings: Settings, now: dt.datetime) -> str:
    """Apply a call status callback; return what it did (for the log and tests)."""
    status = hook.get("CallStatus", limit=20)
    call = find_call(session, hook.get("CallSid", limit=64))
    if call is None:
        parent = find_call(session, hook.get("ParentCallSid", limit=64))
        if parent is None:
            return "unknown call"
        if status == "in-progress":
            _leg_answered(session, parent, now)
            return "leg answered"
        return "leg status"
    new = next_status(call.status, status)
    if new is None:
        return "ignored"
    call.status = new
    if is_final(new):
        end_call(session, call, settings, now, new, hook.number("CallDuration"))
        return "ended"
    if new == "in-progress" and call.direction == "outbound" and call.phase == Phase.IVR:
        # The agent picked up their leg of a click-to-call: the customer is being dialled.
        call.phase = Phase.BRIDGING
    refresh_record(session, call)
    return "advanced"


def recording(session: Session, hook: Webhook, settings: Settings, now: dt.datetime) -> str:
    """Link a finished recording; a voicemail becomes a message on the caller's ticket."""
    call = find_call(session, hook.get("CallSid", limit=64))
    if call is None:
        return "unknown call"
    state = hook.get("RecordingStatus", "completed", 20)
    url = hook.get("RecordingUrl", limit=480)
    if state != "completed" or not url.startswith(("https://", "http://")):
        call.last_error = f"recording {state}"
        return "not recorded"
    call.recording_sid = hook.get("RecordingSid", limit=64)
    call.recording_url = url
    call.recording_seconds = hook.number("RecordingDuration")
    voicemail = call.phase == Phase.VOICEMAIL or (
        call.answered_at is None and hook.get("RecordingSource", limit=40) == "RecordVerb")
    if voicemail and call.voicemail_message_id is None:
        add_voicemail(session, call, settings, now)
    refresh_record(session, call)
    return "voicemail" if voicemail else "recording"


def add_voicemail(session: Session, call: Call, settings: Settings, now: dt.datetime) -> None:
    """Add the voicemail to the caller's ticket through intake (it then waits for a call-back)."""
    from contactcenter.channels.phone.calls import voicemail_text

    ticket = ticket_of(session, call)
    sender = (Identity("phone", call.from_number) if call.from_number
              else Identity("external", f"anonymous-call:{call.sid}", "Anonymous caller"))
    contact = InboundContact(
        channel="phone", external_id=f"voicemail:{call.recording_sid or call.sid}",
        sender=sender, text=voicemail_text(call), inbox_id=call.inbox_id,
        recipient=call.to_number, received_at=now,
        thread=ThreadHints(ticket_number=ticket.number if ticket else None,
                           reply_token=ticket.reply_token if ticket else None))
    result = apply_contact(session, contact, settings, now)
    call.voicemail_message_id = result.message_id
    if call.ticket_id is None:
        call.ticket_id = result.ticket_id
    call.outcome = call.outcome or "voicemail"


def transcription(session: Session, hook: Webhook, settings: Settings, now: dt.datetime) -> str:
    """Put a voicemail's transcription on its message (it may come before the recording)."""
    del settings, now
    call = find_call(session, hook.get("CallSid", limit=64))
    if call is None:
        return "unknown call"
    if hook.get("TranscriptionStatus", "completed", 20) == "completed":
        call.transcription = hook.get("TranscriptionText", limit=MAX_TRANSCRIPTION) or "(silence)"
    else:
        call.transcription = call.transcription or "(transcription failed)"
    if call.recording_url is None and hook.get("RecordingUrl", limit=480).startswith("https://"):
        call.recording_url = hook.get("RecordingUrl", limit=480)
    refresh_record(session, call)
    return "transcribed"
