"""An inbound call as a contact: the pure mapper, and its way through the normal intake.

Provider fields read from the voice webhook: ``CallSid``, ``From``, ``To`` and
``CallerName``; everything else stays in the raw payload. Example::

    InboundContact(channel="phone", external_id="CA5f2c...", sender=Identity("phone",
                   "+79161234567", ""), text="Inbound call from +79161234567",
                   recipient="+12025550100", metadata={"call": True})

A call enters intake like every other contact (``ingest_call``): its raw
webhook body is stored as a ``RawInbound`` row and applied by
``tickets.intake.apply_payload_nested`` inside the webhook's transaction, so the
customer, the ticket (the caller's open one on any channel, or a new one) and
the call's message are intake's work alone. The call is routed live by the
voice menu, not as a ticket waiting for a reply: the contact says so
(``routed_live``), so intake files the ticket in the called number's inbox and
queue but creates no routing item for it; the voice channel creates the call's
own when the caller asks for an agent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import cache

from sqlalchemy.orm import Session

from contactcenter.channels.base import ChannelRegistry, Identity, InboundContact, ThreadHints
from contactcenter.channels.phone.numbers import parse_address
from contactcenter.config import Settings
from contactcenter.tickets.intake import IntakeResult, apply_payload_nested
from contactcenter.tickets.models import Inbox

VOICE_CHANNEL = "phone"


class CallIntakeError(Exception):
    """Intake could not take a call (the webhook's transaction rolls back and is kept failed)."""


def is_call_payload(params: Mapping[str, str]) -> bool:
    """Whether webhook parameters are a call's (a CallSid and no MessageSid)."""
    return bool(params.get("CallSid")) and not params.get("MessageSid")


def call_to_contact(params: Mapping[str, str], *, inbox_id: int | None = None,
                    raw_id: int | None = None, ticket_number: int | None = None,
                    received_at: dt.datetime | None = None) -> InboundContact:
    """Map a ringing call's webhook parameters to a contact.

    ``ticket_number`` is the caller's open ticket on any channel (the voice path
    looks it up); without it intake threads onto an open phone ticket, else opens one.
    """
    sid = (params.get("CallSid") or "").strip()[:64]
    caller = parse_address(params.get("From", ""))
    called = parse_address(params.get("To", ""))
    name = (params.get("CallerName") or "").strip()[:200]
    sender = (Identity("phone", caller.number, name) if caller.number
              else Identity("external", f"anonymous-call:{sid}", "Anonymous caller"))
    return InboundContact(
        channel=VOICE_CHANNEL, external_id=sid, sender=sender,
        text=f"Inbound call from {caller.number or 'an unknown number'}",
        recipient=called.number or (params.get("To") or "").strip()[:64],
        inbox_id=inbox_id, raw_id=raw_id, received_at=received_at,
        thread=ThreadHints(ticket_number=ticket_number,
                           thread_on_open_ticket=ticket_number is None),
        metadata={"call": True}, routed_live=True)


@cache
def _registry() -> ChannelRegistry:
    from contactcenter.channels.phone.adapter import TwilioChannel

    registry = ChannelRegistry()
    registry.register(TwilioChannel(VOICE_CHANNEL))
    return registry


def ingest_call(session: Session, contact: InboundContact, payload: bytes, content_type: str,
                inbox: Inbox | None, settings: Settings) -> IntakeResult:
    """Store the call's raw webhook and apply its contact through intake, without committing.

    The contact is routed live (``call_to_contact`` says so): intake files it in the
    inbox without queueing the ticket as waiting for a reply.
    """
    if not contact.routed_live:
        raise CallIntakeError(f"call {contact.external_id} is not marked routed live")
    done = apply_payload_nested(
        session, VOICE_CHANNEL, contact.external_id, payload, _registry(), settings,
        inbox_id=inbox.id if inbox is not None else None,
        content_type=(content_type or "application/x-www-form-urlencoded")[:100],
        contact=contact)
    if done is None:
        raise CallIntakeError(f"intake refused call {contact.external_id}")
    return done[0]
