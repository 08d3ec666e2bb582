"""The web form channel adapter: a validated form post in, answers out by e-mail.

Provider fields read (the JSON the forms endpoint stores raw): ``form`` (slug),
``submission_id`` (the idempotency key: a double submit is a duplicate),
``email`` and ``name`` (the sender), ``subject``, ``text`` (the fields rendered
as label and raw value), ``language`` and ``attachments`` (``[{"filename",
"content_type", "data" (base64)}]``, checked by magic bytes before storing).
Example::

    InboundContact(channel="form", external_id="support/5b0c...e1",
                   sender=Identity("email", "anna@example.com", "Anna"),
                   subject="Billing", text="My invoice is wrong\\n\\nTopic: Billing",
                   thread=ThreadHints(thread_on_open_ticket=False))

A form post always opens its own ticket. Agents' replies to form tickets go
out by e-mail (the e-mail adapter sends them).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from contactcenter.channels.base import (
    AttachmentRef,
    ChannelError,
    ChannelRegistry,
    Identity,
    InboundContact,
    OutboundMessage,
    SendResult,
    ThreadHints,
)
from contactcenter.config import Settings

CHANNEL = "form"
MAX_PAYLOAD = 64 * 1024 * 1024


def external_id(slug: str, submission_id: str) -> str:
    """Return the idempotency key of a submission."""
    return f"{slug}/{submission_id}"


def payload_to_contact(data: Any, *, inbox_id: int | None = None, raw_id: int | None = None
                       ) -> InboundContact:
    """Turn a stored form payload into an ``InboundContact`` (pure)."""
    if not isinstance(data, dict):
        raise ChannelError("a form payload must be a JSON object")
    slug, sid, email = data.get("form"), data.get("submission_id"), data.get("email")
    if not all(isinstance(v, str) and v for v in (slug, sid, email)):
        raise ChannelError("form, submission_id and email are required")
    attachments = []
    for item in data.get("attachments") or []:
        try:
            raw = base64.b64decode(item["data"], validate=True)
        except (KeyError, TypeError, binascii.Error) as exc:
            raise ChannelError("attachment data must be base64") from exc
        attachments.append(AttachmentRef(str(item.get("filename", "upload"))[:255],
                                         str(item.get("content_type", ""))[:127], raw))
    language = data.get("language")
    return InboundContact(
        channel=CHANNEL, external_id=external_id(str(slug), str(sid)),
        sender=Identity("email", str(email), str(data.get("name") or "")[:200]),
        subject=str(data.get("subject") or "")[:500], text=str(data.get("text") or ""),
        inbox_id=inbox_id, raw_id=raw_id, thread=ThreadHints(thread_on_open_ticket=False),
        attachments=tuple(attachments),
        language=language if isinstance(language, str) else None,
        metadata={"form": slug, "page_url": str(data.get("page_url") or "")[:2000]})


class FormChannel:
    """Adapter for hosted and embedded web forms."""

    kind = CHANNEL

    def enabled(self, settings: Settings) -> bool:
        return True

    def check(self, settings: Settings) -> str:
        return "ok"

    def to_inbound(self, payload: bytes, *, inbox_id: int | None, raw_id: int | None
                   ) -> InboundContact:
        if len(payload) > MAX_PAYLOAD:
            raise ChannelError("form payload too large")
        try:
            data = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ChannelError(f"form payload is not JSON: {exc}") from exc
        return payload_to_contact(data, inbox_id=inbox_id, raw_id=raw_id)

    def send(self, outbound: OutboundMessage, settings: Settings) -> SendResult:
        import dataclasses

        from contactcenter.channels.email.outbound import send_email

        # The form's inbox is not a mailbox: answer from the configured support address.
        return send_email(dataclasses.replace(outbound, inbox_address=""), settings)


def register(registry: ChannelRegistry) -> None:
    """Register the form channel."""
    registry.register(FormChannel())
