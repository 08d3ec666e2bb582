"""Answer one Twilio webhook: pick its idempotency key, apply it once, say what to reply.

The web layer validates the signature and hands over a ``Webhook``; this module
knows, per endpoint, the key that recognises a repeat, the use case that
applies it, and the answer for a repeat. ``replay_failed`` applies stored
webhooks that failed, through the same table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.channels.base import ChannelRegistry
from contactcenter.channels.phone import callbacks, messaging, outbound, twiml, voice
from contactcenter.channels.phone.calls import find_call
from contactcenter.channels.phone.models import TwilioWebhook
from contactcenter.channels.phone.numbers import parse_address
from contactcenter.channels.phone.webhooks import Webhook, WebhookFailed, handle, parse_params
from contactcenter.config import Settings
from contactcenter.db import utcnow
from contactcenter.routing.engine import commit_and_settle, load_policy

XML = "text/xml; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


@dataclass
class Answer:
    """What to reply to Twilio, and jobs to start after the commit."""

    body: str
    content_type: str = XML
    status: int = 200
    jobs: list[tuple[str, int]] = field(default_factory=list)


Apply = Callable[[Session, Webhook, Settings, dt.datetime], str]


def _repeat_answer(hook: Webhook, settings: Settings) -> Callable[[Session], str]:
    def answer(session: Session) -> str:
        call = find_call(session, hook.get("CallSid", limit=64))
        return voice.answer_for(session, call, settings) if call is not None else twiml.empty()
    return answer


def _voice_entry(session: Session, hook: Webhook, settings: Settings, now: dt.datetime) -> str:
    if parse_address(hook.get("From", limit=100)).channel == "client":
        return outbound.softphone_call(session, hook, settings, now)
    return voice.incoming_call(session, hook, settings, now)


TWIML_ENDPOINTS: dict[str, Apply] = {
    "voice": _voice_entry,
    "menu": voice.choose_menu,
    "wait": voice.waiting,
    "leave": lambda s, h, st, n: voice.leave_pressed(h, st),
    "queue-exit": voice.queue_exit,
    "dial-done": voice.dial_done,
    "voicemail-done": lambda s, h, st, n: voice.voicemail_done(s, h, st),
    "connect": lambda s, h, st, n: outbound.connect_customer(s, h, st),
}
CALLBACK_ENDPOINTS: dict[str, Apply] = {
    "voice-status": callbacks.call_status,
    "recording": callbacks.recording,
    "transcription": callbacks.transcription,
    "sms-status": lambda s, h, st, n: messaging.message_status(s, h, n),
}


def dedupe_key(endpoint: str, hook: Webhook) -> str | None:
    """Return the key that makes a repeat of this webhook recognisable (None: state decides)."""
    call = hook.get("CallSid", limit=64)
    if endpoint == "voice":
        return f"voice:{call}"
    if endpoint == "dial-done":
        return f"dial:{call}:{hook.get('DialCallSid', limit=64)}:{hook.get('DialCallStatus', limit=20)}"
    if endpoint == "voice-status":
        return (f"status:{call}:{hook.get('CallStatus', limit=20)}:"
                f"{hook.get('SequenceNumber', limit=10)}")
    if endpoint == "recording":
        return f"recording:{hook.get('RecordingSid', limit=64)}:{hook.get('RecordingStatus', limit=20)}"
    if endpoint == "transcription":
        sid = hook.get("TranscriptionSid", limit=64) or hook.get("RecordingSid", limit=64)
        return f"transcription:{sid}:{hook.get('TranscriptionStatus', limit=20)}"
    if endpoint == "sms-status":
        status = hook.get("MessageStatus", limit=20) or hook.get("SmsStatus", limit=20)
        return f"sms-status:{hook.get('MessageSid', limit=64)}:{status}"
    return None


def required_sid(endpoint: str, hook: Webhook) -> bool:
    """Whether the webhook names the call or message it is about."""
    name = "MessageSid" if endpoint in ("sms", "sms-status") else "CallSid"
    value = hook.get(name, limit=64)
    return bool(value) and value.isalnum()


def handle_webhook(session: Session, endpoint: str, hook: Webhook, settings: Settings,
                   registry: ChannelRegistry, now: dt.datetime | None = None) -> Answer:
    """Apply one validated webhook and return the answer."""
    now = now or utcnow()
    if not required_sid(endpoint, hook):
        return Answer("missing or malformed sid", TEXT, 400)
    if endpoint == "sms":
        received = messaging.receive(session, hook, settings)
        jobs = [("phone.ingest_message", received.raw_id)] if received.raw_id is not None else []
        return Answer(received.twiml, jobs=jobs)
    policy = load_policy(settings)

    def commit(s: Session) -> object:
        return commit_and_settle(s, now, policy)

    if endpoint in TWIML_ENDPOINTS:
        apply = TWIML_ENDPOINTS[endpoint]
        try:
            body = handle(session, hook, dedupe_key(endpoint, hook),
                          lambda s: apply(s, hook, settings, now), _repeat_answer(hook, settings),
                          commit)
        except WebhookFailed:
            return Answer(twiml.spoken(None, "error"))
        return Answer(body)
    if endpoint in CALLBACK_ENDPOINTS:
        callback = CALLBACK_ENDPOINTS[endpoint]
        try:
            body = handle(session, hook, dedupe_key(endpoint, hook),
                          lambda s: callback(s, hook, settings, now), lambda s: "duplicate", commit)
        except WebhookFailed as exc:
            return Answer(f"kept as failed webhook {exc.webhook_id}", TEXT, 500)
        return Answer(body, TEXT)
    return Answer("unknown endpoint", TEXT, 404)


def replay_failed(session: Session, settings: Settings, registry: ChannelRegistry,
                  limit: int = 500) -> dict[str, int]:
    """Apply stored callbacks that failed again (their rows are marked replayed when done)."""
    counts: dict[str, int] = {}
    ids = list(session.scalars(select(TwilioWebhook.id).where(TwilioWebhook.state == "failed")
                               .order_by(TwilioWebhook.id).limit(limit)))
    for webhook_id in ids:
        row = session.get(TwilioWebhook, webhook_id)
        if row is None or row.endpoint not in CALLBACK_ENDPOINTS:
            continue
        hook = Webhook(row.endpoint, parse_params(row.payload, row.query), row.payload,
                       row.content_type, row.query, row.idempotency_token)
        key = row.dedupe_key
        row.dedupe_key = None  # free the key for the replay's own row
        row.state = "replayed"
        session.commit()
        answer = handle_webhook(session, row.endpoint, hook, settings, registry)
        if answer.status >= 500 and key is not None:
            failed = session.scalar(select(TwilioWebhook).where(TwilioWebhook.dedupe_key == key))
            if failed is not None:
                session.delete(row)
                session.commit()
        counts[str(answer.status)] = counts.get(str(answer.status), 0) + 1
    return counts
