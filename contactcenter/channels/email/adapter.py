"""The email channel adapter: raw RFC 5322 bytes in, replies out through the SMTP relay.

Provider fields read: the whole message (see ``parser.email_to_contact``). Example::

    InboundContact(channel="email", external_id="CAF=abc@mail.example.com",
                   sender=Identity("email", "anna@example.com", "Anna Petrova"),
                   subject="Router down", text="It blinks red.",
                   thread=ThreadHints(ticket_number=1042, in_reply_to=("msg-7.1042@...",)))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from contactcenter.channels.base import (
    ChannelRegistry,
    InboundContact,
    OutboundMessage,
    SendResult,
)
from contactcenter.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from contactcenter.jobs import JobQueue
    from contactcenter.tickets.intake import IntakeResult


class EmailChannel:
    """Adapter for email received by SMTP, IMAP or from files."""

    kind = "email"

    def enabled(self, settings: Settings) -> bool:
        return True

    def check(self, settings: Settings) -> str:
        from contactcenter.channels.email.outbound import check_relay

        return check_relay(settings)

    def to_inbound(self, payload: bytes, *, inbox_id: int | None, raw_id: int | None
                   ) -> InboundContact:
        from contactcenter.channels.email.parser import email_to_contact

        return email_to_contact(payload, inbox_id=inbox_id, raw_id=raw_id)

    def process_stored(self, session: Session, raw_id: int, registry: ChannelRegistry,
                       settings: Settings, *, jobs: JobQueue | None = None
                       ) -> IntakeResult | None:
        """Process stored mail with its acknowledgement (see ``intake.process_stored``)."""
        from contactcenter.channels.email.receive import process_stored_email

        return process_stored_email(session, raw_id, registry, settings, jobs=jobs)

    def send(self, outbound: OutboundMessage, settings: Settings) -> SendResult:
        from contactcenter.channels.email.outbound import send_email

        return send_email(outbound, settings)


def register(registry: ChannelRegistry) -> None:
    """Register the email channel."""
    registry.register(EmailChannel())
