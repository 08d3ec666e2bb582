"""The chat channel adapter: a visitor's message frame in, agents' messages out to the widget.

Provider fields read (the JSON frame the visitor socket stores raw): ``chat``
(the chat's public id), ``visitor`` (the visitor id), ``client_id`` (the
widget's id for the message, which makes resends duplicates), ``text``,
``name``, ``identity`` (``{"kind": "chat"|"external", "address"}``: ``external``
only when the site's HMAC proved it), ``ticket_number`` and ``reply_token``
(the chat's ticket after the first message), ``new`` (first message: never
thread onto an older ticket), ``subject``, ``language`` and ``attachments``
(``[{"filename", "content_type", "data" (base64)}]``, checked before the frame
is built). Example::

    InboundContact(channel="chat", external_id="Xk3...q/1f0c-77",
                   sender=Identity("chat", "v-9sd8f7...", "Anna"),
                   subject="Billing: my invoice is wrong", text="Hi, my invoice...",
                   thread=ThreadHints(thread_on_open_ticket=False),
                   metadata={"chat": "Xk3...q"})

``send`` delivers an agent's message to the visitor's sockets (room
``visitor:<visitor id>`` on the ``/visitor`` namespace) through the relay.
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

CHANNEL = "chat"
MAX_FRAME_BYTES = 16 * 1024 * 1024
MAX_TEXT = 5000
MAX_CLIENT_ID = 64


def external_id(chat_public_id: str, client_id: str) -> str:
    """Return the idempotency key of a visitor's message: scoped to its chat."""
    return f"{chat_public_id}/{client_id}"


def _str(frame: dict[str, Any], key: str, limit: int) -> str:
    value = frame.get(key) or ""
    if not isinstance(value, str):
        raise ChannelError(f"{key} must be a string")
    return value[:limit]


def frame_to_contact(frame: Any, *, inbox_id: int | None = None, raw_id: int | None = None
                     ) -> InboundContact:
    """Turn a stored chat frame into an ``InboundContact`` (pure)."""
    if not isinstance(frame, dict):
        raise ChannelError("a chat frame must be a JSON object")
    chat, client_id = frame.get("chat"), frame.get("client_id")
    if not isinstance(chat, str) or not chat or not isinstance(client_id, str) \
            or not 0 < len(client_id) <= MAX_CLIENT_ID:
        raise ChannelError("chat and client_id are required")
    identity = frame.get("identity") or {}
    kind, address = identity.get("kind"), identity.get("address")
    if kind not in ("chat", "external") or not isinstance(address, str) or not address:
        raise ChannelError("identity must be a chat visitor or a verified external id")
    number = frame.get("ticket_number")
    token = frame.get("reply_token")
    attachments = []
    for item in frame.get("attachments") or []:
        try:
            data = base64.b64decode(item["data"], validate=True)
        except (KeyError, TypeError, binascii.Error) as exc:
            raise ChannelError("attachment data must be base64") from exc
        attachments.append(AttachmentRef(filename=str(item.get("filename", "upload"))[:255],
                                         content_type=str(item.get("content_type", ""))[:127],
                                         data=data))
    text = _str(frame, "text", MAX_TEXT)
    if not text.strip() and not attachments:
        raise ChannelError("a chat message needs text or a file")
    return InboundContact(
        channel=CHANNEL, external_id=external_id(chat, client_id),
        sender=Identity(kind, address, _str(frame, "name", 200)),
        subject=_str(frame, "subject", 500), text=text, inbox_id=inbox_id, raw_id=raw_id,
        thread=ThreadHints(
            ticket_number=number if isinstance(number, int) and not isinstance(number, bool)
            else None,
            reply_token=token if isinstance(token, str) else None,
            thread_on_open_ticket=False),
        attachments=tuple(attachments),
        language=frame.get("language") if isinstance(frame.get("language"), str) else None,
        metadata={"chat": chat},
    )


def encode_frame(frame: dict[str, Any]) -> bytes:
    """Return the bytes stored raw for a frame."""
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False).encode()


def outbound_payload(outbound: OutboundMessage) -> dict[str, Any]:
    """Return what the widget receives for an agent's message."""
    # The visitor's last message id is "<chat public id>/<client id>": it names the chat.
    answered = outbound.in_reply_to[0] if outbound.in_reply_to else ""
    chat_id = answered.split("/", 1)[0] if "/" in answered else None
    return {"type": "chat.message", "payload": {
        "chat_id": chat_id, "message_id": outbound.message_id, "from": "agent",
        "author": outbound.sender_name.split(" ")[0] if outbound.sender_name else "",
        "text": outbound.text, "ticket": outbound.ticket_number,
        "attachments": [{"name": a[0], "type": a[1]} for a in outbound.attachments]}}


class ChatChannel:
    """Adapter for the web chat widget."""

    kind = CHANNEL

    def enabled(self, settings: Settings) -> bool:
        return True

    def check(self, settings: Settings) -> str:
        from contactcenter.channels.chat.relay import find_relay

        return "ok" if find_relay(settings) is not None else "no socket server reachable"

    def to_inbound(self, payload: bytes, *, inbox_id: int | None, raw_id: int | None
                   ) -> InboundContact:
        if len(payload) > MAX_FRAME_BYTES:
            raise ChannelError("chat frame too large")
        try:
            frame = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ChannelError(f"chat frame is not JSON: {exc}") from exc
        return frame_to_contact(frame, inbox_id=inbox_id, raw_id=raw_id)

    def send(self, outbound: OutboundMessage, settings: Settings) -> SendResult:
        from contactcenter.channels.chat.relay import find_relay, visitor_room

        relay = find_relay(settings)
        if relay is None:
            raise ChannelError("no socket server to deliver the chat message through")
        relay.emit("chat_event", outbound_payload(outbound), visitor_room(outbound.recipient))
        return SendResult(provider_id=None)


def register(registry: ChannelRegistry) -> None:
    """Register the chat channel."""
    registry.register(ChatChannel())
