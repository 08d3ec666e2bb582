"""The ``api`` channel: contacts posted as JSON by an integrator through the REST API.

Provider fields read (a JSON object): ``external_id`` (required, the idempotency
key), ``from`` (``{"kind": "email"|"phone"|"chat"|"external", "address", "name"}``),
``subject``, ``text``, ``html``, ``ticket_number``, ``in_reply_to`` (list),
``language``, ``also`` (further identities). Example result::

    InboundContact(channel="api", external_id="crm-77",
                   sender=Identity("email", "anna@example.com", "Anna"),
                   subject="Router down", text="It blinks red")

Replies to contacts that came in this way are held as sent; the integrator
reads them from the API.
"""

from __future__ import annotations

import json
from typing import Any

from contactcenter.channels.base import (
    ChannelError,
    ChannelRegistry,
    Identity,
    InboundContact,
    OutboundMessage,
    SendResult,
    ThreadHints,
)
from contactcenter.config import Settings

MAX_PAYLOAD_BYTES = 1024 * 1024
IDENTITY_KINDS = {"email", "phone", "chat", "external"}


def _identity(obj: Any, where: str) -> Identity:
    if not isinstance(obj, dict):
        raise ChannelError(f"{where} must be an object")
    kind, address = obj.get("kind"), obj.get("address")
    if kind not in IDENTITY_KINDS:
        raise ChannelError(f"{where}.kind must be one of {sorted(IDENTITY_KINDS)}")
    if not isinstance(address, str) or not address.strip() or len(address) > 320:
        raise ChannelError(f"{where}.address must be a non-empty string of at most 320 characters")
    name = obj.get("name") or ""
    if not isinstance(name, str) or len(name) > 200:
        raise ChannelError(f"{where}.name must be a string of at most 200 characters")
    return Identity(kind, address.strip(), name.strip())


def _text(data: dict[str, Any], key: str, limit: int) -> str:
    value = data.get(key) or ""
    if not isinstance(value, str):
        raise ChannelError(f"{key} must be a string")
    if len(value) > limit:
        raise ChannelError(f"{key} is longer than {limit} characters")
    return value


def parse_contact(data: Any, *, inbox_id: int | None = None, raw_id: int | None = None
                  ) -> InboundContact:
    """Validate a JSON contact and turn it into an ``InboundContact``."""
    if not isinstance(data, dict):
        raise ChannelError("the contact must be a JSON object")
    external_id = data.get("external_id")
    if not isinstance(external_id, str) or not external_id.strip() or len(external_id) > 200:
        raise ChannelError("external_id must be a non-empty string of at most 200 characters")
    sender = _identity(data.get("from"), "from")
    also = data.get("also") or []
    if not isinstance(also, list) or len(also) > 10:
        raise ChannelError("also must be a list of at most 10 identities")
    number = data.get("ticket_number")
    if number is not None and (not isinstance(number, int) or isinstance(number, bool)):
        raise ChannelError("ticket_number must be an integer")
    in_reply_to = data.get("in_reply_to") or []
    if not isinstance(in_reply_to, list) or not all(isinstance(x, str) for x in in_reply_to):
        raise ChannelError("in_reply_to must be a list of strings")
    text = _text(data, "text", 100_000)
    html = _text(data, "html", 500_000)
    if not text.strip() and not html.strip():
        raise ChannelError("text or html is required")
    language = data.get("language")
    if language is not None and (not isinstance(language, str) or len(language) > 8):
        raise ChannelError("language must be an ISO code")
    return InboundContact(
        channel="api",
        external_id=external_id.strip(),
        sender=sender,
        subject=_text(data, "subject", 500),
        text=text,
        html=html,
        inbox_id=inbox_id,
        thread=ThreadHints(ticket_number=number, in_reply_to=tuple(in_reply_to[:50])),
        other_identities=tuple(_identity(o, f"also[{i}]") for i, o in enumerate(also)),
        raw_id=raw_id,
        language=language,
    )


class ApiChannel:
    """Adapter for contacts that integrators post to ``/api/v1/contacts``."""

    kind = "api"

    def enabled(self, settings: Settings) -> bool:
        return True

    def check(self, settings: Settings) -> str:
        return "ok"

    def to_inbound(self, payload: bytes, *, inbox_id: int | None, raw_id: int | None
                   ) -> InboundContact:
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise ChannelError("payload larger than 1 MiB")
        try:
            data = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ChannelError(f"payload is not valid JSON: {exc}") from exc
        return parse_contact(data, inbox_id=inbox_id, raw_id=raw_id)

    def send(self, outbound: OutboundMessage, settings: Settings) -> SendResult:
        return SendResult(provider_id=None)


def register(registry: ChannelRegistry) -> None:
    """Register the API channel."""
    registry.register(ApiChannel())
