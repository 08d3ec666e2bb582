"""SMS and WhatsApp through Twilio: inbound messages, keywords, delivery status, sending.

Provider fields read from the inbound webhook: ``MessageSid``, ``From``, ``To``,
``Body``, ``NumMedia`` with ``MediaUrl<n>``/``MediaContentType<n>``,
``ProfileName`` (WhatsApp); everything else is kept in the raw payload and
ignored. Example::

    InboundContact(channel="sms", external_id="SM1f0e...", sender=Identity("phone",
                   "+79161234567", ""), text="Привет! Роутер не работает 😢",
                   recipient="+12025550101")

A message that is only STOP, START or HELP (``sms.keyword_of``) opens no
ticket: the opt-out list is updated and HELP is answered. Media are recorded by
URL on the message and downloaded by the ``phone.fetch_media`` job.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.channels.base import (
    Identity,
    InboundContact,
    OutboundMessage,
    PermanentDeliveryError,
    SendResult,
)
from contactcenter.channels.phone import rest, sms
from contactcenter.channels.phone.models import SmsMedia, SmsOptOut, SmsPart
from contactcenter.channels.phone.numbers import parse_address, to_twilio
from contactcenter.channels.phone.webhooks import Webhook, parse_params
from contactcenter.config import Settings
from contactcenter.events import record_event
from contactcenter.tickets.intake import store_raw, ticket_rooms
from contactcenter.tickets.models import DeliveryState, Direction, Inbox, Message, RawState

MAX_MEDIA = 10
MAX_BODY = 10_000
DEFAULT_HELP = "Reply with your question and our support team will answer. Text STOP to opt out."
# Twilio's message statuses by how far along they are; failures are final.
STATUS_RANK = {"accepted": 0, "scheduled": 0, "queued": 0, "sending": 1, "sent": 2,
               "delivered": 3, "undelivered": 3, "failed": 3, "canceled": 3, "read": 4}
FAILED = frozenset({"undelivered", "failed", "canceled"})


def channel_of(params: dict[str, str]) -> str:
    """Return ``whatsapp`` for WhatsApp senders, else ``sms``."""
    return "whatsapp" if params.get("From", "").lower().startswith("whatsapp:") else "sms"


def media_of(params: dict[str, str]) -> list[tuple[str, str]]:
    """Return the (URL, content type) pairs of an inbound message's media."""
    count = min(int(params["NumMedia"]) if params.get("NumMedia", "").isdigit() else 0, MAX_MEDIA)
    found = []
    for i in range(count):
        url = params.get(f"MediaUrl{i}", "").strip()[:1000]
        if url.startswith(("https://", "http://")):
            found.append((url, params.get(f"MediaContentType{i}", "").strip()[:127]))
    return found


def sms_to_contact(params: dict[str, str], *, inbox_id: int | None, raw_id: int | None
                   ) -> InboundContact:
    """Map an inbound SMS/WhatsApp webhook's parameters to a contact."""
    sender = parse_address(params.get("From", ""))
    name = params.get("ProfileName", "").strip()[:200]
    identity = (Identity("phone", sender.number, name) if sender.number
                else Identity("external", f"sms:{params.get('From', '').strip()[:60]}", name))
    body = params.get("Body", "")[:MAX_BODY]
    media = media_of(params)
    lines = [f"[media: {kind or 'file'} {url}]" for url, kind in media]
    text = "\n\n".join(x for x in (body.strip(), "\n".join(lines)) if x)
    return InboundContact(
        channel=channel_of(params), external_id=params.get("MessageSid", "")[:64],
        sender=identity, text=text, inbox_id=inbox_id, raw_id=raw_id,
        recipient=parse_address(params.get("To", "")).number or params.get("To", "")[:64],
        metadata={"media": media, "segments": params.get("NumSegments", "")[:4]})


def find_inbox(session: Session, number: str | None) -> Inbox | None:
    """Return the inbox of the number a message was sent to (SMS, WhatsApp or voice)."""
    if not number:
        return None
    rows = session.scalars(select(Inbox).where(Inbox.address == number)).all()
    for preferred in ("sms", "whatsapp", "phone"):
        for inbox in rows:
            if inbox.channel == preferred:
                return inbox
    return None


@dataclass
class SmsReceived:
    """What became of an inbound message: the TwiML answer, and the raw row to ingest."""

    twiml: str
    raw_id: int | None = None
    keyword: str | None = None


def apply_keyword(session: Session, address: str, keyword: sms.Keyword) -> None:
    """Record STOP (opt out) or START (opt in again) for an address."""
    existing = session.scalar(select(SmsOptOut).where(SmsOptOut.address == address))
    if keyword == sms.Keyword.STOP and existing is None:
        session.add(SmsOptOut(address=address, keyword="STOP"))
    elif keyword == sms.Keyword.START and existing is not None:
        session.delete(existing)


def is_opted_out(session: Session, number: str) -> bool:
    """Whether a number texted STOP (and not START since)."""
    return session.scalar(select(SmsOptOut.id).where(SmsOptOut.address == number)) is not None


