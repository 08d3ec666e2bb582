"""The Twilio channel adapters: ``sms``, ``whatsapp`` and ``phone`` (replies to callers by SMS).

Provider fields read: see ``messaging`` (SMS/WhatsApp webhooks) and
``callcontact`` (a ringing call's voice webhook, kind ``phone``). ``to_inbound``
takes the raw form body of an inbound message or call webhook, exactly as stored
(intake's replay parses it again). Example::

    InboundContact(channel="whatsapp", external_id="SM5e2...",
                   sender=Identity("phone", "+447700900123", "Olivia"), text="Hi 👋",
                   recipient="+12025550101")
"""

from __future__ import annotations

from contactcenter import hooks
from contactcenter.channels.base import (
    ChannelRegistry,
    InboundContact,
    OutboundMessage,
    SendResult,
)
from contactcenter.config import Settings

TWILIO_CHANNELS = ("sms", "whatsapp", "phone")


class TwilioChannel:
    """One Twilio channel kind; they share webhooks, the REST client and the rules of SMS."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def enabled(self, settings: Settings) -> bool:
        return bool(settings.twilio_account_sid and settings.twilio_auth_token)

    def check(self, settings: Settings) -> str:
        from contactcenter.channels.phone import rest

        if not self.enabled(settings):
            return "disabled: CONTACTCENTER_TWILIO_ACCOUNT_SID and _AUTH_TOKEN are not set"
        client = rest.client_for(settings)
        account = rest._call("checking the account", client.api.v2010.accounts(
            settings.twilio_account_sid).fetch)
        return f"ok: account {account.sid} is {account.status}"

    def to_inbound(self, payload: bytes, *, inbox_id: int | None, raw_id: int | None
                   ) -> InboundContact:
        from contactcenter.channels.phone.callcontact import call_to_contact, is_call_payload
        from contactcenter.channels.phone.messaging import parse_payload, sms_to_contact

        params = parse_payload(payload)
        if self.kind == "phone" and is_call_payload(params):
            return call_to_contact(params, inbox_id=inbox_id, raw_id=raw_id)
        return sms_to_contact(params, inbox_id=inbox_id, raw_id=raw_id)

    def send(self, outbound: OutboundMessage, settings: Settings) -> SendResult:
        from contactcenter.channels.phone.messaging import send

        return send(outbound, settings)


@hooks.on_reply
def refuse_opted_out(ctx: hooks.ReplyContext) -> None:
    """Fail a text reply at once when its recipient texted STOP (never send it)."""
    message = ctx.message
    if ctx.internal or message.channel not in TWILIO_CHANNELS:
        return
    from contactcenter.channels.phone.messaging import is_opted_out
    from contactcenter.channels.phone.numbers import parse_address
    from contactcenter.tickets.models import DeliveryState

    number = parse_address(message.recipient).number
    if number is not None and is_opted_out(ctx.session, number):
        message.delivery_state = DeliveryState.FAILED
        message.next_attempt_at = None
        message.delivery_error = "not sent: the customer texted STOP (opted out of messages)"


@hooks.on_intake
def record_message_media(ctx: hooks.IntakeContext) -> None:
    """Record an MMS or WhatsApp message's media on its message, in intake's transaction.

    As a hook, it runs whoever ingests the stored message: the ``phone.ingest_message``
    job, the intake sweep after a lost job, or a replay.
    """
    if ctx.contact.channel not in ("sms", "whatsapp") or not ctx.contact.metadata.get("media"):
        return
    from contactcenter.channels.phone.messaging import record_media

    record_media(ctx.session, ctx.message.id, ctx.contact)


def register(registry: ChannelRegistry) -> None:
    """Register the Twilio channels."""
    for kind in TWILIO_CHANNELS:
        registry.register(TwilioChannel(kind))