def receive(session: Session, hook: Webhook, settings: Settings) -> SmsReceived:
    """Take an inbound message: keywords now; anything else is stored raw for the intake job.

    The webhook answers as soon as the raw body is committed (what Twilio's 2xx
    acknowledges); ``phone.ingest_message`` runs intake on it (customer, ticket,
    message, media rows, routing) and the intake sweep takes over a lost job. A
    repeat of a MessageSid finds its stored row and is not ingested twice.
    """
    from contactcenter.channels.phone import twiml, webhooks

    params = dict(hook.params)
    sid = hook.get("MessageSid", limit=64)
    keyword = sms.keyword_of(params.get("Body", "")) if not media_of(params) else None
    sender = parse_address(params.get("From", ""))
    if keyword is not None and sender.number:
        if webhooks.record(session, hook, f"sms:{sid}", f"keyword:{keyword.value}"):
            apply_keyword(session, sender.number, keyword)
            session.commit()
        answer = ""
        if keyword == sms.Keyword.HELP:
            answer = settings.twilio_sms_help_text or DEFAULT_HELP
        return SmsReceived(twiml.sms_reply(answer), keyword=keyword.value)
    inbox = find_inbox(session, parse_address(params.get("To", "")).number)
    raw, new = store_raw(session, channel_of(params), sid, hook.payload,
                         inbox_id=inbox.id if inbox else None,
                         content_type=(hook.content_type or "application/x-www-form-urlencoded"))
    # A repeat of a message still waiting for its job is handed to a job again (idempotent).
    waiting = new or raw.state == RawState.PENDING
    return SmsReceived(twiml.sms_reply(), raw.id if waiting else None)


def record_media(session: Session, message_id: int, contact: InboundContact) -> list[int]:
    """Record an inbound message's media by URL (the ``phone.fetch_media`` job downloads them)."""
    rows = [SmsMedia(message_id=message_id, url=url, content_type=kind)
            for url, kind in contact.metadata.get("media", ())]
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows]


def message_status(session: Session, hook: Webhook, now: dt.datetime) -> str:
    """Apply a delivery status callback to the part it reports and to its message."""
    sid = hook.get("MessageSid", limit=64)
    status = hook.get("MessageStatus", limit=20) or hook.get("SmsStatus", limit=20)
    if status not in STATUS_RANK:
        return "ignored"
    part = session.scalar(select(SmsPart).where(SmsPart.sid == sid))
    if part is None:
        message_id = hook.number("m")
        message = session.get(Message, message_id) if message_id is not None else None
        if message is None or message.direction != Direction.OUTBOUND:
            return "unknown message"
        part = SmsPart(message_id=message.id, part=hook.number("p") or 0, sid=sid,
                       status="queued", updated_at=now)
        session.add(part)
    elif part.status in FAILED or STATUS_RANK[status] <= STATUS_RANK.get(part.status, -1):
        return "ignored"
    part.status = status
    part.error_code = hook.get("ErrorCode", limit=16)
    part.updated_at = now
    session.flush()
    message = session.get(Message, part.message_id)
    if message is None:
        return "unknown message"
    parts = session.scalars(select(SmsPart).where(SmsPart.message_id == message.id)).all()
    if status in FAILED:
        message.delivery_state = DeliveryState.FAILED
        message.next_attempt_at = None
        code = f" (Twilio error {part.error_code})" if part.error_code else ""
        message.delivery_error = f"{status}{code}"[:2000]
    elif all(p.status in ("delivered", "read") for p in parts) and message.delivered_at is None:
        message.delivered_at = now
    record_event(session, "message.delivery_changed",
                 {"message_id": message.id, "ticket_id": message.ticket_id,
                  "delivery_state": message.delivery_state,
                  "attempts": message.delivery_attempts, "provider_status": status,
                  "error": message.delivery_error[:200]}, ticket_rooms(message.ticket))
    return status


def sender_number(outbound: OutboundMessage, settings: Settings) -> str:
    """Return the number a reply goes out from: the inbox's, else the configured one."""
    own = parse_address(outbound.inbox_address).number if outbound.inbox_address else None
    if outbound.channel == "whatsapp":
        return to_twilio(own or parse_address(settings.twilio_whatsapp_from).number or "",
                         "whatsapp") if (own or settings.twilio_whatsapp_from) else ""
    return own or settings.twilio_sms_from


def send(outbound: OutboundMessage, settings: Settings) -> SendResult:
    """Send a reply as one or more messages; a partial send is never repeated.

    When the first part fails for now, the outbox retries the whole reply with
    backoff; once a part went out, a later failure is reported as permanent
    (with what was sent) rather than texting the customer the first parts again.
    """
    from contactcenter.channels.phone.voice import webhook_url

    recipient = parse_address(outbound.recipient).number
    if recipient is None:
        raise PermanentDeliveryError(f"cannot text {outbound.recipient!r}: not a phone number")
    text = outbound.text.strip()
    if not text:
        raise PermanentDeliveryError("an SMS reply needs text")
    parts = sms.split_message(text, max(10, settings.twilio_sms_max_chars))
    from_ = sender_number(outbound, settings)
    first_sid: str | None = None
    for index, body in enumerate(parts):
        callback = webhook_url(settings, "/twilio/sms/status", m=outbound.message_id, p=index)
        try:
            sid = rest.send_message(settings, to=to_twilio(recipient, outbound.channel),
                                    from_=from_, body=body, status_callback=callback)
        except rest.TwilioApiError as exc:
            if first_sid is None:
                raise
            raise PermanentDeliveryError(
                f"parts 1-{index} of {len(parts)} were sent (first {first_sid}); "
                f"part {index + 1} failed: {exc}") from exc
        first_sid = first_sid or sid
    return SendResult(provider_id=first_sid)


def parse_payload(payload: bytes) -> dict[str, str]:
    """Parse a stored raw webhook body."""
    return parse_params(payload)
